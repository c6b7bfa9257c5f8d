package storetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/store"
)

// alarmTests cover store.AlarmStore and what DeleteTenant, DeleteDevice and
// DeleteUser do to alarm data.
var alarmTests = []suiteTest{
	{"AlarmRules", testAlarmRules},
	{"AlarmLifecycle", testAlarmLifecycle},
	{"AlarmChangesInOneBatch", testAlarmChangesInOneBatch},
	{"AlarmChangesRollBack", testAlarmChangesRollBack},
	{"AlarmConcurrentRaise", testAlarmConcurrentRaise},
	{"AlarmConcurrentRaiseAndClear", testAlarmConcurrentRaiseAndClear},
	{"AckAlarm", testAckAlarm},
	{"ListAlarmsFilters", testListAlarmsFilters},
	{"NotificationPrefs", testNotificationPrefs},
	{"Webhooks", testWebhooks},
	{"Escalation", testEscalation},
	{"Deliveries", testDeliveries},
	{"MaintenancePlans", testMaintenancePlans},
	{"MonitorState", testMonitorState},
	{"DeleteTenantTakesAlarms", testDeleteTenantTakesAlarms},
	{"DeleteDeviceTakesAlarms", testDeleteDeviceTakesAlarms},
}

func raised(tenant, rule, device string, at time.Time, value float64) store.AlarmChange {
	return store.AlarmChange{Kind: "raised", TenantID: tenant, RuleID: rule, DeviceID: device, SiteID: "site-" + device,
		Alarm: store.AlarmKindRule, Severity: "critical", Message: fmt.Sprintf("value %g", value), Value: value, At: at}
}

func retriggered(tenant, rule, device string, at time.Time, value float64) store.AlarmChange {
	c := raised(tenant, rule, device, at, value)
	c.Kind = "retriggered"
	return c
}

func cleared(tenant, rule, device string, at time.Time, by string) store.AlarmChange {
	return store.AlarmChange{Kind: "cleared", TenantID: tenant, RuleID: rule, DeviceID: device, At: at, By: by}
}

func apply(t *testing.T, s store.Store, changes ...store.AlarmChange) []store.Alarm {
	t.Helper()
	got, err := s.ApplyAlarmChanges(ctx(t), changes)
	if err != nil {
		t.Fatalf("ApplyAlarmChanges: %v", err)
	}
	if len(got) != len(changes) {
		t.Fatalf("ApplyAlarmChanges returned %d alarms for %d changes", len(got), len(changes))
	}
	return got
}

func alarmIDs(as []store.Alarm) []int64 {
	out := []int64{}
	for _, a := range as {
		out = append(out, a.ID)
	}
	return out
}

