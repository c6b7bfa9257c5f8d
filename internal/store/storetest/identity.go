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
// basic methods (device info, API tokens of users). Tenants and sites are
// tested in tenancy/tenancysql, grants in access/accesssql, the audit
// trail in audit/auditsql.
var identityTests = []suiteTest{
	{"DeviceInfo", testDeviceInfo},
	{"FindDevices", testFindDevices},
	{"Users", testUsers},
	{"UserPasswordAndTOTP", testUserPasswordAndTOTP},
	{"LoginSucceeded", testLoginSucceeded},
	{"SignInFailuresConcurrent", testSignInFailuresConcurrent},
	{"DeleteUser", testDeleteUser},
	{"Sessions", testSessions},
	{"UserTokens", testUserTokens},
	{"UserTokenConcurrentConsume", testUserTokenConcurrentConsume},
	{"UserAPITokens", testUserAPITokens},
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

func userIDs(us []store.User) []string {
	out := []string{}
	for _, u := range us {
		out = append(out, u.ID)
	}
	return out
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: error = %v, want %v", what, err, want)
	}
}

func testDeviceInfo(t *testing.T, s store.Store) {
	subTenant(t, s, "acme", store.RootTenantID)
	subTenant(t, s, "beta", store.RootTenantID)
	mustSite(t, s, "acme-1", "acme")
	mustSite(t, s, "acme-2", "acme")
	mustSite(t, s, "beta-1", "beta")
	info := store.DeviceInfo{SiteID: "acme-1", Name: "Boiler", SerialNumber: "P1234567", MeterNumber: "M-9",
		MeasurementLocation: "cellar", InstallationPlace: "room 3", Model: "WX-2", FirmwareVersion: "1.4.2"}
	mustDevice(t, s, "dev", "acme", info)
	got, err := s.GetDevice(ctx(t), "dev")
	if err != nil || got.Info != info {
		t.Fatalf("GetDevice.Info = %+v, %v; want %+v", got.Info, err, info)
	}
	if list, _ := s.ListDevices(ctx(t), "acme"); len(list) != 1 || list[0].Info != info {
		t.Fatalf("ListDevices = %+v", list)
	}
	if list, _ := s.FindDevices(ctx(t), store.DeviceFilter{}); len(list) != 1 || list[0].Info != info {
		t.Fatalf("FindDevices = %+v", list)
	}
	if got, _ := s.GetDevice(ctx(t), "dev"); !got.LastSeen.IsZero() || got.Status != store.DeviceEnabled {
		t.Fatalf("GetDevice = %+v", got)
	}

	info2 := store.DeviceInfo{SiteID: "acme-2", Name: "Boiler 2", Model: "WX-3"}
	if err := s.SetDeviceInfo(ctx(t), "acme", "dev", info2); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetDevice(ctx(t), "dev"); got.Info != info2 {
		t.Fatalf("after SetDeviceInfo: %+v, want %+v", got.Info, info2)
	}
	wantErr(t, "SetDeviceInfo with another tenant's site",
		s.SetDeviceInfo(ctx(t), "acme", "dev", store.DeviceInfo{SiteID: "beta-1"}), store.ErrNotFound)
	wantErr(t, "SetDeviceInfo with a missing site",
		s.SetDeviceInfo(ctx(t), "acme", "dev", store.DeviceInfo{SiteID: "ghost"}), store.ErrNotFound)
	wantErr(t, "SetDeviceInfo of another tenant's device",
		s.SetDeviceInfo(ctx(t), "beta", "dev", store.DeviceInfo{}), store.ErrNotFound)
	wantErr(t, "SetDeviceInfo of a missing device",
		s.SetDeviceInfo(ctx(t), "acme", "ghost", store.DeviceInfo{}), store.ErrNotFound)
	if got, _ := s.GetDevice(ctx(t), "dev"); got.Info != info2 {
		t.Fatalf("failed SetDeviceInfo changed the device: %+v", got.Info)
	}
	// Unassigning.
	if err := s.SetDeviceInfo(ctx(t), "acme", "dev", store.DeviceInfo{Name: "spare"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetDevice(ctx(t), "dev"); got.Info != (store.DeviceInfo{Name: "spare"}) {
		t.Fatalf("after unassigning: %+v", got.Info)
	}

	d := store.Device{ID: "dev2", TenantID: "acme", Status: store.DeviceEnabled, PrimaryKey: key(1), SecondaryKey: key(2),
		CreatedAt: t0, Info: store.DeviceInfo{SiteID: "beta-1"}}
	wantErr(t, "CreateDevice with another tenant's site", s.CreateDevice(ctx(t), d), store.ErrNotFound)
	if _, err := s.GetDevice(ctx(t), "dev2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("device created with another tenant's site: %v", err)
	}
}

func testFindDevices(t *testing.T, s store.Store) {
	subTenant(t, s, "acme", store.RootTenantID)
	subTenant(t, s, "beta", store.RootTenantID)
	mustSite(t, s, "sa", "acme")
	mustSite(t, s, "sb", "beta")
	mustDevice(t, s, "a1", "acme", store.DeviceInfo{SiteID: "sa", Model: "X"})
	mustDevice(t, s, "a2", "acme", store.DeviceInfo{Model: "Y"})
	mustDevice(t, s, "a3", "acme", store.DeviceInfo{SiteID: "sa", Model: "Y"})
	mustDevice(t, s, "b1", "beta", store.DeviceInfo{SiteID: "sb", Model: "X"})
	mustDevice(t, s, "r1", store.RootTenantID, store.DeviceInfo{})
	for _, tc := range []struct {
		f    store.DeviceFilter
		want []string
	}{
		{store.DeviceFilter{}, []string{"a1", "a2", "a3", "b1", "r1"}},
		{store.DeviceFilter{TenantIDs: []string{"acme"}}, []string{"a1", "a2", "a3"}},
		{store.DeviceFilter{TenantIDs: []string{"beta", store.RootTenantID}}, []string{"b1", "r1"}},
		{store.DeviceFilter{TenantIDs: []string{}}, []string{}},
		{store.DeviceFilter{SiteIDs: []string{"sa"}}, []string{"a1", "a3"}},
		{store.DeviceFilter{SiteIDs: []string{"sa", "sb"}}, []string{"a1", "a3", "b1"}},
		{store.DeviceFilter{SiteIDs: []string{}}, []string{}},
		{store.DeviceFilter{IDs: []string{"r1", "a2", "ghost"}}, []string{"a2", "r1"}},
		{store.DeviceFilter{IDs: []string{}}, []string{}},
		{store.DeviceFilter{Model: "X"}, []string{"a1", "b1"}},
		{store.DeviceFilter{Model: "Y", SiteIDs: []string{"sa"}}, []string{"a3"}},
		{store.DeviceFilter{TenantIDs: []string{"acme"}, IDs: []string{"a1", "b1"}}, []string{"a1"}},
		{store.DeviceFilter{After: "a2"}, []string{"a3", "b1", "r1"}},
		{store.DeviceFilter{Limit: 2}, []string{"a1", "a2"}},
		{store.DeviceFilter{After: "a2", Limit: 2}, []string{"a3", "b1"}},
		{store.DeviceFilter{TenantIDs: []string{"acme"}, After: "a1", Limit: 1}, []string{"a2"}},
		{store.DeviceFilter{After: "r1"}, []string{}},
	} {
		got, err := s.FindDevices(ctx(t), tc.f)
		if err != nil || got == nil || !slices.Equal(ids(got), tc.want) {
			t.Errorf("FindDevices(%+v) = %v, %v; want %v", tc.f, ids(got), err, tc.want)
		}
	}
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
