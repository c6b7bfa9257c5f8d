package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/warden-iot/warden/internal/access"
	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/identity"
)

// Session and sign-in rules.
const (
	SessionIdle     = 12 * time.Hour     // a session unused this long ends
	SessionMax      = 7 * 24 * time.Hour // and none lives longer than this
	sessionTouchGap = time.Minute        // activity is written at most this often

	// MaxFailedLogins failed sign-ins in a row with one e-mail address
	// (with or without an account) lock it for LockDuration; each failure
	// before that slows the answer. A count quiet for FailureMemory starts
	// again.
	MaxFailedLogins = 5
	LockDuration    = 15 * time.Minute
	FailureMemory   = 15 * time.Minute
	failureDelay    = 250 * time.Millisecond

	// MaxSignInFailuresPerIP failed sign-ins (or reset requests) from one
	// address within SignInWindow make it wait for the window's end.
	MaxSignInFailuresPerIP = 30
	SignInWindow           = 15 * time.Minute

	ActivationTTL = identity.ActivationTTL
	ResetTTL      = identity.ResetTTL
)

// caller is who is calling: the access subject plus how they came in.
type caller struct {
	access.Subject
	ActorID   string    // the user's id, or the token's for the bootstrap token
	TokenID   string    // set when a bearer token was used
	SessionID string    // set when the session cookie was used
	ExpiresAt time.Time // the session's end, for the session cookie
	// TokenExpiresAt is the bearer token's end (zero: it does not end).
	TokenExpiresAt time.Time
}

type principalKey struct{}

// principal is who is calling.
func principal(ctx context.Context) caller {
	c, _ := ctx.Value(principalKey{}).(caller)
	return c
}

