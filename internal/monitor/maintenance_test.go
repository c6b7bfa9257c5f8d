package monitor_test

import (
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/maintenance"
	"github.com/warden-iot/warden/internal/monitor"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/simulate"
	"github.com/warden-iot/warden/internal/tenancy"
)

// TestMaintenanceAnomalyAndPlans: the nearest tenant's plan applies; its
// anomaly watch on the motor current (only while running) warns when the
// vacuum leak makes the current jump; when the plan is deleted the device
// falls back to the plan above and the warning the new plan does not have
// clears; without any plan the device has none.
func TestMaintenanceAnomalyAndPlans(t *testing.T) {
	e := newEnv(t)
	e.device("vp-1", "vp-40")
	e.device("xx-1", "other")
	if err := e.st.CreateTenant(t.Context(), tenancy.Tenant{ID: "acme-north", ParentID: "acme", Name: "North", CreatedAt: monday}); err != nil {
		t.Fatal(err)
	}
	if err := e.st.CreateDevice(t.Context(), registry.Device{ID: "vp-2", TenantID: "acme-north", Status: registry.DeviceEnabled,
		PrimaryKey: make([]byte, 32), SecondaryKey: make([]byte, 32), CreatedAt: monday, Info: registry.DeviceInfo{Model: "vp-40"}}); err != nil {
		t.Fatal(err)
	}
	e.plan(tenancy.RootTenantID, "vp-40", `{"model": "vp-40", "service": {"everyMonths": 6}}`)
	e.plan("acme", "vp-40", `{"model": "vp-40", "run": {"metric": "running", "kind": "onoff"},
		"service": {"everyRunHours": 2000, "everyMonths": 12},
		"anomalies": [{"metric": "motorCurrent", "whileRunning": true}]}`)

	thu := monday.AddDate(0, 0, 3)
	from, cut := thu.Add(6*time.Hour+30*time.Minute), leak.From.Add(3*time.Minute)
	e.start(from)
	samples := e.drive("vp-1", pump(leak), from, cut, time.Minute, 0, nil)
	mustRun(t, samples, from, cut)

	// The reference: the same detector over the same readings.
	ref, _ := maintenance.NewEWMA(maintenance.DefaultAnomalyAlpha, maintenance.DefaultAnomalyWarmup)
	times, raise, clear := column(samples, func(i int) (bool, bool) {
		s := ref.Update(samples[i].At, samples[i].Values[simulate.MetricMotorCurrent])
		return math.Abs(s) >= 4, math.Abs(s) < 2
	})
	want := expectSpans("maintenance:anomaly:motorCurrent", times, raise, clear, 0)
	if len(want) != 1 || !want[0].Cleared.IsZero() {
		t.Fatalf("premise: the leak's start gives %v, want one anomaly still active", want)
	}
	within(t, "expected anomaly", want[0].Raised, leak.From, leak.From.Add(2*time.Minute))
	e.expectAlarms("vp-1", 0, want...)

	st := e.maintenance("vp-1", cut)
	if st.PlanTenantID != "acme" || len(st.Anomalies) != 1 || !st.Anomalies[0].Ready || !st.Anomalies[0].Warning ||
		!slices.Equal(st.Warnings, []string{"maintenance:anomaly:motorCurrent"}) {
		t.Errorf("status: %+v", st)
	}
	if st.RunHours < 3.5 || st.NextDue.IsZero() {
		t.Errorf("status: %.2f run hours, next due %s", st.RunHours, st.NextDue)
	}
	// A device of a sub-tenant gets acme's plan too.
	if st := e.maintenance("vp-2", cut); st.PlanTenantID != "acme" || st.RunHours != 0 {
		t.Errorf("sub-tenant's device: %+v", st)
	}
	if _, err := e.m.Maintenance(t.Context(), "xx-1"); !errors.Is(err, monitor.ErrNoPlan) {
		t.Errorf("device of a model without a plan: %v, want ErrNoPlan", err)
	}
	if _, err := e.m.Maintenance(t.Context(), "nope"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("no such device: %v, want ErrNotFound", err)
	}

	// acme's plan goes: root's applies, which watches no anomaly.
	if err := e.st.DeleteMaintenancePlan(t.Context(), "acme", "vp-40"); err != nil {
		t.Fatal(err)
	}
	if err := e.m.PlansChanged(t.Context()); err != nil {
		t.Fatal(err)
	}
	want[0].Cleared = cut
	e.expectAlarms("vp-1", 0, want...)
	st = e.maintenance("vp-1", cut)
	if st.PlanTenantID != tenancy.RootTenantID || len(st.Anomalies) != 0 || len(st.Warnings) != 0 || st.DueReason != maintenance.DueByMonths ||
		!st.NextDue.Equal(from.AddDate(0, 6, 0)) {
		t.Errorf("after acme's plan went: %+v", st)
	}
	if err := e.st.DeleteMaintenancePlan(t.Context(), tenancy.RootTenantID, "vp-40"); err != nil {
		t.Fatal(err)
	}
	if err := e.m.PlansChanged(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Maintenance(t.Context(), "vp-1"); !errors.Is(err, monitor.ErrNoPlan) {
		t.Errorf("without plans: %v, want ErrNoPlan", err)
	}
	if err := e.m.RecordService(t.Context(), "vp-1", cut); !errors.Is(err, monitor.ErrNoPlan) {
		t.Errorf("service without plans: %v, want ErrNoPlan", err)
	}
}

// TestMaintenanceHoursCounter: a plan whose run metric is the operating
// hours counter; a calendar service interval warns as its date comes
// near, and a service recorded for a time in the past counts the run hours
// since then.
func TestMaintenanceHoursCounter(t *testing.T) {
	e := newEnv(t)
	e.device("vp-1", "vp-40")
	e.plan("acme", "vp-40", `{"model": "vp-40", "run": {"metric": "runHours", "kind": "hours"},
		"service": {"everyMonths": 1, "warnDays": 3}}`)
	machine := pump()
	e.start(monday)
	step := 10 * time.Minute
	samples := e.drive("vp-1", machine, monday, monday.AddDate(0, 0, 30), step, time.Hour, nil)
	last := samples[len(samples)-1]
	truth := last.Values[simulate.MetricRunHours] - samples[0].Values[simulate.MetricRunHours]
	st := e.maintenance("vp-1", last.At)
	if math.Abs(st.RunHours-truth) > 1e-6 || st.Cycles != 0 || st.DueReason != maintenance.DueByMonths ||
		!st.NextDue.Equal(monday.AddDate(0, 1, 0)) {
		t.Errorf("status: %+v (counter %.2f)", st, truth)
	}
	// The calendar warning: 3 days before 2 April, at the first check
	// from then (hourly).
	due := monday.AddDate(0, 1, 0)
	e.expectAlarms("vp-1", time.Hour, span{"maintenance:service:runHours", due.AddDate(0, 0, -3), time.Time{}})

	// The service was done a week ago (recorded now): the hours since
	// then count.
	ago := last.At.AddDate(0, 0, -7)
	if err := e.m.RecordService(t.Context(), "vp-1", ago); err != nil {
		t.Fatal(err)
	}
	st = e.maintenance("vp-1", last.At)
	var atAgo float64
	for _, s := range samples {
		if !s.At.After(ago) {
			atAgo = s.Values[simulate.MetricRunHours]
		}
	}
	since := last.Values[simulate.MetricRunHours] - atAgo
	t.Logf("service a week ago: %.2f run hours since, the counter says %.2f", st.RunHoursSinceService, since)
	if math.Abs(st.RunHoursSinceService-since) > 3 { // interpolated between usage points 3 h apart
		t.Errorf("%.2f run hours since the service, the counter says %.2f", st.RunHoursSinceService, since)
	}
	if !st.NextDue.Equal(ago.AddDate(0, 1, 0)) || len(st.Warnings) != 0 {
		t.Errorf("after the service: %+v", st)
	}
	// The warning clears when the service is recorded.
	e.expectAlarms("vp-1", 0, span{"maintenance:service:runHours", due.AddDate(0, 0, -3), last.At})
}
