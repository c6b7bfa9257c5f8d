package alarmsvc_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/alarm/alarmsvc"
	"github.com/warden-iot/warden/internal/clock/clocktest"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/event"
	"github.com/warden-iot/warden/internal/maintenance"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/enginetest"
	"github.com/warden-iot/warden/internal/tenancy"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// env is the service on a fresh SQLite engine, with the facts it
// published.
type env struct {
	st     store.Store
	svc    *alarmsvc.Service
	clk    *clocktest.Fake
	events []event.Event
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st := enginetest.SQLite(t)
	enginetest.WithKeyring(t, st)
	if err := st.CreateTenant(t.Context(), tenancy.Tenant{ID: "acme", ParentID: tenancy.RootTenantID, Name: "acme", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bus := event.NewLocal(log)
	e := &env{st: st, clk: clocktest.New(t0)}
	record := func(_ context.Context, ev event.Event) error { e.events = append(e.events, ev); return nil }
	event.On(bus, "test.rules", func(ctx context.Context, ev event.RulesChanged) error { return record(ctx, ev) })
	event.On(bus, "test.plans", func(ctx context.Context, ev event.MaintenancePlansChanged) error { return record(ctx, ev) })
	event.On(bus, "test.ack", func(ctx context.Context, ev event.AlarmAcknowledged) error { return record(ctx, ev) })
	event.On(bus, "test.clear", func(ctx context.Context, ev event.AlarmClearedByHand) error { return record(ctx, ev) })
	e.svc = alarmsvc.New(st, bus, e.clk, log)
	return e
}

// published returns the facts published since the last call.
func (e *env) published() []event.Event {
	evs := e.events
	e.events = nil
	return evs
}

func wantEvents(t *testing.T, what string, got []event.Event, want ...event.Event) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if len(got) != len(want) || string(g) != string(w) {
		t.Errorf("%s published %s, want %s", what, g, w)
	}
	for i := range min(len(got), len(want)) {
		if got[i].Type() != want[i].Type() {
			t.Errorf("%s published a %s, want a %s", what, got[i].Type(), want[i].Type())
		}
	}
}

func threshold() alarm.Rule {
	v := 80.0
	return alarm.Rule{Name: "  too hot ", Severity: alarm.Warning, Scope: alarm.Scope{Model: "pump"}, Enabled: true,
		Threshold: &alarm.Threshold{Metric: "temp", Op: "above", Value: &v}}
}

func TestRules(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()

	// Invalid rules, by Validate or by the caller's scope check, are not
	// stored and change nothing.
	bad := threshold()
	bad.Severity = "dire"
	_, err := e.svc.CreateRule(ctx, "acme", "usr-1", bad, nil)
	var ie *alarmsvc.InvalidError
	var fe *alarm.FieldError
	if !errors.As(err, &ie) || !errors.As(err, &fe) {
		t.Fatalf("CreateRule(bad severity) = %v, want an InvalidError of FieldErrors", err)
	}
	scopeRefused := func(context.Context, alarm.Rule) error {
		return &alarm.FieldError{Field: "scope.deviceId", Problem: "no device"}
	}
	if _, err := e.svc.CreateRule(ctx, "acme", "usr-1", threshold(), scopeRefused); !errors.As(err, &ie) || !errors.As(err, &fe) || fe.Field != "scope.deviceId" {
		t.Fatalf("CreateRule(scope refused) = %v, want an InvalidError for scope.deviceId", err)
	}
	boom := errors.New("boom")
	if _, err := e.svc.CreateRule(ctx, "acme", "usr-1", threshold(), func(context.Context, alarm.Rule) error { return boom }); !errors.Is(err, boom) || errors.As(err, &ie) {
		t.Fatalf("CreateRule(check failed) = %v, want boom as is", err)
	}
	if rows, err := e.st.ListAlarmRules(ctx, []string{"acme"}); err != nil || len(rows) != 0 {
		t.Fatalf("rules after refused creations = %v, %v", rows, err)
	}
	wantEvents(t, "refused creations", e.published())

	// A valid rule gets an id, a trimmed name and the row's times.
	var checked alarm.Rule
	row, err := e.svc.CreateRule(ctx, "acme", "usr-1", threshold(), func(_ context.Context, r alarm.Rule) error { checked = r; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if row.ID == "" || row.TenantID != "acme" || row.Name != "too hot" || !row.Enabled || row.CreatedBy != "usr-1" ||
		!row.CreatedAt.Equal(t0) || !row.UpdatedAt.Equal(t0) {
		t.Errorf("created rule = %+v", row)
	}
	if checked.ID != row.ID || checked.TenantID != "acme" || checked.Name != "too hot" {
		t.Errorf("the scope check saw %+v", checked)
	}
	got, err := e.st.GetAlarmRule(ctx, row.ID)
	if err != nil || got.Name != "too hot" || got.CreatedBy != "usr-1" {
		t.Fatalf("GetAlarmRule = %+v, %v", got, err)
	}
	var spec alarm.Rule
	if err := json.Unmarshal(got.Spec, &spec); err != nil || spec.ID != row.ID || spec.TenantID != "acme" || spec.Threshold == nil {
		t.Errorf("stored spec = %s (%v)", got.Spec, err)
	}
	wantEvents(t, "CreateRule", e.published(), event.RulesChanged{TenantID: "acme", RuleID: row.ID, At: t0})

	// An update keeps id, tenant and creation; an invalid one changes nothing.
	e.clk.Advance(time.Minute)
	upd := threshold()
	upd.ID, upd.TenantID, upd.Name, upd.Enabled = "other", "elsewhere", "hotter", false
	row2, err := e.svc.UpdateRule(ctx, row, upd, nil)
	if err != nil {
		t.Fatal(err)
	}
	if row2.ID != row.ID || row2.TenantID != "acme" || row2.Name != "hotter" || row2.Enabled || !row2.CreatedAt.Equal(t0) ||
		!row2.UpdatedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("updated rule = %+v", row2)
	}
	if got, err := e.st.GetAlarmRule(ctx, row.ID); err != nil || got.Name != "hotter" || got.Enabled {
		t.Errorf("GetAlarmRule after update = %+v, %v", got, err)
	}
	wantEvents(t, "UpdateRule", e.published(), event.RulesChanged{TenantID: "acme", RuleID: row.ID, At: t0.Add(time.Minute)})
	if _, err := e.svc.UpdateRule(ctx, row2, bad, nil); !errors.As(err, &ie) {
		t.Errorf("UpdateRule(bad) = %v, want an InvalidError", err)
	}
	wantEvents(t, "a refused update", e.published())

	if err := e.svc.DeleteRule(ctx, row2); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.GetAlarmRule(ctx, row.ID); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("GetAlarmRule after delete: %v", err)
	}
	wantEvents(t, "DeleteRule", e.published(), event.RulesChanged{TenantID: "acme", RuleID: row.ID, At: t0.Add(time.Minute)})
	if err := e.svc.DeleteRule(ctx, row2); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("DeleteRule twice: %v, want ErrNotFound", err)
	}
	wantEvents(t, "a second delete", e.published())
}

