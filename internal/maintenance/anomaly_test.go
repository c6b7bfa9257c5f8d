package maintenance_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/maintenance"
)

func TestEWMAQuietOnStationaryNoise(t *testing.T) {
	e, err := maintenance.NewEWMA(0.02, 100)
	if err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	var worst float64
	var over int
	for i := range 20_000 {
		s := e.Update(t0.Add(time.Duration(i)*time.Minute), 60+2*rnd.NormFloat64())
		worst = math.Max(worst, math.Abs(s))
		if maintenance.IsAnomaly(s, 4) {
			over++
		}
	}
	// Gaussian noise passes 4 sd once in 16,000 readings; the estimated
	// spread wobbles a little, so allow a few.
	if over > 10 || worst > 5.5 {
		t.Errorf("stationary noise: %d scores ≥ 4, worst %.2f", over, worst)
	}
	t.Logf("20,000 readings of stationary noise: %d scores ≥ 4, worst %.2f", over, worst)
}

func TestEWMASpikesOnAStep(t *testing.T) {
	e, _ := maintenance.NewEWMA(0.05, 50)
	rnd := rand.New(rand.NewPCG(5, 6))
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
	for i := range 1000 {
		if s := e.Update(at(i), 60+2*rnd.NormFloat64()); i < 50 && s != 0 {
			t.Fatalf("reading %d scored %g during warm-up", i, s)
		}
	}
	// The pump's vacuum degrades: +6 sd from one reading to the next.
	var scores []float64
	for i := 1000; i < 1200; i++ {
		scores = append(scores, e.Update(at(i), 72+2*rnd.NormFloat64()))
	}
	if !maintenance.IsAnomaly(scores[0], 4) {
		t.Errorf("the step scored %.2f, want ≥ 4", scores[0])
	}
	// The average follows the new level; scores fade.
	for _, s := range scores[150:] {
		if maintenance.IsAnomaly(s, 4) {
			t.Errorf("150 readings after the step a score is still %.2f", s)
			break
		}
	}
	t.Logf("step of 6 sd: scores %.1f, %.1f, %.1f … %.1f after 150 readings", scores[0], scores[1], scores[2], scores[150])
}

func TestEWMAEdges(t *testing.T) {
	e, _ := maintenance.NewEWMA(0.1, 3)
	for i, v := range []float64{5, 5, 5} {
		e.Update(t0.Add(time.Duration(i)*time.Second), v)
	}
	if !e.Ready() {
		t.Fatal("not ready after warm-up")
	}
	// A constant signal's first change scores very high but finitely.
	if s := e.Update(t0.Add(3*time.Second), 5.1); math.IsInf(s, 0) || s < 1e6 {
		t.Errorf("first change of a constant signal scored %g", s)
	}
	// Old readings, NaN and infinities are ignored.
	before := e.State()
	for _, s := range []float64{
		e.Update(t0, 100),
		e.Update(t0.Add(time.Hour), math.NaN()),
		e.Update(t0.Add(time.Hour), math.Inf(1)),
	} {
		if s != 0 {
			t.Errorf("ignored reading scored %g", s)
		}
	}
	if e.State() != before {
		t.Error("an ignored reading changed the state")
	}
	// The state survives JSON.
	b, _ := json.Marshal(e.State())
	var st maintenance.EWMAState
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	e2, _ := maintenance.NewEWMA(0.1, 3)
	if err := e2.Restore(st); err != nil {
		t.Fatal(err)
	}
	if a, b := e.Update(t0.Add(time.Hour), 5.05), e2.Update(t0.Add(time.Hour), 5.05); a != b {
		t.Errorf("restored detector scored %g, original %g", b, a)
	}

	for _, bad := range []struct {
		alpha  float64
		warmup int
	}{{0, 10}, {1, 10}, {math.NaN(), 10}, {0.1, 1}} {
		if _, err := maintenance.NewEWMA(bad.alpha, bad.warmup); err == nil {
			t.Errorf("NewEWMA(%g, %d) accepted", bad.alpha, bad.warmup)
		}
	}
}
