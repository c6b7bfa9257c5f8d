package accesssql_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/access"
	"github.com/warden-iot/warden/internal/access/accesssql"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/enginetest"
	"github.com/warden-iot/warden/internal/tenancy"
)

// TestStore is the grant store's conformance suite, run on each engine: a fresh,
// migrated database per test, with a keyring to seal machine data as the
// server has; the engine (store.Store) makes what the tests need from other
// domains.
func TestStore(t *testing.T) {
	enginetest.RunTests(t, accesssql.New, []enginetest.Test[*accesssql.Store]{
		{Name: "Grants", Fn: testGrants},
		{Name: "DeleteDeviceTakesGrants", Fn: testDeleteDeviceTakesGrants},
	})
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ctx(t *testing.T) context.Context { return t.Context() }

func grantIDs(gs []access.Grant) []string {
	out := []string{}
	for _, g := range gs {
		out = append(out, g.ID)
	}
	return out
}

func testGrants(t *testing.T, s store.Store, gst *accesssql.Store) {
	enginetest.Tenant(t, s, "acme", tenancy.RootTenantID)
	enginetest.Tenant(t, s, "beta", tenancy.RootTenantID)
	enginetest.Site(t, s, "sa", "acme")
	enginetest.Site(t, s, "sb", "beta")
	enginetest.Device(t, s, "da", "acme", registry.DeviceInfo{})
	enginetest.Device(t, s, "db", "beta", registry.DeviceInfo{})
	enginetest.Supporter(t, s, "tech1", tenancy.RootTenantID)
	enginetest.Supporter(t, s, "tech2", tenancy.RootTenantID)

	want := access.Grant{ID: "g1", TenantID: "acme", SupporterUserID: "tech1", SiteID: "sa", CreatedBy: "ann", CreatedAt: t0}
	grants := []access.Grant{
		want,
		{ID: "g2", TenantID: "acme", SupporterUserID: "tech1", DeviceID: "da", ExpiresAt: t0.Add(time.Hour), CreatedBy: "ann", CreatedAt: t0.Add(time.Second)},
		{ID: "g3", TenantID: "beta", SupporterUserID: "tech1", SiteID: "sb", CreatedBy: "bea", CreatedAt: t0.Add(2 * time.Second)},
		{ID: "g4", TenantID: "acme", SupporterUserID: "tech2", SiteID: "sa", CreatedBy: "ann", CreatedAt: t0.Add(3 * time.Second)},
		{ID: "g5", TenantID: "beta", SupporterUserID: "tech2", DeviceID: "db", CreatedBy: "bea", CreatedAt: t0.Add(4 * time.Second)},
	}
	for _, g := range grants {
		if err := gst.CreateGrant(ctx(t), g); err != nil {
			t.Fatalf("CreateGrant(%s): %v", g.ID, err)
		}
	}
	for name, g := range map[string]access.Grant{
		"of another tenant's site":   {ID: "x", TenantID: "acme", SupporterUserID: "tech1", SiteID: "sb", CreatedAt: t0},
		"of another tenant's device": {ID: "x", TenantID: "acme", SupporterUserID: "tech1", DeviceID: "db", CreatedAt: t0},
		"of a missing site":          {ID: "x", TenantID: "acme", SupporterUserID: "tech1", SiteID: "ghost", CreatedAt: t0},
		"to a missing supporter":     {ID: "x", TenantID: "acme", SupporterUserID: "ghost", SiteID: "sa", CreatedAt: t0},
	} {
		enginetest.WantErr(t, "CreateGrant "+name, gst.CreateGrant(ctx(t), g), database.ErrNotFound)
	}
	enginetest.WantErr(t, "CreateGrant with a taken id", gst.CreateGrant(ctx(t), access.Grant{ID: "g1", TenantID: "acme", SupporterUserID: "tech2",
		DeviceID: "da", CreatedAt: t0}), database.ErrConflict)
	for _, g := range []access.Grant{
		{ID: "x", TenantID: "acme", SupporterUserID: "tech1", CreatedAt: t0},
		{ID: "x", TenantID: "acme", SupporterUserID: "tech1", SiteID: "sa", DeviceID: "da", CreatedAt: t0},
	} {
		if err := gst.CreateGrant(ctx(t), g); err == nil {
			t.Errorf("CreateGrant(%+v) accepted a grant without exactly one target", g)
		}
	}

	got, err := gst.GetGrant(ctx(t), "g1")
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) || !got.Active(t0) {
		t.Fatalf("GetGrant = %+v, %v; want %+v", got, err, want)
	}
	if got, _ := gst.GetGrant(ctx(t), "g2"); got.DeviceID != "da" || got.SiteID != "" || !got.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("GetGrant(g2) = %+v", got)
	}
	if _, err := gst.GetGrant(ctx(t), "ghost"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("GetGrant(ghost) error = %v", err)
	}

	revokeAt := t0.Add(time.Minute)
	if err := gst.RevokeGrant(ctx(t), "g4", "ann", revokeAt); err != nil {
		t.Fatal(err)
	}
	got, _ = gst.GetGrant(ctx(t), "g4")
	if !got.RevokedAt.Equal(revokeAt) || got.RevokedBy != "ann" || got.Active(revokeAt) {
		t.Fatalf("revoked grant = %+v", got)
	}
	enginetest.WantErr(t, "RevokeGrant twice", gst.RevokeGrant(ctx(t), "g4", "bob", revokeAt.Add(time.Minute)), database.ErrConflict)
	if got, _ := gst.GetGrant(ctx(t), "g4"); got.RevokedBy != "ann" || !got.RevokedAt.Equal(revokeAt) {
		t.Fatalf("second RevokeGrant changed the grant: %+v", got)
	}
	enginetest.WantErr(t, "RevokeGrant(ghost)", gst.RevokeGrant(ctx(t), "ghost", "ann", revokeAt), database.ErrNotFound)

	for _, tc := range []struct {
		f    access.GrantFilter
		want []string
	}{
		{access.GrantFilter{}, []string{"g1", "g2", "g3", "g4", "g5"}},
		{access.GrantFilter{TenantIDs: []string{"acme"}}, []string{"g1", "g2", "g4"}},
		{access.GrantFilter{TenantIDs: []string{"acme", "beta"}}, []string{"g1", "g2", "g3", "g4", "g5"}},
		{access.GrantFilter{TenantIDs: []string{}}, []string{}},
		{access.GrantFilter{Under: "acme"}, []string{"g1", "g2", "g4"}},
		{access.GrantFilter{Under: tenancy.RootTenantID}, []string{"g1", "g2", "g3", "g4", "g5"}},
		{access.GrantFilter{Under: "ghost"}, []string{}},
		{access.GrantFilter{SupporterUserID: "tech2"}, []string{"g4", "g5"}},
		{access.GrantFilter{SiteID: "sa"}, []string{"g1", "g4"}},
		{access.GrantFilter{DeviceID: "da"}, []string{"g2"}},
		{access.GrantFilter{SupporterUserID: "tech1", TenantIDs: []string{"beta"}}, []string{"g3"}},
		{access.GrantFilter{ActiveAt: t0.Add(30 * time.Minute)}, []string{"g1", "g2", "g3", "g5"}}, // g4 revoked
		{access.GrantFilter{ActiveAt: t0.Add(time.Hour)}, []string{"g1", "g3", "g5"}},              // g2 expired
		// Revoked is revoked at any time (Grant.Active), even before
		// the revocation.
		{access.GrantFilter{ActiveAt: t0.Add(30 * time.Second)}, []string{"g1", "g2", "g3", "g5"}},
		{access.GrantFilter{ActiveAt: t0.Add(time.Hour), SupporterUserID: "tech1", TenantIDs: []string{"acme"}}, []string{"g1"}},
	} {
		got, err := gst.ListGrants(ctx(t), tc.f)
		if err != nil || got == nil || !slices.Equal(grantIDs(got), tc.want) {
			t.Errorf("ListGrants(%+v) = %v, %v; want %v", tc.f, grantIDs(got), err, tc.want)
		}
		for _, g := range got {
			if !tc.f.ActiveAt.IsZero() && !g.Active(tc.f.ActiveAt) {
				t.Errorf("ListGrants(%+v) returned %s, not active then", tc.f, g.ID)
			}
		}
	}
}

