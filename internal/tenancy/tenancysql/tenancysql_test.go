package tenancysql_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/access"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/enginetest"
	"github.com/warden-iot/warden/internal/tenancy"
	"github.com/warden-iot/warden/internal/tenancy/tenancysql"
	"github.com/warden-iot/warden/internal/tsdb/tsdbstore"
)

// TestStore is package tenancy's conformance suite, run on each engine: a fresh,
// migrated database per test, with a keyring to seal machine data as the
// server has; the engine (store.Store) makes what the tests need from other
// domains.
func TestStore(t *testing.T) {
	enginetest.RunTests(t, tenancysql.New, []enginetest.Test[*tenancysql.Store]{
		{Name: "Tenants", Fn: testTenants},
		{Name: "TenantHierarchy", Fn: testTenantHierarchy},
		{Name: "UpdateTenant", Fn: testUpdateTenant},
		{Name: "DeleteTenantWithSubTenants", Fn: testDeleteTenantWithSubTenants},
		{Name: "DeleteTenantTakesIdentity", Fn: testDeleteTenantTakesIdentity},
		{Name: "Sites", Fn: testSites},
		{Name: "FactoryAccess", Fn: testFactoryAccess},
		{Name: "DeleteSite", Fn: testDeleteSite},
		{Name: "RetiredIDs", Fn: testRetiredIDs},
	})
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ctx(t *testing.T) context.Context { return t.Context() }

func key(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func hash(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func tenantIDs(ts []tenancy.Tenant) []string {
	out := []string{}
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

func siteIDs(ss []tenancy.Site) []string {
	out := []string{}
	for _, s := range ss {
		out = append(out, s.ID)
	}
	return out
}

func testTenants(t *testing.T, s store.Store, ts *tenancysql.Store) {
	root, err := ts.GetTenant(ctx(t), tenancy.RootTenantID)
	if err != nil || root.ParentID != "" || root.RetentionDays != 0 {
		t.Fatalf("root tenant = %+v, %v", root, err)
	}
	acme := tenancy.Tenant{ID: "acme", ParentID: tenancy.RootTenantID, Name: "ACME Pumps", CreatedAt: t0}
	if err := ts.CreateTenant(ctx(t), acme); err != nil {
		t.Fatal(err)
	}
	if err := ts.CreateTenant(ctx(t), acme); !errors.Is(err, database.ErrConflict) {
		t.Fatalf("second CreateTenant error = %v", err)
	}
	if err := ts.SetTenantRetention(ctx(t), "acme", 30); err != nil {
		t.Fatal(err)
	}
	if err := ts.SetTenantRetention(ctx(t), "ghost", 30); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("retention of unknown tenant error = %v", err)
	}
	list, err := ts.ListTenants(ctx(t))
	if err != nil || len(list) != 2 || list[0].ID != "acme" || list[0].RetentionDays != 30 || list[0].Name != "ACME Pumps" ||
		list[0].ParentID != tenancy.RootTenantID || !list[0].CreatedAt.Equal(t0) {
		t.Fatalf("ListTenants = %+v, %v", list, err)
	}
	// Deleting a tenant takes everything it owns.
	d := registry.Device{ID: "acme-1", TenantID: "acme", Status: registry.DeviceEnabled, PrimaryKey: []byte{1}, SecondaryKey: []byte{2}, CreatedAt: t0}
	if err := s.CreateDevice(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	r := enginetest.HeadRecord("acme-1", "m", 1, 1)
	r.TenantID = "acme"
	enginetest.WriteHead(t, s, r)
	c := enginetest.Chunk("acme-1", "x", 0, 1)
	c.TenantID = "acme"
	if err := s.SealHead(ctx(t), "acme-1", nil, nil, []tsdbstore.ChunkRecord{c}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTenantKey(ctx(t), "acme", t0, func(uint32) ([]byte, error) { return []byte("k"), nil }); err != nil {
		t.Fatal(err)
	}
	if err := ts.DeleteTenant(ctx(t), "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.GetTenant(ctx(t), "acme"); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("deleted tenant still there: %v", err)
	}
	if _, err := s.GetDevice(ctx(t), "acme-1"); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("device of deleted tenant still there: %v", err)
	}
	if head, _ := s.HeadRecords(ctx(t), "acme-1"); len(head) != 0 {
		t.Fatalf("head of deleted tenant still there")
	}
	if ch, _ := s.ChunksForMerge(ctx(t), "acme-1", "x", 0, 10); len(ch) != 0 {
		t.Fatalf("chunks of deleted tenant still there")
	}
	if _, err := s.ActiveTenantKey(ctx(t), "acme"); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("key of deleted tenant still there: %v", err)
	}
	if err := ts.DeleteTenant(ctx(t), tenancy.RootTenantID); err == nil {
		t.Fatal("the root tenant was deleted")
	}
}

func testTenantHierarchy(t *testing.T, s store.Store, ts *tenancysql.Store) {
	root, err := ts.GetTenant(ctx(t), tenancy.RootTenantID)
	if err != nil || root.Path != "root" {
		t.Fatalf("root = %+v, %v; want path root", root, err)
	}
	enginetest.Tenant(t, ts, "acme", tenancy.RootTenantID)
	enginetest.Tenant(t, ts, "acme-north", "acme")
	enginetest.Tenant(t, ts, "plant-7", "acme-north")
	// Ids that share a prefix with acme, and sort between its path and
	// its children's, are not below it.
	enginetest.Tenant(t, ts, "acme-b", tenancy.RootTenantID)
	enginetest.Tenant(t, ts, "acme2", tenancy.RootTenantID)
	enginetest.Tenant(t, ts, "acme_x", "acme-b")

	for id, want := range map[string]string{
		"acme": "root/acme", "acme-north": "root/acme/acme-north", "plant-7": "root/acme/acme-north/plant-7",
		"acme-b": "root/acme-b", "acme_x": "root/acme-b/acme_x",
	} {
		got, err := ts.GetTenant(ctx(t), id)
		if err != nil || got.Path != want {
			t.Errorf("GetTenant(%q).Path = %q, %v; want %q", id, got.Path, err, want)
		}
	}
	list, err := ts.ListTenants(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range list {
		if tn.ID == "plant-7" && (tn.Path != "root/acme/acme-north/plant-7" || tn.ParentID != "acme-north") {
			t.Errorf("ListTenants: plant-7 = %+v", tn)
		}
	}

	enginetest.WantErr(t, "CreateTenant below a missing parent",
		ts.CreateTenant(ctx(t), tenancy.Tenant{ID: "orphan", ParentID: "ghost", Name: "x", CreatedAt: t0}), database.ErrNotFound)
	if _, err := ts.GetTenant(ctx(t), "orphan"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("orphan tenant created: %v", err)
	}
	enginetest.WantErr(t, "CreateTenant with a taken id",
		ts.CreateTenant(ctx(t), tenancy.Tenant{ID: "acme-north", ParentID: tenancy.RootTenantID, Name: "x", CreatedAt: t0}), database.ErrConflict)
	if err := ts.CreateTenant(ctx(t), tenancy.Tenant{ID: "a/b", ParentID: tenancy.RootTenantID, Name: "x", CreatedAt: t0}); err == nil {
		t.Error("CreateTenant accepted an id with a slash")
	}

	for _, tc := range []struct {
		id   string
		want []string
	}{
		{"acme", []string{"acme", "acme-north", "plant-7"}},
		{"acme-north", []string{"acme-north", "plant-7"}},
		{"plant-7", []string{"plant-7"}},
		{"acme-b", []string{"acme-b", "acme_x"}},
		{tenancy.RootTenantID, []string{"root", "acme", "acme-b", "acme_x", "acme-north", "plant-7", "acme2"}},
	} {
		got, err := ts.TenantsUnder(ctx(t), tc.id)
		if err != nil || !slices.Equal(tenantIDs(got), tc.want) {
			t.Errorf("TenantsUnder(%q) = %v, %v; want %v (path order)", tc.id, tenantIDs(got), err, tc.want)
		}
		for i := 1; i < len(got); i++ {
			if got[i-1].Path >= got[i].Path {
				t.Errorf("TenantsUnder(%q) not in path order: %q before %q", tc.id, got[i-1].Path, got[i].Path)
			}
		}
	}
	if _, err := ts.TenantsUnder(ctx(t), "ghost"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("TenantsUnder(ghost) error = %v, want ErrNotFound", err)
	}
}

func testUpdateTenant(t *testing.T, s store.Store, ts *tenancysql.Store) {
	cet := time.FixedZone("CET", 3600)
	want := tenancy.Tenant{ID: "acme", ParentID: tenancy.RootTenantID, Name: "ACME", CreatedAt: t0, RetentionDays: 7,
		Address: tenancy.Address{Street: "Rue 1", PostalCode: "75001", City: "Paris", Country: "FR"},
		Contact: tenancy.Contact{Name: "Ann", Email: "ann@acme.example", Phone: "+33 1"},
	}
	if err := ts.CreateTenant(ctx(t), want); err != nil {
		t.Fatal(err)
	}
	got, err := ts.GetTenant(ctx(t), "acme")
	if err != nil || got.Address != want.Address || got.Contact != want.Contact || got.Contract != (tenancy.Contract{}) ||
		got.RetentionDays != 7 || got.Path != "root/acme" {
		t.Fatalf("GetTenant after create = %+v, %v", got, err)
	}

	want.Name = "ACME Pumps"
	want.Address.City = "Lyon"
	want.Contact = tenancy.Contact{Name: "Bob", Email: "bob@acme.example"}
	want.Contract = tenancy.Contract{
		Number: "C-42", Start: time.Date(2026, 1, 1, 0, 0, 0, 0, cet), End: time.Date(2027, 12, 31, 23, 59, 59, 999999999, cet),
		NoticeDays: 90, BillingReference: "PO 7", Notes: "renews yearly",
	}
	want.RetentionDays = 99 // not changed by UpdateTenant
	want.ParentID = "elsewhere"
	if err := ts.UpdateTenant(ctx(t), want); err != nil {
		t.Fatal(err)
	}
	got, err = ts.GetTenant(ctx(t), "acme")
	if err != nil {
		t.Fatal(err)
	}
	c := got.Contract
	if got.Name != "ACME Pumps" || got.Address != want.Address || got.Contact != want.Contact ||
		c.Number != "C-42" || c.NoticeDays != 90 || c.BillingReference != "PO 7" || c.Notes != "renews yearly" ||
		!c.Start.Equal(want.Contract.Start) || !c.End.Equal(want.Contract.End.Truncate(time.Millisecond)) ||
		c.Start.Location() != time.UTC || c.End.Location() != time.UTC {
		t.Fatalf("GetTenant after update =\n%+v\nwant\n%+v (dates in UTC, ms)", got, want)
	}
	if got.RetentionDays != 7 || got.ParentID != tenancy.RootTenantID || got.Path != "root/acme" || !got.CreatedAt.Equal(t0) {
		t.Fatalf("UpdateTenant changed more than it should: %+v", got)
	}
	list, _ := ts.ListTenants(ctx(t))
	if len(list) != 2 || list[0].Contract.Number != "C-42" || list[0].Address.City != "Lyon" {
		t.Fatalf("ListTenants = %+v", list)
	}
	under, _ := ts.TenantsUnder(ctx(t), "acme")
	if len(under) != 1 || under[0].Contact != want.Contact {
		t.Fatalf("TenantsUnder = %+v", under)
	}

	// Zero dates stay zero.
	want.Contract = tenancy.Contract{Number: "C-43"}
	if err := ts.UpdateTenant(ctx(t), want); err != nil {
		t.Fatal(err)
	}
	if got, _ := ts.GetTenant(ctx(t), "acme"); !got.Contract.Start.IsZero() || !got.Contract.End.IsZero() || got.Contract.Number != "C-43" {
		t.Fatalf("contract = %+v", got.Contract)
	}
	enginetest.WantErr(t, "UpdateTenant(ghost)", ts.UpdateTenant(ctx(t), tenancy.Tenant{ID: "ghost", Name: "x"}), database.ErrNotFound)
}

func testDeleteTenantWithSubTenants(t *testing.T, s store.Store, ts *tenancysql.Store) {
	enginetest.Tenant(t, ts, "acme", tenancy.RootTenantID)
	enginetest.Tenant(t, ts, "acme-north", "acme")
	enginetest.Device(t, s, "d1", "acme", registry.DeviceInfo{})
	enginetest.WantErr(t, "DeleteTenant with a sub-tenant", ts.DeleteTenant(ctx(t), "acme"), database.ErrConflict)
	if _, err := ts.GetTenant(ctx(t), "acme"); err != nil {
		t.Fatalf("refused DeleteTenant removed the tenant: %v", err)
	}
	if _, err := s.GetDevice(ctx(t), "d1"); err != nil {
		t.Fatalf("refused DeleteTenant removed a device: %v", err)
	}
	if err := ts.DeleteTenant(ctx(t), "acme-north"); err != nil {
		t.Fatal(err)
	}
	if err := ts.DeleteTenant(ctx(t), "acme"); err != nil {
		t.Fatal(err)
	}
	if got, err := ts.TenantsUnder(ctx(t), tenancy.RootTenantID); err != nil || !slices.Equal(tenantIDs(got), []string{"root"}) {
		t.Fatalf("TenantsUnder(root) = %v, %v", tenantIDs(got), err)
	}
	enginetest.WantErr(t, "DeleteTenant(ghost)", ts.DeleteTenant(ctx(t), "ghost"), database.ErrNotFound)
}

func testDeleteTenantTakesIdentity(t *testing.T, s store.Store, ts *tenancysql.Store) {
	enginetest.Tenant(t, ts, "acme", tenancy.RootTenantID)
	enginetest.Tenant(t, ts, "installers", tenancy.RootTenantID)
	enginetest.Site(t, ts, "acme-site", "acme")
	enginetest.Site(t, ts, "inst-site", "installers")
	enginetest.Device(t, s, "acme-dev", "acme", registry.DeviceInfo{SiteID: "acme-site"})
	enginetest.Device(t, s, "inst-dev", "installers", registry.DeviceInfo{SiteID: "inst-site"})
	enginetest.User(t, s, enginetest.NewUser("acme-admin", "acme", identity.RoleCustomerAdmin))
	enginetest.Supporter(t, s, "acme-tech", "acme")       // a supporter of acme ...
	enginetest.Supporter(t, s, "inst-tech", "installers") // ... and one of another tenant
	enginetest.User(t, s, enginetest.NewUser("op", tenancy.RootTenantID, identity.RoleOperatorAdmin))
	if err := s.CreateSession(ctx(t), identity.Session{ID: "sess", UserID: "acme-admin", Hash: hash(1), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUserToken(ctx(t), identity.UserToken{Hash: hash(2), UserID: "acme-admin", Purpose: identity.PurposeReset, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAPIToken(ctx(t), identity.APIToken{ID: "acme-tok", TenantID: "acme", UserID: "acme-admin", Name: "ci",
		Role: identity.RoleCustomerAdmin, Hash: hash(3), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	for _, g := range []access.Grant{
		{ID: "g-by-acme", TenantID: "acme", SupporterUserID: "inst-tech", SiteID: "acme-site", CreatedBy: "acme-admin", CreatedAt: t0},
		{ID: "g-to-acme", TenantID: "installers", SupporterUserID: "acme-tech", DeviceID: "inst-dev", CreatedBy: "x", CreatedAt: t0},
		{ID: "g-other", TenantID: "installers", SupporterUserID: "inst-tech", SiteID: "inst-site", CreatedBy: "x", CreatedAt: t0},
	} {
		if err := s.CreateGrant(ctx(t), g); err != nil {
			t.Fatalf("CreateGrant(%s): %v", g.ID, err)
		}
	}

	if err := ts.DeleteTenant(ctx(t), "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.GetSite(ctx(t), "acme-site"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("site of a deleted tenant: %v", err)
	}
	for _, id := range []string{"acme-admin", "acme-tech"} {
		if _, err := s.GetUser(ctx(t), id); !errors.Is(err, database.ErrNotFound) {
			t.Errorf("user %s of a deleted tenant: %v", id, err)
		}
	}
	if _, err := s.SessionByHash(ctx(t), hash(1)); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("session of a deleted tenant's user: %v", err)
	}
	if _, err := s.ConsumeUserToken(ctx(t), hash(2), identity.PurposeReset, t0); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("one-time token of a deleted tenant's user: %v", err)
	}
	if _, err := s.GetAPIToken(ctx(t), "acme-tok"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("api token of a deleted tenant: %v", err)
	}
	for _, id := range []string{"g-by-acme", "g-to-acme"} {
		if _, err := s.GetGrant(ctx(t), id); !errors.Is(err, database.ErrNotFound) {
			t.Errorf("grant %s: %v; want it deleted with the tenant", id, err)
		}
	}
	if _, err := s.GetGrant(ctx(t), "g-other"); err != nil {
		t.Errorf("grant of another tenant deleted: %v", err)
	}
	if users, err := s.ListUsers(ctx(t), nil); err != nil || !slices.Equal(enginetest.UserIDs(users), []string{"inst-tech", "op"}) {
		t.Errorf("users left = %v, %v", enginetest.UserIDs(users), err)
	}
	if d, err := s.GetDevice(ctx(t), "inst-dev"); err != nil || d.Info.SiteID != "inst-site" {
		t.Errorf("device of another tenant = %+v, %v", d, err)
	}
	// The ids can be used again.
	enginetest.Tenant(t, ts, "acme", tenancy.RootTenantID)
	enginetest.Site(t, ts, "acme-site", "acme")
	enginetest.User(t, s, enginetest.NewUser("acme-admin", "acme", identity.RoleCustomerAdmin))
}

func testSites(t *testing.T, s store.Store, ts *tenancysql.Store) {
	enginetest.Tenant(t, ts, "acme", tenancy.RootTenantID)
	enginetest.Tenant(t, ts, "beta", tenancy.RootTenantID)
	want := enginetest.Site(t, ts, "s2", "acme")
	enginetest.Site(t, ts, "s1", "acme")
	enginetest.Site(t, ts, "s3", "beta")
	enginetest.WantErr(t, "CreateSite with a taken id", ts.CreateSite(ctx(t), tenancy.Site{ID: "s1", TenantID: "beta", Name: "x", CreatedAt: t0}), database.ErrConflict)
	enginetest.WantErr(t, "CreateSite of a missing tenant", ts.CreateSite(ctx(t), tenancy.Site{ID: "s9", TenantID: "ghost", Name: "x", CreatedAt: t0}), database.ErrNotFound)

	got, err := ts.GetSite(ctx(t), "s2")
	if err != nil || got.ID != want.ID || got.TenantID != "acme" || got.Name != want.Name || got.Address != want.Address ||
		got.FactoryAccess || !got.FactoryAccessChangedAt.IsZero() || !got.CreatedAt.Equal(t0) {
		t.Fatalf("GetSite = %+v, %v; want %+v", got, err, want)
	}
	if _, err := ts.GetSite(ctx(t), "ghost"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("GetSite(ghost) error = %v", err)
	}

	want.Name, want.Address = "Plant 2", tenancy.Address{City: "Graz", Country: "AT"}
	want.TenantID = "beta" // not changed by UpdateSite
	if err := ts.UpdateSite(ctx(t), want); err != nil {
		t.Fatal(err)
	}
	got, _ = ts.GetSite(ctx(t), "s2")
	if got.Name != "Plant 2" || got.Address != want.Address || got.TenantID != "acme" {
		t.Fatalf("after UpdateSite = %+v", got)
	}
	enginetest.WantErr(t, "UpdateSite(ghost)", ts.UpdateSite(ctx(t), tenancy.Site{ID: "ghost", Name: "x"}), database.ErrNotFound)

	if err := ts.SetFactoryAccess(ctx(t), "s3", true, t0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		f    tenancy.SiteFilter
		want []string
	}{
		{tenancy.SiteFilter{}, []string{"s1", "s2", "s3"}},
		{tenancy.SiteFilter{TenantIDs: []string{"acme"}}, []string{"s1", "s2"}},
		{tenancy.SiteFilter{TenantIDs: []string{"acme", "beta"}}, []string{"s1", "s2", "s3"}},
		{tenancy.SiteFilter{TenantIDs: []string{}}, []string{}},
		{tenancy.SiteFilter{IDs: []string{"s3", "s1", "ghost"}}, []string{"s1", "s3"}},
		{tenancy.SiteFilter{IDs: []string{}}, []string{}},
		{tenancy.SiteFilter{TenantIDs: []string{"acme"}, IDs: []string{"s3", "s2"}}, []string{"s2"}},
		{tenancy.SiteFilter{FactoryAccess: true}, []string{"s3"}},
		{tenancy.SiteFilter{FactoryAccess: true, TenantIDs: []string{"acme"}}, []string{}},
		{tenancy.SiteFilter{Under: "acme"}, []string{"s1", "s2"}},
		{tenancy.SiteFilter{Under: tenancy.RootTenantID}, []string{"s1", "s2", "s3"}},
		{tenancy.SiteFilter{Under: "ghost"}, []string{}},
		{tenancy.SiteFilter{Under: "acme", IDs: []string{"s3", "s2"}}, []string{"s2"}},
	} {
		got, err := ts.ListSites(ctx(t), tc.f)
		if err != nil || got == nil || !slices.Equal(siteIDs(got), tc.want) {
			t.Errorf("ListSites(%+v) = %v, %v; want %v", tc.f, siteIDs(got), err, tc.want)
		}
	}
	list, _ := ts.ListSites(ctx(t), tenancy.SiteFilter{IDs: []string{"s2"}})
	if len(list) != 1 || list[0].Address != want.Address || list[0].Name != "Plant 2" {
		t.Errorf("ListSites row = %+v", list)
	}
}

func testFactoryAccess(t *testing.T, s store.Store, ts *tenancysql.Store) {
	enginetest.Site(t, ts, "s1", tenancy.RootTenantID)
	on := t0.Add(time.Hour + 1234567*time.Nanosecond)
	if err := ts.SetFactoryAccess(ctx(t), "s1", true, on); err != nil {
		t.Fatal(err)
	}
	got, _ := ts.GetSite(ctx(t), "s1")
	if !got.FactoryAccess || !got.FactoryAccessChangedAt.Equal(on.Truncate(time.Millisecond)) {
		t.Fatalf("after switching on: %+v", got)
	}
	// Setting it again is no switch: the time stays.
	if err := ts.SetFactoryAccess(ctx(t), "s1", true, on.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := ts.GetSite(ctx(t), "s1"); !got.FactoryAccess || !got.FactoryAccessChangedAt.Equal(on.Truncate(time.Millisecond)) {
		t.Fatalf("after switching on again: %+v", got)
	}
	off := on.Add(2 * time.Hour)
	if err := ts.SetFactoryAccess(ctx(t), "s1", false, off); err != nil {
		t.Fatal(err)
	}
	if got, _ := ts.GetSite(ctx(t), "s1"); got.FactoryAccess || !got.FactoryAccessChangedAt.Equal(off.Truncate(time.Millisecond)) {
		t.Fatalf("after switching off: %+v", got)
	}
	enginetest.WantErr(t, "SetFactoryAccess(ghost)", ts.SetFactoryAccess(ctx(t), "ghost", true, t0), database.ErrNotFound)
}

func testDeleteSite(t *testing.T, s store.Store, ts *tenancysql.Store) {
	enginetest.Tenant(t, ts, "acme", tenancy.RootTenantID)
	enginetest.Site(t, ts, "doomed", "acme")
	enginetest.Site(t, ts, "kept", "acme")
	enginetest.Device(t, s, "d1", "acme", registry.DeviceInfo{SiteID: "doomed", Name: "Pump 1"})
	enginetest.Device(t, s, "d2", "acme", registry.DeviceInfo{SiteID: "kept"})
	enginetest.Supporter(t, s, "tech", "acme")
	for _, g := range []access.Grant{
		{ID: "g1", TenantID: "acme", SupporterUserID: "tech", SiteID: "doomed", CreatedBy: "a", CreatedAt: t0},
		{ID: "g2", TenantID: "acme", SupporterUserID: "tech", SiteID: "doomed", CreatedBy: "a", CreatedAt: t0},
		{ID: "g3", TenantID: "acme", SupporterUserID: "tech", SiteID: "kept", CreatedBy: "a", CreatedAt: t0},
		{ID: "g4", TenantID: "acme", SupporterUserID: "tech", DeviceID: "d1", CreatedBy: "a", CreatedAt: t0},
	} {
		if err := s.CreateGrant(ctx(t), g); err != nil {
			t.Fatal(err)
		}
	}
	earlier := t0.Add(time.Minute)
	if err := s.RevokeGrant(ctx(t), "g2", "owner", earlier); err != nil {
		t.Fatal(err)
	}
	at := t0.Add(time.Hour)
	if err := ts.DeleteSite(ctx(t), "doomed", at); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.GetSite(ctx(t), "doomed"); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("deleted site still there: %v", err)
	}
	d1, err := s.GetDevice(ctx(t), "d1")
	if err != nil || d1.Info.SiteID != "" || d1.Info.Name != "Pump 1" {
		t.Fatalf("device of the deleted site = %+v, %v; want it kept, unassigned", d1, err)
	}
	if d2, _ := s.GetDevice(ctx(t), "d2"); d2.Info.SiteID != "kept" {
		t.Fatalf("device of another site = %+v", d2)
	}
	if devs, err := s.FindDevices(ctx(t), registry.DeviceFilter{SiteIDs: []string{"doomed"}}); err != nil || len(devs) != 0 {
		t.Fatalf("FindDevices(deleted site) = %v, %v", enginetest.DeviceIDs(devs), err)
	}
	g1, _ := s.GetGrant(ctx(t), "g1")
	if !g1.RevokedAt.Equal(at) || g1.RevokedBy != "site.delete" || g1.SiteID != "doomed" {
		t.Errorf("grant on the deleted site = %+v; want revoked by site.delete at %v", g1, at)
	}
	if g2, _ := s.GetGrant(ctx(t), "g2"); !g2.RevokedAt.Equal(earlier) || g2.RevokedBy != "owner" {
		t.Errorf("grant revoked before = %+v; want its revocation kept", g2)
	}
	for _, id := range []string{"g3", "g4"} {
		if g, _ := s.GetGrant(ctx(t), id); !g.RevokedAt.IsZero() {
			t.Errorf("grant %s revoked: %+v", id, g)
		}
	}
	enginetest.WantErr(t, "DeleteSite again", ts.DeleteSite(ctx(t), "doomed", at), database.ErrNotFound)
}

func testRetiredIDs(t *testing.T, s store.Store, ts *tenancysql.Store) {
	if ok, err := ts.IDRetired(ctx(t), "tenant", "acme"); err != nil || ok {
		t.Fatalf("IDRetired before: %v, %v", ok, err)
	}
	for range 2 { // twice is fine
		if err := ts.RetireID(ctx(t), "tenant", "acme", t0); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := ts.IDRetired(ctx(t), "tenant", "acme"); err != nil || !ok {
		t.Errorf("IDRetired after: %v, %v", ok, err)
	}
	if ok, _ := ts.IDRetired(ctx(t), "device", "acme"); ok {
		t.Error("retired for another kind")
	}
}
