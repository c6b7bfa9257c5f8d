package api

// The caller's own account: profile, password, sessions, two-factor
// sign-in and API tokens.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/identity"
)

func (a *API) getMe(w http.ResponseWriter, r *http.Request) {
	u := loaded[identity.User](r.Context())
	if err := a.withSignInLock(r.Context(), &u); err != nil {
		a.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, userView(u, true))
}

func (a *API) updateMe(w http.ResponseWriter, r *http.Request) {
	var req apiv1.Profile
	if !decode(w, r, &req) {
		return
	}
	u := loaded[identity.User](r.Context())
	if err := applyProfile(req, &u); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if err := a.stores.Users.UpdateUser(r.Context(), u); err != nil {
		a.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, userView(u, true))
}

func (a *API) changePassword(w http.ResponseWriter, r *http.Request) {
	var req apiv1.PasswordChange
	if !decode(w, r, &req) {
		return
	}
	u := loaded[identity.User](r.Context())
	// Guessing the current password with a stolen session or token counts
	// as failed sign-ins of the address, and is locked out like them.
	key := signInKey(identity.EmailKey(u.Email))
	f, err := a.stores.SignIns.SignInFailures(r.Context(), key)
	if err != nil {
		a.storeError(w, err)
		return
	}
	if a.now().Before(f.LockedUntil) {
		a.signInLocked(w, f.LockedUntil)
		return
	}
	if ok, _ := identity.VerifyPassword(req.CurrentPassword, u.PasswordHash); !ok {
		f, err := a.stores.SignIns.AddSignInFailure(r.Context(), key, a.now().UTC(), FailureMemory, MaxFailedLogins, LockDuration)
		if err != nil {
			a.storeError(w, err)
			return
		}
		if a.now().Before(f.LockedUntil) {
			a.signInLocked(w, f.LockedUntil)
			return
		}
		writeError(w, http.StatusForbidden, "the current password is wrong")
		return
	}
	if err := identity.CheckPassword(req.NewPassword, u.Email); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	hash, err := identity.HashPassword(req.NewPassword, identity.DefaultParams())
	if err != nil {
		a.storeError(w, err)
		return
	}
	if err := a.stores.Users.SetPassword(r.Context(), u.ID, hash); err != nil {
		a.storeError(w, err)
		return
	}
	// Every other session ends; this one stays.
	sessions, err := a.stores.Users.ListSessions(r.Context(), u.ID)
	if err != nil {
		a.storeError(w, err)
		return
	}
	for _, s := range sessions {
		if s.ID != principal(r.Context()).SessionID {
			if err := a.stores.Users.DeleteSession(r.Context(), s.ID); err != nil {
				a.storeError(w, err)
				return
			}
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) listSessions(w http.ResponseWriter, r *http.Request) {
	ss, err := a.stores.Users.ListSessions(r.Context(), loaded[identity.User](r.Context()).ID)
	if err != nil {
		a.storeError(w, err)
		return
	}
	out := make([]apiv1.SessionInfo, len(ss))
	for i, s := range ss {
		out[i] = apiv1.SessionInfo{ID: s.ID, Current: s.ID == principal(r.Context()).SessionID, CreatedAt: s.CreatedAt,
			LastSeenAt: s.LastSeenAt, ExpiresAt: s.ExpiresAt, IP: s.IP, UserAgent: s.UserAgent}
	}
	writeJSON(w, http.StatusOK, apiv1.SessionList{Sessions: out})
}

func (a *API) deleteSession(w http.ResponseWriter, r *http.Request) {
	ss, err := a.stores.Users.ListSessions(r.Context(), loaded[identity.User](r.Context()).ID)
	if err != nil {
		a.storeError(w, err)
		return
	}
	for _, s := range ss {
		if s.ID == r.PathValue("session") {
			if err := a.stores.Users.DeleteSession(r.Context(), s.ID); err != nil {
				a.storeError(w, err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	writeError(w, http.StatusNotFound, "session %q: not found", r.PathValue("session"))
}

// totpAAD binds a sealed TOTP secret to its account.
func totpAAD(userID string) []byte { return []byte("warden-totp\x00" + userID) }

func (a *API) openTOTP(ctx context.Context, u identity.User) (string, error) {
	if a.cfg.Keys == nil || len(u.TOTPSecret) == 0 {
		return "", errors.New("no TOTP secret")
	}
	b, err := a.cfg.Keys.Open(ctx, u.TenantID, u.TOTPSecret, totpAAD(u.ID))
	return string(b), err
}

func (a *API) startTOTP(w http.ResponseWriter, r *http.Request) {
	u := loaded[identity.User](r.Context())
	if u.TOTPEnabled {
		writeError(w, http.StatusConflict, "two-factor sign-in is already on; turn it off first")
		return
	}
	if a.cfg.Keys == nil {
		writeError(w, http.StatusServiceUnavailable, "two-factor sign-in needs the key ring")
		return
	}
	k, err := identity.NewTOTP("Warden", u.Email)
	if err != nil {
		a.storeError(w, err)
		return
	}
	sealed, err := a.cfg.Keys.Seal(r.Context(), u.TenantID, []byte(k.Secret), totpAAD(u.ID))
	if err != nil {
		a.storeError(w, err)
		return
	}
	if err := a.stores.Users.SetTOTP(r.Context(), u.ID, sealed, false); err != nil {
		a.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, apiv1.TOTPSetup{Secret: k.Secret, URL: k.URL})
}

func (a *API) confirmTOTP(w http.ResponseWriter, r *http.Request) {
	var req apiv1.TOTPCode
	if !decode(w, r, &req) {
		return
	}
	u := loaded[identity.User](r.Context())
	if len(u.TOTPSecret) == 0 {
		writeError(w, http.StatusConflict, "start with POST /api/v1/me/totp")
		return
	}
	if !a.checkTOTP(r.Context(), u, req.Code) {
		writeError(w, http.StatusBadRequest, "the code does not match; check the authenticator's clock")
		return
	}
	if err := a.stores.Users.SetTOTP(r.Context(), u.ID, u.TOTPSecret, true); err != nil {
		a.storeError(w, err)
		return
	}
	u.TOTPEnabled = true
	writeJSON(w, http.StatusOK, userView(u, true))
}

func (a *API) disableTOTP(w http.ResponseWriter, r *http.Request) {
	var req apiv1.PasswordCheck
	if !decode(w, r, &req) {
		return
	}
	u := loaded[identity.User](r.Context())
	if ok, _ := identity.VerifyPassword(req.Password, u.PasswordHash); !ok {
		writeError(w, http.StatusForbidden, "the password is wrong")
		return
	}
	if err := a.stores.Users.SetTOTP(r.Context(), u.ID, nil, false); err != nil {
		a.storeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func tokenView(t identity.APIToken) apiv1.Token {
	v := apiv1.Token{ID: t.ID, Name: t.Name, Scopes: t.Scopes, CreatedAt: t.CreatedAt}
	if len(v.Scopes) == 0 {
		v.Scopes = []string{identity.ScopeRead, identity.ScopeWrite}
	}
	if !t.ExpiresAt.IsZero() {
		v.ExpiresAt = &t.ExpiresAt
	}
	if !t.LastUsedAt.IsZero() {
		v.LastUsedAt = &t.LastUsedAt
	}
	return v
}

func (a *API) listTokens(w http.ResponseWriter, r *http.Request) {
	ts, err := a.stores.Tokens.ListAPITokens(r.Context(), loaded[identity.User](r.Context()).ID)
	if err != nil {
		a.storeError(w, err)
		return
	}
	out := make([]apiv1.Token, len(ts))
	for i, t := range ts {
		out[i] = tokenView(t)
	}
	writeJSON(w, http.StatusOK, apiv1.TokenList{Tokens: out})
}

// MaxAPITokenTTL bounds how long an API token may live.
const MaxAPITokenTTL = 2 * 365 * 24 * time.Hour

func (a *API) createToken(w http.ResponseWriter, r *http.Request) {
	var req apiv1.NewToken
	if !decode(w, r, &req) {
		return
	}
	u := loaded[identity.User](r.Context())
	c := principal(r.Context())
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" || len(req.Name) > 100 {
		writeError(w, http.StatusBadRequest, "name: 1 to 100 characters")
		return
	}
	for _, s := range req.Scopes {
		if s != identity.ScopeRead && s != identity.ScopeWrite {
			writeError(w, http.StatusBadRequest, "scopes: %q is not one of read, write", s)
			return
		}
		// A token cannot have more than the token that makes it.
		if len(c.Scopes) > 0 && !slices.Contains(c.Scopes, s) {
			writeError(w, http.StatusForbidden, "scopes: your own credential lacks %q", s)
			return
		}
	}
	if len(req.Scopes) == 0 {
		req.Scopes = c.Scopes
	}
	now := a.now().UTC().Truncate(time.Millisecond)
	var exp time.Time
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 || d > MaxAPITokenTTL {
			writeError(w, http.StatusBadRequest, "ttl: a positive duration up to %s, like 720h", MaxAPITokenTTL)
			return
		}
		exp = now.Add(d)
	}
	// Nor can it outlive it: a token that ends makes only tokens that end
	// no later (without a ttl, when it ends).
	if end := c.TokenExpiresAt; !end.IsZero() {
		if exp.IsZero() {
			exp = end
		}
		if exp.After(end) {
			writeError(w, http.StatusForbidden, "ttl: a token cannot outlive the token that makes it (yours expires at %s)",
				end.UTC().Format(time.RFC3339))
			return
		}
	}
	secret, err1 := identity.NewSecret()
	id, err2 := identity.NewID("tok")
	if err := errors.Join(err1, err2); err != nil {
		a.storeError(w, err)
		return
	}
	t := identity.APIToken{ID: id, TenantID: u.TenantID, UserID: u.ID, Name: req.Name, Role: u.Role, Scopes: req.Scopes,
		Hash: HashToken(secret), CreatedAt: now, ExpiresAt: exp}
	if err := a.stores.Tokens.CreateAPIToken(r.Context(), t); err != nil {
		a.storeError(w, err)
		return
	}
	v := tokenView(t)
	v.Token = secret
	writeJSON(w, http.StatusCreated, v)
}

func (a *API) deleteToken(w http.ResponseWriter, r *http.Request) {
	t, err := a.stores.Tokens.GetAPIToken(r.Context(), r.PathValue("token"))
	if err == nil && t.UserID != loaded[identity.User](r.Context()).ID {
		err = fmt.Errorf("token %q: %w", r.PathValue("token"), database.ErrNotFound)
	}
	if err == nil {
		err = a.stores.Tokens.DeleteAPIToken(r.Context(), t.ID)
	}
	if err != nil {
		a.storeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
