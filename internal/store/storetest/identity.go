package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/store"
)

// identityTests cover store.IdentityStore and the identity fields of the
// basic methods (tenant paths and details, API tokens of users, the audit
// trail's owner tenant); device info is registry's (registrysql's tests).
var identityTests = []suiteTest{
	{"TenantHierarchy", testTenantHierarchy},
	{"UpdateTenant", testUpdateTenant},
	{"DeleteTenantWithSubTenants", testDeleteTenantWithSubTenants},
	{"DeleteTenantTakesIdentity", testDeleteTenantTakesIdentity},
	{"Sites", testSites},
	{"FactoryAccess", testFactoryAccess},
	{"DeleteSite", testDeleteSite},
	{"Users", testUsers},
	{"UserPasswordAndTOTP", testUserPasswordAndTOTP},
	{"LoginSucceeded", testLoginSucceeded},
	{"SignInFailuresConcurrent", testSignInFailuresConcurrent},
	{"DeleteUser", testDeleteUser},
	{"Sessions", testSessions},
	{"UserTokens", testUserTokens},
	{"UserTokenConcurrentConsume", testUserTokenConcurrentConsume},
	{"UserAPITokens", testUserAPITokens},
	{"Grants", testGrants},
	{"AuditOwnerTenant", testAuditOwnerTenant},
	{"PurgeExpired", testPurgeExpired},
	{"TOTPSteps", testTOTPSteps},
}

func testTOTPSteps(t *testing.T, s store.Store) {
	mustUser(t, s, newUser("u1", store.RootTenantID, store.RoleOperatorAdmin))
	if err := s.UseTOTPStep(ctx(t), "u1", 100); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "the same step again", s.UseTOTPStep(ctx(t), "u1", 100), store.ErrConflict)
	wantErr(t, "an earlier step", s.UseTOTPStep(ctx(t), "u1", 99), store.ErrConflict)
	if err := s.UseTOTPStep(ctx(t), "u1", 101); err != nil {
		t.Errorf("the next step: %v", err)
	}
	wantErr(t, "a step of a missing user", s.UseTOTPStep(ctx(t), "ghost", 1), store.ErrNotFound)
}