func testDeleteDeviceTakesGrants(t *testing.T, s store.Store, gst *accesssql.Store) {
	enginetest.Site(t, s, "site", tenancy.RootTenantID)
	enginetest.Device(t, s, "dev", tenancy.RootTenantID, registry.DeviceInfo{SiteID: "site"})
	enginetest.Device(t, s, "dev2", tenancy.RootTenantID, registry.DeviceInfo{})
	enginetest.Supporter(t, s, "tech", tenancy.RootTenantID)
	for _, g := range []access.Grant{
		{ID: "g-dev", TenantID: tenancy.RootTenantID, SupporterUserID: "tech", DeviceID: "dev", CreatedBy: "op", CreatedAt: t0},
		{ID: "g-dev2", TenantID: tenancy.RootTenantID, SupporterUserID: "tech", DeviceID: "dev2", CreatedBy: "op", CreatedAt: t0},
		{ID: "g-site", TenantID: tenancy.RootTenantID, SupporterUserID: "tech", SiteID: "site", CreatedBy: "op", CreatedAt: t0},
	} {
		if err := gst.CreateGrant(ctx(t), g); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteDevice(ctx(t), tenancy.RootTenantID, "dev"); err != nil {
		t.Fatal(err)
	}
	if _, err := gst.GetGrant(ctx(t), "g-dev"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("grant on a deleted device: %v; want it deleted", err)
	}
	for _, id := range []string{"g-dev2", "g-site"} {
		if g, err := gst.GetGrant(ctx(t), id); err != nil || !g.RevokedAt.IsZero() {
			t.Errorf("grant %s = %+v, %v; want it untouched", id, g, err)
		}
	}
	// A device of the same id made later gets no old grants.
	enginetest.Device(t, s, "dev", tenancy.RootTenantID, registry.DeviceInfo{})
	if gs, _ := gst.ListGrants(ctx(t), access.GrantFilter{DeviceID: "dev"}); len(gs) != 0 {
		t.Errorf("new device inherits grants %v", grantIDs(gs))
	}
}
