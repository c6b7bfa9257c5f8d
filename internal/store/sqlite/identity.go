package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/sqlstore"
)

func isForeignKeyViolation(err error) bool { return database.SQLite.IsForeignKeyViolation(err) }

// ---- Tenants ----

// TenantsUnder returns the tenant and its descendants in path order: the
// paths equal to the tenant's or starting with it and "/" ("0" follows "/"
// in byte order).
func (s *Store) TenantsUnder(ctx context.Context, id string) ([]store.Tenant, error) {
	rows, err := s.r.QueryContext(ctx, `WITH p AS (SELECT path FROM tenants WHERE id = ?)
		SELECT `+tenantColumns+` FROM tenants, p
		WHERE tenants.path = p.path OR (tenants.path > p.path || '/' AND tenants.path < p.path || '0')
		ORDER BY tenants.path`, id)
	if err != nil {
		return nil, fmt.Errorf("tenants under %q: %w", id, err)
	}
	defer rows.Close()
	out := []store.Tenant{}
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, fmt.Errorf("tenants under %q: %w", id, err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tenants under %q: %w", id, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("tenant %q: %w", id, store.ErrNotFound)
	}
	return out, nil
}

// ---- Sites ----

// ---- Devices ----

// ---- Users ----

const userColumns = `id, tenant_id, email, first_name, last_name, phone, company, address, role, supporter_id,
	status, password_hash, totp_secret, totp_enabled, failed_logins, locked_until, last_login_at, created_by, created_at`

// CreateUser adds an account. The e-mail address is stored in lower case.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	addr, err := sqlstore.ToJSON(u.Address)
	if err != nil {
		return fmt.Errorf("create user %q: %w", u.ID, err)
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES (`+placeholders(19)+`)`,
		u.ID, u.TenantID, strings.ToLower(u.Email), u.FirstName, u.LastName, u.Phone, u.Company, addr, string(u.Role),
		database.NullIfEmpty(u.SupporterID), string(u.Status), u.PasswordHash, u.TOTPSecret, u.TOTPEnabled, u.FailedLogins,
		database.Millis(u.LockedUntil), database.Millis(u.LastLoginAt), u.CreatedBy, database.Millis(u.CreatedAt))
	switch {
	case isUniqueViolation(err):
		return fmt.Errorf("user %q (%s): id, e-mail address or supporter id taken: %w", u.ID, u.Email, store.ErrConflict)
	case isForeignKeyViolation(err):
		return fmt.Errorf("tenant %q: %w", u.TenantID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create user %q: %w", u.ID, err)
	}
	return nil
}

// ---- Sessions ----

// ---- One-time tokens ----

// ---- API tokens ----

// joinScopes is the scopes column: the scopes separated by spaces.
func joinScopes(scopes []string) (string, error) {
	for _, sc := range scopes {
		if sc == "" || strings.ContainsFunc(sc, func(r rune) bool { return r <= ' ' }) {
			return "", fmt.Errorf("invalid scope %q", sc)
		}
	}
	return strings.Join(scopes, " "), nil
}

// ListAPITokens returns the tokens acting for a user, oldest first; with
// userID "", the tokens without a user.
func (s *Store) ListAPITokens(ctx context.Context, userID string) ([]store.APIToken, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+sqlstore.APITokenColumns+` FROM api_tokens
		WHERE user_id IS ? ORDER BY created_at, id`, database.NullIfEmpty(userID))
	if err != nil {
		return nil, fmt.Errorf("list api tokens of %q: %w", userID, err)
	}
	defer rows.Close()
	out := []store.APIToken{}
	for rows.Next() {
		t, err := sqlstore.ScanAPIToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list api tokens of %q: %w", userID, err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list api tokens of %q: %w", userID, err)
	}
	return out, nil
}

// ---- Grants ----

const grantColumns = `id, tenant_id, supporter_user_id, site_id, device_id, expires_at, created_by, created_at, revoked_at, revoked_by`

// CreateGrant stores a grant. Its site or device must be one of the
// granting tenant's, and its supporter must exist: otherwise ErrNotFound.
func (s *Store) CreateGrant(ctx context.Context, g store.Grant) error {
	if (g.SiteID == "") == (g.DeviceID == "") {
		return fmt.Errorf("grant %q: exactly one of site and device must be set", g.ID)
	}
	target, table := g.SiteID, "sites"
	if g.DeviceID != "" {
		target, table = g.DeviceID, "devices"
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO grants (`+grantColumns+`)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM `+table+` WHERE id = ? AND tenant_id = ?)`,
		g.ID, g.TenantID, g.SupporterUserID, database.NullIfEmpty(g.SiteID), database.NullIfEmpty(g.DeviceID), database.Millis(g.ExpiresAt),
		g.CreatedBy, database.Millis(g.CreatedAt), database.Millis(g.RevokedAt), g.RevokedBy, target, g.TenantID)
	switch {
	case isUniqueViolation(err):
		return fmt.Errorf("grant %q: %w", g.ID, store.ErrConflict)
	case isForeignKeyViolation(err):
		return fmt.Errorf("grant %q: supporter %q: %w", g.ID, g.SupporterUserID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create grant %q: %w", g.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("grant %q: %s %q of tenant %q: %w", g.ID, strings.TrimSuffix(table, "s"), target, g.TenantID, store.ErrNotFound)
	}
	return nil
}

// RevokeGrant marks a grant revoked, once.
func (s *Store) RevokeGrant(ctx context.Context, id, by string, at time.Time) error {
	if at.IsZero() {
		return fmt.Errorf("revoke grant %q: no time given", id)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("revoke grant %q: %w", id, err)
	}
	defer tx.Rollback()
	var revoked int64
	err = tx.QueryRowContext(ctx, `SELECT revoked_at FROM grants WHERE id = ?`, id).Scan(&revoked)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("grant %q: %w", id, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("revoke grant %q: %w", id, err)
	case revoked != 0:
		return fmt.Errorf("grant %q: already revoked: %w", id, store.ErrConflict)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE grants SET revoked_at = ?, revoked_by = ? WHERE id = ?`, at.UnixMilli(), by, id); err != nil {
		return fmt.Errorf("revoke grant %q: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("revoke grant %q: %w", id, err)
	}
	return nil
}

// fromJSON decodes a column written as JSON; empty is the zero value.
func fromJSON(s string, v any) error { return sqlstore.FromJSON(s, v) }

// tenantJSON encodes a tenant's address, contact and contract.
func tenantJSON(t store.Tenant) (addr, contact, contract string, err error) {
	return sqlstore.TenantJSON(t)
}
