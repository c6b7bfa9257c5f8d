package alarmsql_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/alarm/alarmsql"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/notify/notifysql"
	"github.com/warden-iot/warden/internal/notify/notifystore"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/enginetest"
	"github.com/warden-iot/warden/internal/tenancy"
)

// The conformance suite of alarm.Store, and what deleting a tenant or a
// device does to alarm data, on both engines.
var alarmTests = []struct {
	name string
	fn   func(t *testing.T, s *env)
}{
	{"AlarmRules", testAlarmRules},
	{"AlarmLifecycle", testAlarmLifecycle},
	{"AlarmChangesInOneBatch", testAlarmChangesInOneBatch},
	{"AlarmChangesRollBack", testAlarmChangesRollBack},
	{"AlarmConcurrentRaise", testAlarmConcurrentRaise},
	{"AlarmConcurrentRaiseAndClear", testAlarmConcurrentRaiseAndClear},
	{"AckAlarm", testAckAlarm},
	{"ListAlarmsFilters", testListAlarmsFilters},
	{"ListAlarmsScopes", testListAlarmsScopes},
	{"MaintenancePlans", testMaintenancePlans},
	{"MonitorState", testMonitorState},
	{"LegacyMonitorState", testLegacyMonitorState},
	{"DeleteTenantTakesAlarms", testDeleteTenantTakesAlarms},
	{"DeleteDeviceTakesAlarms", testDeleteDeviceTakesAlarms},
}

func TestStore(t *testing.T) {
	enginetest.Run(t, func(t *testing.T, open func(t *testing.T) (store.Store, database.DB)) {
		for _, tc := range alarmTests {
			t.Run(tc.name, func(t *testing.T) { tc.fn(t, newEnv(t, open)) })
		}
	})
}

