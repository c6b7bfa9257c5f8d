package identity_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/clock/clocktest"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/event"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/mail"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/enginetest"
	"github.com/warden-iot/warden/internal/tenancy"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// mailbox is a Mailer that keeps what it was given, or fails.
type mailbox struct {
	sent []mail.Message
	err  error
}

func (m *mailbox) Send(_ context.Context, msg mail.Message) error {
	if m.err != nil {
		return m.err
	}
	m.sent = append(m.sent, msg)
	return nil
}

// usersEnv is the service on a fresh SQLite engine, with the accounts
// deleted as the bus told.
type usersEnv struct {
	st      store.Store
	clk     *clocktest.Fake
	deleted []event.UserDeleted
}

func newUsersEnv(t *testing.T) *usersEnv {
	t.Helper()
	st := enginetest.SQLite(t)
	if err := st.CreateTenant(t.Context(), tenancy.Tenant{ID: "acme", ParentID: tenancy.RootTenantID, Name: "acme", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	return &usersEnv{st: st, clk: clocktest.New(t0)}
}

func (e *usersEnv) users(m identity.Mailer) *identity.Users {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bus := event.NewLocal(log)
	event.On(bus, "test.user-deleted", func(_ context.Context, ev event.UserDeleted) error {
		e.deleted = append(e.deleted, ev)
		return nil
	})
	return identity.NewUsers(e.st, e.st, bus, identity.LinkConfig{PublicURL: "https://warden.example/", Mailer: m}, e.clk, log)
}

func person(email string, role identity.Role) identity.User {
	return identity.User{TenantID: "acme", Email: email, Role: role, FirstName: "Ann", LastName: "Example", CreatedBy: "usr_admin"}
}

func TestUsersInvite(t *testing.T) {
	e := newUsersEnv(t)
	ctx := t.Context()
	svc := e.users(nil)

	// Without a mail server the link is handed back, and it activates.
	u, act, err := svc.Invite(ctx, person("ann@acme.example", identity.RoleCustomerUser))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u.ID, "usr") || u.Status != identity.UserPending || !u.CreatedAt.Equal(t0) || u.SupporterID != "" {
		t.Errorf("Invite = %+v", u)
	}
	if act.Mailed || !strings.HasPrefix(act.Link, "https://warden.example/activate?token=") {
		t.Fatalf("activation = %+v", act)
	}
	got, err := e.st.GetUser(ctx, u.ID)
	if err != nil || got.Email != "ann@acme.example" || got.Status != identity.UserPending || got.CreatedBy != "usr_admin" {
		t.Fatalf("GetUser = %+v, %v", got, err)
	}
	link, _ := url.Parse(act.Link)
	tok, err := e.st.ConsumeUserToken(ctx, identity.HashSecret(link.Query().Get("token")), identity.PurposeActivate, t0.Add(identity.ActivationTTL-time.Second))
	if err != nil || tok.UserID != u.ID {
		t.Errorf("ConsumeUserToken(the link's token) = %+v, %v", tok, err)
	}

	// The address is taken, whatever the role.
	for _, role := range []identity.Role{identity.RoleCustomerUser, identity.RoleSupporter} {
		if _, _, err := svc.Invite(ctx, person("ann@acme.example", role)); !errors.Is(err, database.ErrConflict) {
			t.Errorf("Invite(%s, taken address) = %v, want ErrConflict", role, err)
		}
	}

	// A supporter gets a supporter id; with a mail server the link goes by
	// mail.
	box := &mailbox{}
	sup, act, err := e.users(box).Invite(ctx, person("sam@help.example", identity.RoleSupporter))
	if err != nil {
		t.Fatal(err)
	}
	if sup.SupporterID == "" || !act.Mailed || act.Link != "" {
		t.Errorf("Invite(supporter, mailed) = %+v, %+v", sup, act)
	}
	if len(box.sent) != 1 || box.sent[0].To != "sam@help.example" {
		t.Errorf("mails sent = %+v", box.sent)
	}

	// A mail server that fails: the account stands, the link did not go.
	down := &mailbox{err: errors.New("421 try later")}
	bob, act, err := e.users(down).Invite(ctx, person("bob@acme.example", identity.RoleCustomerUser))
	if err != nil || act != (identity.Activation{}) {
		t.Fatalf("Invite(mail server down) = %+v, %+v, %v", bob, act, err)
	}
	if _, err := e.st.GetUser(ctx, bob.ID); err != nil {
		t.Errorf("the account of a failed mail: %v", err)
	}
}

func TestUsersSendReset(t *testing.T) {
	e := newUsersEnv(t)
	ctx := t.Context()
	box := &mailbox{}
	svc := e.users(box)
	u, _, err := svc.Invite(ctx, person("ann@acme.example", identity.RoleCustomerUser))
	if err != nil {
		t.Fatal(err)
	}
	box.sent = nil
	link, mailed, err := svc.SendLink(ctx, u, identity.PurposeReset)
	if err != nil || link != "" || !mailed || len(box.sent) != 1 {
		t.Fatalf("SendLink(reset) = %q, %v, %v; sent %d", link, mailed, err, len(box.sent))
	}
	link, mailed, err = e.users(nil).SendLink(ctx, u, identity.PurposeReset)
	if err != nil || mailed || !strings.HasPrefix(link, "https://warden.example/reset-password?token=") {
		t.Fatalf("SendLink(reset, no mail server) = %q, %v, %v", link, mailed, err)
	}
	l, _ := url.Parse(link)
	hash := identity.HashSecret(l.Query().Get("token"))
	if _, err := e.st.ConsumeUserToken(ctx, hash, identity.PurposeReset, t0.Add(identity.ResetTTL+time.Second)); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("a reset link after its hour: %v, want ErrNotFound", err)
	}
}

