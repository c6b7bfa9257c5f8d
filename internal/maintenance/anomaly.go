package maintenance

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// EWMA scores how unusual each reading of a signal is, as a standardized
// residual: how many standard deviations the reading lies from what the
// recent past predicts. The prediction is an exponentially weighted moving
// average of the readings, the spread an exponentially weighted moving
// variance of the residuals; each reading is scored against them before it
// updates them, so a reading cannot hide itself.
//
// The first Warmup readings only learn (plain mean and variance, a steadier
// start than an average of one reading) and score 0. A step change scores
// high at the step and then less as the average follows it, at a pace set
// by Alpha: the weight of the newest reading, so that about 2/Alpha
// readings make up the average. Readings older than the last one, NaN and
// infinities are ignored and score 0.
type EWMA struct {
	alpha  float64
	warmup int
	s      EWMAState
}

// EWMAState is an EWMA's state.
type EWMAState struct {
	N    int       `json:"n"` // readings taken
	Mean float64   `json:"mean"`
	Var  float64   `json:"var"` // during warm-up: the sum of squared deviations
	Last time.Time `json:"last,omitzero"`
}

// NewEWMA makes a detector. alpha must be in (0, 1); warmup at least 2.
func NewEWMA(alpha float64, warmup int) (*EWMA, error) {
	if !(alpha > 0 && alpha < 1) {
		return nil, fmt.Errorf("maintenance: ewma: alpha must be between 0 and 1, got %g", alpha)
	}
	if warmup < 2 {
		return nil, fmt.Errorf("maintenance: ewma: warm-up must be at least 2 readings, got %d", warmup)
	}
	return &EWMA{alpha: alpha, warmup: warmup}, nil
}

// Update takes the reading v at ts and returns its score: positive above
// the prediction, negative below, 0 during warm-up.
func (e *EWMA) Update(ts time.Time, v float64) (score float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) || (e.s.N > 0 && ts.Before(e.s.Last)) {
		return 0
	}
	e.s.Last = ts
	if e.s.N < e.warmup {
		// Welford's running mean and sum of squares.
		e.s.N++
		d := v - e.s.Mean
		e.s.Mean += d / float64(e.s.N)
		e.s.Var += d * (v - e.s.Mean)
		if e.s.N == e.warmup {
			e.s.Var /= float64(e.s.N - 1)
		}
		return 0
	}
	e.s.N++
	d := v - e.s.Mean
	score = d / math.Max(math.Sqrt(e.s.Var), minSpread(e.s.Mean))
	incr := e.alpha * d
	e.s.Mean += incr
	e.s.Var = (1 - e.alpha) * (e.s.Var + d*incr)
	return score
}

// minSpread keeps a perfectly constant signal from dividing by zero: its
// first change then scores very high, but finitely.
func minSpread(mean float64) float64 {
	return 1e-9 * math.Max(1, math.Abs(mean))
}

// Ready reports whether the warm-up is over, so that scores mean something.
func (e *EWMA) Ready() bool { return e.s.N >= e.warmup }

// State returns the detector's state.
func (e *EWMA) State() EWMAState { return e.s }

// Restore replaces the detector's state.
func (e *EWMA) Restore(s EWMAState) error {
	if s.N < 0 || s.Var < 0 || math.IsNaN(s.Mean) || math.IsNaN(s.Var) || math.IsInf(s.Mean, 0) || math.IsInf(s.Var, 0) {
		return errors.New("maintenance: ewma: invalid state")
	}
	e.s = s
	return nil
}

// IsAnomaly reports whether a score is at least threshold standard
// deviations from the prediction, either way. 4 is a reasonable start:
// Gaussian noise gets there about once in 16,000 readings, somewhat more
// often with a small warm-up or a large alpha, whose spread wobbles.
func IsAnomaly(score, threshold float64) bool {
	return math.Abs(score) >= threshold
}
