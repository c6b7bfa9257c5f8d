package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/warden-iot/warden/internal/clock"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/event"
	"github.com/warden-iot/warden/internal/mail"
)

// How long the one-time links stay valid.
const (
	ActivationTTL = 72 * time.Hour
	ResetTTL      = time.Hour
)

// SignInKey is what failed sign-ins of an address are counted under: a
// hash of its normal form, so the table holds no addresses.
func SignInKey(email string) []byte {
	return HashSecret("warden-sign-in\x00" + EmailKey(email))
}

// ErrSupporterRole refuses a role change into or out of the supporter
// role: a supporter account stays a supporter account.
var ErrSupporterRole = errors.New("a supporter account stays a supporter account; make a new account instead")

// CheckRoleChange says whether an account of role from may become to.
func CheckRoleChange(from, to Role) error {
	if (to == RoleSupporter) != (from == RoleSupporter) {
		return ErrSupporterRole
	}
	return nil
}

// Enable lets a disabled account sign in again: it is active, or pending
// if it was never activated (it has no password). Other accounts stay as
// they are.
func (u *User) Enable() {
	if u.Status != UserDisabled {
		return
	}
	u.Status = UserActive
	if u.PasswordHash == "" {
		u.Status = UserPending
	}
}

// Mailer sends account e-mails (activation and reset links).
type Mailer interface {
	Send(ctx context.Context, m mail.Message) error
}

// LinkConfig says where the one-time links point and how they travel.
type LinkConfig struct {
	// PublicURL is where people reach the server, e.g.
	// "https://warden.example.com:8443".
	PublicURL string
	// Mailer sends the links; nil: the link is handed back for the admin
	// to pass on.
	Mailer Mailer
}

// Activation is how an account's activation link went out: by e-mail
// (Mailed), or as Link to hand over (no mail server). Both zero: it did
// not go out.
type Activation struct {
	Link   string
	Mailed bool
}

// Users manages people's accounts: invitations with activation links,
// changes, deletion. Who may do what is the caller's to decide (the API's
// policy check) before it calls. The store's errors (database.ErrNotFound,
// ErrConflict) come back as they are. It is safe for concurrent use.
type Users struct {
	users   UserStore
	signins SignInStore
	events  event.Publisher
	links   LinkConfig
	clock   clock.Clock
	log     *slog.Logger
}

// NewUsers makes the accounts service on users and signins, publishing to
// events, on clk (nil: the wall clock).
func NewUsers(users UserStore, signins SignInStore, events event.Publisher, links LinkConfig, clk clock.Clock, log *slog.Logger) *Users {
	return &Users{users: users, signins: signins, events: events, links: links, clock: clock.OrReal(clk), log: log}
}

// now is the time as stored (UTC, milliseconds).
func (s *Users) now() time.Time { return s.clock.Now().UTC().Truncate(time.Millisecond) }

// Invite makes a pending account from u (its tenant, normalised e-mail,
// role, profile and CreatedBy; the id, status, creation time and a
// supporter's supporter id are set here) and sends its activation link.
// An e-mail address taken is database.ErrConflict. A link that could not
// be sent is logged and the Activation is zero: the account exists, and an
// admin can send the link again.
func (s *Users) Invite(ctx context.Context, u User) (User, Activation, error) {
	id, err := NewID("usr")
	if err != nil {
		return User{}, Activation{}, fmt.Errorf("new user id: %w", err)
	}
	u.ID, u.Status, u.CreatedAt = id, UserPending, s.now()
	for try := 0; ; try++ {
		if u.Role == RoleSupporter {
			if u.SupporterID, err = NewSupporterID(); err != nil {
				return User{}, Activation{}, fmt.Errorf("new supporter id: %w", err)
			}
		}
		err = s.users.CreateUser(ctx, u)
		if !errors.Is(err, database.ErrConflict) || u.Role != RoleSupporter || try == 3 {
			break
		}
		if _, e := s.users.UserByEmail(ctx, u.Email); e == nil {
			break // the e-mail is taken, not the supporter id
		}
	}
	if err != nil {
		return User{}, Activation{}, err
	}
	s.log.Info("user created", "user", u.ID, "tenant", u.TenantID, "role", u.Role)
	var act Activation
	act.Link, act.Mailed, err = s.SendLink(ctx, u, PurposeActivate)
	if err != nil {
		s.log.Error("send activation", "user", u.ID, "err", err)
		return u, Activation{}, nil
	}
	return u, act, nil
}

// SendLink makes a one-time link of purpose (PurposeActivate or
// PurposeReset) for u and mails it. Without a mail server it returns the
// link so that an admin can hand it over.
func (s *Users) SendLink(ctx context.Context, u User, purpose string) (link string, mailed bool, err error) {
	secret, err := NewSecret()
	if err != nil {
		return "", false, err
	}
	ttl, page := ActivationTTL, "/activate"
	if purpose == PurposeReset {
		ttl, page = ResetTTL, "/reset-password"
	}
	now := s.now()
	if err := s.signins.CreateUserToken(ctx, UserToken{Hash: HashSecret(secret), UserID: u.ID,
		Purpose: purpose, CreatedAt: now, ExpiresAt: now.Add(ttl)}); err != nil {
		return "", false, err
	}
	link = strings.TrimRight(s.links.PublicURL, "/") + page + "?token=" + secret
	if s.links.Mailer == nil {
		return link, false, nil
	}
	name := strings.TrimSpace(u.FirstName + " " + u.LastName)
	msg := mail.Activation(u.Email, name, link, now.Add(ttl), "Warden")
	if purpose == PurposeReset {
		msg = mail.PasswordReset(u.Email, name, link, now.Add(ttl), "Warden")
	}
	if err := s.links.Mailer.Send(ctx, msg); err != nil {
		return "", false, fmt.Errorf("mail %s link: %w", purpose, err)
	}
	return "", true, nil
}

// Update stores the changed account u. A disabled account's sessions
// end; unlock lifts the sign-in lock of its address.
func (s *Users) Update(ctx context.Context, u User, unlock bool) error {
	if err := s.users.UpdateUser(ctx, u); err != nil {
		return err
	}
	if u.Status == UserDisabled {
		if err := s.users.DeleteUserSessions(ctx, u.ID); err != nil {
			return err
		}
	}
	if unlock {
		if err := s.signins.ClearSignInFailures(ctx, SignInKey(u.Email)); err != nil {
			return err
		}
	}
	return nil
}

// Delete deletes the account u, and with it (in the store) its sessions,
// links, tokens and grants. Publishes event.UserDeleted.
func (s *Users) Delete(ctx context.Context, u User) error {
	if err := s.users.DeleteUser(ctx, u.ID); err != nil {
		return err
	}
	s.log.Info("user deleted", "user", u.ID)
	_ = s.events.Publish(ctx, event.UserDeleted{TenantID: u.TenantID, UserID: u.ID, At: s.clock.Now().UTC()})
	return nil
}
