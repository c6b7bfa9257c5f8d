package identitysql_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/access"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/identity/identitysql"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/enginetest"
	"github.com/warden-iot/warden/internal/tenancy"
)

// TestStore runs the identity stores' conformance suite on each engine:
// the engine (store.Store) makes what the tests need besides (tenants,
// sites, grants), the identitysql.Store on its database is under test.
func TestStore(t *testing.T) {
	enginetest.RunTests(t, identitysql.New, []enginetest.Test[*identitysql.Store]{
		{Name: "APITokens", Fn: testAPITokens},
		{Name: "Users", Fn: testUsers},
		{Name: "UserPasswordAndTOTP", Fn: testUserPasswordAndTOTP},
		{Name: "LoginSucceeded", Fn: testLoginSucceeded},
		{Name: "SignInFailures", Fn: testSignInFailures},
		{Name: "SignInFailuresConcurrent", Fn: testSignInFailuresConcurrent},
		{Name: "DeleteUser", Fn: testDeleteUser},
		{Name: "Sessions", Fn: testSessions},
		{Name: "UserTokens", Fn: testUserTokens},
		{Name: "UserTokenConcurrentConsume", Fn: testUserTokenConcurrentConsume},
		{Name: "UserAPITokens", Fn: testUserAPITokens},
		{Name: "PurgeExpired", Fn: testPurgeExpired},
		{Name: "TOTPSteps", Fn: testTOTPSteps},
	})
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ctx(t *testing.T) context.Context { return t.Context() }

func hash(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func testUsers(t *testing.T, eng store.Store, s *identitysql.Store) {
	enginetest.Tenant(t, eng, "acme", tenancy.RootTenantID)
	enginetest.Tenant(t, eng, "installers", tenancy.RootTenantID)
	want := identity.User{ID: "u1", TenantID: "acme", Email: "Ann.Admin@Example.com", FirstName: "Ann", LastName: "Admin",
		Phone: "+43 1", Company: "ACME", Address: tenancy.Address{City: "Wien", Country: "AT"}, Role: identity.RoleCustomerAdmin,
		Status: identity.UserPending, CreatedBy: "op", CreatedAt: t0}
	enginetest.User(t, s, want)
	got, err := s.GetUser(ctx(t), "u1")
	want.Email = "ann.admin@example.com" // stored in lower case
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) || !got.CreatedAt.Equal(t0) {
		t.Fatalf("GetUser =\n%+v, %v\nwant\n%+v", got, err, want)
	}
	if !got.LockedUntil.IsZero() || !got.LastLoginAt.IsZero() || got.TOTPSecret != nil || got.SupporterID != "" {
		t.Fatalf("GetUser optional fields = %+v", got)
	}

	tech := enginetest.Supporter(t, s, "tech1", "installers")
	enginetest.User(t, s, enginetest.NewUser("u2", "acme", identity.RoleCustomerUser)) // a second user without supporter id
	enginetest.User(t, s, enginetest.NewUser("op", tenancy.RootTenantID, identity.RoleOperatorAdmin))

	dupEmail := enginetest.NewUser("u9", "acme", identity.RoleCustomerUser)
	dupEmail.Email = "ANN.ADMIN@example.com"
	enginetest.WantErr(t, "CreateUser with a taken e-mail address", s.CreateUser(ctx(t), dupEmail), database.ErrConflict)
	dupSupporter := enginetest.NewUser("u9", "installers", identity.RoleSupporter)
	dupSupporter.SupporterID = tech.SupporterID
	enginetest.WantErr(t, "CreateUser with a taken supporter id", s.CreateUser(ctx(t), dupSupporter), database.ErrConflict)
	enginetest.WantErr(t, "CreateUser with a taken id", s.CreateUser(ctx(t), enginetest.NewUser("u2", "acme", identity.RoleCustomerUser)), database.ErrConflict)
	enginetest.WantErr(t, "CreateUser of a missing tenant", s.CreateUser(ctx(t), enginetest.NewUser("u9", "ghost", identity.RoleCustomerUser)), database.ErrNotFound)

	if got, err := s.UserByEmail(ctx(t), "ann.admin@EXAMPLE.com"); err != nil || got.ID != "u1" {
		t.Errorf("UserByEmail = %v, %v", got.ID, err)
	}
	if _, err := s.UserByEmail(ctx(t), "nobody@example.com"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("UserByEmail(unknown) error = %v", err)
	}
	if got, err := s.UserBySupporterID(ctx(t), tech.SupporterID); err != nil || got.ID != "tech1" || got.Role != identity.RoleSupporter {
		t.Errorf("UserBySupporterID = %+v, %v", got, err)
	}
	for _, id := range []string{"", "S-nobody"} {
		if _, err := s.UserBySupporterID(ctx(t), id); !errors.Is(err, database.ErrNotFound) {
			t.Errorf("UserBySupporterID(%q) error = %v", id, err)
		}
	}
	if _, err := s.GetUser(ctx(t), "ghost"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("GetUser(ghost) error = %v", err)
	}

	for _, tc := range []struct {
		tenants []string
		want    []string
	}{
		{nil, []string{"op", "tech1", "u1", "u2"}},
		{[]string{"acme"}, []string{"u1", "u2"}},
		{[]string{"installers", tenancy.RootTenantID}, []string{"op", "tech1"}},
		{[]string{}, []string{}},
		{[]string{"ghost"}, []string{}},
	} {
		got, err := s.ListUsers(ctx(t), tc.tenants)
		if err != nil || got == nil || !slices.Equal(enginetest.UserIDs(got), tc.want) {
			t.Errorf("ListUsers(%v) = %v, %v; want %v", tc.tenants, enginetest.UserIDs(got), err, tc.want)
		}
	}
	for _, tc := range []struct {
		tenant string
		want   []string
	}{
		{tenancy.RootTenantID, []string{"op", "tech1", "u1", "u2"}},
		{"acme", []string{"u1", "u2"}},
		{"installers", []string{"tech1"}},
		{"ghost", []string{}},
	} {
		got, err := s.ListUsersUnder(ctx(t), tc.tenant)
		if err != nil || got == nil || !slices.Equal(enginetest.UserIDs(got), tc.want) {
			t.Errorf("ListUsersUnder(%q) = %v, %v; want %v", tc.tenant, enginetest.UserIDs(got), err, tc.want)
		}
	}

	upd := want
	upd.FirstName, upd.LastName, upd.Phone, upd.Company = "Anna", "Adm", "+43 2", "ACME AG"
	upd.Address = tenancy.Address{Street: "Ring 1", City: "Graz"}
	upd.Role, upd.Status = identity.RoleCustomerUser, identity.UserDisabled
	upd.Email, upd.SupporterID, upd.TenantID, upd.PasswordHash = "other@example.com", "S-x", "installers", "x" // not changed
	if err := s.UpdateUser(ctx(t), upd); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetUser(ctx(t), "u1")
	if got.FirstName != "Anna" || got.LastName != "Adm" || got.Phone != "+43 2" || got.Company != "ACME AG" ||
		got.Address != upd.Address || got.Role != identity.RoleCustomerUser || got.Status != identity.UserDisabled {
		t.Fatalf("after UpdateUser = %+v", got)
	}
	if got.Email != "ann.admin@example.com" || got.SupporterID != "" || got.TenantID != "acme" || got.PasswordHash != "" {
		t.Fatalf("UpdateUser changed more than it should: %+v", got)
	}
	enginetest.WantErr(t, "UpdateUser(ghost)", s.UpdateUser(ctx(t), identity.User{ID: "ghost"}), database.ErrNotFound)
}

func testUserPasswordAndTOTP(t *testing.T, eng store.Store, s *identitysql.Store) {
	enginetest.User(t, s, enginetest.NewUser("u1", tenancy.RootTenantID, identity.RoleOperatorAdmin))
	if err := s.SetPassword(ctx(t), "u1", "$argon2id$v=19$hash1"); err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetUser(ctx(t), "u1")
	if got.PasswordHash != "$argon2id$v=19$hash1" || got.Status != identity.UserActive || got.FailedLogins != 0 || !got.LockedUntil.IsZero() {
		t.Fatalf("after SetPassword = %+v; want active, no failures, no lock", got)
	}

	// A disabled account stays disabled.
	got.Status = identity.UserDisabled
	if err := s.UpdateUser(ctx(t), got); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPassword(ctx(t), "u1", "hash2"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetUser(ctx(t), "u1"); got.PasswordHash != "hash2" || got.Status != identity.UserDisabled {
		t.Fatalf("SetPassword of a disabled account = %+v", got)
	}
	enginetest.WantErr(t, "SetPassword(ghost)", s.SetPassword(ctx(t), "ghost", "h"), database.ErrNotFound)

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
	enginetest.WantErr(t, "SetTOTP(ghost)", s.SetTOTP(ctx(t), "ghost", nil, false), database.ErrNotFound)
}

func testLoginSucceeded(t *testing.T, eng store.Store, s *identitysql.Store) {
	enginetest.User(t, s, enginetest.NewUser("u1", tenancy.RootTenantID, identity.RoleOperatorAdmin))
	login := t0.Add(2 * time.Hour)
	if err := s.LoginSucceeded(ctx(t), "u1", login); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetUser(ctx(t), "u1"); got.FailedLogins != 0 || !got.LastLoginAt.Equal(login) || !got.LockedUntil.IsZero() {
		t.Fatalf("after LoginSucceeded: %+v", got)
	}
	enginetest.WantErr(t, "LoginSucceeded(ghost)", s.LoginSucceeded(ctx(t), "ghost", t0), database.ErrNotFound)
}

// testSignInFailuresConcurrent: concurrent failures of one address are
// each counted once, and the lock falls on every max-th.
func testSignInFailuresConcurrent(t *testing.T, eng store.Store, s *identitysql.Store) {
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

func testDeleteUser(t *testing.T, eng store.Store, s *identitysql.Store) {
	enginetest.Tenant(t, eng, "acme", tenancy.RootTenantID)
	enginetest.Site(t, eng, "site", "acme")
	enginetest.Supporter(t, s, "tech", tenancy.RootTenantID)
	enginetest.Supporter(t, s, "other", tenancy.RootTenantID)
	if err := s.CreateSession(ctx(t), identity.Session{ID: "sess", UserID: "tech", Hash: hash(1), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUserToken(ctx(t), identity.UserToken{Hash: hash(2), UserID: "tech", Purpose: identity.PurposeActivate, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAPIToken(ctx(t), identity.APIToken{ID: "tok", TenantID: tenancy.RootTenantID, UserID: "tech", Name: "t",
		Role: identity.RoleSupporter, Hash: hash(3), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	for _, g := range []access.Grant{
		{ID: "g-tech", TenantID: "acme", SupporterUserID: "tech", SiteID: "site", CreatedBy: "tech", CreatedAt: t0},
		{ID: "g-other", TenantID: "acme", SupporterUserID: "other", SiteID: "site", CreatedBy: "tech", CreatedAt: t0},
	} {
		if err := eng.CreateGrant(ctx(t), g); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteUser(ctx(t), "tech"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUser(ctx(t), "tech"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("deleted user still there: %v", err)
	}
	if _, err := s.UserBySupporterID(ctx(t), "S-tech"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("deleted user's supporter id still found: %v", err)
	}
	if _, err := s.SessionByHash(ctx(t), hash(1)); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("session of a deleted user: %v", err)
	}
	if _, err := s.ConsumeUserToken(ctx(t), hash(2), identity.PurposeActivate, t0); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("one-time token of a deleted user: %v", err)
	}
	if _, err := s.APITokenByHash(ctx(t), hash(3)); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("api token of a deleted user: %v", err)
	}
	if _, err := eng.GetGrant(ctx(t), "g-tech"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("grant to a deleted user: %v", err)
	}
	if g, err := eng.GetGrant(ctx(t), "g-other"); err != nil || g.CreatedBy != "tech" {
		t.Errorf("grant made by the deleted user to another = %+v, %v; want it kept", g, err)
	}
	enginetest.WantErr(t, "DeleteUser again", s.DeleteUser(ctx(t), "tech"), database.ErrNotFound)
	// The e-mail address and supporter id are free again.
	enginetest.Supporter(t, s, "tech", tenancy.RootTenantID)
}

func testSessions(t *testing.T, eng store.Store, s *identitysql.Store) {
	enginetest.User(t, s, enginetest.NewUser("u1", tenancy.RootTenantID, identity.RoleOperatorAdmin))
	enginetest.User(t, s, enginetest.NewUser("u2", tenancy.RootTenantID, identity.RoleOperatorAdmin))
	want := identity.Session{ID: "s1", UserID: "u1", Hash: hash(1), CreatedAt: t0, LastSeenAt: t0,
		ExpiresAt: t0.Add(12 * time.Hour), IP: "192.0.2.1", UserAgent: "Firefox"}
	for _, se := range []identity.Session{
		want,
		{ID: "s2", UserID: "u1", Hash: hash(2), CreatedAt: t0.Add(time.Minute), LastSeenAt: t0.Add(time.Minute), ExpiresAt: t0.Add(time.Hour)},
		{ID: "s3", UserID: "u2", Hash: hash(3), CreatedAt: t0, LastSeenAt: t0, ExpiresAt: t0.Add(time.Hour)},
	} {
		if err := s.CreateSession(ctx(t), se); err != nil {
			t.Fatal(err)
		}
	}
	enginetest.WantErr(t, "CreateSession with a taken id", s.CreateSession(ctx(t), identity.Session{ID: "s1", UserID: "u2", Hash: hash(9), CreatedAt: t0}), database.ErrConflict)
	enginetest.WantErr(t, "CreateSession with a taken hash", s.CreateSession(ctx(t), identity.Session{ID: "s9", UserID: "u2", Hash: hash(1), CreatedAt: t0}), database.ErrConflict)
	enginetest.WantErr(t, "CreateSession of a missing user", s.CreateSession(ctx(t), identity.Session{ID: "s9", UserID: "ghost", Hash: hash(9), CreatedAt: t0}), database.ErrNotFound)

	got, err := s.SessionByHash(ctx(t), hash(1))
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("SessionByHash = %+v, %v; want %+v", got, err, want)
	}
	if _, err := s.SessionByHash(ctx(t), hash(9)); !errors.Is(err, database.ErrNotFound) {
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
	enginetest.WantErr(t, "TouchSession(ghost)", s.TouchSession(ctx(t), "ghost", seen, expires), database.ErrNotFound)

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
	enginetest.WantErr(t, "DeleteSession again", s.DeleteSession(ctx(t), "s2"), database.ErrNotFound)
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

func testUserTokens(t *testing.T, eng store.Store, s *identitysql.Store) {
	enginetest.User(t, s, enginetest.NewUser("u1", tenancy.RootTenantID, identity.RoleOperatorAdmin))
	enginetest.User(t, s, enginetest.NewUser("u2", tenancy.RootTenantID, identity.RoleOperatorAdmin))
	exp := t0.Add(24 * time.Hour)
	tok := identity.UserToken{Hash: hash(1), UserID: "u1", Purpose: identity.PurposeActivate, CreatedAt: t0, ExpiresAt: exp}
	if err := s.CreateUserToken(ctx(t), tok); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsumeUserToken(ctx(t), hash(1), identity.PurposeReset, t0); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("consuming for another purpose: %v", err)
	}
	if _, err := s.ConsumeUserToken(ctx(t), hash(1), identity.PurposeActivate, exp); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("consuming at the expiry: %v", err)
	}
	got, err := s.ConsumeUserToken(ctx(t), hash(1), identity.PurposeActivate, exp.Add(-time.Millisecond))
	if err != nil || fmt.Sprint(got) != fmt.Sprint(tok) {
		t.Fatalf("ConsumeUserToken = %+v, %v; want %+v", got, err, tok)
	}
	if _, err := s.ConsumeUserToken(ctx(t), hash(1), identity.PurposeActivate, t0); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("second ConsumeUserToken error = %v, want ErrNotFound", err)
	}

	// A new token replaces the user's unused one of the same purpose, not
	// those of other purposes or users.
	for _, ut := range []identity.UserToken{
		{Hash: hash(2), UserID: "u1", Purpose: identity.PurposeReset, CreatedAt: t0, ExpiresAt: exp},
		{Hash: hash(3), UserID: "u1", Purpose: identity.PurposeActivate, CreatedAt: t0, ExpiresAt: exp},
		{Hash: hash(4), UserID: "u2", Purpose: identity.PurposeReset, CreatedAt: t0, ExpiresAt: exp},
		{Hash: hash(5), UserID: "u1", Purpose: identity.PurposeReset, CreatedAt: t0.Add(time.Minute), ExpiresAt: exp},
	} {
		if err := s.CreateUserToken(ctx(t), ut); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.ConsumeUserToken(ctx(t), hash(2), identity.PurposeReset, t0); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("replaced token still works: %v", err)
	}
	for _, c := range []struct {
		h       byte
		purpose string
		user    string
	}{{5, identity.PurposeReset, "u1"}, {3, identity.PurposeActivate, "u1"}, {4, identity.PurposeReset, "u2"}} {
		if got, err := s.ConsumeUserToken(ctx(t), hash(c.h), c.purpose, t0); err != nil || got.UserID != c.user || got.Purpose != c.purpose {
			t.Errorf("token %d = %+v, %v", c.h, got, err)
		}
	}

	// An expired token is not found.
	if err := s.CreateUserToken(ctx(t), identity.UserToken{Hash: hash(6), UserID: "u2", Purpose: identity.PurposeReset, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsumeUserToken(ctx(t), hash(6), identity.PurposeReset, t0.Add(2*time.Hour)); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("expired token: %v", err)
	}
	enginetest.WantErr(t, "CreateUserToken of a missing user",
		s.CreateUserToken(ctx(t), identity.UserToken{Hash: hash(7), UserID: "ghost", Purpose: identity.PurposeReset, CreatedAt: t0, ExpiresAt: exp}), database.ErrNotFound)
}

func testUserTokenConcurrentConsume(t *testing.T, eng store.Store, s *identitysql.Store) {
	enginetest.User(t, s, enginetest.NewUser("u1", tenancy.RootTenantID, identity.RoleOperatorAdmin))
	if err := s.CreateUserToken(ctx(t), identity.UserToken{Hash: hash(1), UserID: "u1", Purpose: identity.PurposeReset, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	const workers = 8
	var wg sync.WaitGroup
	results := make([]error, workers)
	for i := range workers {
		wg.Go(func() { _, results[i] = s.ConsumeUserToken(ctx(t), hash(1), identity.PurposeReset, t0) })
	}
	wg.Wait()
	ok := 0
	for _, err := range results {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, database.ErrNotFound):
			t.Errorf("ConsumeUserToken: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d concurrent consumers got the token; want 1", ok, workers)
	}
}

func testUserAPITokens(t *testing.T, eng store.Store, s *identitysql.Store) {
	enginetest.Tenant(t, eng, "acme", tenancy.RootTenantID)
	enginetest.User(t, s, enginetest.NewUser("ann", "acme", identity.RoleCustomerAdmin))
	enginetest.User(t, s, enginetest.NewUser("bob", "acme", identity.RoleCustomerUser))
	boot := identity.APIToken{ID: "boot", TenantID: tenancy.RootTenantID, Name: "bootstrap", Role: identity.RoleOperatorAdmin,
		Hash: hash(1), CreatedAt: t0}
	want := identity.APIToken{ID: "t1", TenantID: "acme", UserID: "ann", Name: "ci", Role: identity.RoleCustomerAdmin,
		Scopes: []string{identity.ScopeRead, identity.ScopeWrite}, Hash: hash(2), CreatedAt: t0.Add(time.Second),
		ExpiresAt: t0.Add(90 * 24 * time.Hour)}
	for _, tok := range []identity.APIToken{
		boot, want,
		{ID: "t2", TenantID: "acme", UserID: "ann", Name: "ro", Role: identity.RoleCustomerAdmin, Scopes: []string{identity.ScopeRead},
			Hash: hash(3), CreatedAt: t0.Add(2 * time.Second)},
		{ID: "t3", TenantID: "acme", UserID: "bob", Name: "bob", Role: identity.RoleCustomerUser, Hash: hash(4), CreatedAt: t0},
	} {
		if err := s.CreateAPIToken(ctx(t), tok); err != nil {
			t.Fatalf("CreateAPIToken(%s): %v", tok.ID, err)
		}
	}
	enginetest.WantErr(t, "CreateAPIToken for a user of another tenant", s.CreateAPIToken(ctx(t), identity.APIToken{ID: "t9", TenantID: tenancy.RootTenantID,
		UserID: "ann", Name: "x", Role: identity.RoleOperatorAdmin, Hash: hash(9), CreatedAt: t0}), database.ErrNotFound)
	enginetest.WantErr(t, "CreateAPIToken for a missing user", s.CreateAPIToken(ctx(t), identity.APIToken{ID: "t9", TenantID: "acme",
		UserID: "ghost", Name: "x", Role: identity.RoleCustomerUser, Hash: hash(9), CreatedAt: t0}), database.ErrNotFound)
	enginetest.WantErr(t, "CreateAPIToken with a taken hash", s.CreateAPIToken(ctx(t), identity.APIToken{ID: "t9", TenantID: "acme",
		UserID: "bob", Name: "x", Role: identity.RoleCustomerUser, Hash: hash(2), CreatedAt: t0}), database.ErrConflict)
	if err := s.CreateAPIToken(ctx(t), identity.APIToken{ID: "t9", TenantID: "acme", Name: "x", Role: identity.RoleCustomerUser,
		Scopes: []string{"read write"}, Hash: hash(9), CreatedAt: t0}); err == nil {
		t.Error("CreateAPIToken accepted a scope with a space")
	}

	same := func(got, want identity.APIToken) bool {
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
	if _, err := s.GetAPIToken(ctx(t), "ghost"); !errors.Is(err, database.ErrNotFound) {
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
	enginetest.WantErr(t, "TouchAPIToken(ghost)", s.TouchAPIToken(ctx(t), "ghost", used), database.ErrNotFound)

	if err := s.DeleteAPIToken(ctx(t), "t1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.APITokenByHash(ctx(t), hash(2)); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("deleted token still found: %v", err)
	}
	enginetest.WantErr(t, "DeleteAPIToken again", s.DeleteAPIToken(ctx(t), "t1"), database.ErrNotFound)
	if list, _ := s.ListAPITokens(ctx(t), "ann"); len(list) != 1 || list[0].ID != "t2" {
		t.Fatalf("after delete ListAPITokens(ann) = %+v", list)
	}
}

func testPurgeExpired(t *testing.T, eng store.Store, s *identitysql.Store) {
	enginetest.User(t, s, enginetest.NewUser("u1", tenancy.RootTenantID, identity.RoleOperatorAdmin))
	for i, exp := range []time.Time{t0.Add(time.Hour), t0.Add(3 * time.Hour)} {
		if err := s.CreateSession(ctx(t), identity.Session{ID: fmt.Sprintf("s%d", i), UserID: "u1", Hash: hash(byte(i + 1)), CreatedAt: t0,
			LastSeenAt: t0, ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateUserToken(ctx(t), identity.UserToken{Hash: hash(7), UserID: "u1", Purpose: identity.PurposeReset, CreatedAt: t0,
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
	if _, err := s.SessionByHash(ctx(t), hash(1)); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("the expired session stayed: %v", err)
	}
}

func testTOTPSteps(t *testing.T, eng store.Store, s *identitysql.Store) {
	enginetest.User(t, s, enginetest.NewUser("u1", tenancy.RootTenantID, identity.RoleOperatorAdmin))
	if err := s.UseTOTPStep(ctx(t), "u1", 100); err != nil {
		t.Fatal(err)
	}
	enginetest.WantErr(t, "the same step again", s.UseTOTPStep(ctx(t), "u1", 100), database.ErrConflict)
	enginetest.WantErr(t, "an earlier step", s.UseTOTPStep(ctx(t), "u1", 99), database.ErrConflict)
	if err := s.UseTOTPStep(ctx(t), "u1", 101); err != nil {
		t.Errorf("the next step: %v", err)
	}
	enginetest.WantErr(t, "a step of a missing user", s.UseTOTPStep(ctx(t), "ghost", 1), database.ErrNotFound)
}

func testSignInFailures(t *testing.T, eng store.Store, s *identitysql.Store) {
	const max, window, lockFor = 3, 15 * time.Minute, 30 * time.Minute
	key, other := []byte("key-a"), []byte("key-b")
	if f, err := s.SignInFailures(ctx(t), key); err != nil || f.Failures != 0 || !f.LockedUntil.IsZero() {
		t.Fatalf("unknown key: %+v, %v", f, err)
	}
	for i := 1; i < max; i++ {
		f, err := s.AddSignInFailure(ctx(t), key, t0.Add(time.Duration(i)*time.Second), window, max, lockFor)
		if err != nil || f.Failures != i || !f.LockedUntil.IsZero() {
			t.Fatalf("failure %d: %+v, %v", i, f, err)
		}
	}
	at := t0.Add(time.Minute)
	f, err := s.AddSignInFailure(ctx(t), key, at, window, max, lockFor)
	if err != nil || f.Failures != 0 || !f.LockedUntil.Equal(at.Add(lockFor)) {
		t.Fatalf("failure %d: %+v, %v; want locked until %v", max, f, err, at.Add(lockFor))
	}
	if got, _ := s.SignInFailures(ctx(t), key); !got.LockedUntil.Equal(f.LockedUntil) || !got.LastAt.Equal(at) {
		t.Errorf("read back %+v, want %+v", got, f)
	}
	// Another key is counted on its own.
	if f, _ := s.AddSignInFailure(ctx(t), other, at, window, max, lockFor); f.Failures != 1 {
		t.Errorf("other key: %+v", f)
	}
	// A quiet window forgets the other key's count; the locked key stays
	// until its lock is over.
	later := at.Add(window + time.Second)
	if _, err := s.AddSignInFailure(ctx(t), []byte("key-c"), later, window, max, lockFor); err != nil {
		t.Fatal(err)
	}
	if f, _ := s.SignInFailures(ctx(t), other); f.Failures != 0 {
		t.Errorf("quiet key still counted: %+v", f)
	}
	if f, _ := s.SignInFailures(ctx(t), key); f.LockedUntil.IsZero() {
		t.Errorf("lock dropped before its end: %+v", f)
	}
	if f, _ := s.AddSignInFailure(ctx(t), other, later, window, max, lockFor); f.Failures != 1 {
		t.Errorf("count after a quiet window: %+v, want 1", f)
	}
	if err := s.ClearSignInFailures(ctx(t), key); err != nil {
		t.Fatal(err)
	}
	if f, _ := s.SignInFailures(ctx(t), key); f.Failures != 0 || !f.LockedUntil.IsZero() {
		t.Errorf("after clear: %+v", f)
	}
	// max 1 locks at once.
	if f, _ := s.AddSignInFailure(ctx(t), []byte("key-d"), t0, window, 1, lockFor); f.LockedUntil.IsZero() {
		t.Errorf("max 1: %+v", f)
	}
}

func testAPITokens(t *testing.T, eng store.Store, s *identitysql.Store) {
	tok := identity.APIToken{ID: "tok1", TenantID: tenancy.RootTenantID, Name: "operator", Role: identity.RoleOperatorAdmin,
		Hash: bytes.Repeat([]byte{7}, 32), CreatedAt: t0}
	if err := s.CreateAPIToken(ctx(t), tok); err != nil {
		t.Fatal(err)
	}
	got, err := s.APITokenByHash(ctx(t), tok.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != tok.ID || got.TenantID != tok.TenantID || got.Role != tok.Role || got.Name != tok.Name || !got.CreatedAt.Equal(t0) {
		t.Fatalf("APITokenByHash = %+v, want %+v", got, tok)
	}
	if _, err := s.APITokenByHash(ctx(t), bytes.Repeat([]byte{8}, 32)); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("unknown hash error = %v, want ErrNotFound", err)
	}
}
