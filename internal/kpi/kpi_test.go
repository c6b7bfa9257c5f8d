package kpi

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// at is t0 plus h hours.
func at(h float64) time.Time { return t0.Add(time.Duration(h * float64(time.Hour))) }

// open is the end of an alarm still active.
var open = time.Time{}

func hours(h float64) time.Duration { return time.Duration(h * float64(time.Hour)) }

func TestCovered(t *testing.T) {
	for _, tc := range []struct {
		name string
		ivs  []Interval
		want time.Duration
	}{
		{"none", nil, 0},
		{"one inside", []Interval{{at(1), at(3)}}, hours(2)},
		{"two apart", []Interval{{at(1), at(2)}, {at(4), at(7)}}, hours(4)},
		{"overlapping", []Interval{{at(1), at(4)}, {at(3), at(6)}}, hours(5)},
		{"nested", []Interval{{at(1), at(8)}, {at(2), at(3)}, {at(4), at(5)}}, hours(7)},
		{"touching", []Interval{{at(1), at(2)}, {at(2), at(3)}}, hours(2)},
		{"unsorted", []Interval{{at(6), at(7)}, {at(1), at(2)}, {at(1.5), at(2.5)}}, hours(2.5)},
		{"starts before the period", []Interval{{at(-5), at(2)}}, hours(2)},
		{"open at the period end", []Interval{{at(8), open}}, hours(2)},
		{"ends after the period", []Interval{{at(9), at(15)}}, hours(1)},
		{"covers the period", []Interval{{at(-1), at(11)}}, hours(10)},
		{"open from before", []Interval{{at(-1), open}}, hours(10)},
		{"entirely before", []Interval{{at(-5), at(-1)}}, 0},
		{"entirely after", []Interval{{at(10), at(12)}}, 0},
		{"ends at the start", []Interval{{at(-2), at(0)}}, 0},
		{"backwards", []Interval{{at(3), at(2)}}, 0},
		{"overlapping, one open, one clipped", []Interval{{at(-2), at(1)}, {at(0.5), at(3)}, {at(9), open}}, hours(4)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Covered(tc.ivs, at(0), at(10)); got != tc.want {
				t.Errorf("Covered = %v, want %v", got, tc.want)
			}
		})
	}
	if got := Covered([]Interval{{at(1), at(2)}}, at(5), at(5)); got != 0 {
		t.Errorf("empty period: %v", got)
	}
}

