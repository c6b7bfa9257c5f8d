package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/store"
)

// ---- Devices ----

// ---- Users ----

const userColumns = `id, tenant_id, email, first_name, last_name, phone, company, address, role, supporter_id,
	status, password_hash, totp_secret, totp_enabled, failed_logins, locked_until, last_login_at, created_by, created_at`

func scanUser(row database.Scanner) (store.User, error) {
	var u store.User
	var addr, role, status string
	var supporter sql.NullString
	var locked, lastLogin, created int64
	if err := row.Scan(&u.ID, &u.TenantID, &u.Email, &u.FirstName, &u.LastName, &u.Phone, &u.Company, &addr, &role, &supporter,
		&status, &u.PasswordHash, &u.TOTPSecret, &u.TOTPEnabled, &u.FailedLogins, &locked, &lastLogin, &u.CreatedBy, &created); err != nil {
		return store.User{}, err
	}
	if err := FromJSON(addr, &u.Address); err != nil {
		return store.User{}, fmt.Errorf("address of user %q: %w", u.ID, err)
	}
	u.Role, u.Status, u.SupporterID = store.Role(role), store.UserStatus(status), supporter.String
	u.LockedUntil, u.LastLoginAt, u.CreatedAt = database.Time(locked), database.Time(lastLogin), database.Time(created)
	return u, nil
}