func testPurgeExpired(t *testing.T, s store.Store) {
	mustUser(t, s, newUser("u1", store.RootTenantID, store.RoleOperatorAdmin))
	for i, exp := range []time.Time{t0.Add(time.Hour), t0.Add(3 * time.Hour)} {
		if err := s.CreateSession(ctx(t), store.Session{ID: fmt.Sprintf("s%d", i), UserID: "u1", Hash: hash(byte(i + 1)), CreatedAt: t0,
			LastSeenAt: t0, ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateUserToken(ctx(t), store.UserToken{Hash: hash(7), UserID: "u1", Purpose: store.PurposeReset, CreatedAt: t0,
		ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	n, err := s.PurgeExpired(ctx(t), t0.Add(2*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("PurgeExpired = %d, %v; want 2 (a session and a link)", n, err)
	}
	if _, err := s.SessionByHash(ctx(t), hash(2)); err != nil {
		t.Errorf("the live session went: %v", err)
	}
	if _, err := s.SessionByHash(ctx(t), hash(1)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the expired session stayed: %v", err)
	}
}

// subTenant creates tenant id below parent.
func subTenant(t *testing.T, s store.Store, id, parent string) {
	t.Helper()
	if err := s.CreateTenant(ctx(t), store.Tenant{ID: id, ParentID: parent, Name: "Tenant " + id, CreatedAt: t0}); err != nil {
		t.Fatalf("CreateTenant(%q below %q): %v", id, parent, err)
	}
}

func mustSite(t *testing.T, s store.Store, id, tenant string) store.Site {
	t.Helper()
	st := store.Site{ID: id, TenantID: tenant, Name: "Site " + id, CreatedAt: t0,
		Address: store.Address{Street: "1 Main St", PostalCode: "69001", City: "Lyon", Country: "FR"}}
	if err := s.CreateSite(ctx(t), st); err != nil {
		t.Fatalf("CreateSite(%q): %v", id, err)
	}
	return st
}

func mustDevice(t *testing.T, s store.Store, id, tenant string, info store.DeviceInfo) store.Device {
	t.Helper()
	d := store.Device{ID: id, TenantID: tenant, Status: store.DeviceEnabled, PrimaryKey: key(1), SecondaryKey: key(2),
		CreatedAt: t0, Info: info}
	if err := s.CreateDevice(ctx(t), d); err != nil {
		t.Fatalf("CreateDevice(%q): %v", id, err)
	}
	return d
}

func newUser(id, tenant string, role store.Role) store.User {
	return store.User{ID: id, TenantID: tenant, Email: id + "@example.com", FirstName: "First " + id, LastName: "Last",
		Role: role, Status: store.UserPending, CreatedBy: "test", CreatedAt: t0}
}

func mustUser(t *testing.T, s store.Store, u store.User) store.User {
	t.Helper()
	if err := s.CreateUser(ctx(t), u); err != nil {
		t.Fatalf("CreateUser(%q): %v", u.ID, err)
	}
	return u
}

// mustSupporter creates a supporter user with a supporter id.
func mustSupporter(t *testing.T, s store.Store, id, tenant string) store.User {
	t.Helper()
	u := newUser(id, tenant, store.RoleSupporter)
	u.SupporterID = "S-" + id
	return mustUser(t, s, u)
}

func hash(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func tenantIDs(ts []store.Tenant) []string {
	out := []string{}
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

func siteIDs(ss []store.Site) []string {
	out := []string{}
	for _, s := range ss {
		out = append(out, s.ID)
	}
	return out
}

func userIDs(us []store.User) []string {
	out := []string{}
	for _, u := range us {
		out = append(out, u.ID)
	}
	return out
}

func grantIDs(gs []store.Grant) []string {
	out := []string{}
	for _, g := range gs {
		out = append(out, g.ID)
	}
	return out
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: error = %v, want %v", what, err, want)
	}
}

func testTenantHierarchy(t *testing.T, s store.Store) {
	root, err := s.GetTenant(ctx(t), store.RootTenantID)
	if err != nil || root.Path != "root" {
		t.Fatalf("root = %+v, %v; want path root", root, err)
	}
	subTenant(t, s, "acme", store.RootTenantID)
	subTenant(t, s, "acme-north", "acme")
	subTenant(t, s, "plant-7", "acme-north")
	// Ids that share a prefix with acme, and sort between its path and
	// its children's, are not below it.
	subTenant(t, s, "acme-b", store.RootTenantID)
	subTenant(t, s, "acme2", store.RootTenantID)
	subTenant(t, s, "acme_x", "acme-b")

	for id, want := range map[string]string{
		"acme": "root/acme", "acme-north": "root/acme/acme-north", "plant-7": "root/acme/acme-north/plant-7",
		"acme-b": "root/acme-b", "acme_x": "root/acme-b/acme_x",
	} {
		got, err := s.GetTenant(ctx(t), id)
		if err != nil || got.Path != want {
			t.Errorf("GetTenant(%q).Path = %q, %v; want %q", id, got.Path, err, want)
		}
	}
	list, err := s.ListTenants(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range list {
		if tn.ID == "plant-7" && (tn.Path != "root/acme/acme-north/plant-7" || tn.ParentID != "acme-north") {
			t.Errorf("ListTenants: plant-7 = %+v", tn)
		}
	}

	wantErr(t, "CreateTenant below a missing parent",
		s.CreateTenant(ctx(t), store.Tenant{ID: "orphan", ParentID: "ghost", Name: "x", CreatedAt: t0}), store.ErrNotFound)
	if _, err := s.GetTenant(ctx(t), "orphan"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("orphan tenant created: %v", err)
	}
	wantErr(t, "CreateTenant with a taken id",
		s.CreateTenant(ctx(t), store.Tenant{ID: "acme-north", ParentID: store.RootTenantID, Name: "x", CreatedAt: t0}), store.ErrConflict)
	if err := s.CreateTenant(ctx(t), store.Tenant{ID: "a/b", ParentID: store.RootTenantID, Name: "x", CreatedAt: t0}); err == nil {
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
		{store.RootTenantID, []string{"root", "acme", "acme-b", "acme_x", "acme-north", "plant-7", "acme2"}},
	} {
		got, err := s.TenantsUnder(ctx(t), tc.id)
		if err != nil || !slices.Equal(tenantIDs(got), tc.want) {
			t.Errorf("TenantsUnder(%q) = %v, %v; want %v (path order)", tc.id, tenantIDs(got), err, tc.want)
		}
		for i := 1; i < len(got); i++ {
			if got[i-1].Path >= got[i].Path {
				t.Errorf("TenantsUnder(%q) not in path order: %q before %q", tc.id, got[i-1].Path, got[i].Path)
			}
		}
	}
	if _, err := s.TenantsUnder(ctx(t), "ghost"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TenantsUnder(ghost) error = %v, want ErrNotFound", err)
	}
}

func testUpdateTenant(t *testing.T, s store.Store) {
	cet := time.FixedZone("CET", 3600)
	want := store.Tenant{ID: "acme", ParentID: store.RootTenantID, Name: "ACME", CreatedAt: t0, RetentionDays: 7,
		Address: store.Address{Street: "Rue 1", PostalCode: "75001", City: "Paris", Country: "FR"},
		Contact: store.Contact{Name: "Ann", Email: "ann@acme.example", Phone: "+33 1"},
	}
	if err := s.CreateTenant(ctx(t), want); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetTenant(ctx(t), "acme")
	if err != nil || got.Address != want.Address || got.Contact != want.Contact || got.Contract != (store.Contract{}) ||
		got.RetentionDays != 7 || got.Path != "root/acme" {
		t.Fatalf("GetTenant after create = %+v, %v", got, err)
	}

	want.Name = "ACME Pumps"
	want.Address.City = "Lyon"
	want.Contact = store.Contact{Name: "Bob", Email: "bob@acme.example"}
	want.Contract = store.Contract{
		Number: "C-42", Start: time.Date(2026, 1, 1, 0, 0, 0, 0, cet), End: time.Date(2027, 12, 31, 23, 59, 59, 999999999, cet),
		NoticeDays: 90, BillingReference: "PO 7", Notes: "renews yearly",
	}
	want.RetentionDays = 99 // not changed by UpdateTenant
	want.ParentID = "elsewhere"
	if err := s.UpdateTenant(ctx(t), want); err != nil {
		t.Fatal(err)
	}
	got, err = s.GetTenant(ctx(t), "acme")
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
	if got.RetentionDays != 7 || got.ParentID != store.RootTenantID || got.Path != "root/acme" || !got.CreatedAt.Equal(t0) {
		t.Fatalf("UpdateTenant changed more than it should: %+v", got)
	}
	list, _ := s.ListTenants(ctx(t))
	if len(list) != 2 || list[0].Contract.Number != "C-42" || list[0].Address.City != "Lyon" {
		t.Fatalf("ListTenants = %+v", list)
	}
	under, _ := s.TenantsUnder(ctx(t), "acme")
	if len(under) != 1 || under[0].Contact != want.Contact {
		t.Fatalf("TenantsUnder = %+v", under)
	}

	// Zero dates stay zero.
	want.Contract = store.Contract{Number: "C-43"}
	if err := s.UpdateTenant(ctx(t), want); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetTenant(ctx(t), "acme"); !got.Contract.Start.IsZero() || !got.Contract.End.IsZero() || got.Contract.Number != "C-43" {
		t.Fatalf("contract = %+v", got.Contract)
	}
	wantErr(t, "UpdateTenant(ghost)", s.UpdateTenant(ctx(t), store.Tenant{ID: "ghost", Name: "x"}), store.ErrNotFound)
}

func testDeleteTenantWithSubTenants(t *testing.T, s store.Store) {
	subTenant(t, s, "acme", store.RootTenantID)
	subTenant(t, s, "acme-north", "acme")
	mustDevice(t, s, "d1", "acme", store.DeviceInfo{})
	wantErr(t, "DeleteTenant with a sub-tenant", s.DeleteTenant(ctx(t), "acme"), store.ErrConflict)
	if _, err := s.GetTenant(ctx(t), "acme"); err != nil {
		t.Fatalf("refused DeleteTenant removed the tenant: %v", err)
	}
	if _, err := s.GetDevice(ctx(t), "d1"); err != nil {
		t.Fatalf("refused DeleteTenant removed a device: %v", err)
	}
	if err := s.DeleteTenant(ctx(t), "acme-north"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTenant(ctx(t), "acme"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.TenantsUnder(ctx(t), store.RootTenantID); err != nil || !slices.Equal(tenantIDs(got), []string{"root"}) {
		t.Fatalf("TenantsUnder(root) = %v, %v", tenantIDs(got), err)
	}
	wantErr(t, "DeleteTenant(ghost)", s.DeleteTenant(ctx(t), "ghost"), store.ErrNotFound)
}

func testDeleteTenantTakesIdentity(t *testing.T, s store.Store) {
	subTenant(t, s, "acme", store.RootTenantID)
	subTenant(t, s, "installers", store.RootTenantID)
	mustSite(t, s, "acme-site", "acme")
	mustSite(t, s, "inst-site", "installers")
	mustDevice(t, s, "acme-dev", "acme", store.DeviceInfo{SiteID: "acme-site"})
	mustDevice(t, s, "inst-dev", "installers", store.DeviceInfo{SiteID: "inst-site"})
	mustUser(t, s, newUser("acme-admin", "acme", store.RoleCustomerAdmin))
	mustSupporter(t, s, "acme-tech", "acme")       // a supporter of acme ...
	mustSupporter(t, s, "inst-tech", "installers") // ... and one of another tenant
	mustUser(t, s, newUser("op", store.RootTenantID, store.RoleOperatorAdmin))
	if err := s.CreateSession(ctx(t), store.Session{ID: "sess", UserID: "acme-admin", Hash: hash(1), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUserToken(ctx(t), store.UserToken{Hash: hash(2), UserID: "acme-admin", Purpose: store.PurposeReset, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAPIToken(ctx(t), store.APIToken{ID: "acme-tok", TenantID: "acme", UserID: "acme-admin", Name: "ci",
		Role: store.RoleCustomerAdmin, Hash: hash(3), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	for _, g := range []store.Grant{
		{ID: "g-by-acme", TenantID: "acme", SupporterUserID: "inst-tech", SiteID: "acme-site", CreatedBy: "acme-admin", CreatedAt: t0},
		{ID: "g-to-acme", TenantID: "installers", SupporterUserID: "acme-tech", DeviceID: "inst-dev", CreatedBy: "x", CreatedAt: t0},
		{ID: "g-other", TenantID: "installers", SupporterUserID: "inst-tech", SiteID: "inst-site", CreatedBy: "x", CreatedAt: t0},
	} {
		if err := s.CreateGrant(ctx(t), g); err != nil {
			t.Fatalf("CreateGrant(%s): %v", g.ID, err)
		}
	}

	if err := s.DeleteTenant(ctx(t), "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSite(ctx(t), "acme-site"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("site of a deleted tenant: %v", err)
	}
	for _, id := range []string{"acme-admin", "acme-tech"} {
		if _, err := s.GetUser(ctx(t), id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("user %s of a deleted tenant: %v", id, err)
		}
	}
	if _, err := s.SessionByHash(ctx(t), hash(1)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("session of a deleted tenant's user: %v", err)
	}
	if _, err := s.ConsumeUserToken(ctx(t), hash(2), store.PurposeReset, t0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("one-time token of a deleted tenant's user: %v", err)
	}
	if _, err := s.GetAPIToken(ctx(t), "acme-tok"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("api token of a deleted tenant: %v", err)
	}
	for _, id := range []string{"g-by-acme", "g-to-acme"} {
		if _, err := s.GetGrant(ctx(t), id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("grant %s: %v; want it deleted with the tenant", id, err)
		}
	}
	if _, err := s.GetGrant(ctx(t), "g-other"); err != nil {
		t.Errorf("grant of another tenant deleted: %v", err)
	}
	if users, err := s.ListUsers(ctx(t), nil); err != nil || !slices.Equal(userIDs(users), []string{"inst-tech", "op"}) {
		t.Errorf("users left = %v, %v", userIDs(users), err)
	}
	if d, err := s.GetDevice(ctx(t), "inst-dev"); err != nil || d.Info.SiteID != "inst-site" {
		t.Errorf("device of another tenant = %+v, %v", d, err)
	}
	// The ids can be used again.
	subTenant(t, s, "acme", store.RootTenantID)
	mustSite(t, s, "acme-site", "acme")
	mustUser(t, s, newUser("acme-admin", "acme", store.RoleCustomerAdmin))
}

func testSites(t *testing.T, s store.Store) {
	subTenant(t, s, "acme", store.RootTenantID)
	subTenant(t, s, "beta", store.RootTenantID)
	want := mustSite(t, s, "s2", "acme")
	mustSite(t, s, "s1", "acme")
	mustSite(t, s, "s3", "beta")
	wantErr(t, "CreateSite with a taken id", s.CreateSite(ctx(t), store.Site{ID: "s1", TenantID: "beta", Name: "x", CreatedAt: t0}), store.ErrConflict)
	wantErr(t, "CreateSite of a missing tenant", s.CreateSite(ctx(t), store.Site{ID: "s9", TenantID: "ghost", Name: "x", CreatedAt: t0}), store.ErrNotFound)

	got, err := s.GetSite(ctx(t), "s2")
	if err != nil || got.ID != want.ID || got.TenantID != "acme" || got.Name != want.Name || got.Address != want.Address ||
		got.FactoryAccess || !got.FactoryAccessChangedAt.IsZero() || !got.CreatedAt.Equal(t0) {
		t.Fatalf("GetSite = %+v, %v; want %+v", got, err, want)
	}
	if _, err := s.GetSite(ctx(t), "ghost"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetSite(ghost) error = %v", err)
	}

	want.Name, want.Address = "Plant 2", store.Address{City: "Graz", Country: "AT"}
	want.TenantID = "beta" // not changed by UpdateSite
	if err := s.UpdateSite(ctx(t), want); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetSite(ctx(t), "s2")
	if got.Name != "Plant 2" || got.Address != want.Address || got.TenantID != "acme" {
		t.Fatalf("after UpdateSite = %+v", got)
	}
	wantErr(t, "UpdateSite(ghost)", s.UpdateSite(ctx(t), store.Site{ID: "ghost", Name: "x"}), store.ErrNotFound)

	if err := s.SetFactoryAccess(ctx(t), "s3", true, t0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		f    store.SiteFilter
		want []string
	}{
		{store.SiteFilter{}, []string{"s1", "s2", "s3"}},
		{store.SiteFilter{TenantIDs: []string{"acme"}}, []string{"s1", "s2"}},
		{store.SiteFilter{TenantIDs: []string{"acme", "beta"}}, []string{"s1", "s2", "s3"}},
		{store.SiteFilter{TenantIDs: []string{}}, []string{}},
		{store.SiteFilter{IDs: []string{"s3", "s1", "ghost"}}, []string{"s1", "s3"}},
		{store.SiteFilter{IDs: []string{}}, []string{}},
		{store.SiteFilter{TenantIDs: []string{"acme"}, IDs: []string{"s3", "s2"}}, []string{"s2"}},
		{store.SiteFilter{FactoryAccess: true}, []string{"s3"}},
		{store.SiteFilter{FactoryAccess: true, TenantIDs: []string{"acme"}}, []string{}},
	} {
		got, err := s.ListSites(ctx(t), tc.f)
		if err != nil || got == nil || !slices.Equal(siteIDs(got), tc.want) {
			t.Errorf("ListSites(%+v) = %v, %v; want %v", tc.f, siteIDs(got), err, tc.want)
		}
	}
	list, _ := s.ListSites(ctx(t), store.SiteFilter{IDs: []string{"s2"}})
	if len(list) != 1 || list[0].Address != want.Address || list[0].Name != "Plant 2" {
		t.Errorf("ListSites row = %+v", list)
	}
}

func testFactoryAccess(t *testing.T, s store.Store) {
	mustSite(t, s, "s1", store.RootTenantID)
	on := t0.Add(time.Hour + 1234567*time.Nanosecond)
	if err := s.SetFactoryAccess(ctx(t), "s1", true, on); err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetSite(ctx(t), "s1")
	if !got.FactoryAccess || !got.FactoryAccessChangedAt.Equal(on.Truncate(time.Millisecond)) {
		t.Fatalf("after switching on: %+v", got)
	}
	// Setting it again is no switch: the time stays.
	if err := s.SetFactoryAccess(ctx(t), "s1", true, on.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetSite(ctx(t), "s1"); !got.FactoryAccess || !got.FactoryAccessChangedAt.Equal(on.Truncate(time.Millisecond)) {
		t.Fatalf("after switching on again: %+v", got)
	}
	off := on.Add(2 * time.Hour)
	if err := s.SetFactoryAccess(ctx(t), "s1", false, off); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetSite(ctx(t), "s1"); got.FactoryAccess || !got.FactoryAccessChangedAt.Equal(off.Truncate(time.Millisecond)) {
		t.Fatalf("after switching off: %+v", got)
	}
	wantErr(t, "SetFactoryAccess(ghost)", s.SetFactoryAccess(ctx(t), "ghost", true, t0), store.ErrNotFound)
}

func testDeleteSite(t *testing.T, s store.Store) {
	subTenant(t, s, "acme", store.RootTenantID)
	mustSite(t, s, "doomed", "acme")
	mustSite(t, s, "kept", "acme")
	mustDevice(t, s, "d1", "acme", store.DeviceInfo{SiteID: "doomed", Name: "Pump 1"})
	mustDevice(t, s, "d2", "acme", store.DeviceInfo{SiteID: "kept"})
	mustSupporter(t, s, "tech", "acme")
	for _, g := range []store.Grant{
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
	if err := s.DeleteSite(ctx(t), "doomed", at); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSite(ctx(t), "doomed"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted site still there: %v", err)
	}
	d1, err := s.GetDevice(ctx(t), "d1")
	if err != nil || d1.Info.SiteID != "" || d1.Info.Name != "Pump 1" {
		t.Fatalf("device of the deleted site = %+v, %v; want it kept, unassigned", d1, err)
	}
	if d2, _ := s.GetDevice(ctx(t), "d2"); d2.Info.SiteID != "kept" {
		t.Fatalf("device of another site = %+v", d2)
	}
	if devs, err := s.FindDevices(ctx(t), store.DeviceFilter{SiteIDs: []string{"doomed"}}); err != nil || len(devs) != 0 {
		t.Fatalf("FindDevices(deleted site) = %v, %v", ids(devs), err)
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
	wantErr(t, "DeleteSite again", s.DeleteSite(ctx(t), "doomed", at), store.ErrNotFound)
}

func testUsers(t *testing.T, s store.Store) {
	subTenant(t, s, "acme", store.RootTenantID)
	subTenant(t, s, "installers", store.RootTenantID)
	want := store.User{ID: "u1", TenantID: "acme", Email: "Ann.Admin@Example.com", FirstName: "Ann", LastName: "Admin",
		Phone: "+43 1", Company: "ACME", Address: store.Address{City: "Wien", Country: "AT"}, Role: store.RoleCustomerAdmin,
		Status: store.UserPending, CreatedBy: "op", CreatedAt: t0}
	mustUser(t, s, want)
	got, err := s.GetUser(ctx(t), "u1")
	want.Email = "ann.admin@example.com" // stored in lower case
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) || !got.CreatedAt.Equal(t0) {
		t.Fatalf("GetUser =\n%+v, %v\nwant\n%+v", got, err, want)
	}
	if !got.LockedUntil.IsZero() || !got.LastLoginAt.IsZero() || got.TOTPSecret != nil || got.SupporterID != "" {
		t.Fatalf("GetUser optional fields = %+v", got)
	}

	tech := mustSupporter(t, s, "tech1", "installers")
	mustUser(t, s, newUser("u2", "acme", store.RoleCustomerUser)) // a second user without supporter id
	mustUser(t, s, newUser("op", store.RootTenantID, store.RoleOperatorAdmin))

	dupEmail := newUser("u9", "acme", store.RoleCustomerUser)
	dupEmail.Email = "ANN.ADMIN@example.com"
	wantErr(t, "CreateUser with a taken e-mail address", s.CreateUser(ctx(t), dupEmail), store.ErrConflict)
	dupSupporter := newUser("u9", "installers", store.RoleSupporter)
	dupSupporter.SupporterID = tech.SupporterID
	wantErr(t, "CreateUser with a taken supporter id", s.CreateUser(ctx(t), dupSupporter), store.ErrConflict)
	wantErr(t, "CreateUser with a taken id", s.CreateUser(ctx(t), newUser("u2", "acme", store.RoleCustomerUser)), store.ErrConflict)
	wantErr(t, "CreateUser of a missing tenant", s.CreateUser(ctx(t), newUser("u9", "ghost", store.RoleCustomerUser)), store.ErrNotFound)

	if got, err := s.UserByEmail(ctx(t), "ann.admin@EXAMPLE.com"); err != nil || got.ID != "u1" {
		t.Errorf("UserByEmail = %v, %v", got.ID, err)
	}
	if _, err := s.UserByEmail(ctx(t), "nobody@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UserByEmail(unknown) error = %v", err)
	}
	if got, err := s.UserBySupporterID(ctx(t), tech.SupporterID); err != nil || got.ID != "tech1" || got.Role != store.RoleSupporter {
		t.Errorf("UserBySupporterID = %+v, %v", got, err)
	}
	for _, id := range []string{"", "S-nobody"} {
		if _, err := s.UserBySupporterID(ctx(t), id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UserBySupporterID(%q) error = %v", id, err)
		}
	}
	if _, err := s.GetUser(ctx(t), "ghost"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetUser(ghost) error = %v", err)
	}

	for _, tc := range []struct {
		tenants []string
		want    []string
	}{
		{nil, []string{"op", "tech1", "u1", "u2"}},
		{[]string{"acme"}, []string{"u1", "u2"}},
		{[]string{"installers", store.RootTenantID}, []string{"op", "tech1"}},
		{[]string{}, []string{}},
		{[]string{"ghost"}, []string{}},
	} {
		got, err := s.ListUsers(ctx(t), tc.tenants)
		if err != nil || got == nil || !slices.Equal(userIDs(got), tc.want) {
			t.Errorf("ListUsers(%v) = %v, %v; want %v", tc.tenants, userIDs(got), err, tc.want)
		}
	}

	upd := want
	upd.FirstName, upd.LastName, upd.Phone, upd.Company = "Anna", "Adm", "+43 2", "ACME AG"
	upd.Address = store.Address{Street: "Ring 1", City: "Graz"}
	upd.Role, upd.Status = store.RoleCustomerUser, store.UserDisabled
	upd.Email, upd.SupporterID, upd.TenantID, upd.PasswordHash = "other@example.com", "S-x", "installers", "x" // not changed
	if err := s.UpdateUser(ctx(t), upd); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetUser(ctx(t), "u1")
	if got.FirstName != "Anna" || got.LastName != "Adm" || got.Phone != "+43 2" || got.Company != "ACME AG" ||
		got.Address != upd.Address || got.Role != store.RoleCustomerUser || got.Status != store.UserDisabled {
		t.Fatalf("after UpdateUser = %+v", got)
	}
	if got.Email != "ann.admin@example.com" || got.SupporterID != "" || got.TenantID != "acme" || got.PasswordHash != "" {
		t.Fatalf("UpdateUser changed more than it should: %+v", got)
	}
	wantErr(t, "UpdateUser(ghost)", s.UpdateUser(ctx(t), store.User{ID: "ghost"}), store.ErrNotFound)
}

func testUserPasswordAndTOTP(t *testing.T, s store.Store) {
	mustUser(t, s, newUser("u1", store.RootTenantID, store.RoleOperatorAdmin))
	if err := s.SetPassword(ctx(t), "u1", "$argon2id$v=19$hash1"); err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetUser(ctx(t), "u1")
	if got.PasswordHash != "$argon2id$v=19$hash1" || got.Status != store.UserActive || got.FailedLogins != 0 || !got.LockedUntil.IsZero() {
		t.Fatalf("after SetPassword = %+v; want active, no failures, no lock", got)
	}

	// A disabled account stays disabled.
	got.Status = store.UserDisabled
	if err := s.UpdateUser(ctx(t), got); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPassword(ctx(t), "u1", "hash2"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetUser(ctx(t), "u1"); got.PasswordHash != "hash2" || got.Status != store.UserDisabled {
		t.Fatalf("SetPassword of a disabled account = %+v", got)
	}
	wantErr(t, "SetPassword(ghost)", s.SetPassword(ctx(t), "ghost", "h"), store.ErrNotFound)

	sealed := []byte("sealed-totp-secret")
	if err := s.SetTOTP(ctx(t), "u1", sealed, false); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetUser(ctx(t), "u1"); !bytes.Equal(got.TOTPSecret, sealed) || got.TOTPEnabled {
		t.Fatalf("after SetTOTP(unconfirmed) = %+v", got)
	}
	if err := s.SetTOTP(ctx(t), "u1", sealed, true); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetUser(ctx(t), "u1"); !bytes.Equal(got.TOTPSecret, sealed) || !got.TOTPEnabled {
		t.Fatalf("after SetTOTP(confirmed) = %+v", got)
	}
	if err := s.SetTOTP(ctx(t), "u1", nil, false); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetUser(ctx(t), "u1"); got.TOTPSecret != nil || got.TOTPEnabled {
		t.Fatalf("after removing TOTP = %+v", got)
	}
	wantErr(t, "SetTOTP(ghost)", s.SetTOTP(ctx(t), "ghost", nil, false), store.ErrNotFound)
}

func testLoginSucceeded(t *testing.T, s store.Store) {
	mustUser(t, s, newUser("u1", store.RootTenantID, store.RoleOperatorAdmin))
	login := t0.Add(2 * time.Hour)
	if err := s.LoginSucceeded(ctx(t), "u1", login); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetUser(ctx(t), "u1"); got.FailedLogins != 0 || !got.LastLoginAt.Equal(login) || !got.LockedUntil.IsZero() {
		t.Fatalf("after LoginSucceeded: %+v", got)
	}
	wantErr(t, "LoginSucceeded(ghost)", s.LoginSucceeded(ctx(t), "ghost", t0), store.ErrNotFound)
}

// testSignInFailuresConcurrent: concurrent failures of one address are
// each counted once, and the lock falls on every max-th.
func testSignInFailuresConcurrent(t *testing.T, s store.Store) {
	key := []byte("key")
	const workers, each, max = 4, 5, 7
	var wg sync.WaitGroup
	var mu sync.Mutex
	var counts []int
	locks := 0
	for range workers {
		wg.Go(func() {
			for range each {
				f, err := s.AddSignInFailure(ctx(t), key, t0, time.Hour, max, time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				counts = append(counts, f.Failures)
				if f.Failures == 0 {
					locks++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// 20 failures with max 7: locks at the 7th and 14th, 6 counted since.
	got, _ := s.SignInFailures(ctx(t), key)
	if got.Failures != workers*each%max || locks != workers*each/max {
		t.Fatalf("after %d concurrent failures: %d counted, %d locks (counts %v); want %d, %d",
			workers*each, got.Failures, locks, counts, workers*each%max, workers*each/max)
	}
	slices.Sort(counts)
	want := []int{}
	for i := 1; i <= workers*each; i++ {
		want = append(want, i%max)
	}
	slices.Sort(want)
	if !slices.Equal(counts, want) {
		t.Fatalf("counts returned = %v; want each value once: %v", counts, want)
	}
}

func testDeleteUser(t *testing.T, s store.Store) {
	subTenant(t, s, "acme", store.RootTenantID)
	mustSite(t, s, "site", "acme")
	mustSupporter(t, s, "tech", store.RootTenantID)
	mustSupporter(t, s, "other", store.RootTenantID)
	if err := s.CreateSession(ctx(t), store.Session{ID: "sess", UserID: "tech", Hash: hash(1), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUserToken(ctx(t), store.UserToken{Hash: hash(2), UserID: "tech", Purpose: store.PurposeActivate, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAPIToken(ctx(t), store.APIToken{ID: "tok", TenantID: store.RootTenantID, UserID: "tech", Name: "t",
		Role: store.RoleSupporter, Hash: hash(3), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	for _, g := range []store.Grant{
		{ID: "g-tech", TenantID: "acme", SupporterUserID: "tech", SiteID: "site", CreatedBy: "tech", CreatedAt: t0},
		{ID: "g-other", TenantID: "acme", SupporterUserID: "other", SiteID: "site", CreatedBy: "tech", CreatedAt: t0},
	} {
		if err := s.CreateGrant(ctx(t), g); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteUser(ctx(t), "tech"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUser(ctx(t), "tech"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted user still there: %v", err)
	}
	if _, err := s.UserBySupporterID(ctx(t), "S-tech"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted user's supporter id still found: %v", err)
	}
	if _, err := s.SessionByHash(ctx(t), hash(1)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("session of a deleted user: %v", err)
	}
	if _, err := s.ConsumeUserToken(ctx(t), hash(2), store.PurposeActivate, t0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("one-time token of a deleted user: %v", err)
	}
	if _, err := s.APITokenByHash(ctx(t), hash(3)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("api token of a deleted user: %v", err)
	}
	if _, err := s.GetGrant(ctx(t), "g-tech"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("grant to a deleted user: %v", err)
	}
	if g, err := s.GetGrant(ctx(t), "g-other"); err != nil || g.CreatedBy != "tech" {
		t.Errorf("grant made by the deleted user to another = %+v, %v; want it kept", g, err)
	}
	wantErr(t, "DeleteUser again", s.DeleteUser(ctx(t), "tech"), store.ErrNotFound)
	// The e-mail address and supporter id are free again.
	mustSupporter(t, s, "tech", store.RootTenantID)
}

func testSessions(t *testing.T, s store.Store) {
	mustUser(t, s, newUser("u1", store.RootTenantID, store.RoleOperatorAdmin))
	mustUser(t, s, newUser("u2", store.RootTenantID, store.RoleOperatorAdmin))
	want := store.Session{ID: "s1", UserID: "u1", Hash: hash(1), CreatedAt: t0, LastSeenAt: t0,
		ExpiresAt: t0.Add(12 * time.Hour), IP: "192.0.2.1", UserAgent: "Firefox"}
	for _, se := range []store.Session{
		want,
		{ID: "s2", UserID: "u1", Hash: hash(2), CreatedAt: t0.Add(time.Minute), LastSeenAt: t0.Add(time.Minute), ExpiresAt: t0.Add(time.Hour)},
		{ID: "s3", UserID: "u2", Hash: hash(3), CreatedAt: t0, LastSeenAt: t0, ExpiresAt: t0.Add(time.Hour)},
	} {
		if err := s.CreateSession(ctx(t), se); err != nil {
			t.Fatal(err)
		}
	}
	wantErr(t, "CreateSession with a taken id", s.CreateSession(ctx(t), store.Session{ID: "s1", UserID: "u2", Hash: hash(9), CreatedAt: t0}), store.ErrConflict)
	wantErr(t, "CreateSession with a taken hash", s.CreateSession(ctx(t), store.Session{ID: "s9", UserID: "u2", Hash: hash(1), CreatedAt: t0}), store.ErrConflict)
	wantErr(t, "CreateSession of a missing user", s.CreateSession(ctx(t), store.Session{ID: "s9", UserID: "ghost", Hash: hash(9), CreatedAt: t0}), store.ErrNotFound)

	got, err := s.SessionByHash(ctx(t), hash(1))
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("SessionByHash = %+v, %v; want %+v", got, err, want)
	}
	if _, err := s.SessionByHash(ctx(t), hash(9)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SessionByHash(unknown) error = %v", err)
	}
	seen, expires := t0.Add(30*time.Minute), t0.Add(24*time.Hour)
	if err := s.TouchSession(ctx(t), "s1", seen, expires); err != nil {
		t.Fatal(err)
	}
	got, _ = s.SessionByHash(ctx(t), hash(1))
	if !got.LastSeenAt.Equal(seen) || !got.ExpiresAt.Equal(expires) || !got.CreatedAt.Equal(t0) {
		t.Fatalf("after TouchSession = %+v", got)
	}
	wantErr(t, "TouchSession(ghost)", s.TouchSession(ctx(t), "ghost", seen, expires), store.ErrNotFound)

	list, err := s.ListSessions(ctx(t), "u1")
	if err != nil || len(list) != 2 || list[0].ID != "s1" || list[1].ID != "s2" || !list[0].LastSeenAt.Equal(seen) {
		t.Fatalf("ListSessions(u1) = %+v, %v", list, err)
	}
	if list, err := s.ListSessions(ctx(t), "ghost"); err != nil || list == nil || len(list) != 0 {
		t.Fatalf("ListSessions(ghost) = %v, %v; want empty", list, err)
	}

	if err := s.DeleteSession(ctx(t), "s2"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "DeleteSession again", s.DeleteSession(ctx(t), "s2"), store.ErrNotFound)
	if list, _ := s.ListSessions(ctx(t), "u1"); len(list) != 1 {
		t.Fatalf("after DeleteSession: %+v", list)
	}
	if err := s.DeleteUserSessions(ctx(t), "u1"); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.ListSessions(ctx(t), "u1"); len(list) != 0 {
		t.Fatalf("after DeleteUserSessions: %+v", list)
	}
	if list, _ := s.ListSessions(ctx(t), "u2"); len(list) != 1 {
		t.Fatalf("DeleteUserSessions took another user's session: %+v", list)
	}
	if err := s.DeleteUserSessions(ctx(t), "u1"); err != nil {
		t.Fatalf("DeleteUserSessions without sessions: %v", err)
	}
}

func testUserTokens(t *testing.T, s store.Store) {
	mustUser(t, s, newUser("u1", store.RootTenantID, store.RoleOperatorAdmin))
	mustUser(t, s, newUser("u2", store.RootTenantID, store.RoleOperatorAdmin))
	exp := t0.Add(24 * time.Hour)
	tok := store.UserToken{Hash: hash(1), UserID: "u1", Purpose: store.PurposeActivate, CreatedAt: t0, ExpiresAt: exp}
	if err := s.CreateUserToken(ctx(t), tok); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsumeUserToken(ctx(t), hash(1), store.PurposeReset, t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("consuming for another purpose: %v", err)
	}
	if _, err := s.ConsumeUserToken(ctx(t), hash(1), store.PurposeActivate, exp); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("consuming at the expiry: %v", err)
	}
	got, err := s.ConsumeUserToken(ctx(t), hash(1), store.PurposeActivate, exp.Add(-time.Millisecond))
	if err != nil || fmt.Sprint(got) != fmt.Sprint(tok) {
		t.Fatalf("ConsumeUserToken = %+v, %v; want %+v", got, err, tok)
	}
	if _, err := s.ConsumeUserToken(ctx(t), hash(1), store.PurposeActivate, t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second ConsumeUserToken error = %v, want ErrNotFound", err)
	}

	// A new token replaces the user's unused one of the same purpose, not
	// those of other purposes or users.
	for _, ut := range []store.UserToken{
		{Hash: hash(2), UserID: "u1", Purpose: store.PurposeReset, CreatedAt: t0, ExpiresAt: exp},
		{Hash: hash(3), UserID: "u1", Purpose: store.PurposeActivate, CreatedAt: t0, ExpiresAt: exp},
		{Hash: hash(4), UserID: "u2", Purpose: store.PurposeReset, CreatedAt: t0, ExpiresAt: exp},
		{Hash: hash(5), UserID: "u1", Purpose: store.PurposeReset, CreatedAt: t0.Add(time.Minute), ExpiresAt: exp},
	} {
		if err := s.CreateUserToken(ctx(t), ut); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.ConsumeUserToken(ctx(t), hash(2), store.PurposeReset, t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("replaced token still works: %v", err)
	}
	for _, c := range []struct {
		h       byte
		purpose string
		user    string
	}{{5, store.PurposeReset, "u1"}, {3, store.PurposeActivate, "u1"}, {4, store.PurposeReset, "u2"}} {
		if got, err := s.ConsumeUserToken(ctx(t), hash(c.h), c.purpose, t0); err != nil || got.UserID != c.user || got.Purpose != c.purpose {
			t.Errorf("token %d = %+v, %v", c.h, got, err)
		}
	}

	// An expired token is not found.
	if err := s.CreateUserToken(ctx(t), store.UserToken{Hash: hash(6), UserID: "u2", Purpose: store.PurposeReset, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsumeUserToken(ctx(t), hash(6), store.PurposeReset, t0.Add(2*time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired token: %v", err)
	}
	wantErr(t, "CreateUserToken of a missing user",
		s.CreateUserToken(ctx(t), store.UserToken{Hash: hash(7), UserID: "ghost", Purpose: store.PurposeReset, CreatedAt: t0, ExpiresAt: exp}), store.ErrNotFound)
}

func testUserTokenConcurrentConsume(t *testing.T, s store.Store) {
	mustUser(t, s, newUser("u1", store.RootTenantID, store.RoleOperatorAdmin))
	if err := s.CreateUserToken(ctx(t), store.UserToken{Hash: hash(1), UserID: "u1", Purpose: store.PurposeReset, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	const workers = 8
	var wg sync.WaitGroup
	results := make([]error, workers)
	for i := range workers {
		wg.Go(func() { _, results[i] = s.ConsumeUserToken(ctx(t), hash(1), store.PurposeReset, t0) })
	}
	wg.Wait()
	ok := 0
	for _, err := range results {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrNotFound):
			t.Errorf("ConsumeUserToken: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d concurrent consumers got the token; want 1", ok, workers)
	}
}

func testUserAPITokens(t *testing.T, s store.Store) {
	subTenant(t, s, "acme", store.RootTenantID)
	mustUser(t, s, newUser("ann", "acme", store.RoleCustomerAdmin))
	mustUser(t, s, newUser("bob", "acme", store.RoleCustomerUser))
	boot := store.APIToken{ID: "boot", TenantID: store.RootTenantID, Name: "bootstrap", Role: store.RoleOperatorAdmin,
		Hash: hash(1), CreatedAt: t0}
	want := store.APIToken{ID: "t1", TenantID: "acme", UserID: "ann", Name: "ci", Role: store.RoleCustomerAdmin,
		Scopes: []string{store.ScopeRead, store.ScopeWrite}, Hash: hash(2), CreatedAt: t0.Add(time.Second),
		ExpiresAt: t0.Add(90 * 24 * time.Hour)}
	for _, tok := range []store.APIToken{
		boot, want,
		{ID: "t2", TenantID: "acme", UserID: "ann", Name: "ro", Role: store.RoleCustomerAdmin, Scopes: []string{store.ScopeRead},
			Hash: hash(3), CreatedAt: t0.Add(2 * time.Second)},
		{ID: "t3", TenantID: "acme", UserID: "bob", Name: "bob", Role: store.RoleCustomerUser, Hash: hash(4), CreatedAt: t0},
	} {
		if err := s.CreateAPIToken(ctx(t), tok); err != nil {
			t.Fatalf("CreateAPIToken(%s): %v", tok.ID, err)
		}
	}
	wantErr(t, "CreateAPIToken for a user of another tenant", s.CreateAPIToken(ctx(t), store.APIToken{ID: "t9", TenantID: store.RootTenantID,
		UserID: "ann", Name: "x", Role: store.RoleOperatorAdmin, Hash: hash(9), CreatedAt: t0}), store.ErrNotFound)
	wantErr(t, "CreateAPIToken for a missing user", s.CreateAPIToken(ctx(t), store.APIToken{ID: "t9", TenantID: "acme",
		UserID: "ghost", Name: "x", Role: store.RoleCustomerUser, Hash: hash(9), CreatedAt: t0}), store.ErrNotFound)
	wantErr(t, "CreateAPIToken with a taken hash", s.CreateAPIToken(ctx(t), store.APIToken{ID: "t9", TenantID: "acme",
		UserID: "bob", Name: "x", Role: store.RoleCustomerUser, Hash: hash(2), CreatedAt: t0}), store.ErrConflict)
	if err := s.CreateAPIToken(ctx(t), store.APIToken{ID: "t9", TenantID: "acme", Name: "x", Role: store.RoleCustomerUser,
		Scopes: []string{"read write"}, Hash: hash(9), CreatedAt: t0}); err == nil {
		t.Error("CreateAPIToken accepted a scope with a space")
	}

	same := func(got, want store.APIToken) bool {
		return got.ID == want.ID && got.TenantID == want.TenantID && got.UserID == want.UserID && got.Name == want.Name &&
			got.Role == want.Role && slices.Equal(got.Scopes, want.Scopes) && bytes.Equal(got.Hash, want.Hash) &&
			got.CreatedAt.Equal(want.CreatedAt) && got.ExpiresAt.Equal(want.ExpiresAt) && got.LastUsedAt.Equal(want.LastUsedAt)
	}
	if got, err := s.APITokenByHash(ctx(t), hash(2)); err != nil || !same(got, want) {
		t.Fatalf("APITokenByHash = %+v, %v; want %+v", got, err, want)
	}
	if got, err := s.GetAPIToken(ctx(t), "t1"); err != nil || !same(got, want) {
		t.Fatalf("GetAPIToken = %+v, %v; want %+v", got, err, want)
	}
	if got, err := s.GetAPIToken(ctx(t), "boot"); err != nil || !same(got, boot) || len(got.Scopes) != 0 || !got.ExpiresAt.IsZero() {
		t.Fatalf("GetAPIToken(boot) = %+v, %v; want %+v", got, err, boot)
	}
	if _, err := s.GetAPIToken(ctx(t), "ghost"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetAPIToken(ghost) error = %v", err)
	}

	list, err := s.ListAPITokens(ctx(t), "ann")
	if err != nil || len(list) != 2 || !same(list[0], want) || list[1].ID != "t2" || !slices.Equal(list[1].Scopes, []string{"read"}) {
		t.Fatalf("ListAPITokens(ann) = %+v, %v", list, err)
	}
	if list, err := s.ListAPITokens(ctx(t), ""); err != nil || len(list) != 1 || list[0].ID != "boot" {
		t.Fatalf("ListAPITokens(\"\") = %+v, %v; want the token without a user", list, err)
	}
	if list, err := s.ListAPITokens(ctx(t), "ghost"); err != nil || list == nil || len(list) != 0 {
		t.Fatalf("ListAPITokens(ghost) = %v, %v; want empty", list, err)
	}

	used := t0.Add(time.Hour + 999*time.Microsecond)
	if err := s.TouchAPIToken(ctx(t), "t1", used); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.APITokenByHash(ctx(t), hash(2)); !got.LastUsedAt.Equal(used.Truncate(time.Millisecond)) {
		t.Fatalf("after TouchAPIToken: %+v", got)
	}
	wantErr(t, "TouchAPIToken(ghost)", s.TouchAPIToken(ctx(t), "ghost", used), store.ErrNotFound)

	if err := s.DeleteAPIToken(ctx(t), "t1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.APITokenByHash(ctx(t), hash(2)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted token still found: %v", err)
	}
	wantErr(t, "DeleteAPIToken again", s.DeleteAPIToken(ctx(t), "t1"), store.ErrNotFound)
	if list, _ := s.ListAPITokens(ctx(t), "ann"); len(list) != 1 || list[0].ID != "t2" {
		t.Fatalf("after delete ListAPITokens(ann) = %+v", list)
	}
}

func testGrants(t *testing.T, s store.Store) {
	subTenant(t, s, "acme", store.RootTenantID)
	subTenant(t, s, "beta", store.RootTenantID)
	mustSite(t, s, "sa", "acme")
	mustSite(t, s, "sb", "beta")
	mustDevice(t, s, "da", "acme", store.DeviceInfo{})
	mustDevice(t, s, "db", "beta", store.DeviceInfo{})
	mustSupporter(t, s, "tech1", store.RootTenantID)
	mustSupporter(t, s, "tech2", store.RootTenantID)

	want := store.Grant{ID: "g1", TenantID: "acme", SupporterUserID: "tech1", SiteID: "sa", CreatedBy: "ann", CreatedAt: t0}
	grants := []store.Grant{
		want,
		{ID: "g2", TenantID: "acme", SupporterUserID: "tech1", DeviceID: "da", ExpiresAt: t0.Add(time.Hour), CreatedBy: "ann", CreatedAt: t0.Add(time.Second)},
		{ID: "g3", TenantID: "beta", SupporterUserID: "tech1", SiteID: "sb", CreatedBy: "bea", CreatedAt: t0.Add(2 * time.Second)},
		{ID: "g4", TenantID: "acme", SupporterUserID: "tech2", SiteID: "sa", CreatedBy: "ann", CreatedAt: t0.Add(3 * time.Second)},
		{ID: "g5", TenantID: "beta", SupporterUserID: "tech2", DeviceID: "db", CreatedBy: "bea", CreatedAt: t0.Add(4 * time.Second)},
	}
	for _, g := range grants {
		if err := s.CreateGrant(ctx(t), g); err != nil {
			t.Fatalf("CreateGrant(%s): %v", g.ID, err)
		}
	}
	for name, g := range map[string]store.Grant{
		"of another tenant's site":   {ID: "x", TenantID: "acme", SupporterUserID: "tech1", SiteID: "sb", CreatedAt: t0},
		"of another tenant's device": {ID: "x", TenantID: "acme", SupporterUserID: "tech1", DeviceID: "db", CreatedAt: t0},
		"of a missing site":          {ID: "x", TenantID: "acme", SupporterUserID: "tech1", SiteID: "ghost", CreatedAt: t0},
		"to a missing supporter":     {ID: "x", TenantID: "acme", SupporterUserID: "ghost", SiteID: "sa", CreatedAt: t0},
	} {
		wantErr(t, "CreateGrant "+name, s.CreateGrant(ctx(t), g), store.ErrNotFound)
	}
	wantErr(t, "CreateGrant with a taken id", s.CreateGrant(ctx(t), store.Grant{ID: "g1", TenantID: "acme", SupporterUserID: "tech2",
		DeviceID: "da", CreatedAt: t0}), store.ErrConflict)
	for _, g := range []store.Grant{
		{ID: "x", TenantID: "acme", SupporterUserID: "tech1", CreatedAt: t0},
		{ID: "x", TenantID: "acme", SupporterUserID: "tech1", SiteID: "sa", DeviceID: "da", CreatedAt: t0},
	} {
		if err := s.CreateGrant(ctx(t), g); err == nil {
			t.Errorf("CreateGrant(%+v) accepted a grant without exactly one target", g)
		}
	}

	got, err := s.GetGrant(ctx(t), "g1")
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) || !got.Active(t0) {
		t.Fatalf("GetGrant = %+v, %v; want %+v", got, err, want)
	}
	if got, _ := s.GetGrant(ctx(t), "g2"); got.DeviceID != "da" || got.SiteID != "" || !got.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("GetGrant(g2) = %+v", got)
	}
	if _, err := s.GetGrant(ctx(t), "ghost"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetGrant(ghost) error = %v", err)
	}

	revokeAt := t0.Add(time.Minute)
	if err := s.RevokeGrant(ctx(t), "g4", "ann", revokeAt); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetGrant(ctx(t), "g4")
	if !got.RevokedAt.Equal(revokeAt) || got.RevokedBy != "ann" || got.Active(revokeAt) {
		t.Fatalf("revoked grant = %+v", got)
	}
	wantErr(t, "RevokeGrant twice", s.RevokeGrant(ctx(t), "g4", "bob", revokeAt.Add(time.Minute)), store.ErrConflict)
	if got, _ := s.GetGrant(ctx(t), "g4"); got.RevokedBy != "ann" || !got.RevokedAt.Equal(revokeAt) {
		t.Fatalf("second RevokeGrant changed the grant: %+v", got)
	}
	wantErr(t, "RevokeGrant(ghost)", s.RevokeGrant(ctx(t), "ghost", "ann", revokeAt), store.ErrNotFound)

	for _, tc := range []struct {
		f    store.GrantFilter
		want []string
	}{
		{store.GrantFilter{}, []string{"g1", "g2", "g3", "g4", "g5"}},
		{store.GrantFilter{TenantIDs: []string{"acme"}}, []string{"g1", "g2", "g4"}},
		{store.GrantFilter{TenantIDs: []string{"acme", "beta"}}, []string{"g1", "g2", "g3", "g4", "g5"}},
		{store.GrantFilter{TenantIDs: []string{}}, []string{}},
		{store.GrantFilter{SupporterUserID: "tech2"}, []string{"g4", "g5"}},
		{store.GrantFilter{SiteID: "sa"}, []string{"g1", "g4"}},
		{store.GrantFilter{DeviceID: "da"}, []string{"g2"}},
		{store.GrantFilter{SupporterUserID: "tech1", TenantIDs: []string{"beta"}}, []string{"g3"}},
		{store.GrantFilter{ActiveAt: t0.Add(30 * time.Minute)}, []string{"g1", "g2", "g3", "g5"}}, // g4 revoked
		{store.GrantFilter{ActiveAt: t0.Add(time.Hour)}, []string{"g1", "g3", "g5"}},              // g2 expired
		// Revoked is revoked at any time (Grant.Active), even before
		// the revocation.
		{store.GrantFilter{ActiveAt: t0.Add(30 * time.Second)}, []string{"g1", "g2", "g3", "g5"}},
		{store.GrantFilter{ActiveAt: t0.Add(time.Hour), SupporterUserID: "tech1", TenantIDs: []string{"acme"}}, []string{"g1"}},
	} {
		got, err := s.ListGrants(ctx(t), tc.f)
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

func testAuditOwnerTenant(t *testing.T, s store.Store) {
	for i, owner := range []string{"acme", "", "beta", "acme", "gamma"} {
		tenant := store.RootTenantID
		if i%2 == 1 {
			tenant = "acme"
		}
		appendAudit(t, s, store.AuditEntry{At: t0, TenantID: tenant, Action: "x", Target: fmt.Sprint("t", i),
			OwnerTenantID: owner, Outcome: "success", Status: 200})
	}
	all, err := s.ListAudit(ctx(t), store.AuditFilter{})
	if err != nil || len(all) != 5 {
		t.Fatalf("ListAudit = %d entries, %v", len(all), err)
	}
	for i, owner := range []string{"acme", "", "beta", "acme", "gamma"} {
		if all[i].OwnerTenantID != owner {
			t.Errorf("entry %d owner = %q, want %q", all[i].Seq, all[i].OwnerTenantID, owner)
		}
	}
	seqs := func(f store.AuditFilter) string {
		t.Helper()
		es, err := s.ListAudit(ctx(t), f)
		if err != nil {
			t.Fatal(err)
		}
		out := []int64{}
		for _, e := range es {
			out = append(out, e.Seq)
		}
		return fmt.Sprint(out)
	}
	for _, tc := range []struct {
		f    store.AuditFilter
		want string
	}{
		{store.AuditFilter{OwnerTenantIDs: []string{"acme"}}, "[1 4]"},
		{store.AuditFilter{OwnerTenantIDs: []string{"acme", "gamma"}}, "[1 4 5]"},
		{store.AuditFilter{OwnerTenantIDs: []string{"ghost"}}, "[]"},
		{store.AuditFilter{OwnerTenantIDs: []string{}}, "[]"},
		{store.AuditFilter{OwnerTenantIDs: []string{"acme", "beta"}, TenantID: store.RootTenantID}, "[1 3]"},
		{store.AuditFilter{OwnerTenantIDs: []string{"acme", "beta", "gamma"}, After: 1, Limit: 2}, "[3 4]"},
	} {
		if got := seqs(tc.f); got != tc.want {
			t.Errorf("ListAudit(%+v) = %s, want %s", tc.f, got, tc.want)
		}
	}
}