func TestDevice(t *testing.T) {
	type want struct {
		raised        map[string]int
		inAlarm, down time.Duration
		availability  float64
		failures      int
		mtbf, mttr    time.Duration // -1: none
		repairs       int
	}
	for _, tc := range []struct {
		name   string
		alarms []Alarm
		want   want
	}{
		{"no alarms", nil, want{raised: map[string]int{}, availability: 1, mtbf: -1, mttr: -1}},
		{"warnings only", []Alarm{{Warning, at(1), at(3)}, {Warning, at(2), at(4)}},
			want{raised: map[string]int{Warning: 2}, inAlarm: hours(3), availability: 1, mtbf: -1, mttr: -1}},
		{"one critical, cleared", []Alarm{{Critical, at(2), at(4)}},
			want{raised: map[string]int{Critical: 1}, inAlarm: hours(2), down: hours(2), availability: 0.8,
				failures: 1, mtbf: hours(8), mttr: hours(2), repairs: 1}},
		{"overlapping criticals count once as downtime", []Alarm{{Critical, at(1), at(4)}, {Critical, at(3), at(5)}},
			// Down 1..5 = 4h; both cleared: repair time 4h over 2 repairs.
			want{raised: map[string]int{Critical: 2}, inAlarm: hours(4), down: hours(4), availability: 0.6,
				failures: 2, mtbf: hours(3), mttr: hours(2), repairs: 2}},
		{"critical open at the period end", []Alarm{{Critical, at(8), open}},
			// Down 8..10; a failure, no repair yet.
			want{raised: map[string]int{Critical: 1}, inAlarm: hours(2), down: hours(2), availability: 0.8,
				failures: 1, mtbf: hours(8), mttr: -1}},
		{"critical from before the period", []Alarm{{Critical, at(-3), at(1)}},
			// Down 0..1 in the period; raised before, so no failure in
			// the period, but repaired in it.
			want{raised: map[string]int{}, inAlarm: hours(1), down: hours(1), availability: 0.9,
				failures: 0, mtbf: -1, mttr: hours(1), repairs: 1}},
		{"critical cleared after the period", []Alarm{{Critical, at(9), at(12)}},
			want{raised: map[string]int{Critical: 1}, inAlarm: hours(1), down: hours(1), availability: 0.9,
				failures: 1, mtbf: hours(9), mttr: -1}},
		{"warning inside a critical", []Alarm{{Critical, at(1), at(5)}, {Warning, at(2), at(7)}},
			want{raised: map[string]int{Critical: 1, Warning: 1}, inAlarm: hours(6), down: hours(4), availability: 0.6,
				failures: 1, mtbf: hours(6), mttr: hours(4), repairs: 1}},
		{"outside the period", []Alarm{{Critical, at(-5), at(-1)}, {Critical, at(10), at(11)}},
			want{raised: map[string]int{}, availability: 1, mtbf: -1, mttr: -1}},
		{"down the whole period", []Alarm{{Critical, at(-1), open}},
			want{raised: map[string]int{}, inAlarm: hours(10), down: hours(10), availability: 0, mtbf: -1, mttr: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := Device(tc.alarms, at(0), at(10))
			w := tc.want
			if f.Devices != 1 || f.Period != hours(10) {
				t.Errorf("devices %d period %v", f.Devices, f.Period)
			}
			if len(f.Raised) != len(w.raised) {
				t.Errorf("raised %v, want %v", f.Raised, w.raised)
			}
			for k, n := range w.raised {
				if f.Raised[k] != n {
					t.Errorf("raised %v, want %v", f.Raised, w.raised)
				}
			}
			if f.InAlarm != w.inAlarm || f.Downtime != w.down {
				t.Errorf("in alarm %v down %v, want %v and %v", f.InAlarm, f.Downtime, w.inAlarm, w.down)
			}
			if math.Abs(f.Availability-w.availability) > 1e-12 {
				t.Errorf("availability %v, want %v", f.Availability, w.availability)
			}
			if f.Failures != w.failures || f.Repairs != w.repairs {
				t.Errorf("failures %d repairs %d, want %d and %d", f.Failures, f.Repairs, w.failures, w.repairs)
			}
			if d, ok := f.MTBF(); (w.mtbf < 0) == ok || (ok && d != w.mtbf) {
				t.Errorf("MTBF %v %v, want %v", d, ok, w.mtbf)
			}
			if d, ok := f.MTTR(); (w.mttr < 0) == ok || (ok && d != w.mttr) {
				t.Errorf("MTTR %v %v, want %v", d, ok, w.mttr)
			}
		})
	}
}

func TestDeviceEmptyPeriod(t *testing.T) {
	f := Device([]Alarm{{Critical, at(1), at(2)}}, at(5), at(5))
	if f.Period != 0 || f.Failures != 0 || f.Downtime != 0 {
		t.Errorf("empty period: %+v", f)
	}
}

func TestAggregate(t *testing.T) {
	a := Device([]Alarm{{Critical, at(1), at(3)}, {Warning, at(4), at(5)}}, at(0), at(10)) // down 2h, 1 failure, 1 repair
	b := Device([]Alarm{{Critical, at(2), at(3)}, {Critical, at(6), open}}, at(0), at(10)) // down 5h, 2 failures, 1 repair
	c := Device(nil, at(0), at(10))
	g := Aggregate([]Figures{a, b, c})
	if g.Devices != 3 || g.Period != hours(30) {
		t.Fatalf("devices %d period %v", g.Devices, g.Period)
	}
	if g.Raised[Critical] != 3 || g.Raised[Warning] != 1 || g.Failures != 3 || g.Repairs != 2 {
		t.Errorf("counts: %+v", g)
	}
	if g.Downtime != hours(7) || g.InAlarm != hours(8) || g.RepairTime != hours(3) {
		t.Errorf("down %v in alarm %v repair %v", g.Downtime, g.InAlarm, g.RepairTime)
	}
	// Mean of 0.8, 0.5 and 1.
	if want := (0.8 + 0.5 + 1) / 3; math.Abs(g.Availability-want) > 1e-12 {
		t.Errorf("availability %v, want %v", g.Availability, want)
	}
	// (30h - 7h) / 3 failures; 3h / 2 repairs.
	if d, ok := g.MTBF(); !ok || d != hours(23)/3 {
		t.Errorf("MTBF %v %v", d, ok)
	}
	if d, ok := g.MTTR(); !ok || d != hours(1.5) {
		t.Errorf("MTTR %v %v", d, ok)
	}
	if e := Aggregate(nil); e.Devices != 0 || e.Availability != 1 {
		t.Errorf("empty aggregate: %+v", e)
	}
}