func mustRule(t *testing.T, s store.Store, id, tenant string) store.AlarmRule {
	t.Helper()
	r := store.AlarmRule{ID: id, TenantID: tenant, Name: "Rule " + id, Enabled: true,
		Spec: json.RawMessage(`{"metric":"temp","op":">","threshold":80}`), CreatedBy: "u1", CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateAlarmRule(ctx(t), r); err != nil {
		t.Fatalf("CreateAlarmRule(%q): %v", id, err)
	}
	return r
}

func sameRule(a, b store.AlarmRule) bool {
	return a.ID == b.ID && a.TenantID == b.TenantID && a.Name == b.Name && a.Enabled == b.Enabled &&
		bytes.Equal(a.Spec, b.Spec) && a.CreatedBy == b.CreatedBy && a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}

func testAlarmRules(t *testing.T, s store.Store) {
	mustTenant(t, s, "acme")
	mustTenant(t, s, "beta")
	r1 := mustRule(t, s, "r1", "acme")
	mustRule(t, s, "r0", "beta")
	mustRule(t, s, "r2", "acme")
	wantErr(t, "CreateAlarmRule twice", s.CreateAlarmRule(ctx(t), r1), store.ErrConflict)
	wantErr(t, "CreateAlarmRule of an unknown tenant",
		s.CreateAlarmRule(ctx(t), store.AlarmRule{ID: "rx", TenantID: "ghost", Name: "x", CreatedAt: t0}), store.ErrNotFound)

	got, err := s.GetAlarmRule(ctx(t), "r1")
	if err != nil || !sameRule(got, r1) {
		t.Fatalf("GetAlarmRule = %+v, %v; want %+v", got, err, r1)
	}
	_, err = s.GetAlarmRule(ctx(t), "ghost")
	wantErr(t, "GetAlarmRule(ghost)", err, store.ErrNotFound)

	ruleIDs := func(rs []store.AlarmRule) []string {
		out := []string{}
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	for _, tc := range []struct {
		tenants []string
		want    []string
	}{
		{nil, []string{"r0", "r1", "r2"}},
		{[]string{"acme"}, []string{"r1", "r2"}},
		{[]string{"beta", "ghost"}, []string{"r0"}},
		{[]string{}, []string{}},
	} {
		rs, err := s.ListAlarmRules(ctx(t), tc.tenants)
		if err != nil || !slices.Equal(ruleIDs(rs), tc.want) {
			t.Errorf("ListAlarmRules(%v) = %v, %v; want %v", tc.tenants, ruleIDs(rs), err, tc.want)
		}
	}

	upd := r1
	upd.Name, upd.Enabled, upd.Spec, upd.UpdatedAt = "Renamed", false, json.RawMessage(`{"metric":"rpm"}`), t0.Add(time.Hour)
	upd.TenantID, upd.CreatedBy = "beta", "someone-else" // not changed by an update
	if err := s.UpdateAlarmRule(ctx(t), upd); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetAlarmRule(ctx(t), "r1")
	want := upd
	want.TenantID, want.CreatedBy = "acme", "u1"
	if !sameRule(got, want) {
		t.Errorf("after UpdateAlarmRule = %+v, want %+v", got, want)
	}
	wantErr(t, "UpdateAlarmRule(ghost)", s.UpdateAlarmRule(ctx(t), store.AlarmRule{ID: "ghost", Name: "x"}), store.ErrNotFound)

	// Deleting a rule keeps its alarms.
	a := apply(t, s, raised("acme", "r2", "d1", t0, 90))[0]
	if err := s.DeleteAlarmRule(ctx(t), "r2"); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetAlarmRule(ctx(t), "r2")
	wantErr(t, "GetAlarmRule after delete", err, store.ErrNotFound)
	wantErr(t, "DeleteAlarmRule twice", s.DeleteAlarmRule(ctx(t), "r2"), store.ErrNotFound)
	if got, err := s.GetAlarm(ctx(t), a.ID); err != nil || got.RuleID != "r2" {
		t.Errorf("alarm of a deleted rule = %+v, %v; want it kept", got, err)
	}
	// The id can be used again.
	mustRule(t, s, "r2", "beta")
}

func testAlarmLifecycle(t *testing.T, s store.Store) {
	mustTenant(t, s, "acme")
	if _, err := s.GetAlarm(ctx(t), 1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetAlarm(1) of an empty store: %v, want ErrNotFound", err)
	}

	a := apply(t, s, raised("acme", "r1", "d1", t0, 90))[0]
	want := store.Alarm{ID: a.ID, TenantID: "acme", RuleID: "r1", DeviceID: "d1", SiteID: "site-d1", Kind: store.AlarmKindRule,
		Severity: "critical", Message: "value 90", Value: 90, State: store.AlarmActive, RaisedAt: t0, LastAt: t0}
	if a.ID == 0 || a != want {
		t.Fatalf("raised = %+v\nwant %+v", a, want)
	}
	if got, err := s.GetAlarm(ctx(t), a.ID); err != nil || got != want {
		t.Fatalf("GetAlarm = %+v, %v\nwant %+v", got, err, want)
	}

	// A retrigger counts on the active alarm; so does a second raise.
	got := apply(t, s, retriggered("acme", "r1", "d1", t0.Add(time.Minute), 91))[0]
	want.Retriggers, want.LastAt, want.Value, want.Message = 1, t0.Add(time.Minute), 91, "value 91"
	if got != want {
		t.Fatalf("retriggered = %+v\nwant %+v", got, want)
	}
	got = apply(t, s, raised("acme", "r1", "d1", t0.Add(2*time.Minute), 92))[0]
	want.Retriggers, want.LastAt, want.Value, want.Message = 2, t0.Add(2*time.Minute), 92, "value 92"
	if got != want {
		t.Fatalf("raised again while active = %+v\nwant %+v", got, want)
	}

	// A second device has its own active alarm for the same rule.
	b := apply(t, s, raised("acme", "r1", "d2", t0.Add(3*time.Minute), 95))[0]
	if b.ID == a.ID || b.State != store.AlarmActive || b.DeviceID != "d2" || b.Retriggers != 0 {
		t.Fatalf("alarm on a second device = %+v (first %d)", b, a.ID)
	}
	active, err := s.ListAlarms(ctx(t), store.AlarmFilter{RuleID: "r1", State: store.AlarmActive})
	if err != nil || !slices.Equal(alarmIDs(active), []int64{a.ID, b.ID}) {
		t.Fatalf("active alarms of r1 = %v, %v; want %d, %d", alarmIDs(active), err, a.ID, b.ID)
	}

	// Clear.
	got = apply(t, s, cleared("acme", "r1", "d1", t0.Add(4*time.Minute), "auto"))[0]
	want.State, want.ClearedAt, want.ClearedBy = store.AlarmCleared, t0.Add(4*time.Minute), "auto"
	if got != want {
		t.Fatalf("cleared = %+v\nwant %+v", got, want)
	}
	// A clear without an active alarm touches nothing.
	if got := apply(t, s, cleared("acme", "r1", "d1", t0.Add(5*time.Minute), "alice"))[0]; got != (store.Alarm{}) {
		t.Fatalf("clear without an active alarm = %+v, want a zero Alarm", got)
	}
	if got, _ := s.GetAlarm(ctx(t), a.ID); got != want {
		t.Fatalf("after a second clear = %+v\nwant %+v", got, want)
	}

	// Raising again gives a second alarm; the first stays cleared.
	c := apply(t, s, raised("acme", "r1", "d1", t0.Add(6*time.Minute), 99))[0]
	if c.ID == a.ID || c.ID == b.ID || c.State != store.AlarmActive || c.Retriggers != 0 || !c.RaisedAt.Equal(t0.Add(6*time.Minute)) {
		t.Fatalf("raised after clear = %+v", c)
	}
	if got, _ := s.GetAlarm(ctx(t), a.ID); got != want {
		t.Fatalf("first alarm after a new raise = %+v\nwant %+v", got, want)
	}

	// A retrigger without an active alarm is not lost: it raises one.
	d := apply(t, s, retriggered("acme", "r9", "d1", t0.Add(7*time.Minute), 10))[0]
	if d.ID == 0 || d.State != store.AlarmActive || d.RuleID != "r9" || d.Retriggers != 0 || !d.RaisedAt.Equal(t0.Add(7*time.Minute)) ||
		!d.LastAt.Equal(d.RaisedAt) {
		t.Fatalf("retrigger without an active alarm = %+v, want a new active alarm", d)
	}

	// A maintenance warning keeps its kind.
	m := raised("acme", "maintenance:service:hours", "d1", t0, 0)
	m.Alarm, m.Severity = store.AlarmKindMaintenance, "warning"
	if got := apply(t, s, m)[0]; got.Kind != store.AlarmKindMaintenance || got.Severity != "warning" {
		t.Fatalf("maintenance warning = %+v", got)
	}

	all, err := s.ListAlarms(ctx(t), store.AlarmFilter{})
	if err != nil || len(all) != 5 {
		t.Fatalf("ListAlarms = %v, %v; want 5 alarms", alarmIDs(all), err)
	}
	if _, err := s.ApplyAlarmChanges(ctx(t), []store.AlarmChange{{Kind: "exploded", TenantID: "acme", RuleID: "r1", DeviceID: "d1", At: t0}}); err == nil {
		t.Error("ApplyAlarmChanges with an unknown kind succeeded")
	}
	if got, err := s.ApplyAlarmChanges(ctx(t), nil); err != nil || len(got) != 0 {
		t.Errorf("ApplyAlarmChanges(nil) = %v, %v", got, err)
	}
}

// Changes of one call apply in order and each sees the previous ones.
func testAlarmChangesInOneBatch(t *testing.T, s store.Store) {
	mustTenant(t, s, "acme")
	got := apply(t, s,
		raised("acme", "r1", "d1", t0, 1),
		retriggered("acme", "r1", "d1", t0.Add(time.Second), 2),
		raised("acme", "r1", "d2", t0.Add(2*time.Second), 3),
		cleared("acme", "r1", "d1", t0.Add(3*time.Second), "auto"),
		cleared("acme", "r1", "d1", t0.Add(4*time.Second), "auto"),
		raised("acme", "r1", "d1", t0.Add(5*time.Second), 4),
	)
	if got[0].ID == 0 || got[1].ID != got[0].ID || got[1].Retriggers != 1 || got[0].Retriggers != 0 {
		t.Errorf("raise then retrigger = %+v, %+v", got[0], got[1])
	}
	if got[2].ID == got[0].ID || got[2].DeviceID != "d2" {
		t.Errorf("raise on d2 = %+v", got[2])
	}
	if got[3].ID != got[0].ID || got[3].State != store.AlarmCleared || got[3].Retriggers != 1 || !got[3].ClearedAt.Equal(t0.Add(3*time.Second)) {
		t.Errorf("clear = %+v", got[3])
	}
	if got[4] != (store.Alarm{}) {
		t.Errorf("second clear = %+v, want zero", got[4])
	}
	if got[5].ID == got[0].ID || got[5].ID == got[2].ID || got[5].State != store.AlarmActive {
		t.Errorf("raise after clear = %+v", got[5])
	}
}

// A failing change rolls back the whole call.
func testAlarmChangesRollBack(t *testing.T, s store.Store) {
	mustTenant(t, s, "acme")
	_, err := s.ApplyAlarmChanges(ctx(t), []store.AlarmChange{
		raised("acme", "r1", "d1", t0, 1),
		raised("ghost", "r2", "d1", t0, 1),
	})
	if err == nil {
		t.Fatal("ApplyAlarmChanges with an unknown tenant succeeded")
	}
	if all, err := s.ListAlarms(ctx(t), store.AlarmFilter{}); err != nil || len(all) != 0 {
		t.Fatalf("after a failed call ListAlarms = %v, %v; want none", alarmIDs(all), err)
	}
}

// Evaluators on several nodes raising the same alarm at once make one
// active alarm, retriggered by every other raise.
func testAlarmConcurrentRaise(t *testing.T, s store.Store) {
	mustTenant(t, s, "acme")
	const workers, rounds = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				at := t0.Add(time.Duration(w*rounds+i) * time.Millisecond)
				// Each call also raises an alarm of its own, in a different
				// order from the others', to provoke lock-order conflicts.
				changes := []store.AlarmChange{raised("acme", "r1", "d1", at, float64(i)), raised("acme", "r1", "d2", at, 0)}
				if w%2 == 1 {
					changes[0], changes[1] = changes[1], changes[0]
				}
				if _, err := s.ApplyAlarmChanges(ctx(t), changes); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent ApplyAlarmChanges: %v", err)
	}
	for _, dev := range []string{"d1", "d2"} {
		all, err := s.ListAlarms(ctx(t), store.AlarmFilter{DeviceIDs: []string{dev}})
		if err != nil || len(all) != 1 {
			t.Fatalf("alarms of %s = %+v, %v; want exactly one", dev, all, err)
		}
		if a := all[0]; a.State != store.AlarmActive || a.Retriggers != workers*rounds-1 {
			t.Errorf("alarm of %s = %+v; want active with %d retriggers", dev, a, workers*rounds-1)
		}
	}
}

// Raises and clears of one alarm racing each other never leave two active
// alarms, and every raise is either a new alarm or a retrigger.
func testAlarmConcurrentRaiseAndClear(t *testing.T, s store.Store) {
	mustTenant(t, s, "acme")
	const workers, rounds = 6, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				at := t0.Add(time.Duration(w*rounds+i) * time.Millisecond)
				changes := []store.AlarmChange{raised("acme", "r1", "d1", at, 1)}
				if w%2 == 1 {
					changes = append(changes, cleared("acme", "r1", "d1", at, "auto"))
				}
				if _, err := s.ApplyAlarmChanges(ctx(t), changes); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent ApplyAlarmChanges: %v", err)
	}
	all, err := s.ListAlarms(ctx(t), store.AlarmFilter{})
	if err != nil {
		t.Fatal(err)
	}
	active, raises := 0, 0
	for _, a := range all {
		if a.State == store.AlarmActive {
			active++
		}
		raises += 1 + a.Retriggers
	}
	if active > 1 || raises != workers*rounds {
		t.Errorf("%d alarms, %d active, %d raises counted; want at most one active and %d raises", len(all), active, raises, workers*rounds)
	}
}

