package registry_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/clock/clocktest"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/event"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/enginetest"
	"github.com/warden-iot/warden/internal/tenancy"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

// fixture is a service on a fresh SQLite engine, with the facts it
// published.
type fixture struct {
	e     store.Store
	svc   *registry.Service
	clk   *clocktest.Fake
	facts []event.Event
}

// newFixture opens a migrated SQLite engine with tenant "acme" (site
// "lyon", factory access off) and tenant "beta" (site "bern").
func newFixture(t *testing.T) *fixture {
	t.Helper()
	e := enginetest.SQLite(t)
	f := &fixture{e: e, clk: clocktest.New(t0)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bus := event.NewLocal(log)
	record := func(_ context.Context, ev event.Event) error {
		f.facts = append(f.facts, ev)
		return nil
	}
	for _, typ := range []string{event.DeviceCreated{}.Type(), event.DeviceChanged{}.Type(), event.DeviceDeleted{}.Type(),
		event.DeviceRekeyed{}.Type(), event.FactoryAccessClosed{}.Type()} {
		bus.Subscribe(event.Subscription{Name: "test " + typ, Type: typ, Handle: record})
	}
	f.svc = registry.NewService(e, e, bus, f.clk, log)
	for _, tn := range []struct{ tenant, site string }{{"acme", "lyon"}, {"beta", "bern"}} {
		if err := e.CreateTenant(t.Context(), tenancy.Tenant{ID: tn.tenant, ParentID: tenancy.RootTenantID,
			Name: tn.tenant, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		if err := e.CreateSite(t.Context(), tenancy.Site{ID: tn.site, TenantID: tn.tenant, Name: tn.site, CreatedAt: t0,
			Address: tenancy.Address{Street: "1 Main St", PostalCode: "69001", City: "Lyon", Country: "FR"}}); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// published returns the facts published since the last call.
func (f *fixture) published() []event.Event {
	out := f.facts
	f.facts = nil
	return out
}

func (f *fixture) create(t *testing.T, id string, info registry.DeviceInfo) registry.Device {
	t.Helper()
	d, err := f.svc.Create(t.Context(), registry.NewDevice{ID: id, TenantID: "acme", Info: info})
	if err != nil {
		t.Fatalf("Create(%q): %v", id, err)
	}
	f.published()
	return d
}

func wantFacts(t *testing.T, got []event.Event, want ...event.Event) {
	t.Helper()
	if len(want) == 0 {
		want = nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("published %+v, want %+v", got, want)
	}
}

func TestValidDeviceID(t *testing.T) {
	for _, id := range []string{"a", "pump-1", "Pump_1.2:x@y", strings.Repeat("x", registry.MaxDeviceIDLen)} {
		if err := registry.ValidDeviceID(id); err != nil {
			t.Errorf("ValidDeviceID(%q): %v", id, err)
		}
	}
	for _, id := range []string{"", "a/b", "a+b", "a#b", "a b", "é", strings.Repeat("x", registry.MaxDeviceIDLen+1)} {
		if err := registry.ValidDeviceID(id); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("ValidDeviceID(%q) = %v, want ErrInvalid", id, err)
		}
	}
}

func TestCreate(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	info := registry.DeviceInfo{SiteID: "lyon", Name: "Pump 1", Model: "p100"}
	d, err := f.svc.Create(ctx, registry.NewDevice{ID: "pump-1", TenantID: "acme", Info: info})
	if err != nil {
		t.Fatal(err)
	}
	created := t0.Truncate(time.Millisecond)
	if d.ID != "pump-1" || d.TenantID != "acme" || d.Status != registry.DeviceEnabled || d.Info != info ||
		!d.CreatedAt.Equal(created) || len(d.PrimaryKey) != 32 || len(d.SecondaryKey) != 32 ||
		bytes.Equal(d.PrimaryKey, d.SecondaryKey) {
		t.Fatalf("Create = %+v", d)
	}
	got, err := f.e.GetDevice(ctx, "pump-1")
	if err != nil || !bytes.Equal(got.PrimaryKey, d.PrimaryKey) || !bytes.Equal(got.SecondaryKey, d.SecondaryKey) ||
		got.Info != info || got.Status != registry.DeviceEnabled {
		t.Fatalf("stored %+v, %v; want %+v", got, err, d)
	}
	wantFacts(t, f.published(), event.DeviceCreated{TenantID: "acme", DeviceID: "pump-1", At: created})

	// Refused: nothing stored, nothing published.
	for name, n := range map[string]registry.NewDevice{
		"bad id":       {ID: "a/b", TenantID: "acme"},
		"empty id":     {ID: "", TenantID: "acme"},
		"long name":    {ID: "x", TenantID: "acme", Info: registry.DeviceInfo{Name: strings.Repeat("n", registry.MaxInfoLen+1)}},
		"no such site": {ID: "x", TenantID: "acme", Info: registry.DeviceInfo{SiteID: "paris"}},
		"other's site": {ID: "x", TenantID: "acme", Info: registry.DeviceInfo{SiteID: "bern"}},
	} {
		if _, err := f.svc.Create(ctx, n); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("%s: Create = %v, want ErrInvalid", name, err)
		}
	}
	if _, err := f.e.GetDevice(ctx, "x"); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("a refused device was stored: %v", err)
	}
	if _, err := f.svc.Create(ctx, registry.NewDevice{ID: "pump-1", TenantID: "beta"}); !errors.Is(err, database.ErrConflict) {
		t.Fatalf("Create of a taken id = %v, want ErrConflict", err)
	}
	wantFacts(t, f.published())
}

func TestUpdate(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	d := f.create(t, "pump-1", registry.DeviceInfo{SiteID: "lyon", Model: "p100"})

	// Metadata: stored, published with the site before.
	f.clk.Advance(time.Minute)
	info := registry.DeviceInfo{Name: "Pump 1", Model: "p200"}
	d, err := f.svc.Update(ctx, d, registry.Change{Info: &info})
	if err != nil || d.Info != info {
		t.Fatalf("Update(info) = %+v, %v", d, err)
	}
	at := t0.Add(time.Minute)
	wantFacts(t, f.published(),
		event.DeviceChanged{TenantID: "acme", DeviceID: "pump-1", PreviousSiteID: "lyon", Model: "p200", Status: "enabled", At: at},
		event.FactoryAccessClosed{TenantID: "acme", DeviceID: "pump-1", At: at})

	// Into a site: no access closed.
	info.SiteID = "lyon"
	if d, err = f.svc.Update(ctx, d, registry.Change{Info: &info}); err != nil {
		t.Fatal(err)
	}
	wantFacts(t, f.published(),
		event.DeviceChanged{TenantID: "acme", DeviceID: "pump-1", SiteID: "lyon", Model: "p200", Status: "enabled", At: at})

	// Status.
	f.clk.Advance(time.Minute)
	disabled := registry.DeviceDisabled
	if d, err = f.svc.Update(ctx, d, registry.Change{Status: &disabled}); err != nil || d.Status != disabled {
		t.Fatalf("Update(status) = %+v, %v", d, err)
	}
	wantFacts(t, f.published(), event.DeviceChanged{TenantID: "acme", DeviceID: "pump-1", SiteID: "lyon",
		PreviousSiteID: "lyon", Model: "p200", Status: "disabled", At: t0.Add(2 * time.Minute)})
	got, err := f.e.GetDevice(ctx, "pump-1")
	if err != nil || got.Status != disabled || got.Info != info {
		t.Fatalf("stored %+v, %v", got, err)
	}

	// Refused: nothing changed, nothing published.
	bad := registry.DeviceStatus("asleep")
	other := registry.DeviceInfo{Name: "changed", SiteID: "bern"}
	long := registry.DeviceInfo{FirmwareVersion: strings.Repeat("1", registry.MaxInfoLen+1)}
	for name, ch := range map[string]registry.Change{
		"bad status":           {Status: &bad},
		"bad status with info": {Status: &bad, Info: &registry.DeviceInfo{Name: "changed"}},
		"other's site":         {Info: &other},
		"long firmware":        {Info: &long},
	} {
		if _, err := f.svc.Update(ctx, d, ch); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("%s: Update = %v, want ErrInvalid", name, err)
		}
	}
	if got, err := f.e.GetDevice(ctx, "pump-1"); err != nil || got.Status != disabled || got.Info != info {
		t.Fatalf("after refusals: %+v, %v", got, err)
	}
	wantFacts(t, f.published())

	// Gone.
	if err := f.e.DeleteDevice(ctx, "acme", "pump-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Update(ctx, d, registry.Change{Status: &disabled}); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("Update of a deleted device = %v, want ErrNotFound", err)
	}
	wantFacts(t, f.published())
}

func TestDelete(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	d := f.create(t, "pump-1", registry.DeviceInfo{})
	f.clk.Advance(time.Hour)
	if err := f.svc.Delete(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := f.e.GetDevice(ctx, "pump-1"); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("GetDevice after Delete: %v", err)
	}
	wantFacts(t, f.published(), event.DeviceDeleted{TenantID: "acme", DeviceID: "pump-1", At: t0.Add(time.Hour)})
	if err := f.svc.Delete(ctx, d); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("second Delete = %v, want ErrNotFound", err)
	}
	wantFacts(t, f.published())
}

