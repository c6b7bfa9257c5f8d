package access_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/access"
	"github.com/warden-iot/warden/internal/clock/clocktest"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/event"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/sqlite"
	"github.com/warden-iot/warden/internal/tenancy"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// grantsEnv is the grants service on a fresh SQLite engine with a customer
// tenant, its site and a supporter, recording every fact it publishes.
func grantsEnv(t *testing.T) (store.Store, *access.Grants, *clocktest.Fake, *[]event.Event) {
	t.Helper()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateTenant(ctx, tenancy.Tenant{ID: "acme", ParentID: tenancy.RootTenantID, Name: "Acme", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSite(ctx, tenancy.Site{ID: "plant", TenantID: "acme", Name: "Plant", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []identity.User{
		{ID: "tech", TenantID: "root", Email: "tech@example.com", Role: identity.RoleSupporter, SupporterID: "SUP-7KQ3-M9XD"},
		{ID: "off", TenantID: "root", Email: "off@example.com", Role: identity.RoleSupporter, SupporterID: "SUP-0000-0001", Status: identity.UserDisabled},
		{ID: "admin", TenantID: "acme", Email: "admin@example.com", Role: identity.RoleCustomerAdmin, SupporterID: "SUP-0000-0002"},
	} {
		u.FirstName, u.LastName, u.CreatedBy, u.CreatedAt = "First", "Last", "test", t0
		if u.Status == "" {
			u.Status = identity.UserPending
		}
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatalf("CreateUser(%s): %v", u.ID, err)
		}
	}
	log := slog.New(slog.DiscardHandler)
	bus := event.NewLocal(log)
	var events []event.Event
	event.On(bus, "test.created", func(_ context.Context, ev event.GrantCreated) error { events = append(events, ev); return nil })
	event.On(bus, "test.revoked", func(_ context.Context, ev event.GrantRevoked) error { events = append(events, ev); return nil })
	clk := clocktest.New(t0)
	return st, access.NewGrants(st, st, bus, clk, log), clk, &events
}

func TestGrants(t *testing.T) {
	st, grants, clk, events := grantsEnv(t)
	ctx := t.Context()
	past, future := t0.Add(-time.Hour), t0.Add(24*time.Hour)
	for _, c := range []struct {
		name string
		n    access.NewGrant
		msg  string
	}{
		{"unknown supporter", access.NewGrant{TenantID: "acme", SupporterID: "sup 9999 9999", SiteID: "plant"}, `supporterId: no supporter "sup 9999 9999"`},
		{"disabled supporter", access.NewGrant{TenantID: "acme", SupporterID: "SUP-0000-0001", SiteID: "plant"}, `supporterId: no supporter "SUP-0000-0001"`},
		{"not a supporter", access.NewGrant{TenantID: "acme", SupporterID: "SUP-0000-0002", SiteID: "plant"}, `supporterId: no supporter "SUP-0000-0002"`},
		{"expired", access.NewGrant{TenantID: "acme", SupporterID: "SUP-7KQ3-M9XD", SiteID: "plant", ExpiresAt: &past}, "expiresAt: must be in the future"},
	} {
		if _, _, err := grants.Create(ctx, c.n); !errors.Is(err, access.ErrInvalid) || err.Error() != c.msg {
			t.Errorf("%s: err = %v, want ErrInvalid %q", c.name, err, c.msg)
		}
	}
	if _, _, err := grants.Create(ctx, access.NewGrant{TenantID: "acme", SupporterID: "SUP-7KQ3-M9XD", SiteID: "elsewhere"}); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("grant on an unknown site: %v", err)
	}
	if len(*events) != 0 {
		t.Fatalf("events after refusals: %v", *events)
	}

	// Typed as people type it; the supporter id is normalised.
	g, sup, err := grants.Create(ctx, access.NewGrant{TenantID: "acme", SupporterID: "sup 7kq3 m9xd", SiteID: "plant", ExpiresAt: &future, CreatedBy: "user:admin"})
	if err != nil {
		t.Fatal(err)
	}
	if sup.ID != "tech" || g.SupporterUserID != "tech" || g.TenantID != "acme" || g.SiteID != "plant" || !g.ExpiresAt.Equal(future) ||
		!g.CreatedAt.Equal(t0) || g.CreatedBy != "user:admin" || !g.Active(t0) {
		t.Errorf("grant %+v, supporter %s", g, sup.ID)
	}
	if stored, err := st.GetGrant(ctx, g.ID); err != nil || stored != g {
		t.Errorf("stored %+v, %v; want %+v", stored, err, g)
	}
	created := event.GrantCreated{TenantID: "acme", GrantID: g.ID, SupporterUserID: "tech", SiteID: "plant", ExpiresAt: future, At: t0}
	if len(*events) != 1 || (*events)[0] != event.Event(created) {
		t.Fatalf("events %v, want %v", *events, created)
	}

	clk.Advance(time.Minute)
	if err := grants.Revoke(ctx, g, "user:admin"); err != nil {
		t.Fatal(err)
	}
	revoked := event.GrantRevoked{TenantID: "acme", GrantID: g.ID, SupporterUserID: "tech", SiteID: "plant", At: t0.Add(time.Minute)}
	if len(*events) != 2 || (*events)[1] != event.Event(revoked) {
		t.Fatalf("events %v, want %v last", *events, revoked)
	}
	if stored, err := st.GetGrant(ctx, g.ID); err != nil || stored.Active(t0.Add(time.Minute)) || stored.RevokedBy != "user:admin" {
		t.Errorf("revoked grant %+v, %v", stored, err)
	}
	if err := grants.Revoke(ctx, g, "user:admin"); !errors.Is(err, database.ErrConflict) {
		t.Errorf("revoking twice: %v", err)
	}
	if len(*events) != 2 {
		t.Errorf("events after a refused revocation: %v", *events)
	}
}