func testAckAlarm(t *testing.T, s store.Store) {
	mustTenant(t, s, "acme")
	got := apply(t, s, raised("acme", "r1", "d1", t0, 1), raised("acme", "r2", "d1", t0, 1))
	a, b := got[0], got[1]
	acked, err := s.AckAlarm(ctx(t), a.ID, "alice", "on my way", t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want := a
	want.AckedAt, want.AckedBy, want.AckComment = t0.Add(time.Minute), "alice", "on my way"
	if acked != want {
		t.Fatalf("AckAlarm = %+v\nwant %+v", acked, want)
	}
	if got, _ := s.GetAlarm(ctx(t), a.ID); got != want {
		t.Fatalf("GetAlarm after ack = %+v\nwant %+v", got, want)
	}
	_, err = s.AckAlarm(ctx(t), a.ID, "bob", "me too", t0.Add(2*time.Minute))
	wantErr(t, "AckAlarm twice", err, store.ErrConflict)
	if got, _ := s.GetAlarm(ctx(t), a.ID); got != want {
		t.Fatalf("a second ack changed the alarm: %+v", got)
	}
	_, err = s.AckAlarm(ctx(t), 999999, "bob", "", t0)
	wantErr(t, "AckAlarm(unknown)", err, store.ErrNotFound)

	// An ack survives retriggers and clears; a cleared alarm can be acked.
	got = apply(t, s, retriggered("acme", "r1", "d1", t0.Add(3*time.Minute), 2), cleared("acme", "r2", "d1", t0.Add(3*time.Minute), "auto"))
	if got[0].AckedBy != "alice" || !got[0].AckedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("retriggered acked alarm = %+v", got[0])
	}
	if acked, err := s.AckAlarm(ctx(t), b.ID, "bob", "", t0.Add(4*time.Minute)); err != nil || acked.State != store.AlarmCleared ||
		acked.AckedBy != "bob" || acked.AckComment != "" {
		t.Errorf("AckAlarm of a cleared alarm = %+v, %v", acked, err)
	}
}