// notPurged is a store whose deletions are done but not purged.
type notPurged struct{ registry.Store }

func (s notPurged) DeleteDevice(ctx context.Context, tenantID, id string) error {
	if err := s.Store.DeleteDevice(ctx, tenantID, id); err != nil {
		return err
	}
	return database.ErrNotPurged
}

// TestDeleteNotPurged: a deletion that is done but not purged is published
// all the same, and reported.
func TestDeleteNotPurged(t *testing.T) {
	f := newFixture(t)
	d := f.create(t, "pump-1", registry.DeviceInfo{})
	bus := event.NewLocal(slog.New(slog.NewTextHandler(io.Discard, nil)))
	var got []event.Event
	event.On(bus, "test", func(_ context.Context, ev event.DeviceDeleted) error {
		got = append(got, ev)
		return nil
	})
	svc := registry.NewService(notPurged{f.e}, f.e, bus, f.clk, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := svc.Delete(t.Context(), d); !errors.Is(err, database.ErrNotPurged) {
		t.Fatalf("Delete = %v, want ErrNotPurged", err)
	}
	wantFacts(t, got, event.DeviceDeleted{TenantID: "acme", DeviceID: "pump-1", At: t0})
}

func TestRegenerateKeys(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	d := f.create(t, "pump-1", registry.DeviceInfo{})
	for _, tc := range []struct {
		which                 string
		primary, secondaryNew bool
	}{{registry.KeyPrimary, true, false}, {registry.KeySecondary, false, true}, {registry.KeyBoth, true, true}} {
		f.clk.Advance(time.Second)
		nd, err := f.svc.RegenerateKeys(ctx, d, tc.which)
		if err != nil {
			t.Fatalf("RegenerateKeys(%s): %v", tc.which, err)
		}
		if !bytes.Equal(nd.PrimaryKey, d.PrimaryKey) != tc.primary || !bytes.Equal(nd.SecondaryKey, d.SecondaryKey) != tc.secondaryNew ||
			len(nd.PrimaryKey) != 32 || len(nd.SecondaryKey) != 32 {
			t.Fatalf("RegenerateKeys(%s): keys %x %x, were %x %x", tc.which, nd.PrimaryKey, nd.SecondaryKey, d.PrimaryKey, d.SecondaryKey)
		}
		got, err := f.e.GetDevice(ctx, "pump-1")
		if err != nil || !bytes.Equal(got.PrimaryKey, nd.PrimaryKey) || !bytes.Equal(got.SecondaryKey, nd.SecondaryKey) {
			t.Fatalf("RegenerateKeys(%s): stored %+v, %v", tc.which, got, err)
		}
		wantFacts(t, f.published(), event.DeviceRekeyed{TenantID: "acme", DeviceID: "pump-1", Keys: tc.which, At: f.clk.Now()})
		d = nd
	}
	if _, err := f.svc.RegenerateKeys(ctx, d, "tertiary"); !errors.Is(err, registry.ErrInvalid) {
		t.Fatalf("RegenerateKeys(tertiary) = %v, want ErrInvalid", err)
	}
	if got, err := f.e.GetDevice(ctx, "pump-1"); err != nil || !bytes.Equal(got.PrimaryKey, d.PrimaryKey) {
		t.Fatalf("a refused regeneration changed the keys: %v", err)
	}
	wantFacts(t, f.published())
}