// A state saved before states were sealed loads whole under the tenant
// "", and the next save drops it and notes that the engine must compact
// the database (the meta key its CompactSealed looks for), so that no copy
// of the plaintext remains.
func testLegacyMonitorState(t *testing.T, s *env) {
	enginetest.Tenant(t, s, "acme", tenancy.RootTenantID)
	if _, err := s.db.Exec(ctx(t), `INSERT INTO monitor_state (key, state) VALUES (?, ?)`, "alarm", []byte("plain")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LoadMonitorState(ctx(t), "alarm"); err != nil || len(got) != 1 || string(got[""]) != "plain" {
		t.Fatalf("LoadMonitorState with a state saved before sealing = %q, %v", got, err)
	}
	if _, err := s.GetMeta(ctx(t), "sealed_compact_pending"); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("compaction pending before the save: %v", err)
	}
	if err := s.SaveMonitorState(ctx(t), "alarm", map[string][]byte{"acme": []byte("sealed")}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LoadMonitorState(ctx(t), "alarm"); err != nil || len(got) != 1 || string(got["acme"]) != "sealed" {
		t.Fatalf("LoadMonitorState after the save = %q, %v", got, err)
	}
	if _, err := s.GetMeta(ctx(t), "sealed_compact_pending"); err != nil {
		t.Errorf("compaction not noted as due after dropping the plaintext state: %v", err)
	}
	if err := s.CompactSealed(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetMeta(ctx(t), "sealed_compact_pending"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("compaction still pending after CompactSealed: %v", err)
	}
}

// Local names for the stores under test, so that env can embed both.
type (
	alarms        = alarmsql.Store
	notifications = notifysql.Store
)

// engine is the engine under the stores, one level further down in env.
type engine struct{ store.Store }

// env is what a test runs on: the stores under test (alarmsql's, and
// notifysql's for what deleting a tenant or device takes with the alarms),
// and below them the engine they share a database with, for prerequisites
// (tenants, users, devices) and deletions. The stores' methods are
// promoted from a shallower depth than the engine's, so that s.ListAlarms
// is alarmsql's, not the engine's copy.
type env struct {
	*alarms
	*notifications
	*engine
	db database.DB // the engine's, for rows only an older version wrote
}

func newEnv(t *testing.T, open func(t *testing.T) (store.Store, database.DB)) *env {
	t.Helper()
	st, db := open(t)
	kr := enginetest.WithKeyring(t, st)
	e := &env{alarms: alarmsql.New(db), notifications: notifysql.New(db), engine: &engine{st}, db: db}
	e.alarms.SetSealer(kr)
	e.notifications.SetSealer(kr)
	return e
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ctx(t *testing.T) context.Context { return t.Context() }

func retriggered(tenant, rule, device string, at time.Time, value float64) alarm.Change {
	c := enginetest.Raised(tenant, rule, device, at, value)
	c.Kind = "retriggered"
	return c
}

func cleared(tenant, rule, device string, at time.Time, by string) alarm.Change {
	return alarm.Change{Kind: "cleared", TenantID: tenant, RuleID: rule, DeviceID: device, At: at, By: by}
}

func alarmIDs(as []alarm.Record) []int64 {
	out := []int64{}
	for _, a := range as {
		out = append(out, a.ID)
	}
	return out
}

func sameRule(a, b alarm.StoredRule) bool {
	return a.ID == b.ID && a.TenantID == b.TenantID && a.Name == b.Name && a.Enabled == b.Enabled &&
		bytes.Equal(a.Spec, b.Spec) && a.CreatedBy == b.CreatedBy && a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}

func testAlarmRules(t *testing.T, s *env) {
	enginetest.Tenant(t, s, "acme", tenancy.RootTenantID)
	enginetest.Tenant(t, s, "beta", tenancy.RootTenantID)
	r1 := enginetest.Rule(t, s, "r1", "acme")
	enginetest.Rule(t, s, "r0", "beta")
	enginetest.Rule(t, s, "r2", "acme")
	enginetest.WantErr(t, "CreateAlarmRule twice", s.CreateAlarmRule(ctx(t), r1), database.ErrConflict)
	enginetest.WantErr(t, "CreateAlarmRule of an unknown tenant",
		s.CreateAlarmRule(ctx(t), alarm.StoredRule{ID: "rx", TenantID: "ghost", Name: "x", CreatedAt: t0}), database.ErrNotFound)

	got, err := s.GetAlarmRule(ctx(t), "r1")
	if err != nil || !sameRule(got, r1) {
		t.Fatalf("GetAlarmRule = %+v, %v; want %+v", got, err, r1)
	}
	_, err = s.GetAlarmRule(ctx(t), "ghost")
	enginetest.WantErr(t, "GetAlarmRule(ghost)", err, database.ErrNotFound)

	ruleIDs := func(rs []alarm.StoredRule) []string {
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
	// acme2 only starts like acme; east is below acme.
	enginetest.Tenant(t, s, "acme2", tenancy.RootTenantID)
	if err := s.CreateTenant(ctx(t), tenancy.Tenant{ID: "east", ParentID: "acme", Name: "east", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	enginetest.Rule(t, s, "r3", "acme2")
	enginetest.Rule(t, s, "r4", "east")
	for _, tc := range []struct {
		tenant string
		want   []string
	}{
		{"acme", []string{"r1", "r2", "r4"}},
		{"east", []string{"r4"}},
		{"acme2", []string{"r3"}},
		{tenancy.RootTenantID, []string{"r0", "r1", "r2", "r3", "r4"}},
		{"ghost", []string{}},
	} {
		rs, err := s.ListAlarmRulesUnder(ctx(t), tc.tenant)
		if err != nil || !slices.Equal(ruleIDs(rs), tc.want) {
			t.Errorf("ListAlarmRulesUnder(%q) = %v, %v; want %v", tc.tenant, ruleIDs(rs), err, tc.want)
		}
	}
	for _, id := range []string{"r3", "r4"} {
		if err := s.DeleteAlarmRule(ctx(t), id); err != nil {
			t.Fatal(err)
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
	enginetest.WantErr(t, "UpdateAlarmRule(ghost)", s.UpdateAlarmRule(ctx(t), alarm.StoredRule{ID: "ghost", Name: "x"}), database.ErrNotFound)

	// Deleting a rule keeps its alarms.
	a := enginetest.Apply(t, s, enginetest.Raised("acme", "r2", "d1", t0, 90))[0]
	if err := s.DeleteAlarmRule(ctx(t), "r2"); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetAlarmRule(ctx(t), "r2")
	enginetest.WantErr(t, "GetAlarmRule after delete", err, database.ErrNotFound)
	enginetest.WantErr(t, "DeleteAlarmRule twice", s.DeleteAlarmRule(ctx(t), "r2"), database.ErrNotFound)
	if got, err := s.GetAlarm(ctx(t), a.ID); err != nil || got.RuleID != "r2" {
		t.Errorf("alarm of a deleted rule = %+v, %v; want it kept", got, err)
	}
	// The id can be used again.
	enginetest.Rule(t, s, "r2", "beta")
}

func testAlarmLifecycle(t *testing.T, s *env) {
	enginetest.Tenant(t, s, "acme", tenancy.RootTenantID)
	if _, err := s.GetAlarm(ctx(t), 1); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("GetAlarm(1) of an empty store: %v, want ErrNotFound", err)
	}

	a := enginetest.Apply(t, s, enginetest.Raised("acme", "r1", "d1", t0, 90))[0]
	want := alarm.Record{ID: a.ID, TenantID: "acme", RuleID: "r1", DeviceID: "d1", SiteID: "site-d1", Kind: alarm.KindRule,
		Severity: "critical", Message: "value 90", Value: 90, State: alarm.StateActive, RaisedAt: t0, LastAt: t0}
	if a.ID == 0 || a != want {
		t.Fatalf("raised = %+v\nwant %+v", a, want)
	}
	if got, err := s.GetAlarm(ctx(t), a.ID); err != nil || got != want {
		t.Fatalf("GetAlarm = %+v, %v\nwant %+v", got, err, want)
	}

	// A retrigger counts on the active alarm; so does a second raise.
	got := enginetest.Apply(t, s, retriggered("acme", "r1", "d1", t0.Add(time.Minute), 91))[0]
	want.Retriggers, want.LastAt, want.Value, want.Message = 1, t0.Add(time.Minute), 91, "value 91"
	if got != want {
		t.Fatalf("retriggered = %+v\nwant %+v", got, want)
	}
	got = enginetest.Apply(t, s, enginetest.Raised("acme", "r1", "d1", t0.Add(2*time.Minute), 92))[0]
	want.Retriggers, want.LastAt, want.Value, want.Message = 2, t0.Add(2*time.Minute), 92, "value 92"
	if got != want {
		t.Fatalf("raised again while active = %+v\nwant %+v", got, want)
	}

	// A second device has its own active alarm for the same rule.
	b := enginetest.Apply(t, s, enginetest.Raised("acme", "r1", "d2", t0.Add(3*time.Minute), 95))[0]
	if b.ID == a.ID || b.State != alarm.StateActive || b.DeviceID != "d2" || b.Retriggers != 0 {
		t.Fatalf("alarm on a second device = %+v (first %d)", b, a.ID)
	}
	active, err := s.ListAlarms(ctx(t), alarm.Filter{RuleID: "r1", State: alarm.StateActive})
	if err != nil || !slices.Equal(alarmIDs(active), []int64{a.ID, b.ID}) {
		t.Fatalf("active alarms of r1 = %v, %v; want %d, %d", alarmIDs(active), err, a.ID, b.ID)
	}

	// Clear.
	got = enginetest.Apply(t, s, cleared("acme", "r1", "d1", t0.Add(4*time.Minute), "auto"))[0]
	want.State, want.ClearedAt, want.ClearedBy = alarm.StateCleared, t0.Add(4*time.Minute), "auto"
	if got != want {
		t.Fatalf("cleared = %+v\nwant %+v", got, want)
	}
	// A clear without an active alarm touches nothing.
	if got := enginetest.Apply(t, s, cleared("acme", "r1", "d1", t0.Add(5*time.Minute), "alice"))[0]; got != (alarm.Record{}) {
		t.Fatalf("clear without an active alarm = %+v, want a zero Alarm", got)
	}
	if got, _ := s.GetAlarm(ctx(t), a.ID); got != want {
		t.Fatalf("after a second clear = %+v\nwant %+v", got, want)
	}

	// Raising again gives a second alarm; the first stays cleared.
	c := enginetest.Apply(t, s, enginetest.Raised("acme", "r1", "d1", t0.Add(6*time.Minute), 99))[0]
	if c.ID == a.ID || c.ID == b.ID || c.State != alarm.StateActive || c.Retriggers != 0 || !c.RaisedAt.Equal(t0.Add(6*time.Minute)) {
		t.Fatalf("raised after clear = %+v", c)
	}
	if got, _ := s.GetAlarm(ctx(t), a.ID); got != want {
		t.Fatalf("first alarm after a new raise = %+v\nwant %+v", got, want)
	}

	// A retrigger without an active alarm is not lost: it raises one.
	d := enginetest.Apply(t, s, retriggered("acme", "r9", "d1", t0.Add(7*time.Minute), 10))[0]
	if d.ID == 0 || d.State != alarm.StateActive || d.RuleID != "r9" || d.Retriggers != 0 || !d.RaisedAt.Equal(t0.Add(7*time.Minute)) ||
		!d.LastAt.Equal(d.RaisedAt) {
		t.Fatalf("retrigger without an active alarm = %+v, want a new active alarm", d)
	}

	// A maintenance warning keeps its kind.
	m := enginetest.Raised("acme", "maintenance:service:hours", "d1", t0, 0)
	m.Alarm, m.Severity = alarm.KindMaintenance, "warning"
	if got := enginetest.Apply(t, s, m)[0]; got.Kind != alarm.KindMaintenance || got.Severity != "warning" {
		t.Fatalf("maintenance warning = %+v", got)
	}

	all, err := s.ListAlarms(ctx(t), alarm.Filter{})
	if err != nil || len(all) != 5 {
		t.Fatalf("ListAlarms = %v, %v; want 5 alarms", alarmIDs(all), err)
	}
	if _, err := s.ApplyAlarmChanges(ctx(t), []alarm.Change{{Kind: "exploded", TenantID: "acme", RuleID: "r1", DeviceID: "d1", At: t0}}); err == nil {
		t.Error("ApplyAlarmChanges with an unknown kind succeeded")
	}
	if got, err := s.ApplyAlarmChanges(ctx(t), nil); err != nil || len(got) != 0 {
		t.Errorf("ApplyAlarmChanges(nil) = %v, %v", got, err)
	}
}

// Changes of one call apply in order and each sees the previous ones.
func testAlarmChangesInOneBatch(t *testing.T, s *env) {
	enginetest.Tenant(t, s, "acme", tenancy.RootTenantID)
	got := enginetest.Apply(t, s,
		enginetest.Raised("acme", "r1", "d1", t0, 1),
		retriggered("acme", "r1", "d1", t0.Add(time.Second), 2),
		enginetest.Raised("acme", "r1", "d2", t0.Add(2*time.Second), 3),
		cleared("acme", "r1", "d1", t0.Add(3*time.Second), "auto"),
		cleared("acme", "r1", "d1", t0.Add(4*time.Second), "auto"),
		enginetest.Raised("acme", "r1", "d1", t0.Add(5*time.Second), 4),
	)
	if got[0].ID == 0 || got[1].ID != got[0].ID || got[1].Retriggers != 1 || got[0].Retriggers != 0 {
		t.Errorf("raise then retrigger = %+v, %+v", got[0], got[1])
	}
	if got[2].ID == got[0].ID || got[2].DeviceID != "d2" {
		t.Errorf("raise on d2 = %+v", got[2])
	}
	if got[3].ID != got[0].ID || got[3].State != alarm.StateCleared || got[3].Retriggers != 1 || !got[3].ClearedAt.Equal(t0.Add(3*time.Second)) {
		t.Errorf("clear = %+v", got[3])
	}
	if got[4] != (alarm.Record{}) {
		t.Errorf("second clear = %+v, want zero", got[4])
	}
	if got[5].ID == got[0].ID || got[5].ID == got[2].ID || got[5].State != alarm.StateActive {
		t.Errorf("raise after clear = %+v", got[5])
	}
}

// A failing change rolls back the whole call.
func testAlarmChangesRollBack(t *testing.T, s *env) {
	enginetest.Tenant(t, s, "acme", tenancy.RootTenantID)
	_, err := s.ApplyAlarmChanges(ctx(t), []alarm.Change{
		enginetest.Raised("acme", "r1", "d1", t0, 1),
		enginetest.Raised("ghost", "r2", "d1", t0, 1),
	})
	if err == nil {
		t.Fatal("ApplyAlarmChanges with an unknown tenant succeeded")
	}
	if all, err := s.ListAlarms(ctx(t), alarm.Filter{}); err != nil || len(all) != 0 {
		t.Fatalf("after a failed call ListAlarms = %v, %v; want none", alarmIDs(all), err)
	}
}

// Evaluators on several nodes raising the same alarm at once make one
// active alarm, retriggered by every other raise.
func testAlarmConcurrentRaise(t *testing.T, s *env) {
	enginetest.Tenant(t, s, "acme", tenancy.RootTenantID)
	const workers, rounds = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				at := t0.Add(time.Duration(w*rounds+i) * time.Millisecond)
				// Each call also raises an alarm of its own, in a different
				// order from the others', to provoke lock-order conflicts.
				changes := []alarm.Change{enginetest.Raised("acme", "r1", "d1", at, float64(i)), enginetest.Raised("acme", "r1", "d2", at, 0)}
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
		all, err := s.ListAlarms(ctx(t), alarm.Filter{DeviceIDs: []string{dev}})
		if err != nil || len(all) != 1 {
			t.Fatalf("alarms of %s = %+v, %v; want exactly one", dev, all, err)
		}
		if a := all[0]; a.State != alarm.StateActive || a.Retriggers != workers*rounds-1 {
			t.Errorf("alarm of %s = %+v; want active with %d retriggers", dev, a, workers*rounds-1)
		}
	}
}

// Raises and clears of one alarm racing each other never leave two active
// alarms, and every raise is either a new alarm or a retrigger.
func testAlarmConcurrentRaiseAndClear(t *testing.T, s *env) {
	enginetest.Tenant(t, s, "acme", tenancy.RootTenantID)
	const workers, rounds = 6, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				at := t0.Add(time.Duration(w*rounds+i) * time.Millisecond)
				changes := []alarm.Change{enginetest.Raised("acme", "r1", "d1", at, 1)}
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
	all, err := s.ListAlarms(ctx(t), alarm.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	active, raises := 0, 0
	for _, a := range all {
		if a.State == alarm.StateActive {
			active++
		}
		raises += 1 + a.Retriggers
	}
	if active > 1 || raises != workers*rounds {
		t.Errorf("%d alarms, %d active, %d raises counted; want at most one active and %d raises", len(all), active, raises, workers*rounds)
	}
}

func testAckAlarm(t *testing.T, s *env) {
	enginetest.Tenant(t, s, "acme", tenancy.RootTenantID)
	got := enginetest.Apply(t, s, enginetest.Raised("acme", "r1", "d1", t0, 1), enginetest.Raised("acme", "r2", "d1", t0, 1))
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
	enginetest.WantErr(t, "AckAlarm twice", err, database.ErrConflict)
	if got, _ := s.GetAlarm(ctx(t), a.ID); got != want {
		t.Fatalf("a second ack changed the alarm: %+v", got)
	}
	_, err = s.AckAlarm(ctx(t), 999999, "bob", "", t0)
	enginetest.WantErr(t, "AckAlarm(unknown)", err, database.ErrNotFound)

	// An ack survives retriggers and clears; a cleared alarm can be acked.
	got = enginetest.Apply(t, s, retriggered("acme", "r1", "d1", t0.Add(3*time.Minute), 2), cleared("acme", "r2", "d1", t0.Add(3*time.Minute), "auto"))
	if got[0].AckedBy != "alice" || !got[0].AckedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("retriggered acked alarm = %+v", got[0])
	}
	if acked, err := s.AckAlarm(ctx(t), b.ID, "bob", "", t0.Add(4*time.Minute)); err != nil || acked.State != alarm.StateCleared ||
		acked.AckedBy != "bob" || acked.AckComment != "" {
		t.Errorf("AckAlarm of a cleared alarm = %+v, %v", acked, err)
	}
}

func testListAlarmsFilters(t *testing.T, s *env) {
	enginetest.Tenant(t, s, "acme", tenancy.RootTenantID)
	enginetest.Tenant(t, s, "beta", tenancy.RootTenantID)
	h := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
	warn := func(c alarm.Change) alarm.Change { c.Severity = "warning"; return c }
	// a1: acme r1 d1 raised h0, cleared h2
	// a2: acme r1 d2 raised h1, active, warning
	// a3: acme r2 d1 raised h3, cleared h4, acked
	// a4: beta r3 d3 raised h5, active, acked
	// a5: acme r2 d1 raised h6, active
	ids := alarmIDs(enginetest.Apply(t, s,
		enginetest.Raised("acme", "r1", "d1", h(0), 1),
		warn(enginetest.Raised("acme", "r1", "d2", h(1), 1)),
		enginetest.Raised("acme", "r2", "d1", h(3), 1),
		enginetest.Raised("beta", "r3", "d3", h(5), 1),
	))
	enginetest.Apply(t, s, cleared("acme", "r1", "d1", h(2), "auto"), cleared("acme", "r2", "d1", h(4), "alice"))
	ids = append(ids, enginetest.Apply(t, s, enginetest.Raised("acme", "r2", "d1", h(6), 1))[0].ID)
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
		f    alarm.Filter
		want []int64
	}{
		{"all", alarm.Filter{}, a(1, 2, 3, 4, 5)},
		{"tenant", alarm.Filter{TenantIDs: []string{"acme"}}, a(1, 2, 3, 5)},
		{"tenants", alarm.Filter{TenantIDs: []string{"beta", "ghost"}}, a(4)},
		{"no tenants", alarm.Filter{TenantIDs: []string{}}, a()},
		{"devices", alarm.Filter{DeviceIDs: []string{"d2", "d3"}}, a(2, 4)},
		{"no devices", alarm.Filter{DeviceIDs: []string{}}, a()},
		{"sites", alarm.Filter{SiteIDs: []string{"site-d1"}}, a(1, 3, 5)},
		{"no sites", alarm.Filter{SiteIDs: []string{}}, a()},
		{"rule", alarm.Filter{RuleID: "r2"}, a(3, 5)},
		{"active", alarm.Filter{State: alarm.StateActive}, a(2, 4, 5)},
		{"cleared", alarm.Filter{State: alarm.StateCleared}, a(1, 3)},
		{"severity", alarm.Filter{Severity: "warning"}, a(2)},
		{"critical", alarm.Filter{Severity: "critical"}, a(1, 3, 4, 5)},
		{"since", alarm.Filter{Since: h(2)}, a(1, 2, 3, 4, 5)},    // a1 cleared at h2: active at since
		{"since later", alarm.Filter{Since: h(3)}, a(2, 3, 4, 5)}, // a1 cleared before
		{"since after clears", alarm.Filter{Since: h(5)}, a(2, 4, 5)},
		{"until", alarm.Filter{Until: h(3)}, a(1, 2)}, // raised before h3
		{"window", alarm.Filter{Since: h(3), Until: h(6)}, a(2, 3, 4)},
		{"unacked", alarm.Filter{Unacked: true}, a(1, 2, 5)},
		{"combined", alarm.Filter{TenantIDs: []string{"acme"}, State: alarm.StateActive, Unacked: true, Severity: "critical"}, a(5)},
		{"after", alarm.Filter{After: ids[1]}, a(3, 4, 5)},
		{"limit", alarm.Filter{Limit: 2}, a(1, 2)},
		{"page", alarm.Filter{After: ids[1], Limit: 2}, a(3, 4)},
		{"last page", alarm.Filter{After: ids[4], Limit: 2}, a()},
	} {
		got, err := s.ListAlarms(ctx(t), tc.f)
		if err != nil || !slices.Equal(alarmIDs(got), tc.want) {
			t.Errorf("%s: ListAlarms(%+v) = %v, %v; want %v", tc.name, tc.f, alarmIDs(got), err, tc.want)
		}
	}
	// The default limit is 1000.
	var many []alarm.Change
	for i := range 1005 {
		many = append(many, enginetest.Raised("beta", "bulk", fmt.Sprintf("dev-%04d", i), h(8), 0))
	}
	enginetest.Apply(t, s, many...)
	if got, err := s.ListAlarms(ctx(t), alarm.Filter{RuleID: "bulk"}); err != nil || len(got) != 1000 {
		t.Errorf("ListAlarms without a limit = %d alarms, %v; want 1000", len(got), err)
	}
}

func testMaintenancePlans(t *testing.T, s *env) {
	enginetest.Tenant(t, s, "acme", tenancy.RootTenantID)
	enginetest.Tenant(t, s, "beta", tenancy.RootTenantID)
	plan := func(tenant, model, spec string, at time.Time) alarm.MaintenancePlan {
		return alarm.MaintenancePlan{TenantID: tenant, Model: model, Spec: json.RawMessage(spec), UpdatedAt: at}
	}
	for _, p := range []alarm.MaintenancePlan{
		plan("beta", "P100", `{"service":"500h"}`, t0),
		plan("acme", "P200", `{"service":"1000h"}`, t0),
		plan("acme", "P100", `{"service":"250h"}`, t0),
		plan("acme", "P200", `{"service":"2000h", "wear": [1, 2]}`, t0.Add(time.Hour)), // replaces
	} {
		if err := s.SetMaintenancePlan(ctx(t), p); err != nil {
			t.Fatalf("SetMaintenancePlan(%s/%s): %v", p.TenantID, p.Model, err)
		}
	}
	enginetest.WantErr(t, "SetMaintenancePlan of an unknown tenant", s.SetMaintenancePlan(ctx(t), plan("ghost", "P1", `{}`, t0)), database.ErrNotFound)
	keys := func(ps []alarm.MaintenancePlan) []string {
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
	enginetest.WantErr(t, "DeleteMaintenancePlan twice", s.DeleteMaintenancePlan(ctx(t), "acme", "P100"), database.ErrNotFound)
	enginetest.WantErr(t, "DeleteMaintenancePlan of another tenant's model", s.DeleteMaintenancePlan(ctx(t), "beta", "P200"), database.ErrNotFound)
	if ps, _ := s.ListMaintenancePlans(ctx(t), nil); !slices.Equal(keys(ps), []string{"acme/P200", "beta/P100"}) {
		t.Errorf("after delete ListMaintenancePlans = %v", keys(ps))
	}
}

func testMonitorState(t *testing.T, s *env) {
	enginetest.Tenant(t, s, "acme", tenancy.RootTenantID)
	enginetest.Tenant(t, s, "beta", tenancy.RootTenantID)
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

func testDeleteTenantTakesAlarms(t *testing.T, s *env) {
	for _, tn := range []string{"acme", "beta"} {
		enginetest.Tenant(t, s, tn, tenancy.RootTenantID)
		enginetest.Rule(t, s, "rule-"+tn, tn)
		a := enginetest.Apply(t, s, enginetest.Raised(tn, "rule-"+tn, "dev-"+tn, t0, 1))[0]
		if err := s.CreateWebhook(ctx(t), notifystore.Webhook{ID: "hook-" + tn, TenantID: tn, URL: "https://x", Secret: []byte("k"), CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetEscalation(ctx(t), notifystore.Escalation{TenantID: tn, Delay: time.Minute, Email: "x@example.com"}); err != nil {
			t.Fatal(err)
		}
		if err := s.EnqueueDeliveries(ctx(t), []notifystore.Delivery{{TenantID: tn, AlarmID: a.ID, Channel: "webhook", Target: "hook-" + tn,
			Event: "raised", CreatedAt: t0}}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetMaintenancePlan(ctx(t), alarm.MaintenancePlan{TenantID: tn, Model: "P1", Spec: json.RawMessage(`{}`), UpdatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		enginetest.User(t, s, enginetest.NewUser("user-"+tn, tn, identity.RoleCustomerAdmin))
		if err := s.SetNotificationPrefs(ctx(t), notifystore.NotificationPrefs{UserID: "user-" + tn, Email: true}); err != nil {
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
		alarms, err2 := s.ListAlarms(ctx(t), alarm.Filter{TenantIDs: only})
		hooks, err3 := s.ListWebhooks(ctx(t), only)
		dels, err4 := s.ListDeliveries(ctx(t), notifystore.DeliveryFilter{TenantIDs: only})
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
	enginetest.Tenant(t, s, "acme", tenancy.RootTenantID)
	enginetest.Rule(t, s, "rule-acme", "acme")
	enginetest.User(t, s, enginetest.NewUser("user-acme", "acme", identity.RoleCustomerAdmin))
	if p, err := s.GetNotificationPrefs(ctx(t), "user-acme"); err != nil || p.Email {
		t.Errorf("prefs of a deleted tenant's user = %+v, %v; want defaults", p, err)
	}
	if err := s.CreateWebhook(ctx(t), notifystore.Webhook{ID: "hook-acme", TenantID: "acme", URL: "https://x", Secret: []byte("k")}); err != nil {
		t.Errorf("webhook id of a deleted tenant: %v", err)
	}
	// A raise makes a new alarm, not a retrigger of the deleted one.
	if a := enginetest.Apply(t, s, enginetest.Raised("acme", "rule-acme", "dev-acme", t0.Add(time.Hour), 1))[0]; a.Retriggers != 0 {
		t.Errorf("raise after DeleteTenant = %+v, want a new alarm", a)
	}
}

// A device's alarms, and the deliveries about them, go with the device
// (its data goes with it); its rules stay.
func testDeleteDeviceTakesAlarms(t *testing.T, s *env) {
	enginetest.Device(t, s, "d1", tenancy.RootTenantID, registry.DeviceInfo{})
	enginetest.Device(t, s, "d2", tenancy.RootTenantID, registry.DeviceInfo{})
	enginetest.Rule(t, s, "r1", tenancy.RootTenantID)
	got := enginetest.Apply(t, s,
		enginetest.Raised(tenancy.RootTenantID, "r1", "d1", t0, 1),
		enginetest.Raised(tenancy.RootTenantID, "r1", "d2", t0, 1),
	)
	enginetest.Apply(t, s, cleared(tenancy.RootTenantID, "r1", "d1", t0.Add(time.Minute), "auto"), enginetest.Raised(tenancy.RootTenantID, "r1", "d1", t0.Add(2*time.Minute), 2))
	var ds []notifystore.Delivery
	for _, a := range got {
		ds = append(ds, notifystore.Delivery{TenantID: tenancy.RootTenantID, AlarmID: a.ID, Channel: "email", Target: "x@example.com", Event: "raised"})
	}
	if err := s.EnqueueDeliveries(ctx(t), ds); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDevice(ctx(t), tenancy.RootTenantID, "d1"); err != nil {
		t.Fatal(err)
	}
	if as, err := s.ListAlarms(ctx(t), alarm.Filter{}); err != nil || !slices.Equal(alarmIDs(as), []int64{got[1].ID}) {
		t.Errorf("alarms after DeleteDevice(d1) = %v, %v; want only %d", alarmIDs(as), err, got[1].ID)
	}
	if dl, err := s.ListDeliveries(ctx(t), notifystore.DeliveryFilter{}); err != nil || len(dl) != 1 || dl[0].AlarmID != got[1].ID {
		t.Errorf("deliveries after DeleteDevice(d1) = %+v, %v; want only those of alarm %d", dl, err, got[1].ID)
	}
	if _, err := s.GetAlarmRule(ctx(t), "r1"); err != nil {
		t.Errorf("rule after DeleteDevice: %v", err)
	}
	// A device created again with the same id starts without alarms.
	enginetest.Device(t, s, "d1", tenancy.RootTenantID, registry.DeviceInfo{})
	if a := enginetest.Apply(t, s, enginetest.Raised(tenancy.RootTenantID, "r1", "d1", t0.Add(time.Hour), 1))[0]; a.Retriggers != 0 || a.ID == got[0].ID {
		t.Errorf("raise on a device created again = %+v", a)
	}
}

// testListAlarmsScopes: Under takes the alarms of a tenant's subtree, not
// of a tenant whose id merely starts with the tenant's; DeviceSiteIDs and
// FactoryAccess go by the site a device is at now, not the one an alarm
// was raised at.
func testListAlarmsScopes(t *testing.T, s *env) {
	enginetest.Tenant(t, s, "acme", tenancy.RootTenantID)
	enginetest.Tenant(t, s, "acme2", tenancy.RootTenantID)
	for _, x := range []struct{ id, parent string }{{"east", "acme"}, {"floor", "east"}} {
		if err := s.CreateTenant(ctx(t), tenancy.Tenant{ID: x.id, ParentID: x.parent, Name: x.id, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	for _, x := range []struct{ id, tenant string }{{"s1", "acme"}, {"s2", "acme2"}} {
		if err := s.CreateSite(ctx(t), tenancy.Site{ID: x.id, TenantID: x.tenant, Name: x.id, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetFactoryAccess(ctx(t), "s2", true, t0); err != nil {
		t.Fatal(err)
	}
	enginetest.Device(t, s, "d1", "acme", registry.DeviceInfo{SiteID: "s1"})
	enginetest.Device(t, s, "d2", "floor", registry.DeviceInfo{})
	enginetest.Device(t, s, "d3", "acme2", registry.DeviceInfo{SiteID: "s2"})
	// Raised at "site-dN" (see raised), not at the devices' sites now.
	ids := alarmIDs(enginetest.Apply(t, s,
		enginetest.Raised("acme", "r1", "d1", t0, 1),
		enginetest.Raised("floor", "r1", "d2", t0, 1),
		enginetest.Raised("acme2", "r1", "d3", t0, 1),
	))
	a := func(ns ...int) []int64 {
		out := []int64{}
		for _, n := range ns {
			out = append(out, ids[n-1])
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    alarm.Filter
		want []int64
	}{
		{"under", alarm.Filter{Under: "acme"}, a(1, 2)},
		{"under deep", alarm.Filter{Under: "east"}, a(2)},
		{"under prefix", alarm.Filter{Under: "acme2"}, a(3)},
		{"under root", alarm.Filter{Under: tenancy.RootTenantID}, a(1, 2, 3)},
		{"under ghost", alarm.Filter{Under: "ghost"}, a()},
		{"under page", alarm.Filter{Under: "acme", After: ids[0], Limit: 1}, a(2)},
		{"devices' sites", alarm.Filter{DeviceSiteIDs: []string{"s1", "s2"}}, a(1, 3)},
		{"no devices' sites", alarm.Filter{DeviceSiteIDs: []string{}}, a()},
		{"raised at, not now at", alarm.Filter{SiteIDs: []string{"s1"}}, a()},
		{"factory access", alarm.Filter{FactoryAccess: true}, a(3)},
		{"factory access under", alarm.Filter{FactoryAccess: true, Under: "acme"}, a()},
	} {
		got, err := s.ListAlarms(ctx(t), tc.f)
		if err != nil || !slices.Equal(alarmIDs(got), tc.want) {
			t.Errorf("%s: ListAlarms(%+v) = %v, %v; want %v", tc.name, tc.f, alarmIDs(got), err, tc.want)
		}
	}
}
