package maintenance_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/maintenance"
)

// wear is a synthetic wear indicator: a linear ramp of slope per day that
// reaches level at now, with Gaussian noise of sd noise and a share of
// outliers 10 to 30 above the line, sampled every step for span before now.
func wear(rnd *rand.Rand, now time.Time, span, step time.Duration, level, slope, noise, outliers float64) []maintenance.Point {
	var pts []maintenance.Point
	for at := now.Add(-span); !at.After(now); at = at.Add(step) {
		v := level + slope*at.Sub(now).Hours()/24 + noise*rnd.NormFloat64()
		if rnd.Float64() < outliers {
			v += 10 + 20*rnd.Float64()
		}
		pts = append(pts, maintenance.Point{At: at, Value: v})
	}
	return pts
}

func TestTrendFindsTheCrossingDespiteOutliers(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	truth := now.AddDate(0, 0, 30) // 100 + 0.5/day × 30 days = 115
	tests := []struct {
		name string
		step time.Duration
	}{
		{"hourly for 60 days: every pair", time.Hour},                   // 1,441 points
		{"every 5 minutes for 60 days: sampled pairs", 5 * time.Minute}, // 17,281 points
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(7, 11))
			pts := wear(rnd, now, 60*24*time.Hour, tt.step, 100, 0.5, 1, 0.05)
			f := maintenance.Trend(pts, 115, now)
			if !f.OK {
				t.Fatal("no fit")
			}
			if off := f.CrossAt.Sub(truth); off.Abs() > 48*time.Hour {
				t.Errorf("CrossAt %s is %s from the truth %s", f.CrossAt, off, truth)
			}
			if math.Abs(f.SlopePerDay-0.5) > 0.01 {
				t.Errorf("slope %g/day, want 0.5", f.SlopePerDay)
			}
			if !maintenance.WarnAhead(f, now, 35) || maintenance.WarnAhead(f, now, 25) {
				t.Errorf("WarnAhead wrong for a crossing at %s", f.CrossAt)
			}
			t.Logf("%d points, %d pairs: slope %.4f/day, level %.3f, crossing %s from the truth",
				f.Points, f.Pairs, f.SlopePerDay, f.Intercept, f.CrossAt.Sub(truth).Round(time.Minute))

			// The same points in another order give the same forecast.
			rnd.Shuffle(len(pts), func(i, j int) { pts[i], pts[j] = pts[j], pts[i] })
			if g := maintenance.Trend(pts, 115, now); g != f {
				t.Errorf("shuffled points gave %+v, want %+v", g, f)
			}
		})
	}
}

func TestTrendEdges(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	at := func(d float64) time.Time { return now.Add(time.Duration(d * 24 * float64(time.Hour))) }

	// A falling measure is read against the limit as a minimum.
	falling := []maintenance.Point{{at(-3), 13}, {at(-2), 12}, {at(-1), 11}, {at(0), 10}}
	f := maintenance.Trend(falling, 4, now)
	if !f.OK || f.SlopePerDay != -1 || f.Intercept != 10 || !f.CrossAt.Equal(at(6)) {
		t.Errorf("falling: %+v", f)
	}
	if got := f.ValueAt(at(2)); got != 8 {
		t.Errorf("ValueAt(+2d) = %g", got)
	}
	// Already beyond: the crossing is in the past, and WarnAhead says so.
	f = maintenance.Trend(falling, 11.5, now)
	if !f.CrossAt.Equal(at(-1.5)) || !maintenance.WarnAhead(f, now, 0) {
		t.Errorf("already beyond: %+v", f)
	}
	// Flat: no crossing.
	flat := []maintenance.Point{{at(-2), 5}, {at(-1), 5}, {at(0), 5}, {at(0), math.NaN()}}
	if f := maintenance.Trend(flat, 6, now); !f.OK || !f.CrossAt.IsZero() || maintenance.WarnAhead(f, now, 1000) || f.Points != 3 {
		t.Errorf("flat: %+v", f)
	}
	// Nothing to fit.
	for _, pts := range [][]maintenance.Point{nil, {{at(0), 1}}, {{at(0), 1}, {at(0), 2}}} {
		if f := maintenance.Trend(pts, 6, now); f.OK || maintenance.WarnAhead(f, now, 1000) {
			t.Errorf("%v: %+v", pts, f)
		}
	}
}

func BenchmarkTrend(b *testing.B) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, n := range []int{1000, 2000, 100_000} {
		rnd := rand.New(rand.NewPCG(1, 1))
		span := 60 * 24 * time.Hour
		pts := wear(rnd, now, span, span/time.Duration(n-1), 100, 0.5, 1, 0.05)
		b.Run(fmt.Sprintf("%dpoints", n), func(b *testing.B) {
			for b.Loop() {
				maintenance.Trend(pts, 115, now)
			}
		})
	}
}