// csrfToken is derived from the session secret, so it needs no storage
// and a page that cannot read the HttpOnly cookie cannot compute it.
func csrfToken(sessionSecret string) string {
	h := sha256.Sum256([]byte("warden-csrf\x00" + sessionSecret))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

type authError struct {
	status int
	msg    string
}

func (e *authError) Error() string { return e.msg }

func (a *API) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := a.identify(r)
		if err != nil {
			var ae *authError
			if !errors.As(err, &ae) {
				a.log.Error("authenticate", "err", err)
				writeError(w, http.StatusServiceUnavailable, "cannot check the credentials now")
				return
			}
			if ae.status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="warden"`)
			}
			writeError(w, ae.status, "%s", ae.msg)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, c)))
	})
}

// identify finds the caller from a bearer token or the session cookie.
func (a *API) identify(r *http.Request) (caller, error) {
	ctx := r.Context()
	now := a.now()
	if h := r.Header.Get("Authorization"); h != "" {
		secret, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || strings.TrimSpace(secret) == "" {
			return caller{}, &authError{http.StatusUnauthorized, "the Authorization header must be \"Bearer <token>\""}
		}
		tok, err := a.stores.Tokens.APITokenByHash(ctx, HashToken(strings.TrimSpace(secret)))
		if errors.Is(err, database.ErrNotFound) {
			return caller{}, &authError{http.StatusUnauthorized, "invalid token"}
		}
		if err != nil {
			return caller{}, fmt.Errorf("look up api token: %w", err)
		}
		if !tok.ExpiresAt.IsZero() && !now.Before(tok.ExpiresAt) {
			return caller{}, &authError{http.StatusUnauthorized, "token expired"}
		}
		if now.Sub(tok.LastUsedAt) > sessionTouchGap {
			if err := a.stores.Tokens.TouchAPIToken(ctx, tok.ID, now.UTC()); err != nil {
				a.log.Warn("record token use", "token", tok.ID, "err", err)
			}
		}
		if tok.UserID == "" {
			t, err := a.stores.Tenancy.GetTenant(ctx, tok.TenantID)
			if err != nil {
				return caller{}, fmt.Errorf("tenant of token %s: %w", tok.ID, err)
			}
			return caller{Subject: access.Subject{Name: tok.Name, TenantID: tok.TenantID, TenantPath: t.Path,
				Role: tok.Role, Scopes: tok.Scopes}, ActorID: tok.ID, TokenID: tok.ID, TokenExpiresAt: tok.ExpiresAt}, nil
		}
		c, err := a.userCaller(ctx, tok.UserID)
		if err != nil {
			return caller{}, err
		}
		c.Scopes, c.TokenID, c.TokenExpiresAt = tok.Scopes, tok.ID, tok.ExpiresAt
		return c, nil
	}
	ck, err := r.Cookie(apiv1.SessionCookie)
	if err != nil || ck.Value == "" {
		return caller{}, &authError{http.StatusUnauthorized, "sign in, or send \"Authorization: Bearer <token>\""}
	}
	sess, err := a.stores.Users.SessionByHash(ctx, identity.HashSecret(ck.Value))
	if errors.Is(err, database.ErrNotFound) {
		return caller{}, &authError{http.StatusUnauthorized, "session ended; sign in again"}
	}
	if err != nil {
		return caller{}, fmt.Errorf("look up session: %w", err)
	}
	if !now.Before(sess.ExpiresAt) {
		_ = a.stores.Users.DeleteSession(ctx, sess.ID)
		return caller{}, &authError{http.StatusUnauthorized, "session ended; sign in again"}
	}
	if stateChanging(r.Method) {
		got := r.Header.Get(apiv1.CSRFHeader)
		if subtle.ConstantTimeCompare([]byte(got), []byte(csrfToken(ck.Value))) != 1 {
			return caller{}, &authError{http.StatusForbidden, "missing or wrong " + apiv1.CSRFHeader + " header (CSRF protection)"}
		}
	}
	c, err := a.userCaller(ctx, sess.UserID)
	if err != nil {
		return caller{}, err
	}
	c.SessionID, c.ExpiresAt = sess.ID, sess.ExpiresAt
	if now.Sub(sess.LastSeenAt) > sessionTouchGap {
		exp := now.Add(SessionIdle)
		if hard := sess.CreatedAt.Add(SessionMax); hard.Before(exp) {
			exp = hard
		}
		if err := a.stores.Users.TouchSession(ctx, sess.ID, now.UTC(), exp.UTC()); err != nil {
			a.log.Warn("record session activity", "session", sess.ID, "err", err)
		} else {
			c.ExpiresAt = exp.UTC()
		}
	}
	return c, nil
}

// userCaller makes the caller of an active account, with a supporter's
// grants in force now.
func (a *API) userCaller(ctx context.Context, userID string) (caller, error) {
	u, err := a.stores.Users.GetUser(ctx, userID)
	if errors.Is(err, database.ErrNotFound) {
		return caller{}, &authError{http.StatusUnauthorized, "the account no longer exists"}
	}
	if err != nil {
		return caller{}, fmt.Errorf("load user %s: %w", userID, err)
	}
	if u.Status != identity.UserActive {
		return caller{}, &authError{http.StatusUnauthorized, "the account is " + string(u.Status)}
	}
	t, err := a.stores.Tenancy.GetTenant(ctx, u.TenantID)
	if err != nil {
		return caller{}, fmt.Errorf("tenant of user %s: %w", u.ID, err)
	}
	c := caller{Subject: access.Subject{UserID: u.ID, Name: u.Email, TenantID: u.TenantID, TenantPath: t.Path, Role: u.Role},
		ActorID: u.ID}
	if u.Role == identity.RoleSupporter {
		c.Grants, err = a.stores.Grants.ListGrants(ctx, access.GrantFilter{SupporterUserID: u.ID, ActiveAt: a.now()})
		if err != nil {
			return caller{}, fmt.Errorf("grants of %s: %w", u.ID, err)
		}
	}
	return c, nil
}

// normalizeEmail checks an e-mail address to be stored and returns its
// normal form (identity.NormalizeEmail).
func normalizeEmail(s string) (string, error) { return identity.NormalizeEmail(s) }

// userByEmail finds the account of an address as typed: by its normal
// form or, failing that, as addresses were stored before they were
// normalised (trimmed and in lower case only).
func (a *API) userByEmail(ctx context.Context, typed string) (identity.User, error) {
	key := identity.EmailKey(typed)
	u, err := a.stores.Users.UserByEmail(ctx, key)
	if legacy := strings.ToLower(strings.TrimSpace(typed)); errors.Is(err, database.ErrNotFound) && legacy != key {
		return a.stores.Users.UserByEmail(ctx, legacy)
	}
	return u, err
}

// signInKey is what failed sign-ins of an address are counted under: a
// hash of its normal form, so the table holds no addresses.
func signInKey(email string) []byte { return identity.SignInKey(email) }

// withSignInLock sets the account's sign-in lock, for its view.
func (a *API) withSignInLock(ctx context.Context, u *identity.User) error {
	f, err := a.stores.SignIns.SignInFailures(ctx, signInKey(u.Email))
	if err != nil {
		return err
	}
	u.LockedUntil, u.FailedLogins = time.Time{}, f.Failures
	if a.now().Before(f.LockedUntil) {
		u.LockedUntil = f.LockedUntil
	}
	return nil
}

// dummyHash is verified against when the e-mail is unknown, so that an
// unknown address takes as long as a wrong password.
const dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$4aWMZ9Uf8rY6n0aQ7I3I5ZxH2n1G7tq6hQbYqE7o3Yk"

func (a *API) login(w http.ResponseWriter, r *http.Request) {
	var req apiv1.Login
	if !decode(w, r, &req) {
		return
	}
	ctx := r.Context()
	call, _ := ctx.Value(auditCallKey{}).(*auditCall)
	email := identity.EmailKey(req.Email)
	if call != nil {
		call.target = truncate(email, 254)
	}
	if !a.ipAllowed(w, r) {
		return
	}
	// A known and an unknown address take the same steps, the same time
	// and get the same answers: the same look-ups, the same argon2 work,
	// the same failure count, slow-down and lock.
	key := signInKey(email)
	f, err := a.stores.SignIns.SignInFailures(ctx, key)
	if err != nil {
		a.storeError(w, err)
		return
	}
	u, err := a.userByEmail(ctx, req.Email)
	if err != nil && !errors.Is(err, database.ErrNotFound) {
		a.storeError(w, err)
		return
	}
	known := err == nil && u.PasswordHash != ""
	if known && call != nil {
		call.actAs(u)
	}
	now := a.now()
	if now.Before(f.LockedUntil) {
		a.signInLocked(w, f.LockedUntil)
		return
	}
	hash := dummyHash
	if known {
		hash = u.PasswordHash
	}
	ok, err := identity.VerifyPassword(req.Password, hash)
	if err != nil && known {
		a.log.Error("stored password hash unreadable", "user", u.ID, "err", err)
	}
	ok = ok && known
	if ok && u.TOTPEnabled {
		if req.TOTP == "" {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "a one-time code (TOTP) is required", "status": 401, "totpRequired": true})
			return
		}
		ok = a.checkTOTP(ctx, u, req.TOTP)
	}
	if !ok {
		a.signInFailed(ctx, w, r, key)
		return
	}
	if u.Status != identity.UserActive {
		writeError(w, http.StatusForbidden, "the account is %s", u.Status)
		return
	}
	if err := a.stores.SignIns.ClearSignInFailures(ctx, key); err != nil {
		a.storeError(w, err)
		return
	}
	if err := a.stores.Users.LoginSucceeded(ctx, u.ID, now.UTC()); err != nil {
		a.storeError(w, err)
		return
	}
	u.LockedUntil, u.FailedLogins = time.Time{}, 0
	secret, err := identity.NewSecret()
	if err != nil {
		a.storeError(w, err)
		return
	}
	id, err := identity.NewID("ses")
	if err != nil {
		a.storeError(w, err)
		return
	}
	at := now.UTC().Truncate(time.Millisecond)
	sess := identity.Session{ID: id, UserID: u.ID, Hash: identity.HashSecret(secret), CreatedAt: at, LastSeenAt: at,
		ExpiresAt: at.Add(SessionIdle), IP: a.clientIP(r), UserAgent: truncate(r.UserAgent(), 512)}
	if err := a.stores.Users.CreateSession(ctx, sess); err != nil {
		a.storeError(w, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: apiv1.SessionCookie, Value: secret, Path: "/", HttpOnly: true, Secure: true,
		SameSite: http.SameSiteStrictMode})
	a.log.Info("signed in", "user", u.ID, "tenant", u.TenantID)
	writeJSON(w, http.StatusOK, apiv1.Session{User: userView(u, true), CSRFToken: csrfToken(secret), ExpiresAt: sess.ExpiresAt})
}

// signInFailed counts a failure of the address (and of the client's),
// slows the answer down and locks the address after MaxFailedLogins.
func (a *API) signInFailed(ctx context.Context, w http.ResponseWriter, r *http.Request, key []byte) {
	now := a.now()
	a.signins.add(a.limitKey(r), now)
	f, err := a.stores.SignIns.AddSignInFailure(ctx, key, now.UTC(), FailureMemory, MaxFailedLogins, LockDuration)
	if err != nil {
		a.storeError(w, err)
		return
	}
	if now.Before(f.LockedUntil) {
		a.log.Warn("sign-in locked after failed sign-ins", "ip", a.clientIP(r))
		a.signInLocked(w, f.LockedUntil)
		return
	}
	t := time.NewTimer(time.Duration(f.Failures) * failureDelay)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
	}
	writeError(w, http.StatusUnauthorized, "wrong e-mail address or password")
}

// signInLocked answers a sign-in with a locked address; the answer is
// the same whether the address has an account or not.
func (a *API) signInLocked(w http.ResponseWriter, until time.Time) {
	w.Header().Set("Retry-After", strconv.Itoa(int(until.Sub(a.now()).Seconds())+1))
	writeError(w, http.StatusTooManyRequests, "too many failed sign-ins with this e-mail address: try again after %s",
		until.UTC().Format(time.RFC3339))
}

func (a *API) logout(w http.ResponseWriter, r *http.Request) {
	c := principal(r.Context())
	if c.SessionID != "" {
		if err := a.stores.Users.DeleteSession(r.Context(), c.SessionID); err != nil {
			a.storeError(w, err)
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: apiv1.SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true,
		SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) session(w http.ResponseWriter, r *http.Request) {
	c := principal(r.Context())
	u := loaded[identity.User](r.Context())
	s := apiv1.Session{User: userView(u, true)}
	if ck, err := r.Cookie(apiv1.SessionCookie); err == nil && c.SessionID != "" {
		s.CSRFToken, s.ExpiresAt = csrfToken(ck.Value), c.ExpiresAt
	}
	writeJSON(w, http.StatusOK, s)
}

// setPasswordWithToken is activation and password reset: the link's
// token is used once to set a password.
func (a *API) setPasswordWithToken(ctx context.Context, token, password, purpose string) (identity.User, error) {
	if token == "" {
		return identity.User{}, &authError{http.StatusBadRequest, "the link has no token"}
	}
	// The password is checked before the token is spent, so a too short
	// password does not cost the user their link. The e-mail check needs
	// the user, which needs the token: it follows below.
	if err := identity.CheckPassword(password, ""); err != nil {
		return identity.User{}, &authError{http.StatusBadRequest, err.Error()}
	}
	tok, err := a.stores.SignIns.ConsumeUserToken(ctx, identity.HashSecret(token), purpose, a.now())
	if errors.Is(err, database.ErrNotFound) {
		return identity.User{}, &authError{http.StatusGone, "this link is invalid, used or expired; ask for a new one"}
	}
	if err != nil {
		return identity.User{}, err
	}
	u, err := a.stores.Users.GetUser(ctx, tok.UserID)
	if err != nil {
		return identity.User{}, err
	}
	if err := identity.CheckPassword(password, u.Email); err != nil {
		// Give the link back: the user did nothing wrong but choose.
		_ = a.stores.SignIns.CreateUserToken(ctx, tok)
		return identity.User{}, &authError{http.StatusBadRequest, err.Error()}
	}
	// A new password lifts a sign-in lock.
	if err := a.stores.SignIns.ClearSignInFailures(ctx, signInKey(u.Email)); err != nil {
		return identity.User{}, err
	}
	if u.Status == identity.UserDisabled {
		return identity.User{}, &authError{http.StatusForbidden, "the account is disabled"}
	}
	hash, err := identity.HashPassword(password, identity.DefaultParams())
	if err != nil {
		return identity.User{}, err
	}
	if err := a.stores.Users.SetPassword(ctx, u.ID, hash); err != nil {
		return identity.User{}, err
	}
	if err := a.stores.Users.DeleteUserSessions(ctx, u.ID); err != nil {
		return identity.User{}, err
	}
	u.Status = identity.UserActive
	return u, nil
}

func (a *API) answerAuthError(w http.ResponseWriter, err error) {
	var ae *authError
	if errors.As(err, &ae) {
		writeError(w, ae.status, "%s", ae.msg)
		return
	}
	a.storeError(w, err)
}

func (a *API) activate(w http.ResponseWriter, r *http.Request) {
	var req apiv1.PasswordLink
	if !decode(w, r, &req) {
		return
	}
	a.finishLink(w, r, req.Token, req.Password, identity.PurposeActivate)
}

func (a *API) confirmReset(w http.ResponseWriter, r *http.Request) {
	var req apiv1.PasswordLink
	if !decode(w, r, &req) {
		return
	}
	a.finishLink(w, r, req.Token, req.Password, identity.PurposeReset)
}

func (a *API) finishLink(w http.ResponseWriter, r *http.Request, token, password, purpose string) {
	u, err := a.setPasswordWithToken(r.Context(), token, password, purpose)
	if err != nil {
		a.answerAuthError(w, err)
		return
	}
	if call, ok := r.Context().Value(auditCallKey{}).(*auditCall); ok {
		call.actAs(u)
		call.target = u.ID
	}
	a.log.Info("password set", "user", u.ID, "purpose", purpose)
	writeJSON(w, http.StatusOK, userView(u, true))
}

// requestReset mails a reset link if the address belongs to an account;
// the answer is the same either way.
func (a *API) requestReset(w http.ResponseWriter, r *http.Request) {
	var req apiv1.PasswordReset
	if !decode(w, r, &req) {
		return
	}
	email := identity.EmailKey(req.Email)
	if call, ok := r.Context().Value(auditCallKey{}).(*auditCall); ok {
		call.target = truncate(email, 254)
	}
	if !a.ipAllowed(w, r) {
		return
	}
	a.signins.add(a.limitKey(r), a.now()) // every reset request counts: each may send a mail
	u, err := a.userByEmail(r.Context(), req.Email)
	if err == nil && u.Status != identity.UserDisabled && a.cfg.Mailer != nil {
		// The link is made and mailed after the answer, so that an
		// account's address does not answer slower than an unknown one.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), time.Minute)
		go func() {
			defer cancel()
			if _, _, err := a.sendLink(ctx, u, identity.PurposeReset); err != nil {
				a.log.Error("send password reset", "user", u.ID, "err", err)
			}
		}()
	} else if err != nil && !errors.Is(err, database.ErrNotFound) {
		a.log.Error("password reset lookup", "err", err)
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "if the address belongs to an account, a link is on its way"})
}

// checkTOTP says whether code is the account's current TOTP code and was
// not used before (a code seen once, by anyone, is spent).
func (a *API) checkTOTP(ctx context.Context, u identity.User, code string) bool {
	secret, err := a.openTOTP(ctx, u)
	if err != nil {
		a.log.Error("open totp secret", "user", u.ID, "err", err)
		return false
	}
	step, ok := identity.TOTPStep(code, secret, a.now())
	if !ok {
		return false
	}
	if err := a.stores.Users.UseTOTPStep(ctx, u.ID, step); err != nil {
		if !errors.Is(err, database.ErrConflict) {
			a.log.Error("record totp step", "user", u.ID, "err", err)
		}
		return false
	}
	return true
}

// limitKey is the key the client's address is limited under: its IPv4
// address or its IPv6 /64.
func (a *API) limitKey(r *http.Request) string { return limitKey(a.clientIP(r)) }

// ipAllowed answers 429 when the client's address has used up its sign-in
// attempts.
func (a *API) ipAllowed(w http.ResponseWriter, r *http.Request) bool {
	over, until := a.signins.exceeded(a.limitKey(r), a.now())
	if !over {
		return true
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(until.Sub(a.now()).Seconds())+1))
	writeError(w, http.StatusTooManyRequests, "too many failed sign-ins from this address; try again after %s", until.UTC().Format(time.RFC3339))
	return false
}
