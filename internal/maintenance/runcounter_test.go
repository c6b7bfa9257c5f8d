package maintenance_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/maintenance"
)

var t0 = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

func mins(m float64) time.Time { return t0.Add(time.Duration(m * float64(time.Minute))) }

func TestRunCounter(t *testing.T) {
	c, err := maintenance.NewRunCounter(5 * time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		at      float64 // minutes
		running bool
		used    bool
		run     time.Duration // after the sample
		cycles  int64
	}{
		{0, true, true, 0, 0},
		{1, true, true, time.Minute, 0},
		{2, false, true, 2 * time.Minute, 1}, // on→off: a cycle
		{3, true, true, 2 * time.Minute, 1},  // off time does not count
		{13, true, true, 2 * time.Minute, 1}, // a 10m gap > MaxGap: not counted
		{14, true, true, 3 * time.Minute, 1},
		{14, true, true, 3 * time.Minute, 1}, // same time: no time added
		{15, false, true, 4 * time.Minute, 2},
		{14.5, true, false, 4 * time.Minute, 2}, // older: ignored
		{16, true, true, 4 * time.Minute, 2},
		{30, false, true, 4 * time.Minute, 3}, // across a gap: the stop still counts
	}
	for _, s := range steps {
		if used := c.Observe(mins(s.at), s.running); used != s.used {
			t.Errorf("%gm: Observe returned %v, want %v", s.at, used, s.used)
		}
		if c.RunTime() != s.run || c.Cycles() != s.cycles {
			t.Errorf("%gm: run %s, %d cycles; want %s, %d", s.at, c.RunTime(), c.Cycles(), s.run, s.cycles)
		}
	}
	if got := c.RunHours(); got != 4.0/60 {
		t.Errorf("RunHours = %g", got)
	}

	// The open interval counts up to now, but not beyond MaxGap.
	c.Observe(mins(31), true)
	for _, tc := range []struct {
		now  float64
		want time.Duration
	}{{31, 4 * time.Minute}, {33, 6 * time.Minute}, {36, 9 * time.Minute}, {37, 4 * time.Minute}} {
		if got := c.RunTimeAt(mins(tc.now)); got != tc.want {
			t.Errorf("RunTimeAt(%gm) = %s, want %s", tc.now, got, tc.want)
		}
	}

	// The state survives JSON.
	b, err := json.Marshal(c.State())
	if err != nil {
		t.Fatal(err)
	}
	var st maintenance.RunState
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	c2, _ := maintenance.NewRunCounter(5 * time.Minute)
	if err := c2.Restore(st); err != nil {
		t.Fatal(err)
	}
	c.Observe(mins(34), false)
	c2.Observe(mins(34), false)
	if c.State() != c2.State() || c2.RunTime() != 7*time.Minute || c2.Cycles() != 4 {
		t.Errorf("restored counter diverged: %+v vs %+v", c2.State(), c.State())
	}

	if _, err := maintenance.NewRunCounter(0); err == nil {
		t.Error("NewRunCounter accepted a zero MaxGap")
	}
}

func TestRunCounterFromValues(t *testing.T) {
	c, _ := maintenance.NewRunCounter(time.Minute)
	current := []float64{0.1, 3.2, 3.5, 3.1, 0.2, 0.1, 4.0, 4.2, 0.3} // amps, one a 10 s
	for i, a := range current {
		c.ObserveValue(t0.Add(time.Duration(i)*10*time.Second), a, 1.0)
	}
	if c.RunTime() != 50*time.Second || c.Cycles() != 2 {
		t.Errorf("run %s, %d cycles; want 50s, 2", c.RunTime(), c.Cycles())
	}
}