func testListAlarmsFilters(t *testing.T, s store.Store) {
	mustTenant(t, s, "acme")
	mustTenant(t, s, "beta")
	h := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
	warn := func(c store.AlarmChange) store.AlarmChange { c.Severity = "warning"; return c }
	// a1: acme r1 d1 raised h0, cleared h2
	// a2: acme r1 d2 raised h1, active, warning
	// a3: acme r2 d1 raised h3, cleared h4, acked
	// a4: beta r3 d3 raised h5, active, acked
	// a5: acme r2 d1 raised h6, active
	ids := alarmIDs(apply(t, s,
		raised("acme", "r1", "d1", h(0), 1),
		warn(raised("acme", "r1", "d2", h(1), 1)),
		raised("acme", "r2", "d1", h(3), 1),
		raised("beta", "r3", "d3", h(5), 1),
	))
	apply(t, s, cleared("acme", "r1", "d1", h(2), "auto"), cleared("acme", "r2", "d1", h(4), "alice"))
	ids = append(ids, apply(t, s, raised("acme", "r2", "d1", h(6), 1))[0].ID)
	for _, i := range []int{2, 3} {
		if _, err := s.AckAlarm(ctx(t), ids[i], "alice", "", h(7)); err != nil {
			t.Fatal(err)
		}
	}
	a := func(ns ...int) []int64 {
		out := []int64{}
		for _, n := range ns {
			out = append(out, ids[n-1])
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    store.AlarmFilter
		want []int64
	}{
		{"all", store.AlarmFilter{}, a(1, 2, 3, 4, 5)},
		{"tenant", store.AlarmFilter{TenantIDs: []string{"acme"}}, a(1, 2, 3, 5)},
		{"tenants", store.AlarmFilter{TenantIDs: []string{"beta", "ghost"}}, a(4)},
		{"no tenants", store.AlarmFilter{TenantIDs: []string{}}, a()},
		{"devices", store.AlarmFilter{DeviceIDs: []string{"d2", "d3"}}, a(2, 4)},
		{"no devices", store.AlarmFilter{DeviceIDs: []string{}}, a()},
		{"sites", store.AlarmFilter{SiteIDs: []string{"site-d1"}}, a(1, 3, 5)},
		{"no sites", store.AlarmFilter{SiteIDs: []string{}}, a()},
		{"rule", store.AlarmFilter{RuleID: "r2"}, a(3, 5)},
		{"active", store.AlarmFilter{State: store.AlarmActive}, a(2, 4, 5)},
		{"cleared", store.AlarmFilter{State: store.AlarmCleared}, a(1, 3)},
		{"severity", store.AlarmFilter{Severity: "warning"}, a(2)},
		{"critical", store.AlarmFilter{Severity: "critical"}, a(1, 3, 4, 5)},
		{"since", store.AlarmFilter{Since: h(2)}, a(1, 2, 3, 4, 5)},    // a1 cleared at h2: active at since
		{"since later", store.AlarmFilter{Since: h(3)}, a(2, 3, 4, 5)}, // a1 cleared before
		{"since after clears", store.AlarmFilter{Since: h(5)}, a(2, 4, 5)},
		{"until", store.AlarmFilter{Until: h(3)}, a(1, 2)}, // raised before h3
		{"window", store.AlarmFilter{Since: h(3), Until: h(6)}, a(2, 3, 4)},
		{"unacked", store.AlarmFilter{Unacked: true}, a(1, 2, 5)},
		{"combined", store.AlarmFilter{TenantIDs: []string{"acme"}, State: store.AlarmActive, Unacked: true, Severity: "critical"}, a(5)},
		{"after", store.AlarmFilter{After: ids[1]}, a(3, 4, 5)},
		{"limit", store.AlarmFilter{Limit: 2}, a(1, 2)},
		{"page", store.AlarmFilter{After: ids[1], Limit: 2}, a(3, 4)},
		{"last page", store.AlarmFilter{After: ids[4], Limit: 2}, a()},
	} {
		got, err := s.ListAlarms(ctx(t), tc.f)
		if err != nil || !slices.Equal(alarmIDs(got), tc.want) {
			t.Errorf("%s: ListAlarms(%+v) = %v, %v; want %v", tc.name, tc.f, alarmIDs(got), err, tc.want)
		}
	}
	// The default limit is 1000.
	var many []store.AlarmChange
	for i := range 1005 {
		many = append(many, raised("beta", "bulk", fmt.Sprintf("dev-%04d", i), h(8), 0))
	}
	apply(t, s, many...)
	if got, err := s.ListAlarms(ctx(t), store.AlarmFilter{RuleID: "bulk"}); err != nil || len(got) != 1000 {
		t.Errorf("ListAlarms without a limit = %d alarms, %v; want 1000", len(got), err)
	}
}

func testNotificationPrefs(t *testing.T, s store.Store) {
	mustUser(t, s, newUser("u1", store.RootTenantID, store.RoleOperatorAdmin))
	for _, id := range []string{"u1", "nobody"} {
		p, err := s.GetNotificationPrefs(ctx(t), id)
		if err != nil || p.UserID != id || p.Email || len(p.Severities) != 0 || len(p.SiteIDs) != 0 {
			t.Errorf("GetNotificationPrefs(%s) without prefs = %+v, %v; want defaults", id, p, err)
		}
	}
	want := store.NotificationPrefs{UserID: "u1", Email: true, Severities: []string{"critical"}, SiteIDs: []string{"s1", "s2"}}
	if err := s.SetNotificationPrefs(ctx(t), want); err != nil {
		t.Fatal(err)
	}
	p, err := s.GetNotificationPrefs(ctx(t), "u1")
	if err != nil || p.UserID != "u1" || !p.Email || !slices.Equal(p.Severities, want.Severities) || !slices.Equal(p.SiteIDs, want.SiteIDs) {
		t.Fatalf("GetNotificationPrefs = %+v, %v; want %+v", p, err, want)
	}
	want = store.NotificationPrefs{UserID: "u1", Email: false, Severities: nil, SiteIDs: []string{"s3"}}
	if err := s.SetNotificationPrefs(ctx(t), want); err != nil {
		t.Fatal(err)
	}
	p, err = s.GetNotificationPrefs(ctx(t), "u1")
	if err != nil || p.Email || len(p.Severities) != 0 || !slices.Equal(p.SiteIDs, want.SiteIDs) {
		t.Fatalf("GetNotificationPrefs after update = %+v, %v; want %+v", p, err, want)
	}
	wantErr(t, "SetNotificationPrefs of an unknown user", s.SetNotificationPrefs(ctx(t), store.NotificationPrefs{UserID: "nobody", Email: true}),
		store.ErrNotFound)

	// The prefs go with the user.
	if err := s.DeleteUser(ctx(t), "u1"); err != nil {
		t.Fatal(err)
	}
	mustUser(t, s, newUser("u1", store.RootTenantID, store.RoleOperatorAdmin))
	if p, err := s.GetNotificationPrefs(ctx(t), "u1"); err != nil || p.Email || len(p.SiteIDs) != 0 {
		t.Errorf("prefs of a user created again = %+v, %v; want defaults", p, err)
	}
}

func testWebhooks(t *testing.T, s store.Store) {
	mustTenant(t, s, "acme")
	mustTenant(t, s, "beta")
	w1 := store.Webhook{ID: "w1", TenantID: "acme", URL: "https://acme.example/hook", Secret: []byte{0, 1, 2, 0xff},
		Severities: []string{"critical"}, Enabled: true, CreatedAt: t0}
	for _, w := range []store.Webhook{w1,
		{ID: "w0", TenantID: "beta", URL: "https://beta.example/hook", Secret: []byte("s"), CreatedAt: t0},
		{ID: "w2", TenantID: "acme", URL: "https://acme.example/other", Secret: []byte("t"), Enabled: true, CreatedAt: t0.Add(time.Hour)},
	} {
		if err := s.CreateWebhook(ctx(t), w); err != nil {
			t.Fatalf("CreateWebhook(%s): %v", w.ID, err)
		}
	}
	wantErr(t, "CreateWebhook twice", s.CreateWebhook(ctx(t), w1), store.ErrConflict)
	wantErr(t, "CreateWebhook of an unknown tenant",
		s.CreateWebhook(ctx(t), store.Webhook{ID: "wx", TenantID: "ghost", URL: "https://x", Secret: []byte("x")}), store.ErrNotFound)

	hookIDs := func(ws []store.Webhook) []string {
		out := []string{}
		for _, w := range ws {
			out = append(out, w.ID)
		}
		return out
	}
	for _, tc := range []struct {
		tenants []string
		want    []string
	}{
		{nil, []string{"w0", "w1", "w2"}},
		{[]string{"acme"}, []string{"w1", "w2"}},
		{[]string{}, []string{}},
	} {
		ws, err := s.ListWebhooks(ctx(t), tc.tenants)
		if err != nil || !slices.Equal(hookIDs(ws), tc.want) {
			t.Errorf("ListWebhooks(%v) = %v, %v; want %v", tc.tenants, hookIDs(ws), err, tc.want)
		}
	}
	ws, _ := s.ListWebhooks(ctx(t), []string{"acme"})
	if got := ws[0]; got.ID != "w1" || got.TenantID != "acme" || got.URL != w1.URL || !bytes.Equal(got.Secret, w1.Secret) ||
		!slices.Equal(got.Severities, w1.Severities) || !got.Enabled || !got.CreatedAt.Equal(t0) {
		t.Errorf("webhook w1 = %+v, want %+v", got, w1)
	}
	if got := ws[1]; len(got.Severities) != 0 || !got.Enabled {
		t.Errorf("webhook w2 = %+v", got)
	}
	if err := s.DeleteWebhook(ctx(t), "w1"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "DeleteWebhook twice", s.DeleteWebhook(ctx(t), "w1"), store.ErrNotFound)
	if ws, err := s.ListWebhooks(ctx(t), nil); err != nil || !slices.Equal(hookIDs(ws), []string{"w0", "w2"}) {
		t.Errorf("after delete ListWebhooks = %v, %v", hookIDs(ws), err)
	}
}

func testEscalation(t *testing.T, s store.Store) {
	mustTenant(t, s, "acme")
	_, err := s.GetEscalation(ctx(t), "acme")
	wantErr(t, "GetEscalation without one", err, store.ErrNotFound)
	want := store.Escalation{TenantID: "acme", Delay: 15 * time.Minute, Email: "oncall@acme.example"}
	if err := s.SetEscalation(ctx(t), want); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetEscalation(ctx(t), "acme"); err != nil || got != want {
		t.Fatalf("GetEscalation = %+v, %v; want %+v", got, err, want)
	}
	want = store.Escalation{TenantID: "acme", Delay: 90 * time.Second, Email: "boss@acme.example"}
	if err := s.SetEscalation(ctx(t), want); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetEscalation(ctx(t), "acme"); err != nil || got != want {
		t.Fatalf("GetEscalation after update = %+v, %v; want %+v", got, err, want)
	}
	if err := s.SetEscalation(ctx(t), store.Escalation{TenantID: "acme"}); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetEscalation(ctx(t), "acme")
	wantErr(t, "GetEscalation after delay 0", err, store.ErrNotFound)
	if err := s.SetEscalation(ctx(t), store.Escalation{TenantID: "acme"}); err != nil {
		t.Errorf("removing a missing escalation: %v", err)
	}
	wantErr(t, "SetEscalation of an unknown tenant",
		s.SetEscalation(ctx(t), store.Escalation{TenantID: "ghost", Delay: time.Minute, Email: "x@example.com"}), store.ErrNotFound)
}

func testDeliveries(t *testing.T, s store.Store) {
	mustTenant(t, s, "acme")
	mustTenant(t, s, "beta")
	d := func(tenant string, alarm int64, target string, next time.Time) store.Delivery {
		return store.Delivery{TenantID: tenant, AlarmID: alarm, Channel: "email", Target: target, Event: "raised",
			Payload: json.RawMessage(`{"alarm":` + fmt.Sprint(alarm) + `}`), NextAt: next, CreatedAt: t0}
	}
	if err := s.EnqueueDeliveries(ctx(t), nil); err != nil {
		t.Fatalf("EnqueueDeliveries(nil): %v", err)
	}
	if err := s.EnqueueDeliveries(ctx(t), []store.Delivery{
		d("acme", 1, "a@example.com", t0.Add(2*time.Minute)), // 1
		d("acme", 1, "b@example.com", t0),                    // 2
		d("beta", 2, "c@example.com", t0.Add(2*time.Minute)), // 3
		d("acme", 3, "d@example.com", t0.Add(time.Hour)),     // 4
	}); err != nil {
		t.Fatal(err)
	}
	all, err := s.ListDeliveries(ctx(t), store.DeliveryFilter{})
	if err != nil || len(all) != 4 {
		t.Fatalf("ListDeliveries = %+v, %v", all, err)
	}
	// Newest first.
	ids := make([]int64, 4)
	for i, x := range all {
		ids[3-i] = x.ID
	}
	if !(ids[0] < ids[1] && ids[1] < ids[2] && ids[2] < ids[3]) {
		t.Fatalf("delivery ids, newest first = %v", deliveryIDs(all))
	}
	first := all[3]
	if first.TenantID != "acme" || first.AlarmID != 1 || first.Channel != "email" || first.Target != "a@example.com" ||
		first.Event != "raised" || string(first.Payload) != `{"alarm":1}` || first.State != store.DeliveryPending ||
		first.Attempts != 0 || !first.NextAt.Equal(t0.Add(2*time.Minute)) || first.LastError != "" ||
		!first.CreatedAt.Equal(t0) || !first.SentAt.IsZero() {
		t.Errorf("first delivery = %+v", first)
	}

	// Due: pending with next_at <= now, by next_at then id.
	due, err := s.DueDeliveries(ctx(t), t0.Add(2*time.Minute), 10)
	if err != nil || !slices.Equal(deliveryIDs(due), []int64{ids[1], ids[0], ids[2]}) {
		t.Fatalf("DueDeliveries = %v, %v; want %v", deliveryIDs(due), err, []int64{ids[1], ids[0], ids[2]})
	}
	if due, err := s.DueDeliveries(ctx(t), t0.Add(2*time.Minute), 2); err != nil || !slices.Equal(deliveryIDs(due), []int64{ids[1], ids[0]}) {
		t.Fatalf("DueDeliveries limit 2 = %v, %v", deliveryIDs(due), err)
	}

	// One is sent, one fails and is retried later, one gives up.
	sent := due[0]
	sent.State, sent.Attempts, sent.SentAt = store.DeliverySent, 1, t0.Add(2*time.Minute)
	retry := due[1]
	retry.Attempts, retry.NextAt, retry.LastError = 1, t0.Add(10*time.Minute), "connection refused"
	failed := due[2]
	failed.State, failed.Attempts, failed.LastError = store.DeliveryFailed, 5, "gave up"
	for _, x := range []store.Delivery{sent, retry, failed} {
		if err := s.UpdateDelivery(ctx(t), x); err != nil {
			t.Fatal(err)
		}
	}
	wantErr(t, "UpdateDelivery(unknown)", s.UpdateDelivery(ctx(t), store.Delivery{ID: 999999, State: store.DeliverySent}), store.ErrNotFound)
	if due, err := s.DueDeliveries(ctx(t), t0.Add(5*time.Minute), 10); err != nil || len(due) != 0 {
		t.Fatalf("DueDeliveries after updates = %v, %v; want none", deliveryIDs(due), err)
	}
	due, err = s.DueDeliveries(ctx(t), t0.Add(time.Hour), 10)
	if err != nil || !slices.Equal(deliveryIDs(due), []int64{ids[0], ids[3]}) {
		t.Fatalf("DueDeliveries an hour later = %v, %v; want %v", deliveryIDs(due), err, []int64{ids[0], ids[3]})
	}
	if got := due[0]; got.Attempts != 1 || got.LastError != "connection refused" || !got.NextAt.Equal(t0.Add(10*time.Minute)) ||
		got.State != store.DeliveryPending {
		t.Errorf("retried delivery = %+v", got)
	}
	list, _ := s.ListDeliveries(ctx(t), store.DeliveryFilter{State: store.DeliverySent})
	if len(list) != 1 || list[0].ID != ids[1] || !list[0].SentAt.Equal(t0.Add(2*time.Minute)) || list[0].Attempts != 1 {
		t.Errorf("sent deliveries = %+v", list)
	}

	for _, tc := range []struct {
		name string
		f    store.DeliveryFilter
		want []int64
	}{
		{"tenant", store.DeliveryFilter{TenantIDs: []string{"acme"}}, []int64{ids[3], ids[1], ids[0]}},
		{"no tenants", store.DeliveryFilter{TenantIDs: []string{}}, []int64{}},
		{"alarm", store.DeliveryFilter{AlarmID: 1}, []int64{ids[1], ids[0]}},
		{"failed", store.DeliveryFilter{State: store.DeliveryFailed}, []int64{ids[2]}},
		{"pending of acme", store.DeliveryFilter{TenantIDs: []string{"acme"}, State: store.DeliveryPending}, []int64{ids[3], ids[0]}},
		{"limit", store.DeliveryFilter{Limit: 2}, []int64{ids[3], ids[2]}},
	} {
		got, err := s.ListDeliveries(ctx(t), tc.f)
		if err != nil || !slices.Equal(deliveryIDs(got), tc.want) {
			t.Errorf("%s: ListDeliveries = %v, %v; want %v", tc.name, deliveryIDs(got), err, tc.want)
		}
	}

	// The default limit is 100.
	var many []store.Delivery
	for range 105 {
		many = append(many, d("beta", 7, "bulk@example.com", t0))
	}
	if err := s.EnqueueDeliveries(ctx(t), many); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ListDeliveries(ctx(t), store.DeliveryFilter{AlarmID: 7}); err != nil || len(got) != 100 {
		t.Errorf("ListDeliveries without a limit = %d, %v; want 100", len(got), err)
	}
	if err := s.EnqueueDeliveries(ctx(t), []store.Delivery{d("beta", 8, "x", t0), d("ghost", 8, "x", t0)}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("EnqueueDeliveries of an unknown tenant: %v, want ErrNotFound", err)
	}
	if got, _ := s.ListDeliveries(ctx(t), store.DeliveryFilter{AlarmID: 8}); len(got) != 0 {
		t.Errorf("a failed EnqueueDeliveries stored %d deliveries", len(got))
	}
}

// deliveryIDs lists the ids of deliveries.
func deliveryIDs(ds []store.Delivery) []int64 {
	out := []int64{}
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

func testMaintenancePlans(t *testing.T, s store.Store) {
	mustTenant(t, s, "acme")
	mustTenant(t, s, "beta")
	plan := func(tenant, model, spec string, at time.Time) store.MaintenancePlan {
		return store.MaintenancePlan{TenantID: tenant, Model: model, Spec: json.RawMessage(spec), UpdatedAt: at}
	}
	for _, p := range []store.MaintenancePlan{
		plan("beta", "P100", `{"service":"500h"}`, t0),
		plan("acme", "P200", `{"service":"1000h"}`, t0),
		plan("acme", "P100", `{"service":"250h"}`, t0),
		plan("acme", "P200", `{"service":"2000h", "wear": [1, 2]}`, t0.Add(time.Hour)), // replaces
	} {
		if err := s.SetMaintenancePlan(ctx(t), p); err != nil {
			t.Fatalf("SetMaintenancePlan(%s/%s): %v", p.TenantID, p.Model, err)
		}
	}
	wantErr(t, "SetMaintenancePlan of an unknown tenant", s.SetMaintenancePlan(ctx(t), plan("ghost", "P1", `{}`, t0)), store.ErrNotFound)
	keys := func(ps []store.MaintenancePlan) []string {
		out := []string{}
		for _, p := range ps {
			out = append(out, p.TenantID+"/"+p.Model)
		}
		return out
	}
	all, err := s.ListMaintenancePlans(ctx(t), nil)
	if err != nil || !slices.Equal(keys(all), []string{"acme/P100", "acme/P200", "beta/P100"}) {
		t.Fatalf("ListMaintenancePlans = %v, %v", keys(all), err)
	}
	if got := all[1]; string(got.Spec) != `{"service":"2000h", "wear": [1, 2]}` || !got.UpdatedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("replaced plan = %s at %v", got.Spec, got.UpdatedAt)
	}
	if ps, err := s.ListMaintenancePlans(ctx(t), []string{"beta"}); err != nil || !slices.Equal(keys(ps), []string{"beta/P100"}) {
		t.Errorf("ListMaintenancePlans(beta) = %v, %v", keys(ps), err)
	}
	if ps, err := s.ListMaintenancePlans(ctx(t), []string{}); err != nil || len(ps) != 0 {
		t.Errorf("ListMaintenancePlans([]) = %v, %v", keys(ps), err)
	}
	if err := s.DeleteMaintenancePlan(ctx(t), "acme", "P100"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "DeleteMaintenancePlan twice", s.DeleteMaintenancePlan(ctx(t), "acme", "P100"), store.ErrNotFound)
	wantErr(t, "DeleteMaintenancePlan of another tenant's model", s.DeleteMaintenancePlan(ctx(t), "beta", "P200"), store.ErrNotFound)
	if ps, _ := s.ListMaintenancePlans(ctx(t), nil); !slices.Equal(keys(ps), []string{"acme/P200", "beta/P100"}) {
		t.Errorf("after delete ListMaintenancePlans = %v", keys(ps))
	}
}

func testMonitorState(t *testing.T, s store.Store) {
	mustTenant(t, s, "acme")
	mustTenant(t, s, "beta")
	if got, err := s.LoadMonitorState(ctx(t), "alarm"); err != nil || len(got) != 0 {
		t.Fatalf("LoadMonitorState without state = %q, %v; want none", got, err)
	}
	big := bytes.Repeat([]byte{0, 1, 2, 0xfe}, 1<<16)
	for _, v := range []map[string][]byte{{"acme": []byte("first")}, {"acme": big, "beta": []byte("b")}} {
		if err := s.SaveMonitorState(ctx(t), "alarm", v); err != nil {
			t.Fatal(err)
		}
		got, err := s.LoadMonitorState(ctx(t), "alarm")
		if err != nil || len(got) != len(v) {
			t.Fatalf("LoadMonitorState = %d parts, %v; want %d", len(got), err, len(v))
		}
		for tn, want := range v {
			if !bytes.Equal(got[tn], want) {
				t.Fatalf("LoadMonitorState[%s] = %d bytes; want %d", tn, len(got[tn]), len(want))
			}
		}
	}
	if err := s.SaveMonitorState(ctx(t), "maintenance", map[string][]byte{"beta": []byte("other")}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LoadMonitorState(ctx(t), "alarm"); !bytes.Equal(got["acme"], big) || len(got) != 2 {
		t.Error("saving another key changed the first")
	}
	if err := s.SaveMonitorState(ctx(t), "alarm", map[string][]byte{"beta": []byte("only")}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LoadMonitorState(ctx(t), "alarm"); len(got) != 1 || string(got["beta"]) != "only" {
		t.Errorf("after saving only beta: %q", got)
	}
	if err := s.DeleteTenant(ctx(t), "beta"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LoadMonitorState(ctx(t), "alarm"); len(got) != 0 {
		t.Errorf("after deleting beta its state is still there: %q", got)
	}
}

func testDeleteTenantTakesAlarms(t *testing.T, s store.Store) {
	for _, tn := range []string{"acme", "beta"} {
		mustTenant(t, s, tn)
		mustRule(t, s, "rule-"+tn, tn)
		alarm := apply(t, s, raised(tn, "rule-"+tn, "dev-"+tn, t0, 1))[0]
		if err := s.CreateWebhook(ctx(t), store.Webhook{ID: "hook-" + tn, TenantID: tn, URL: "https://x", Secret: []byte("k"), CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetEscalation(ctx(t), store.Escalation{TenantID: tn, Delay: time.Minute, Email: "x@example.com"}); err != nil {
			t.Fatal(err)
		}
		if err := s.EnqueueDeliveries(ctx(t), []store.Delivery{{TenantID: tn, AlarmID: alarm.ID, Channel: "webhook", Target: "hook-" + tn,
			Event: "raised", CreatedAt: t0}}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetMaintenancePlan(ctx(t), store.MaintenancePlan{TenantID: tn, Model: "P1", Spec: json.RawMessage(`{}`), UpdatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		mustUser(t, s, newUser("user-"+tn, tn, store.RoleCustomerAdmin))
		if err := s.SetNotificationPrefs(ctx(t), store.NotificationPrefs{UserID: "user-" + tn, Email: true}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteTenant(ctx(t), "acme"); err != nil {
		t.Fatal(err)
	}

	check := func(tn string, want int) {
		t.Helper()
		only := []string{tn}
		rules, err1 := s.ListAlarmRules(ctx(t), only)
		alarms, err2 := s.ListAlarms(ctx(t), store.AlarmFilter{TenantIDs: only})
		hooks, err3 := s.ListWebhooks(ctx(t), only)
		dels, err4 := s.ListDeliveries(ctx(t), store.DeliveryFilter{TenantIDs: only})
		plans, err5 := s.ListMaintenancePlans(ctx(t), only)
		if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
			t.Fatal(err)
		}
		if len(rules) != want || len(alarms) != want || len(hooks) != want || len(dels) != want || len(plans) != want {
			t.Errorf("tenant %s: %d rules, %d alarms, %d webhooks, %d deliveries, %d plans; want %d of each",
				tn, len(rules), len(alarms), len(hooks), len(dels), len(plans), want)
		}
		_, err := s.GetEscalation(ctx(t), tn)
		if (err == nil) != (want == 1) {
			t.Errorf("escalation of %s: %v", tn, err)
		}
	}
	check("acme", 0)
	check("beta", 1)
	if p, err := s.GetNotificationPrefs(ctx(t), "user-beta"); err != nil || !p.Email {
		t.Errorf("prefs of another tenant's user = %+v, %v", p, err)
	}

	// The ids can be used again, and the prefs of the user are gone.
	mustTenant(t, s, "acme")
	mustRule(t, s, "rule-acme", "acme")
	mustUser(t, s, newUser("user-acme", "acme", store.RoleCustomerAdmin))
	if p, err := s.GetNotificationPrefs(ctx(t), "user-acme"); err != nil || p.Email {
		t.Errorf("prefs of a deleted tenant's user = %+v, %v; want defaults", p, err)
	}
	if err := s.CreateWebhook(ctx(t), store.Webhook{ID: "hook-acme", TenantID: "acme", URL: "https://x", Secret: []byte("k")}); err != nil {
		t.Errorf("webhook id of a deleted tenant: %v", err)
	}
	// A raise makes a new alarm, not a retrigger of the deleted one.
	if a := apply(t, s, raised("acme", "rule-acme", "dev-acme", t0.Add(time.Hour), 1))[0]; a.Retriggers != 0 {
		t.Errorf("raise after DeleteTenant = %+v, want a new alarm", a)
	}
}

// A device's alarms, and the deliveries about them, go with the device
// (its data goes with it); its rules stay.
func testDeleteDeviceTakesAlarms(t *testing.T, s store.Store) {
	mustDevice(t, s, "d1", store.RootTenantID, store.DeviceInfo{})
	mustDevice(t, s, "d2", store.RootTenantID, store.DeviceInfo{})
	mustRule(t, s, "r1", store.RootTenantID)
	got := apply(t, s,
		raised(store.RootTenantID, "r1", "d1", t0, 1),
		raised(store.RootTenantID, "r1", "d2", t0, 1),
	)
	apply(t, s, cleared(store.RootTenantID, "r1", "d1", t0.Add(time.Minute), "auto"), raised(store.RootTenantID, "r1", "d1", t0.Add(2*time.Minute), 2))
	var ds []store.Delivery
	for _, a := range got {
		ds = append(ds, store.Delivery{TenantID: store.RootTenantID, AlarmID: a.ID, Channel: "email", Target: "x@example.com", Event: "raised"})
	}
	if err := s.EnqueueDeliveries(ctx(t), ds); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDevice(ctx(t), store.RootTenantID, "d1"); err != nil {
		t.Fatal(err)
	}
	if as, err := s.ListAlarms(ctx(t), store.AlarmFilter{}); err != nil || !slices.Equal(alarmIDs(as), []int64{got[1].ID}) {
		t.Errorf("alarms after DeleteDevice(d1) = %v, %v; want only %d", alarmIDs(as), err, got[1].ID)
	}
	if dl, err := s.ListDeliveries(ctx(t), store.DeliveryFilter{}); err != nil || len(dl) != 1 || dl[0].AlarmID != got[1].ID {
		t.Errorf("deliveries after DeleteDevice(d1) = %+v, %v; want only those of alarm %d", dl, err, got[1].ID)
	}
	if _, err := s.GetAlarmRule(ctx(t), "r1"); err != nil {
		t.Errorf("rule after DeleteDevice: %v", err)
	}
	// A device created again with the same id starts without alarms.
	mustDevice(t, s, "d1", store.RootTenantID, store.DeviceInfo{})
	if a := apply(t, s, raised(store.RootTenantID, "r1", "d1", t0.Add(time.Hour), 1))[0]; a.Retriggers != 0 || a.ID == got[0].ID {
		t.Errorf("raise on a device created again = %+v", a)
	}
}
