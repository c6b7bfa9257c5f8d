package maintenance

import (
	"errors"
	"fmt"
	"time"
)

// RunCounter accumulates a machine's operating time and its on→off cycles
// from samples that say whether it runs.
//
// The machine is taken to keep the state of a sample until the next one, but
// not across a gap: an interval between samples longer than MaxGap (the
// device was off-line, or lost data) counts as not running, whatever the
// samples at its ends say. A cycle is counted on every observed on→off
// change, gap or not: a machine seen running, then seen stopped, has
// stopped once. Samples older than the last one are ignored; a sample at the
// same time as the last one updates the state without adding time.
type RunCounter struct {
	maxGap time.Duration
	s      RunState
}

// RunState is a RunCounter's state.
type RunState struct {
	Last    time.Time     `json:"last,omitzero"` // time of the last sample; zero before the first
	Running bool          `json:"running,omitempty"`
	RunTime time.Duration `json:"runTime"` // in nanoseconds
	Cycles  int64         `json:"cycles"`
}

// NewRunCounter makes a counter with no samples yet. maxGap must be
// positive.
func NewRunCounter(maxGap time.Duration) (*RunCounter, error) {
	if maxGap <= 0 {
		return nil, fmt.Errorf("maintenance: run counter: max gap must be positive, got %s", maxGap)
	}
	return &RunCounter{maxGap: maxGap}, nil
}

// Observe takes a sample: at ts the machine was running or not. It reports
// whether the sample was used (false for a sample older than the last).
func (c *RunCounter) Observe(ts time.Time, running bool) bool {
	if !c.s.Last.IsZero() {
		if ts.Before(c.s.Last) {
			return false
		}
		if c.s.Running {
			if gap := ts.Sub(c.s.Last); gap <= c.maxGap {
				c.s.RunTime += gap
			}
			if !running {
				c.s.Cycles++
			}
		}
	}
	c.s.Last, c.s.Running = ts, running
	return true
}

// ObserveValue takes a sample of a signal that shows the machine runs, such
// as a motor current: it runs while the value is above threshold. NaN
// counts as not running.
func (c *RunCounter) ObserveValue(ts time.Time, value, threshold float64) bool {
	return c.Observe(ts, value > threshold)
}

// RunTime is the operating time up to the last sample.
func (c *RunCounter) RunTime() time.Duration { return c.s.RunTime }

// RunHours is RunTime in hours.
func (c *RunCounter) RunHours() float64 { return c.s.RunTime.Hours() }

// RunTimeAt is the operating time up to now: RunTime plus, if the machine
// was running at the last sample and now is within MaxGap of it, the time
// since.
func (c *RunCounter) RunTimeAt(now time.Time) time.Duration {
	t := c.s.RunTime
	if c.s.Running && !c.s.Last.IsZero() {
		if open := now.Sub(c.s.Last); open > 0 && open <= c.maxGap {
			t += open
		}
	}
	return t
}

// Cycles is the number of on→off changes seen.
func (c *RunCounter) Cycles() int64 { return c.s.Cycles }

// State returns the counter's state.
func (c *RunCounter) State() RunState { return c.s }

// Restore replaces the counter's state.
func (c *RunCounter) Restore(s RunState) error {
	if s.RunTime < 0 || s.Cycles < 0 {
		return errors.New("maintenance: run counter: negative run time or cycle count")
	}
	c.s = s
	return nil
}
