package maintenance_test

import (
	"math"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/maintenance"
)

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func TestNextDue(t *testing.T) {
	now := day(2026, 3, 1)
	tests := []struct {
		name       string
		interval   maintenance.ServiceInterval
		last       time.Time
		hoursSince float64
		perDay     float64
		want       time.Time
		reason     string
	}{
		{"hours first", maintenance.ServiceInterval{EveryRunHours: 500, EveryMonths: 12}, day(2025, 12, 1), 400, 10,
			day(2026, 3, 11), maintenance.DueByRunHours},
		{"months first", maintenance.ServiceInterval{EveryRunHours: 500, EveryMonths: 6}, day(2025, 12, 1), 100, 2,
			day(2026, 6, 1), maintenance.DueByMonths},
		{"month end is clamped", maintenance.ServiceInterval{EveryMonths: 1}, day(2026, 1, 31), 0, 0,
			day(2026, 2, 28), maintenance.DueByMonths},
		{"leap year", maintenance.ServiceInterval{EveryMonths: 25}, day(2026, 1, 31), 0, 0,
			day(2028, 2, 29), maintenance.DueByMonths},
		{"hours used up: when they ran out", maintenance.ServiceInterval{EveryRunHours: 500, EveryMonths: 12}, day(2025, 6, 1), 520, 10,
			day(2026, 2, 27), maintenance.DueByRunHours},
		{"hours used up, no usage: now", maintenance.ServiceInterval{EveryRunHours: 500}, day(2025, 6, 1), 500, 0,
			now, maintenance.DueByRunHours},
		{"no usage: calendar only", maintenance.ServiceInterval{EveryRunHours: 500, EveryMonths: 12}, day(2025, 6, 1), 20, 0,
			day(2026, 6, 1), maintenance.DueByMonths},
		{"no usage, no calendar: unknown", maintenance.ServiceInterval{EveryRunHours: 500}, day(2025, 6, 1), 20, 0,
			time.Time{}, ""},
		{"a tie goes to the calendar", maintenance.ServiceInterval{EveryRunHours: 100, EveryMonths: 1}, day(2026, 2, 1), 100, 5,
			now, maintenance.DueByMonths},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := tt.interval.NextDue(tt.last, tt.hoursSince, tt.perDay, now)
			if d := got.Sub(tt.want); math.Abs(d.Seconds()) > 1 || reason != tt.reason {
				t.Errorf("NextDue = %s %q, want %s %q", got, reason, tt.want, tt.reason)
			}
		})
	}
}

func TestServiceIntervalValidate(t *testing.T) {
	for _, bad := range []maintenance.ServiceInterval{{}, {EveryRunHours: -1}, {EveryMonths: -1}, {EveryRunHours: math.NaN()}} {
		if bad.Validate() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	for _, good := range []maintenance.ServiceInterval{{EveryRunHours: 1}, {EveryMonths: 1}, {EveryRunHours: 2000, EveryMonths: 12}} {
		if err := good.Validate(); err != nil {
			t.Errorf("%+v: %v", good, err)
		}
	}
}

func TestUsageRate(t *testing.T) {
	now := day(2026, 3, 1)
	var usage []maintenance.UsagePoint
	counter := 1000.0
	for d := 60; d >= 0; d-- {
		usage = append(usage, maintenance.UsagePoint{At: now.AddDate(0, 0, -d), RunHours: counter})
		if d > 30 {
			counter += 2 // an older, quieter period outside the window
		} else {
			counter += 8
		}
	}
	rate, ok := maintenance.UsageRate(usage, now, 30*24*time.Hour)
	if !ok || math.Abs(rate-8) > 1e-9 {
		t.Errorf("UsageRate = %g, %v; want 8", rate, ok)
	}

	// A counter reset (new controller) loses nothing but the step back.
	reset := []maintenance.UsagePoint{
		{At: now.AddDate(0, 0, -10), RunHours: 5000},
		{At: now.AddDate(0, 0, -5), RunHours: 5040},
		{At: now.AddDate(0, 0, -4), RunHours: 0},
		{At: now, RunHours: 32},
	}
	if rate, ok := maintenance.UsageRate(reset, now, 30*24*time.Hour); !ok || math.Abs(rate-7.2) > 1e-9 {
		t.Errorf("with a reset: UsageRate = %g, %v; want 7.2", rate, ok)
	}
	if _, ok := maintenance.UsageRate(usage[:1], now, 30*24*time.Hour); ok {
		t.Error("one reading gave a rate")
	}
}