func TestUsersUpdate(t *testing.T) {
	e := newUsersEnv(t)
	ctx := t.Context()
	svc := e.users(nil)
	u, _, err := svc.Invite(ctx, person("ann@acme.example", identity.RoleCustomerUser))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.CreateSession(ctx, identity.Session{ID: "ses1", UserID: u.ID, Hash: []byte("h1"), CreatedAt: t0,
		LastSeenAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	key := identity.SignInKey(u.Email)
	if _, err := e.st.AddSignInFailure(ctx, key, t0, time.Hour, 5, time.Hour); err != nil {
		t.Fatal(err)
	}

	// A change of the profile keeps the sessions and the lock.
	u.FirstName = "Anna"
	if err := svc.Update(ctx, u, false); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.st.GetUser(ctx, u.ID); got.FirstName != "Anna" {
		t.Errorf("first name after Update = %q", got.FirstName)
	}
	if ss, err := e.st.ListSessions(ctx, u.ID); err != nil || len(ss) != 1 {
		t.Errorf("sessions after a profile change = %v, %v", ss, err)
	}
	if f, err := e.st.SignInFailures(ctx, key); err != nil || f.Failures != 1 {
		t.Errorf("sign-in failures after a profile change = %+v, %v", f, err)
	}

	// Disabled: the sessions end. Unlock: the failures are forgotten.
	u.Status = identity.UserDisabled
	if err := svc.Update(ctx, u, true); err != nil {
		t.Fatal(err)
	}
	if ss, err := e.st.ListSessions(ctx, u.ID); err != nil || len(ss) != 0 {
		t.Errorf("sessions of a disabled account = %v, %v", ss, err)
	}
	if f, err := e.st.SignInFailures(ctx, key); err != nil || f.Failures != 0 {
		t.Errorf("sign-in failures after unlock = %+v, %v", f, err)
	}
	if len(e.deleted) != 0 {
		t.Errorf("updates published %v", e.deleted)
	}

	u.ID = "usr_gone"
	if err := svc.Update(ctx, u, false); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("Update(unknown) = %v, want ErrNotFound", err)
	}
}

func TestUsersDelete(t *testing.T) {
	e := newUsersEnv(t)
	ctx := t.Context()
	svc := e.users(nil)
	u, _, err := svc.Invite(ctx, person("ann@acme.example", identity.RoleCustomerUser))
	if err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Minute)
	if err := svc.Delete(ctx, u); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.GetUser(ctx, u.ID); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("GetUser after Delete: %v", err)
	}
	want := []event.UserDeleted{{TenantID: "acme", UserID: u.ID, At: t0.Add(time.Minute)}}
	if len(e.deleted) != 1 || e.deleted[0] != want[0] {
		t.Errorf("Delete published %v, want %v", e.deleted, want)
	}
	if err := svc.Delete(ctx, u); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("Delete twice = %v, want ErrNotFound", err)
	}
	if len(e.deleted) != 1 {
		t.Errorf("a failed Delete published: %v", e.deleted)
	}
}

func TestRoleChangeAndEnable(t *testing.T) {
	for _, c := range []struct {
		from, to identity.Role
		ok       bool
	}{
		{identity.RoleCustomerUser, identity.RoleCustomerAdmin, true},
		{identity.RoleOperatorAdmin, identity.RoleCustomerUser, true},
		{identity.RoleSupporter, identity.RoleSupporter, true},
		{identity.RoleSupporter, identity.RoleCustomerUser, false},
		{identity.RoleCustomerAdmin, identity.RoleSupporter, false},
	} {
		if err := identity.CheckRoleChange(c.from, c.to); (err == nil) != c.ok || (err != nil && !errors.Is(err, identity.ErrSupporterRole)) {
			t.Errorf("CheckRoleChange(%s, %s) = %v", c.from, c.to, err)
		}
	}
	for _, c := range []struct {
		status identity.UserStatus
		hash   string
		want   identity.UserStatus
	}{
		{identity.UserDisabled, "$argon2id$x", identity.UserActive},
		{identity.UserDisabled, "", identity.UserPending},
		{identity.UserPending, "", identity.UserPending},
		{identity.UserActive, "$argon2id$x", identity.UserActive},
	} {
		u := identity.User{Status: c.status, PasswordHash: c.hash}
		if u.Enable(); u.Status != c.want {
			t.Errorf("Enable(%s, password %t) = %s, want %s", c.status, c.hash != "", u.Status, c.want)
		}
	}
}
