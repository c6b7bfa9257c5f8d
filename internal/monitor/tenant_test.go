package monitor_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/clock/clocktest"
	"github.com/warden-iot/warden/internal/monitor"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/enginetest"
	"github.com/warden-iot/warden/internal/tenancy"
)

// hookStore is a real store that lets a test act inside GetTenant (a
// deletion racing an event of the tenant's device) and fail the alarm
// writes concerning one device.
type hookStore struct {
	store.Store

	mu        sync.Mutex
	onTenant  map[string]func() // run once, before GetTenant of that tenant answers
	failFor   string            // ApplyAlarmChanges fails for a batch with a change of this device
	attempted []alarm.Change
}

func (h *hookStore) GetTenant(ctx context.Context, id string) (tenancy.Tenant, error) {
	t, err := h.Store.GetTenant(ctx, id)
	h.mu.Lock()
	f := h.onTenant[id]
	delete(h.onTenant, id)
	h.mu.Unlock()
	if f != nil {
		f()
	}
	return t, err
}

func (h *hookStore) ApplyAlarmChanges(ctx context.Context, changes []alarm.Change) ([]alarm.Record, error) {
	h.mu.Lock()
	h.attempted = append(h.attempted, changes...)
	fail := h.failFor
	h.mu.Unlock()
	for _, c := range changes {
		if fail != "" && c.DeviceID == fail {
			return nil, errors.New("disk full")
		}
	}
	return h.Store.ApplyAlarmChanges(ctx, changes)
}

func (h *hookStore) tried(tenantID string) []alarm.Change {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []alarm.Change
	for _, c := range h.attempted {
		if c.TenantID == tenantID {
			out = append(out, c)
		}
	}
	return out
}

// twoTenants is a monitor with one shard (so that every device's alarms
// are written in the same round) on a store with tenants acme and doomed,
// each with an offline rule of 10 minutes.
type twoTenants struct {
	st *hookStore
	m  *monitor.Monitor

	mu   sync.Mutex
	told []string // alarm changes the monitor handed on: device and kind
}

