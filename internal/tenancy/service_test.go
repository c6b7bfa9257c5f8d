package tenancy_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/clock/clocktest"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/event"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/enginetest"
	"github.com/warden-iot/warden/internal/tenancy"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// devices are the engine's devices of a tenant, as the API gives them.
type devices struct{ st store.Store }

func (d devices) TenantDeviceIDs(ctx context.Context, tenantID string) ([]string, error) {
	ds, err := d.st.ListDevices(ctx, tenantID)
	ids := []string{}
	for _, dv := range ds {
		ids = append(ids, dv.ID)
	}
	return ids, err
}

type env struct {
	st     store.Store
	svc    *tenancy.Service
	bus    *event.Local
	clock  *clocktest.Fake
	events []event.Event
}

// newEnv is the service on a fresh SQLite engine, recording every fact it
// publishes.
func newEnv(t *testing.T) *env {
	t.Helper()
	st := enginetest.SQLite(t)
	enginetest.WithKeyring(t, st)
	log := slog.New(slog.DiscardHandler)
	e := &env{st: st, bus: event.NewLocal(log), clock: clocktest.New(t0)}
	record := func(_ context.Context, ev event.Event) error { e.events = append(e.events, ev); return nil }
	event.On(e.bus, "test.tenant-deleted", func(ctx context.Context, ev event.TenantDeleted) error { return record(ctx, ev) })
	event.On(e.bus, "test.factory-closed", func(ctx context.Context, ev event.FactoryAccessClosed) error { return record(ctx, ev) })
	e.svc = tenancy.NewService(tenancy.ServiceDeps{Store: st, Devices: devices{st}, Events: e.bus, Clock: e.clock, Log: log,
		NewID: identity.NewID, NormalizeEmail: identity.NormalizeEmail})
	return e
}

func ptr[T any](v T) *T { return &v }

