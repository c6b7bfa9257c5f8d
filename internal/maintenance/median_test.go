package maintenance

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestMedianMatchesSorting(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for n := 1; n < 300; n++ {
		xs := make([]float64, n)
		for i := range xs {
			switch n % 3 {
			case 0:
				xs[i] = float64(rnd.IntN(5)) // many ties
			case 1:
				xs[i] = rnd.NormFloat64()
			default:
				xs[i] = float64(i) // sorted
			}
		}
		sorted := slices.Clone(xs)
		slices.Sort(sorted)
		want := sorted[n/2]
		if n%2 == 0 {
			want = (sorted[n/2-1] + sorted[n/2]) / 2
		}
		if got := median(xs); got != want {
			t.Fatalf("n=%d: median %g, want %g", n, got, want)
		}
	}
}