func (s *Store) userWhere(ctx context.Context, what, cond string, arg any) (store.User, error) {
	u, err := scanUser(s.db.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE `+cond, arg))
	if database.NoRows(err) {
		return u, fmt.Errorf("user %s: %w", what, store.ErrNotFound)
	}
	if err != nil {
		return u, fmt.Errorf("user %s: %w", what, err)
	}
	return u, nil
}

// GetUser returns one account.
func (s *Store) GetUser(ctx context.Context, id string) (store.User, error) {
	return s.userWhere(ctx, fmt.Sprintf("%q", id), `id = ?`, id)
}

// UserByEmail finds an account by its e-mail address, in any case.
func (s *Store) UserByEmail(ctx context.Context, email string) (store.User, error) {
	return s.userWhere(ctx, fmt.Sprintf("with e-mail address %q", email), `email = ?`, strings.ToLower(email))
}

// UserBySupporterID finds a supporter by their public id.
func (s *Store) UserBySupporterID(ctx context.Context, supporterID string) (store.User, error) {
	if supporterID == "" {
		return store.User{}, fmt.Errorf("user without supporter id: %w", store.ErrNotFound)
	}
	return s.userWhere(ctx, fmt.Sprintf("with supporter id %q", supporterID), `supporter_id = ?`, supporterID)
}

// ListUsers returns the accounts of the tenants (nil: of all) in id order.
func (s *Store) ListUsers(ctx context.Context, tenantIDs []string) ([]store.User, error) {
	w := s.filter()
	w.In("tenant_id", tenantIDs)
	out := []store.User{}
	if w.None {
		return out, nil
	}
	rows, err := s.db.Query(ctx, `SELECT `+userColumns+` FROM users`+w.Where()+` ORDER BY id`, w.Args...)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// UpdateUser replaces names, phone, company, address, role and status.
func (s *Store) UpdateUser(ctx context.Context, u store.User) error {
	addr, err := ToJSON(u.Address)
	if err != nil {
		return fmt.Errorf("update user %q: %w", u.ID, err)
	}
	return s.updateOne(ctx, "user", u.ID, `UPDATE users SET first_name = ?, last_name = ?, phone = ?, company = ?,
		address = ?, role = ?, status = ? WHERE id = ?`,
		u.FirstName, u.LastName, u.Phone, u.Company, addr, string(u.Role), string(u.Status), u.ID)
}

// SetPassword stores a new password hash, activates the account unless it
// is disabled, and clears failed logins and any lock.
func (s *Store) SetPassword(ctx context.Context, userID, hash string) error {
	return s.updateOne(ctx, "user", userID, `UPDATE users SET password_hash = ?,
		status = CASE WHEN status = ? THEN status ELSE ? END, failed_logins = 0, locked_until = 0
		WHERE id = ?`, hash, string(store.UserDisabled), string(store.UserActive), userID)
}

// SetTOTP stores a sealed TOTP secret (nil: none) and whether it is enabled.
func (s *Store) SetTOTP(ctx context.Context, userID string, secret []byte, enabled bool) error {
	return s.updateOne(ctx, "user", userID, `UPDATE users SET totp_secret = ?, totp_enabled = ? WHERE id = ?`,
		secret, enabled, userID)
}

// LoginSucceeded clears failed logins and any lock, and records the
// sign-in (package api also uses it, with the last sign-in time, to lift a
// lock).
func (s *Store) LoginSucceeded(ctx context.Context, userID string, at time.Time) error {
	return s.updateOne(ctx, "user", userID, `UPDATE users SET failed_logins = 0, locked_until = 0, last_login_at = ? WHERE id = ?`,
		database.Millis(at), userID)
}

// DeleteUser removes an account; its sessions, one-time tokens, API tokens
// and the grants made to it go with it (ON DELETE CASCADE).
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	res, err := s.db.Exec(ctx, `DELETE FROM users WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete user %q: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("user %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// ---- Sessions ----

const sessionColumns = `id, user_id, hash, created_at, last_seen_at, expires_at, ip, user_agent`

func scanSession(row database.Scanner) (store.Session, error) {
	var se store.Session
	var created, seen, expires int64
	if err := row.Scan(&se.ID, &se.UserID, &se.Hash, &created, &seen, &expires, &se.IP, &se.UserAgent); err != nil {
		return store.Session{}, err
	}
	se.CreatedAt, se.LastSeenAt, se.ExpiresAt = database.Time(created), database.Time(seen), database.Time(expires)
	return se, nil
}

// CreateSession stores a signed-in browser.
func (s *Store) CreateSession(ctx context.Context, se store.Session) error {
	_, err := s.db.Exec(ctx, `INSERT INTO sessions (`+sessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		se.ID, se.UserID, se.Hash, database.Millis(se.CreatedAt), database.Millis(se.LastSeenAt), database.Millis(se.ExpiresAt), se.IP, se.UserAgent)
	switch {
	case s.isUnique(err):
		return fmt.Errorf("session %q: %w", se.ID, store.ErrConflict)
	case s.isForeignKey(err):
		return fmt.Errorf("user %q: %w", se.UserID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create session %q: %w", se.ID, err)
	}
	return nil
}

// SessionByHash finds a session by the hash of its secret, expired or not.
func (s *Store) SessionByHash(ctx context.Context, hash []byte) (store.Session, error) {
	se, err := scanSession(s.db.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE hash = ?`, hash))
	if database.NoRows(err) {
		return se, fmt.Errorf("session: %w", store.ErrNotFound)
	}
	if err != nil {
		return se, fmt.Errorf("session: %w", err)
	}
	return se, nil
}

// TouchSession records activity and moves the expiry.
func (s *Store) TouchSession(ctx context.Context, id string, at, expires time.Time) error {
	return s.updateOne(ctx, "session", id, `UPDATE sessions SET last_seen_at = ?, expires_at = ? WHERE id = ?`,
		database.Millis(at), database.Millis(expires), id)
}

// DeleteSession signs a session out.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	res, err := s.db.Exec(ctx, `DELETE FROM sessions WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete session %q: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("session %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// DeleteUserSessions signs a user out everywhere.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("delete sessions of user %q: %w", userID, err)
	}
	return nil
}

// ListSessions returns a user's sessions, oldest first.
func (s *Store) ListSessions(ctx context.Context, userID string) ([]store.Session, error) {
	rows, err := s.db.Query(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE user_id = ? ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list sessions of %q: %w", userID, err)
	}
	defer rows.Close()
	out := []store.Session{}
	for rows.Next() {
		se, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("list sessions of %q: %w", userID, err)
		}
		out = append(out, se)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sessions of %q: %w", userID, err)
	}
	return out, nil
}

// ---- One-time tokens ----

// CreateUserToken stores a one-time token in place of the user's token of
// the same purpose, if any.
func (s *Store) CreateUserToken(ctx context.Context, t store.UserToken) error {
	_, err := s.db.Exec(ctx, `INSERT INTO user_tokens (hash, user_id, purpose, created_at, expires_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (user_id, purpose) DO UPDATE SET hash = excluded.hash, created_at = excluded.created_at,
			expires_at = excluded.expires_at`,
		t.Hash, t.UserID, t.Purpose, database.Millis(t.CreatedAt), database.Millis(t.ExpiresAt))
	switch {
	case s.isUnique(err):
		return fmt.Errorf("user token: %w", store.ErrConflict)
	case s.isForeignKey(err):
		return fmt.Errorf("user %q: %w", t.UserID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create user token: %w", err)
	}
	return nil
}

// ConsumeUserToken deletes and returns a token in one statement, so it
// can be used once. A token whose expiry is not after now is not found
// (and stays until replaced or its user goes).
func (s *Store) ConsumeUserToken(ctx context.Context, hash []byte, purpose string, now time.Time) (store.UserToken, error) {
	t := store.UserToken{Purpose: purpose}
	var created, expires int64
	err := s.db.Primary().QueryRow(ctx, `DELETE FROM user_tokens WHERE hash = ? AND purpose = ? AND expires_at > ?
		RETURNING hash, user_id, created_at, expires_at`, hash, purpose, now.UnixMilli()).
		Scan(&t.Hash, &t.UserID, &created, &expires)
	if database.NoRows(err) {
		return store.UserToken{}, fmt.Errorf("%s token: %w", purpose, store.ErrNotFound)
	}
	if err != nil {
		return store.UserToken{}, fmt.Errorf("consume %s token: %w", purpose, err)
	}
	t.CreatedAt, t.ExpiresAt = database.Time(created), database.Time(expires)
	return t, nil
}

// ---- API tokens ----

// APITokenColumns are the columns ScanAPIToken reads, in its order.
const APITokenColumns = `id, tenant_id, user_id, name, role, scopes, hash, created_at, expires_at, last_used_at`

// ScanAPIToken reads an API token row of APITokenColumns.
func ScanAPIToken(row database.Scanner) (store.APIToken, error) {
	var t store.APIToken
	var user sql.NullString
	var role, scopes string
	var created, expires, used int64
	if err := row.Scan(&t.ID, &t.TenantID, &user, &t.Name, &role, &scopes, &t.Hash, &created, &expires, &used); err != nil {
		return store.APIToken{}, err
	}
	t.UserID, t.Role, t.Scopes = user.String, store.Role(role), strings.Fields(scopes)
	t.CreatedAt, t.ExpiresAt, t.LastUsedAt = time.UnixMilli(created).UTC(), database.Time(expires), database.Time(used)
	return t, nil
}

// GetAPIToken returns one token.
func (s *Store) GetAPIToken(ctx context.Context, id string) (store.APIToken, error) {
	t, err := ScanAPIToken(s.db.QueryRow(ctx, `SELECT `+APITokenColumns+` FROM api_tokens WHERE id = ?`, id))
	if database.NoRows(err) {
		return t, fmt.Errorf("api token %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("api token %q: %w", id, err)
	}
	return t, nil
}

// DeleteAPIToken revokes a token.
func (s *Store) DeleteAPIToken(ctx context.Context, id string) error {
	res, err := s.db.Exec(ctx, `DELETE FROM api_tokens WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete api token %q: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("api token %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// TouchAPIToken records when a token was last used.
func (s *Store) TouchAPIToken(ctx context.Context, id string, at time.Time) error {
	return s.updateOne(ctx, "api token", id, `UPDATE api_tokens SET last_used_at = ? WHERE id = ?`, database.Millis(at), id)
}

// PurgeExpired deletes expired sessions and one-time tokens.
func (s *Store) PurgeExpired(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	for _, q := range []string{`DELETE FROM sessions WHERE expires_at <= ?`, `DELETE FROM user_tokens WHERE expires_at <= ?`} {
		res, err := s.db.Exec(ctx, q, now.UnixMilli())
		if err != nil {
			return n, fmt.Errorf("purge expired: %w", err)
		}
		m, _ := res.RowsAffected()
		n += m
	}
	return n, nil
}

// UseTOTPStep records a used TOTP step unless it is not after the last.
func (s *Store) UseTOTPStep(ctx context.Context, userID string, step int64) error {
	res, err := s.db.Exec(ctx, `UPDATE users SET totp_step = ? WHERE id = ? AND totp_step < ?`, step, userID, step)
	if err != nil {
		return fmt.Errorf("use totp step of %q: %w", userID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := s.GetUser(ctx, userID); err != nil {
			return err
		}
		return fmt.Errorf("totp code of %q used already: %w", userID, store.ErrConflict)
	}
	return nil
}