func TestCreateTenant(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	tn, err := e.svc.CreateTenant(ctx, tenancy.NewTenant{ParentID: tenancy.RootTenantID, TenantPatch: tenancy.TenantPatch{
		Name: ptr("  Acme  "), Contact: &tenancy.Contact{Email: "Ops@Example.COM"}, RetentionDays: ptr(30)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(tn.ID) < 5 || tn.ID[:4] != "cus_" || tn.Name != "Acme" || tn.Path != "root/"+tn.ID || tn.RetentionDays != 30 ||
		tn.Contact.Email != "ops@example.com" || !tn.CreatedAt.Equal(t0) {
		t.Errorf("created %+v", tn)
	}
	for _, c := range []struct {
		name string
		n    tenancy.NewTenant
	}{
		{"bad id", tenancy.NewTenant{ID: "a:b", ParentID: "root", TenantPatch: tenancy.TenantPatch{Name: ptr("x")}}},
		{"no name", tenancy.NewTenant{ID: "nameless", ParentID: "root"}},
		{"contract ends first", tenancy.NewTenant{ID: "c", ParentID: "root", TenantPatch: tenancy.TenantPatch{Name: ptr("x"),
			Contract: &tenancy.Contract{Start: t0, End: t0.Add(-time.Hour)}}}},
		{"retention", tenancy.NewTenant{ID: "r", ParentID: "root", TenantPatch: tenancy.TenantPatch{Name: ptr("x"), RetentionDays: ptr(-1)}}},
		{"address", tenancy.NewTenant{ID: "a", ParentID: "root", TenantPatch: tenancy.TenantPatch{Name: ptr("x"),
			Address: &tenancy.Address{City: string(bytes.Repeat([]byte("x"), 201))}}}},
		{"e-mail", tenancy.NewTenant{ID: "m", ParentID: "root", TenantPatch: tenancy.TenantPatch{Name: ptr("x"),
			Contact: &tenancy.Contact{Email: "not an address"}}}},
	} {
		if _, err := e.svc.CreateTenant(ctx, c.n); !errors.Is(err, tenancy.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", c.name, err)
		}
	}
	if _, err := e.svc.CreateTenant(ctx, tenancy.NewTenant{ID: "x", ParentID: "nobody", TenantPatch: tenancy.TenantPatch{Name: ptr("x")}}); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("unknown parent: %v", err)
	}
	if _, err := e.svc.CreateTenant(ctx, tenancy.NewTenant{ID: tn.ID, ParentID: "root", TenantPatch: tenancy.TenantPatch{Name: ptr("x")}}); !errors.Is(err, database.ErrConflict) {
		t.Errorf("taken id: %v", err)
	}
	if len(e.events) != 0 {
		t.Errorf("events %v", e.events)
	}
}

func TestUpdateTenant(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	tn, err := e.svc.CreateTenant(ctx, tenancy.NewTenant{ID: "acme", ParentID: "root", TenantPatch: tenancy.TenantPatch{Name: ptr("Acme")}})
	if err != nil {
		t.Fatal(err)
	}
	up, err := e.svc.UpdateTenant(ctx, tn, tenancy.TenantPatch{Contract: &tenancy.Contract{Number: "K-1"}, RetentionDays: ptr(7)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.st.GetTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if up.Name != "Acme" || up.RetentionDays != 7 || got.RetentionDays != 7 || got.Contract.Number != "K-1" {
		t.Errorf("updated %+v, stored %+v", up, got)
	}
	if _, err := e.svc.UpdateTenant(ctx, tn, tenancy.TenantPatch{Name: ptr(" ")}); !errors.Is(err, tenancy.ErrInvalid) || err.Error() != "name: 1 to 200 characters" {
		t.Errorf("empty name: %v", err)
	}
}

func TestDeleteTenant(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	for _, n := range []tenancy.NewTenant{{ID: "acme", ParentID: "root"}, {ID: "north", ParentID: "acme"}} {
		n.Name = ptr(n.ID)
		if _, err := e.svc.CreateTenant(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"d1", "d2"} {
		if err := e.st.CreateDevice(ctx, registry.Device{ID: id, TenantID: "north", Status: registry.DeviceEnabled,
			PrimaryKey: bytes.Repeat([]byte{1}, 32), SecondaryKey: bytes.Repeat([]byte{2}, 32), CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.svc.DeleteTenant(ctx, "acme"); !errors.Is(err, database.ErrConflict) {
		t.Fatalf("deleting a tenant with sub-tenants: %v", err)
	}
	if len(e.events) != 0 {
		t.Fatalf("events after a refused deletion: %v", e.events)
	}
	e.clock.Advance(time.Minute)
	if err := e.svc.DeleteTenant(ctx, "north"); err != nil {
		t.Fatal(err)
	}
	if len(e.events) != 1 {
		t.Fatalf("events %v", e.events)
	}
	ev, ok := e.events[0].(event.TenantDeleted)
	if !ok || ev.TenantID != "north" || !ev.At.Equal(t0.Add(time.Minute)) || !slices.Equal(slices.Sorted(slices.Values(ev.DeviceIDs)), []string{"d1", "d2"}) {
		t.Errorf("event %+v", e.events[0])
	}
	if _, err := e.st.GetTenant(ctx, "north"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("deleted tenant: %v", err)
	}
	// Its id is never used again.
	if _, err := e.svc.CreateTenant(ctx, tenancy.NewTenant{ID: "north", ParentID: "acme", TenantPatch: tenancy.TenantPatch{Name: ptr("again")}}); !errors.Is(err, database.ErrConflict) {
		t.Errorf("re-using a deleted tenant's id: %v", err)
	}

	// A reaction that fails leaves the tenant deleted and says so.
	event.On(e.bus, "test.fail", func(context.Context, event.TenantDeleted) error { return errors.New("shredding failed") })
	err := e.svc.DeleteTenant(ctx, "acme")
	if !errors.Is(err, tenancy.ErrUnfinished) {
		t.Errorf("failed reaction: %v", err)
	}
	if _, err := e.st.GetTenant(ctx, "acme"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("tenant after a failed reaction: %v", err)
	}
}

func TestSites(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	if _, err := e.svc.CreateSite(ctx, "root", tenancy.SitePatch{}); !errors.Is(err, tenancy.ErrInvalid) {
		t.Errorf("site without a name: %v", err)
	}
	if _, err := e.svc.CreateSite(ctx, "nobody", tenancy.SitePatch{Name: ptr("x")}); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("site of no tenant: %v", err)
	}
	s, err := e.svc.CreateSite(ctx, "root", tenancy.SitePatch{Name: ptr(" Plant "), Address: &tenancy.Address{City: "Ulm"}})
	if err != nil {
		t.Fatal(err)
	}
	if s.ID[:5] != "site_" || s.Name != "Plant" || s.Address.City != "Ulm" || s.FactoryAccess {
		t.Errorf("created %+v", s)
	}
	if s, err = e.svc.UpdateSite(ctx, s, tenancy.SitePatch{Name: ptr("Works")}); err != nil || s.Name != "Works" || s.Address.City != "Ulm" {
		t.Errorf("updated %+v, %v", s, err)
	}

	// Switching on publishes nothing; switching off closes access.
	e.clock.Advance(time.Second)
	if s, err = e.svc.SetFactoryAccess(ctx, s, true); err != nil || !s.FactoryAccess || !s.FactoryAccessChangedAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("switched on: %+v, %v", s, err)
	}
	if len(e.events) != 0 {
		t.Fatalf("events after switching on: %v", e.events)
	}
	e.clock.Advance(time.Second)
	if s, err = e.svc.SetFactoryAccess(ctx, s, false); err != nil || s.FactoryAccess {
		t.Fatalf("switched off: %+v, %v", s, err)
	}
	want := event.FactoryAccessClosed{TenantID: "root", SiteID: s.ID, At: t0.Add(2 * time.Second)}
	if len(e.events) != 1 || e.events[0] != event.Event(want) {
		t.Fatalf("events %v, want %v", e.events, want)
	}
	if s, err = e.svc.SetFactoryAccess(ctx, s, false); err != nil || len(e.events) != 1 {
		t.Errorf("switched off again: %v, events %v", err, e.events)
	}

	// Deleting a site whose switch is off publishes nothing; one whose
	// switch is on closes access.
	if err := e.svc.DeleteSite(ctx, s); err != nil || len(e.events) != 1 {
		t.Errorf("deleted: %v, events %v", err, e.events)
	}
	on, err := e.svc.CreateSite(ctx, "root", tenancy.SitePatch{Name: ptr("Open")})
	if err != nil {
		t.Fatal(err)
	}
	if on, err = e.svc.SetFactoryAccess(ctx, on, true); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteSite(ctx, on); err != nil {
		t.Fatal(err)
	}
	want = event.FactoryAccessClosed{TenantID: "root", SiteID: on.ID, At: t0.Add(2 * time.Second)}
	if len(e.events) != 2 || e.events[1] != event.Event(want) {
		t.Errorf("events %v, want %v last", e.events, want)
	}
	if _, err := e.st.GetSite(ctx, on.ID); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("deleted site: %v", err)
	}
}
