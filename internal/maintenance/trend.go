package maintenance

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"time"
)

// Point is one reading of a measure, such as a wear indicator.
type Point struct {
	At    time.Time `json:"at"`
	Value float64   `json:"value"`
}

// Forecast is a straight line fitted to a measure's history, and when it
// reaches a limit.
type Forecast struct {
	// OK is false when there was nothing to fit: fewer than two points
	// at different times. Every other field is then zero.
	OK          bool      `json:"ok"`
	SlopePerDay float64   `json:"slopePerDay"`
	Intercept   float64   `json:"intercept"` // fitted value at Origin
	Origin      time.Time `json:"origin"`    // the now the forecast was made at
	// CrossAt is when the fitted line reaches the limit, moving the way it
	// moves: a rising line is read against the limit as a maximum, a
	// falling one as a minimum. It is before Origin when the fitted value
	// is already beyond the limit, and zero when the line is flat.
	CrossAt time.Time `json:"crossAt,omitzero"`
	Points  int       `json:"points"` // points used
	Pairs   int       `json:"pairs"`  // pairwise slopes the slope is the median of
}

// ValueAt is the fitted value at t.
func (f Forecast) ValueAt(t time.Time) float64 {
	return f.Intercept + f.SlopePerDay*inDays(t.Sub(f.Origin))
}

// Limits of Trend's work.
const (
	// exhaustiveUpTo is the most points for which Trend takes every pair.
	exhaustiveUpTo = 2000
	// sampledPairs is how many pairs Trend samples from more points.
	sampledPairs = 1_000_000
)

// Trend fits a line to points with the Theil–Sen estimator and forecasts
// when it reaches limit. The slope is the median of the slopes between
// pairs of points, the intercept the median of the points' offsets from
// it, so up to about 29% of outliers do not move the line. Points with a
// NaN or infinite value are ignored, as are pairs at the same time.
//
// Up to 2,000 points every pair is used; beyond, a sample of 1,000,000 pairs
// drawn by a generator seeded from the number of points, so the result is
// still the same for the same points, and the cost O(n log n) for sorting
// plus a constant.
func Trend(points []Point, limit float64, now time.Time) Forecast {
	pts := make([]Point, 0, len(points))
	for _, p := range points {
		if !math.IsNaN(p.Value) && !math.IsInf(p.Value, 0) {
			pts = append(pts, p)
		}
	}
	// A stable order makes the pair sample independent of the input order.
	slices.SortFunc(pts, func(a, b Point) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return cmpFloat(a.Value, b.Value)
	})
	n := len(pts)
	x := make([]float64, n) // days relative to now
	for i, p := range pts {
		x[i] = inDays(p.At.Sub(now))
	}

	var slopes []float64
	if n <= exhaustiveUpTo {
		slopes = make([]float64, 0, n*(n-1)/2)
		for i := range n {
			for j := i + 1; j < n; j++ {
				if dx := x[j] - x[i]; dx > 0 {
					slopes = append(slopes, (pts[j].Value-pts[i].Value)/dx)
				}
			}
		}
	} else {
		rnd := rand.New(rand.NewPCG(uint64(n), 0x7e4d))
		slopes = make([]float64, 0, sampledPairs)
		for range sampledPairs {
			i, j := rnd.IntN(n), rnd.IntN(n)
			if i > j {
				i, j = j, i
			}
			if dx := x[j] - x[i]; dx > 0 {
				slopes = append(slopes, (pts[j].Value-pts[i].Value)/dx)
			}
		}
	}
	if len(slopes) == 0 {
		return Forecast{}
	}
	f := Forecast{OK: true, Origin: now, Points: n, Pairs: len(slopes)}
	f.SlopePerDay = median(slopes)
	offsets := make([]float64, n)
	for i, p := range pts {
		offsets[i] = p.Value - f.SlopePerDay*x[i]
	}
	f.Intercept = median(offsets)
	if f.SlopePerDay != 0 {
		f.CrossAt = now.Add(fromDays((limit - f.Intercept) / f.SlopePerDay))
	}
	return f
}

// WarnAhead reports whether f forecasts the limit reached within days of
// now, or already reached.
func WarnAhead(f Forecast, now time.Time, days float64) bool {
	return f.OK && !f.CrossAt.IsZero() && !f.CrossAt.After(now.Add(fromDays(days)))
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// median returns the median of xs, which it reorders. xs holds no NaN.
func median(xs []float64) float64 {
	n := len(xs)
	k := n / 2
	hi := selectKth(xs, k)
	if n%2 == 1 {
		return hi
	}
	// After selection everything before k is <= xs[k].
	return (slices.Max(xs[:k]) + hi) / 2
}

// selectKth reorders xs so that xs[k] is the k-th smallest, everything
// before it no larger and everything after no smaller, and returns it. It
// is quickselect with a median-of-three pivot, falling back to sorting a
// range that does not shrink fast enough, so it is O(n) in practice and
// O(n log n) at worst.
func selectKth(xs []float64, k int) float64 {
	lo, hi := 0, len(xs)-1
	budget := 2 * bits.Len(uint(len(xs)))
	for hi > lo {
		if budget == 0 {
			slices.Sort(xs[lo : hi+1])
			break
		}
		budget--
		// Median of three as the pivot, moved to xs[hi].
		mid := lo + (hi-lo)/2
		if xs[mid] < xs[lo] {
			xs[mid], xs[lo] = xs[lo], xs[mid]
		}
		if xs[hi] < xs[lo] {
			xs[hi], xs[lo] = xs[lo], xs[hi]
		}
		if xs[mid] < xs[hi] {
			xs[mid], xs[hi] = xs[hi], xs[mid]
		}
		pivot := xs[hi]
		// Three-way partition: < pivot, == pivot, > pivot.
		lt, i, gt := lo, lo, hi
		for i <= gt {
			switch {
			case xs[i] < pivot:
				xs[lt], xs[i] = xs[i], xs[lt]
				lt++
				i++
			case xs[i] > pivot:
				xs[i], xs[gt] = xs[gt], xs[i]
				gt--
			default:
				i++
			}
		}
		switch {
		case k < lt:
			hi = lt - 1
		case k > gt:
			lo = gt + 1
		default:
			return xs[k]
		}
	}
	return xs[k]
}