func newTwoTenants(t *testing.T, devices map[string]string) *twoTenants {
	t.Helper()
	sq := enginetest.SQLite(t)
	enginetest.WithKeyring(t, sq)
	for _, id := range []string{"acme", "doomed"} {
		if err := sq.CreateTenant(t.Context(), tenancy.Tenant{ID: id, ParentID: tenancy.RootTenantID, Name: id, CreatedAt: monday}); err != nil {
			t.Fatal(err)
		}
		spec := `{"severity": "warning", "scope": {"model": "pump"}, "offline": {"after": "10m"}}`
		r := alarm.StoredRule{ID: id + "-offline", TenantID: id, Name: "offline", Enabled: true, Spec: []byte(spec), CreatedAt: monday, UpdatedAt: monday}
		if _, err := monitor.RuleOf(r); err != nil {
			t.Fatal(err)
		}
		if err := sq.CreateAlarmRule(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	for dev, tenant := range devices {
		d := registry.Device{ID: dev, TenantID: tenant, Status: registry.DeviceEnabled, PrimaryKey: make([]byte, 32),
			SecondaryKey: make([]byte, 32), CreatedAt: monday, Info: registry.DeviceInfo{Model: "pump"}}
		if err := sq.CreateDevice(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	tt := &twoTenants{st: &hookStore{Store: sq, onTenant: map[string]func(){}}}
	onAlarm := func(_ context.Context, a alarm.Record, kind string) {
		tt.mu.Lock()
		tt.told = append(tt.told, a.DeviceID+" "+kind)
		tt.mu.Unlock()
	}
	tt.m = monitor.New(tt.st, monitor.Config{Shards: 1, TickEvery: never, SaveEvery: never}, onAlarm,
		slog.New(slog.NewTextHandler(io.Discard, nil)), clocktest.New(monday))
	if err := tt.m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tt.m.Close(context.Background()) })
	return tt
}

func (tt *twoTenants) stored(t *testing.T, device string) []alarm.Record {
	t.Helper()
	if err := tt.m.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	as, err := tt.st.ListAlarms(t.Context(), alarm.Filter{DeviceIDs: []string{device}})
	if err != nil {
		t.Fatal(err)
	}
	return as
}

// TestDeletedTenantNeverFires: a tenant is deleted while an event of its
// device is on its way to the monitor (the broker's disconnection of the
// device races the deletion). The deleted tenant's offline rule never
// fires, and the other tenant's alarm, due in the same round, is stored.
func TestDeletedTenantNeverFires(t *testing.T) {
	tt := newTwoTenants(t, map[string]string{"a1": "acme", "d1": "doomed", "d2": "doomed"})
	ctx := t.Context()
	t0 := monday.Add(8 * time.Hour)
	// d2 of the doomed tenant is offline before: its alarm is active.
	tt.m.Presence(ctx, "doomed", "d2", true, t0.Add(-time.Hour))
	tt.m.Presence(ctx, "doomed", "d2", false, t0.Add(-time.Hour))
	if err := tt.m.TickNow(ctx, t0); err != nil {
		t.Fatal(err)
	}
	if as := tt.stored(t, "d2"); len(as) != 1 || as[0].State != alarm.StateActive {
		t.Fatalf("premise: d2's alarms %+v, want its offline alarm", as)
	}
	tt.st.mu.Lock()
	tt.st.attempted = nil
	tt.st.mu.Unlock()
	tt.mu.Lock()
	tt.told = nil
	tt.mu.Unlock()

	tt.m.Presence(ctx, "acme", "a1", true, t0)
	tt.m.Presence(ctx, "acme", "a1", false, t0.Add(time.Minute))
	// The deletion lands between the monitor reading d1's tenant and
	// evaluating d1's disconnection: the store deletes the tenant, and the
	// tenant-deleted reaction runs (as on the API's goroutine) while the
	// partition is still at work on d1's record.
	deleted := make(chan error, 1)
	tt.st.mu.Lock() // the partitions read onTenant in GetTenant meanwhile
	tt.st.onTenant["doomed"] = func() {
		if err := tt.st.DeleteTenant(ctx, "doomed"); err != nil {
			deleted <- err
			return
		}
		go func() { deleted <- tt.m.TenantDeleted(ctx, "doomed", []string{"d1"}) }()
	}
	tt.st.mu.Unlock()
	tt.m.Presence(ctx, "doomed", "d1", false, t0.Add(time.Minute))
	if err := <-deleted; err != nil {
		t.Fatal(err)
	}
	// Both offline rules are due at t0+11m: one round.
	for _, at := range []time.Duration{12 * time.Minute, time.Hour, 24 * time.Hour} {
		if err := tt.m.TickNow(ctx, t0.Add(at)); err != nil {
			t.Logf("tick %s: %v", at, err)
		}
	}
	// Neither d1's raise nor the clearing of d2's alarm (gone with its
	// tenant) is written.
	if tried := tt.st.tried("doomed"); len(tried) > 0 {
		t.Errorf("alarm changes of the deleted tenant: %+v", tried)
	}
	as := tt.stored(t, "a1")
	if len(as) != 1 || as[0].RuleID != "acme-offline" || as[0].State != alarm.StateActive {
		t.Fatalf("acme's alarms: %+v, want its offline alarm", as)
	}
	tt.mu.Lock()
	defer tt.mu.Unlock()
	if !slices.Equal(tt.told, []string{"a1 raised"}) {
		t.Errorf("told %q, want a1 raised", tt.told)
	}
}

// TestFailedWriteKeepsOthers: when the alarm changes of one device cannot
// be written, the other devices' changes of the same round are stored and
// handed on.
func TestFailedWriteKeepsOthers(t *testing.T) {
	tt := newTwoTenants(t, map[string]string{"a1": "acme", "a2": "acme", "bad": "acme"})
	ctx := t.Context()
	t0 := monday.Add(8 * time.Hour)
	tt.st.failFor = "bad"
	for _, d := range []string{"a1", "bad", "a2"} {
		tt.m.Presence(ctx, "acme", d, true, t0)
		tt.m.Presence(ctx, "acme", d, false, t0.Add(time.Minute))
	}
	if err := tt.m.TickNow(ctx, t0.Add(12*time.Minute)); err == nil {
		t.Error("TickNow hid the failed write")
	}
	for _, d := range []string{"a1", "a2"} {
		if as := tt.stored(t, d); len(as) != 1 || as[0].RuleID != "acme-offline" {
			t.Errorf("%s: alarms %+v, want its offline alarm", d, as)
		}
	}
	if as := tt.stored(t, "bad"); len(as) != 0 {
		t.Errorf("bad: alarms %+v, want none (its write fails)", as)
	}
	tt.mu.Lock()
	defer tt.mu.Unlock()
	slices.Sort(tt.told)
	if !slices.Equal(tt.told, []string{"a1 raised", "a2 raised"}) {
		t.Errorf("told %q, want a1 and a2 raised", tt.told)
	}
}
