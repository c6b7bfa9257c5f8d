// Package kpi computes a machine's key figures from its alarm history:
// time in alarm, downtime, availability, failures, MTBF and MTTR. It is
// pure arithmetic on the alarms and the period passed in: no I/O, no clock.
//
// The model: a device is down while any of its critical alarms is active
// (an offline rule with severity critical counts like any other critical
// rule), and in alarm while any of its alarms is active. Overlapping
// alarms count once (the union of their intervals), and every interval is
// clipped to the period [From, To).
package kpi

import (
	"slices"
	"time"
)

// Severities an alarm may have.
const (
	Warning  = "warning"
	Critical = "critical"
)

// Alarm is one alarm of a device: active from Raised until Cleared (zero:
// still active).
type Alarm struct {
	Severity string
	Raised   time.Time
	Cleared  time.Time
}

// Interval is [Start, End); a zero End is open (still going on).
type Interval struct {
	Start, End time.Time
}

// Covered is the length of the union of ivs clipped to [from, to): the
// time in the period at which at least one interval holds. An open
// interval runs to the end of the period; an interval that ends before it
// starts is empty.
func Covered(ivs []Interval, from, to time.Time) time.Duration {
	if !to.After(from) {
		return 0
	}
	clipped := make([]Interval, 0, len(ivs))
	for _, iv := range ivs {
		s, e := iv.Start, iv.End
		if e.IsZero() || e.After(to) {
			e = to
		}
		if s.Before(from) {
			s = from
		}
		if e.After(s) {
			clipped = append(clipped, Interval{s, e})
		}
	}
	slices.SortFunc(clipped, func(a, b Interval) int { return a.Start.Compare(b.Start) })
	var total time.Duration
	var cur Interval
	for i, iv := range clipped {
		switch {
		case i == 0:
			cur = iv
		case !iv.Start.After(cur.End): // overlaps or touches
			if iv.End.After(cur.End) {
				cur.End = iv.End
			}
		default:
			total += cur.End.Sub(cur.Start)
			cur = iv
		}
	}
	if len(clipped) > 0 {
		total += cur.End.Sub(cur.Start)
	}
	return total
}

// Figures are the key figures of one device, or the sums of several
// (see Aggregate), over a period.
type Figures struct {
	Devices int // 1 for a device
	// Period is the length of the period, summed over the devices.
	Period time.Duration
	// Raised counts the alarms raised in the period, by severity.
	Raised map[string]int
	// InAlarm is the time at least one alarm was active.
	InAlarm time.Duration
	// Downtime is the time at least one critical alarm was active.
	Downtime time.Duration
	// Availability is 1 - Downtime/Period; for an aggregate the mean of
	// the devices'.
	Availability float64
	// Failures are the critical alarms raised in the period.
	Failures int
	// Repairs are the critical alarms cleared in the period, and
	// RepairTime the time (clipped to the period) at least one of them
	// was active.
	Repairs    int
	RepairTime time.Duration
}

// MTBF is the mean time between failures, (Period - Downtime) / Failures;
// ok is false without failures.
func (f Figures) MTBF() (d time.Duration, ok bool) {
	if f.Failures == 0 {
		return 0, false
	}
	return (f.Period - f.Downtime) / time.Duration(f.Failures), true
}

// MTTR is the mean time to repair, RepairTime / Repairs; ok is false
// without repairs.
func (f Figures) MTTR() (d time.Duration, ok bool) {
	if f.Repairs == 0 {
		return 0, false
	}
	return f.RepairTime / time.Duration(f.Repairs), true
}

// inPeriod says whether t falls in [from, to).
func inPeriod(t, from, to time.Time) bool { return !t.Before(from) && t.Before(to) }

// Device computes a device's figures over [from, to) from its alarms. An
// alarm still active counts to the end of the period; alarms entirely
// outside the period only fail to contribute.
func Device(alarms []Alarm, from, to time.Time) Figures {
	f := Figures{Devices: 1, Raised: map[string]int{}}
	if !to.After(from) {
		return f
	}
	f.Period = to.Sub(from)
	var all, critical, repaired []Interval
	for _, a := range alarms {
		iv := Interval{a.Raised, a.Cleared}
		all = append(all, iv)
		if inPeriod(a.Raised, from, to) {
			f.Raised[a.Severity]++
		}
		if a.Severity != Critical {
			continue
		}
		critical = append(critical, iv)
		if inPeriod(a.Raised, from, to) {
			f.Failures++
		}
		// Cleared in (from, to]: the repair ended in the period.
		if !a.Cleared.IsZero() && a.Cleared.After(from) && !a.Cleared.After(to) {
			f.Repairs++
			repaired = append(repaired, iv)
		}
	}
	f.InAlarm = Covered(all, from, to)
	f.Downtime = Covered(critical, from, to)
	f.RepairTime = Covered(repaired, from, to)
	f.Availability = 1 - f.Downtime.Seconds()/f.Period.Seconds()
	return f
}

// Aggregate sums the figures of several devices: counts, periods,
// downtime, time in alarm and repair time add up, so MTBF and MTTR are
// those of the summed figures; availability is the mean of the devices'.
// Without devices, availability is 1.
func Aggregate(devs []Figures) Figures {
	t := Figures{Raised: map[string]int{}, Availability: 1}
	var avail float64
	for _, d := range devs {
		t.Devices += d.Devices
		t.Period += d.Period
		for k, n := range d.Raised {
			t.Raised[k] += n
		}
		t.InAlarm += d.InAlarm
		t.Downtime += d.Downtime
		t.Failures += d.Failures
		t.Repairs += d.Repairs
		t.RepairTime += d.RepairTime
		avail += d.Availability
	}
	if len(devs) > 0 {
		t.Availability = avail / float64(len(devs))
	}
	return t
}
