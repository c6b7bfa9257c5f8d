package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/sqlstore"
)

// nullIfEmpty passes an empty string as NULL.
func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func isForeignKeyViolation(err error) bool { return database.Postgres.IsForeignKeyViolation(err) }

// collect scans every row with scan; the result is never nil.
func collect[T any](rows pgx.Rows, err error, scan func(pgx.Row) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// ---- Tenants ----

// TenantsUnder returns the tenant and its descendants in path order: the
// paths equal to the tenant's or starting with it and "/" ("0" follows "/"
// in byte order).
func (s *Store) TenantsUnder(ctx context.Context, id string) ([]store.Tenant, error) {
	rows, err := s.pool.Query(ctx, `WITH p AS (SELECT path FROM tenants WHERE id = $1)
		SELECT `+tenantColumns+` FROM tenants, p
		WHERE tenants.path = p.path OR (tenants.path > p.path || '/' AND tenants.path < p.path || '0')
		ORDER BY tenants.path`, id)
	out, err := collect(rows, err, scanTenant)
	if err != nil {
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
	_, err = s.pool.Exec(ctx, `INSERT INTO users (`+userColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
		u.ID, u.TenantID, strings.ToLower(u.Email), u.FirstName, u.LastName, u.Phone, u.Company, addr, string(u.Role),
		nullIfEmpty(u.SupporterID), string(u.Status), u.PasswordHash, u.TOTPSecret, u.TOTPEnabled, int32(u.FailedLogins),
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

const apiTokenColumns = `id, tenant_id, user_id, name, role, scopes, hash, created_at, expires_at, last_used_at`

func scanAPIToken(row pgx.Row) (store.APIToken, error) {
	var t store.APIToken
	var user *string
	var role, scopes string
	var created, expires, used int64
	if err := row.Scan(&t.ID, &t.TenantID, &user, &t.Name, &role, &scopes, &t.Hash, &created, &expires, &used); err != nil {
		return store.APIToken{}, err
	}
	if user != nil {
		t.UserID = *user
	}
	t.Role, t.Scopes = store.Role(role), strings.Fields(scopes)
	t.CreatedAt, t.ExpiresAt, t.LastUsedAt = time.UnixMilli(created).UTC(), database.Time(expires), database.Time(used)
	return t, nil
}

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
	rows, err := s.pool.Query(ctx, `SELECT `+apiTokenColumns+` FROM api_tokens
		WHERE user_id IS NOT DISTINCT FROM $1 ORDER BY created_at, id`, nullIfEmpty(userID))
	out, err := collect(rows, err, scanAPIToken)
	if err != nil {
		return nil, fmt.Errorf("list api tokens of %q: %w", userID, err)
	}
	return out, nil
}

// ---- Grants ----

const grantColumns = `id, tenant_id, supporter_user_id, site_id, device_id, expires_at, created_by, created_at, revoked_at, revoked_by`

// CreateGrant stores a grant. Its site or device must be one of the
// granting tenant's, and its supporter must exist: otherwise ErrNotFound.
// The site or device row is held (FOR KEY SHARE) until the grant is in, so
// a DeleteSite or DeleteDevice at the same time sees the grant.
func (s *Store) CreateGrant(ctx context.Context, g store.Grant) error {
	if (g.SiteID == "") == (g.DeviceID == "") {
		return fmt.Errorf("grant %q: exactly one of site and device must be set", g.ID)
	}
	target, table := g.SiteID, "sites"
	if g.DeviceID != "" {
		target, table = g.DeviceID, "devices"
	}
	tag, err := s.pool.Exec(ctx, `WITH target AS (
			SELECT 1 FROM `+table+` WHERE id = $11 AND tenant_id = $2 FOR KEY SHARE
		)
		INSERT INTO grants (`+grantColumns+`)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 FROM target`,
		g.ID, g.TenantID, g.SupporterUserID, nullIfEmpty(g.SiteID), nullIfEmpty(g.DeviceID), database.Millis(g.ExpiresAt),
		g.CreatedBy, database.Millis(g.CreatedAt), database.Millis(g.RevokedAt), g.RevokedBy, target)
	switch {
	case isUniqueViolation(err):
		return fmt.Errorf("grant %q: %w", g.ID, store.ErrConflict)
	case isForeignKeyViolation(err):
		return fmt.Errorf("grant %q: supporter %q: %w", g.ID, g.SupporterUserID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create grant %q: %w", g.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("grant %q: %s %q of tenant %q: %w", g.ID, strings.TrimSuffix(table, "s"), target, g.TenantID, store.ErrNotFound)
	}
	return nil
}

// RevokeGrant marks a grant revoked, once: of concurrent revocations one
// wins, the others find it revoked (ErrConflict).
func (s *Store) RevokeGrant(ctx context.Context, id, by string, at time.Time) error {
	if at.IsZero() {
		return fmt.Errorf("revoke grant %q: no time given", id)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE grants SET revoked_at = $1, revoked_by = $2 WHERE id = $3 AND revoked_at = 0`,
		at.UnixMilli(), by, id)
	if err != nil {
		return fmt.Errorf("revoke grant %q: %w", id, err)
	}
	if tag.RowsAffected() > 0 {
		return nil
	}
	if _, err := s.GetGrant(ctx, id); err != nil {
		return err
	}
	return fmt.Errorf("grant %q: already revoked: %w", id, store.ErrConflict)
}

// fromJSON decodes a column written as JSON; empty is the zero value.
func fromJSON(s string, v any) error { return sqlstore.FromJSON(s, v) }

// tenantJSON encodes a tenant's address, contact and contract.
func tenantJSON(t store.Tenant) (addr, contact, contract string, err error) {
	return sqlstore.TenantJSON(t)
}
