package identitysql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/identity"
)

const userColumns = `id, tenant_id, email, first_name, last_name, phone, company, address, role, supporter_id,
	status, password_hash, totp_secret, totp_enabled, failed_logins, locked_until, last_login_at, created_by, created_at`

func scanUser(row database.Scanner) (identity.User, error) {
	var u identity.User
	var addr, role, status string
	var supporter sql.NullString
	var locked, lastLogin, created int64
	if err := row.Scan(&u.ID, &u.TenantID, &u.Email, &u.FirstName, &u.LastName, &u.Phone, &u.Company, &addr, &role, &supporter,
		&status, &u.PasswordHash, &u.TOTPSecret, &u.TOTPEnabled, &u.FailedLogins, &locked, &lastLogin, &u.CreatedBy, &created); err != nil {
		return identity.User{}, err
	}
	if err := database.FromJSON(addr, &u.Address); err != nil {
		return identity.User{}, fmt.Errorf("address of user %q: %w", u.ID, err)
	}
	u.Role, u.Status, u.SupporterID = identity.Role(role), identity.UserStatus(status), supporter.String
	u.LockedUntil, u.LastLoginAt, u.CreatedAt = database.Time(locked), database.Time(lastLogin), database.Time(created)
	return u, nil
}

// CreateUser adds an account. The e-mail address is stored in lower case.
func (s *Store) CreateUser(ctx context.Context, u identity.User) error {
	addr, err := database.ToJSON(u.Address)
	if err != nil {
		return fmt.Errorf("create user %q: %w", u.ID, err)
	}
	_, err = s.db.Exec(ctx, `INSERT INTO users (`+userColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.TenantID, strings.ToLower(u.Email), u.FirstName, u.LastName, u.Phone, u.Company, addr, string(u.Role),
		database.NullIfEmpty(u.SupporterID), string(u.Status), u.PasswordHash, u.TOTPSecret, u.TOTPEnabled, u.FailedLogins,
		database.Millis(u.LockedUntil), database.Millis(u.LastLoginAt), u.CreatedBy, database.Millis(u.CreatedAt))
	switch {
	case s.isUnique(err):
		return fmt.Errorf("user %q (%s): id, e-mail address or supporter id taken: %w", u.ID, u.Email, database.ErrConflict)
	case s.isForeignKey(err):
		return fmt.Errorf("tenant %q: %w", u.TenantID, database.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create user %q: %w", u.ID, err)
	}
	return nil
}

func (s *Store) userWhere(ctx context.Context, what, cond string, arg any) (identity.User, error) {
	u, err := scanUser(s.db.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE `+cond, arg))
	if database.NoRows(err) {
		return u, fmt.Errorf("user %s: %w", what, database.ErrNotFound)
	}
	if err != nil {
		return u, fmt.Errorf("user %s: %w", what, err)
	}
	return u, nil
}

// GetUser returns one account.
func (s *Store) GetUser(ctx context.Context, id string) (identity.User, error) {
	return s.userWhere(ctx, fmt.Sprintf("%q", id), `id = ?`, id)
}

// UserByEmail finds an account by its e-mail address, in any case.
func (s *Store) UserByEmail(ctx context.Context, email string) (identity.User, error) {
	return s.userWhere(ctx, fmt.Sprintf("with e-mail address %q", email), `email = ?`, strings.ToLower(email))
}

// UserBySupporterID finds a supporter by their public id.
func (s *Store) UserBySupporterID(ctx context.Context, supporterID string) (identity.User, error) {
	if supporterID == "" {
		return identity.User{}, fmt.Errorf("user without supporter id: %w", database.ErrNotFound)
	}
	return s.userWhere(ctx, fmt.Sprintf("with supporter id %q", supporterID), `supporter_id = ?`, supporterID)
}

// ListUsers returns the accounts of the tenants (nil: of all) in id order.
func (s *Store) ListUsers(ctx context.Context, tenantIDs []string) ([]identity.User, error) {
	w := s.filter()
	w.In("tenant_id", tenantIDs)
	if w.None {
		return []identity.User{}, nil
	}
	rows, err := s.db.Query(ctx, `SELECT `+userColumns+` FROM users`+w.Where()+` ORDER BY id`, w.Args...)
	out, err := database.Collect(rows, err, scanUser)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// ListUsersUnder returns the accounts of the tenant and the tenants below
// it (the subtree found in the query) in id order.
func (s *Store) ListUsersUnder(ctx context.Context, tenantID string) ([]identity.User, error) {
	w := s.filter()
	w.Under("tenant_id", tenantID)
	rows, err := s.db.Query(ctx, `SELECT `+userColumns+` FROM users`+w.Where()+` ORDER BY id`, w.Args...)
	out, err := database.Collect(rows, err, scanUser)
	if err != nil {
		return nil, fmt.Errorf("list users under %q: %w", tenantID, err)
	}
	return out, nil
}

// UpdateUser replaces names, phone, company, address, role and status.
func (s *Store) UpdateUser(ctx context.Context, u identity.User) error {
	addr, err := database.ToJSON(u.Address)
	if err != nil {
		return fmt.Errorf("update user %q: %w", u.ID, err)
	}
	return database.UpdateOne(ctx, s.db, "user", u.ID, `UPDATE users SET first_name = ?, last_name = ?, phone = ?, company = ?,
		address = ?, role = ?, status = ? WHERE id = ?`,
		u.FirstName, u.LastName, u.Phone, u.Company, addr, string(u.Role), string(u.Status), u.ID)
}

// SetPassword stores a new password hash, activates the account unless it
// is disabled, and clears failed logins and any lock.
func (s *Store) SetPassword(ctx context.Context, userID, hash string) error {
	return database.UpdateOne(ctx, s.db, "user", userID, `UPDATE users SET password_hash = ?,
		status = CASE WHEN status = ? THEN status ELSE ? END, failed_logins = 0, locked_until = 0
		WHERE id = ?`, hash, string(identity.UserDisabled), string(identity.UserActive), userID)
}

// SetTOTP stores a sealed TOTP secret (nil: none) and whether it is enabled.
func (s *Store) SetTOTP(ctx context.Context, userID string, secret []byte, enabled bool) error {
	return database.UpdateOne(ctx, s.db, "user", userID, `UPDATE users SET totp_secret = ?, totp_enabled = ? WHERE id = ?`,
		secret, enabled, userID)
}

// UseTOTPStep records a used TOTP step unless it is not after the last.
func (s *Store) UseTOTPStep(ctx context.Context, userID string, step int64) error {
	n, err := database.Affected(s.db.Exec(ctx, `UPDATE users SET totp_step = ? WHERE id = ? AND totp_step < ?`, step, userID, step))
	if err != nil {
		return fmt.Errorf("use totp step of %q: %w", userID, err)
	}
	if n == 0 {
		if _, err := s.GetUser(ctx, userID); err != nil {
			return err
		}
		return fmt.Errorf("totp code of %q used already: %w", userID, database.ErrConflict)
	}
	return nil
}

// LoginSucceeded clears failed logins and any lock, and records the
// sign-in (package api also uses it, with the last sign-in time, to lift a
// lock).
func (s *Store) LoginSucceeded(ctx context.Context, userID string, at time.Time) error {
	return database.UpdateOne(ctx, s.db, "user", userID, `UPDATE users SET failed_logins = 0, locked_until = 0, last_login_at = ? WHERE id = ?`,
		database.Millis(at), userID)
}

// DeleteUser removes an account; its sessions, one-time tokens, API tokens
// and the grants made to it go with it (ON DELETE CASCADE).
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	return database.DeleteOne(ctx, s.db, "user", id, `DELETE FROM users WHERE id = ?`, id)
}