func TestPlans(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	var ie *alarmsvc.InvalidError
	var pe *maintenance.PlanError
	for _, model := range []string{"", string(make([]byte, maintenance.MaxPlanModelLen+1))} {
		if _, err := e.svc.SetPlan(ctx, "acme", model, []byte(`{}`)); !errors.As(err, &ie) || !errors.As(err, &pe) || pe.Field != "model" {
			t.Errorf("SetPlan(model %d bytes) = %v, want an invalid model", len(model), err)
		}
	}
	if _, err := e.svc.SetPlan(ctx, "acme", "pump", []byte(`{"model": "fan", "run": {"metric": "running", "kind": "onoff"}, "service": {"everyRunHours": 500}}`)); !errors.As(err, &pe) || pe.Field != "model" {
		t.Errorf("SetPlan(another model in the body) = %v", err)
	}
	if _, err := e.svc.SetPlan(ctx, "acme", "pump", []byte(`{"run": {"metric": "running", "kind": "sideways"}}`)); !errors.As(err, &ie) {
		t.Errorf("SetPlan(bad kind) = %v, want an InvalidError", err)
	}
	wantEvents(t, "refused plans", e.published())

	// The body may leave the model out.
	row, err := e.svc.SetPlan(ctx, "acme", "pump", []byte(`{"run": {"metric": "running", "kind": "onoff"}, "service": {"everyRunHours": 500}}`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := maintenance.ParsePlan(row.Spec)
	if err != nil || p.Model != "pump" || row.TenantID != "acme" || row.Model != "pump" {
		t.Errorf("SetPlan = %+v (%+v, %v)", row, p, err)
	}
	if rows, err := e.st.ListMaintenancePlans(ctx, []string{"acme"}); err != nil || len(rows) != 1 || rows[0].Model != "pump" {
		t.Errorf("ListMaintenancePlans = %+v, %v", rows, err)
	}
	wantEvents(t, "SetPlan", e.published(), event.MaintenancePlansChanged{TenantID: "acme", Model: "pump", At: t0})

	if err := e.svc.DeletePlan(ctx, "acme", "pump"); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "DeletePlan", e.published(), event.MaintenancePlansChanged{TenantID: "acme", Model: "pump", At: t0})
	if err := e.svc.DeletePlan(ctx, "acme", "pump"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("DeletePlan twice: %v, want ErrNotFound", err)
	}
	wantEvents(t, "a second DeletePlan", e.published())
}

func raise(t *testing.T, e *env, rule string) alarm.Record {
	t.Helper()
	got, err := e.st.ApplyAlarmChanges(t.Context(), []alarm.Change{{Kind: "raised", TenantID: "acme", RuleID: rule,
		DeviceID: "d1", Alarm: alarm.KindRule, Severity: "warning", Message: "too hot", Value: 81, At: t0}})
	if err != nil || len(got) != 1 {
		t.Fatalf("raise: %v, %v", got, err)
	}
	return got[0]
}

func TestAcknowledge(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	al := raise(t, e, "r1")
	e.clk.Advance(time.Minute)
	acked, err := e.svc.Acknowledge(ctx, al, "Alice (usr-1)", "on my way")
	if err != nil {
		t.Fatal(err)
	}
	at := t0.Add(time.Minute)
	if acked.ID != al.ID || acked.AckedBy != "Alice (usr-1)" || acked.AckComment != "on my way" || !acked.AckedAt.Equal(at) {
		t.Errorf("Acknowledge = %+v", acked)
	}
	wantEvents(t, "Acknowledge", e.published(), event.AlarmAcknowledged{TenantID: "acme", DeviceID: "d1", AlarmID: al.ID, By: "Alice (usr-1)", At: at})

	// Twice: refused, whether the caller saw the acknowledgement or not.
	var ce *alarmsvc.ConflictError
	if _, err := e.svc.Acknowledge(ctx, acked, "Bob", ""); !errors.As(err, &ce) || ce.Msg != "alarm 1: already acknowledged by Alice (usr-1)" {
		t.Errorf("Acknowledge(acknowledged) = %v", err)
	}
	if _, err := e.svc.Acknowledge(ctx, al, "Bob", ""); !errors.As(err, &ce) || ce.Msg != "alarm 1: already acknowledged" {
		t.Errorf("Acknowledge(acknowledged meanwhile) = %v", err)
	}
	wantEvents(t, "refused acknowledgements", e.published())
}

func TestClearByHand(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	al := raise(t, e, "r1")
	e.clk.Advance(time.Minute)
	at := t0.Add(time.Minute)
	cleared, err := e.svc.ClearByHand(ctx, al, "Alice (usr-1)", "fixed")
	if err != nil {
		t.Fatal(err)
	}
	// Not acknowledged before: clearing acknowledges it too.
	if cleared.ID != al.ID || cleared.State != alarm.StateCleared || cleared.ClearedBy != "Alice (usr-1)" || !cleared.ClearedAt.Equal(at) ||
		cleared.AckedBy != "Alice (usr-1)" || cleared.AckComment != "fixed" || !cleared.AckedAt.Equal(at) {
		t.Errorf("ClearByHand = %+v", cleared)
	}
	wantEvents(t, "ClearByHand", e.published(), event.AlarmClearedByHand{TenantID: "acme", DeviceID: "d1", AlarmID: al.ID,
		Kind: alarm.KindRule, RuleID: "r1", By: "Alice (usr-1)", At: at})

	var ce *alarmsvc.ConflictError
	if _, err := e.svc.ClearByHand(ctx, cleared, "Bob", ""); !errors.As(err, &ce) || ce.Msg != "alarm 1 is not active (cleared)" {
		t.Errorf("ClearByHand(cleared) = %v", err)
	}
	if _, err := e.svc.ClearByHand(ctx, al, "Bob", ""); !errors.As(err, &ce) || ce.Msg != "alarm 1 is not active any more" {
		t.Errorf("ClearByHand(cleared meanwhile) = %v", err)
	}
	wantEvents(t, "refused clearings", e.published())

	// An acknowledged alarm keeps its acknowledgement.
	al2 := raise(t, e, "r2")
	if _, err := e.svc.Acknowledge(ctx, al2, "Carol", "looking"); err != nil {
		t.Fatal(err)
	}
	e.published()
	got, err := e.st.GetAlarm(ctx, al2.ID)
	if err != nil {
		t.Fatal(err)
	}
	cleared2, err := e.svc.ClearByHand(ctx, got, "Dave", "done")
	if err != nil || cleared2.AckedBy != "Carol" || cleared2.AckComment != "looking" || cleared2.ClearedBy != "Dave" {
		t.Errorf("ClearByHand(acknowledged) = %+v, %v", cleared2, err)
	}
	wantEvents(t, "ClearByHand(acknowledged)", e.published(), event.AlarmClearedByHand{TenantID: "acme", DeviceID: "d1", AlarmID: al2.ID,
		Kind: alarm.KindRule, RuleID: "r2", By: "Dave", At: at})
}
