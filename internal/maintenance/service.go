package maintenance

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// ServiceInterval is how often a machine is to be serviced: every so many
// operating hours, every so many calendar months, or whichever comes first.
// A zero field is no limit.
type ServiceInterval struct {
	EveryRunHours float64 `json:"everyRunHours,omitempty"`
	EveryMonths   int     `json:"everyMonths,omitempty"`
}

// The reasons NextDue gives.
const (
	DueByRunHours = "run-hours" // the operating-hours limit comes first
	DueByMonths   = "months"    // the calendar limit comes first (or at the same time)
)

// Validate reports whether s sets at least one limit and no negative one.
func (s ServiceInterval) Validate() error {
	var errs []error
	if math.IsNaN(s.EveryRunHours) || math.IsInf(s.EveryRunHours, 0) || s.EveryRunHours < 0 {
		errs = append(errs, fmt.Errorf("everyRunHours: must be a positive number or 0, got %g", s.EveryRunHours))
	}
	if s.EveryMonths < 0 {
		errs = append(errs, fmt.Errorf("everyMonths: must be positive or 0, got %d", s.EveryMonths))
	}
	if len(errs) == 0 && s.EveryRunHours == 0 && s.EveryMonths == 0 {
		errs = append(errs, errors.New("set everyRunHours, everyMonths or both"))
	}
	return errors.Join(errs...)
}

// NextDue forecasts when the next service falls due, and which limit makes
// it due (DueByRunHours or DueByMonths).
//
// The calendar limit is lastService plus EveryMonths, on the same day of the
// month (or the month's last day, if shorter). The hours limit turns the
// hours still to run, EveryRunHours - runHoursSinceService, into a date at
// hoursPerDay, the recent usage (see UsageRate), counted from now; if the
// hours are already used up it is the past date at which, at that rate, they
// were. Without usage (hoursPerDay <= 0) the hours limit gives no date
// unless it is already reached, when it is now. If neither limit gives a
// date, due is zero and reason empty.
func (s ServiceInterval) NextDue(lastService time.Time, runHoursSinceService, hoursPerDay float64, now time.Time) (due time.Time, reason string) {
	if s.EveryMonths > 0 {
		due, reason = addMonths(lastService, s.EveryMonths), DueByMonths
	}
	if s.EveryRunHours > 0 && !math.IsNaN(runHoursSinceService) {
		left := s.EveryRunHours - runHoursSinceService
		var byHours time.Time
		switch {
		case hoursPerDay > 0 && !math.IsInf(hoursPerDay, 0):
			byHours = now.Add(fromDays(left / hoursPerDay))
		case left <= 0:
			byHours = now
		}
		if !byHours.IsZero() && (due.IsZero() || byHours.Before(due)) {
			due, reason = byHours, DueByRunHours
		}
	}
	return due, reason
}

// addMonths adds n calendar months to t, keeping the day of the month but
// not running past the end of a shorter month: 31 January + 1 month is 28
// (or 29) February.
func addMonths(t time.Time, n int) time.Time {
	y, m, d := t.Date()
	first := time.Date(y, m+time.Month(n), 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
	last := first.AddDate(0, 1, -1).Day()
	return first.AddDate(0, 0, min(d, last)-1)
}

// UsagePoint is a reading of a machine's operating-hours counter.
type UsagePoint struct {
	At       time.Time `json:"at"`
	RunHours float64   `json:"runHours"` // the counter: hours run in the machine's life
}

// UsageRate is the recent usage in operating hours per calendar day: the
// hours the counter advanced between its first and last reading in the
// window before now, divided by the days between those readings. A counter
// that goes back (a replaced controller) restarts the count; the step back
// is not subtracted. ok is false with fewer than two readings an hour or
// more apart in the window.
func UsageRate(usage []UsagePoint, now time.Time, window time.Duration) (hoursPerDay float64, ok bool) {
	from := now.Add(-window)
	var in []UsagePoint
	for _, p := range usage {
		if !p.At.Before(from) && !p.At.After(now) && !math.IsNaN(p.RunHours) && !math.IsInf(p.RunHours, 0) {
			in = append(in, p)
		}
	}
	slices.SortStableFunc(in, func(a, b UsagePoint) int { return a.At.Compare(b.At) })
	if len(in) < 2 {
		return 0, false
	}
	span := in[len(in)-1].At.Sub(in[0].At)
	if span < time.Hour {
		return 0, false
	}
	var hours float64
	for i := 1; i < len(in); i++ {
		if step := in[i].RunHours - in[i-1].RunHours; step > 0 {
			hours += step
		}
	}
	return hours / inDays(span), true
}

// inDays converts a duration to days.
func inDays(d time.Duration) float64 { return d.Hours() / 24 }

// fromDays converts days to a duration, saturating at its limits.
func fromDays(d float64) time.Duration {
	ns := d * float64(24*time.Hour)
	switch {
	case ns >= math.MaxInt64:
		return math.MaxInt64
	case ns <= math.MinInt64:
		return math.MinInt64
	}
	return time.Duration(ns)
}
