// Package accesssql is access.GrantStore on Warden's database, one set of
// statements for SQLite and PostgreSQL.
package accesssql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/warden-iot/warden/internal/access"
	"github.com/warden-iot/warden/internal/database"
)

// Store is access.GrantStore on a database.
type Store struct {
	db database.DB
}

var _ access.GrantStore = (*Store)(nil)

// New returns a Store on db.
func New(db database.DB) *Store { return &Store{db: db} }

const grantColumns = `id, tenant_id, supporter_user_id, site_id, device_id, expires_at, created_by, created_at, revoked_at, revoked_by`

func scanGrant(row database.Scanner) (access.Grant, error) {
	var g access.Grant
	var site, device sql.NullString
	var expires, created, revoked int64
	if err := row.Scan(&g.ID, &g.TenantID, &g.SupporterUserID, &site, &device, &expires, &g.CreatedBy, &created,
		&revoked, &g.RevokedBy); err != nil {
		return access.Grant{}, err
	}
	g.SiteID, g.DeviceID = site.String, device.String
	g.ExpiresAt, g.CreatedAt, g.RevokedAt = database.Time(expires), database.Time(created), database.Time(revoked)
	return g, nil
}

// CreateGrant stores a grant. Its site or device must be one of the
// granting tenant's, and its supporter must exist: otherwise ErrNotFound.
// In PostgreSQL the site or device row is held (FOR KEY SHARE) until the
// grant is in, so a DeleteSite or DeleteDevice at the same time sees the
// grant; SQLite's single writer runs one statement at a time anyway.
func (s *Store) CreateGrant(ctx context.Context, g access.Grant) error {
	if (g.SiteID == "") == (g.DeviceID == "") {
		return fmt.Errorf("grant %q: exactly one of site and device must be set", g.ID)
	}
	target, table := g.SiteID, "sites"
	if g.DeviceID != "" {
		target, table = g.DeviceID, "devices"
	}
	lock := ""
	if s.db.Dialect == database.Postgres {
		lock = ` FOR KEY SHARE`
	}
	n, err := database.Affected(s.db.Exec(ctx, `WITH target AS (
			SELECT 1 FROM `+table+` WHERE id = ? AND tenant_id = ?`+lock+`
		)
		INSERT INTO grants (`+grantColumns+`)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM target`,
		target, g.TenantID,
		g.ID, g.TenantID, g.SupporterUserID, database.NullIfEmpty(g.SiteID), database.NullIfEmpty(g.DeviceID), database.Millis(g.ExpiresAt),
		g.CreatedBy, database.Millis(g.CreatedAt), database.Millis(g.RevokedAt), g.RevokedBy))
	switch {
	case s.db.Dialect.IsUniqueViolation(err):
		return fmt.Errorf("grant %q: %w", g.ID, database.ErrConflict)
	case s.db.Dialect.IsForeignKeyViolation(err):
		return fmt.Errorf("grant %q: supporter %q: %w", g.ID, g.SupporterUserID, database.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create grant %q: %w", g.ID, err)
	case n == 0:
		return fmt.Errorf("grant %q: %s %q of tenant %q: %w", g.ID, strings.TrimSuffix(table, "s"), target, g.TenantID, database.ErrNotFound)
	}
	return nil
}

// GetGrant returns one grant.
func (s *Store) GetGrant(ctx context.Context, id string) (access.Grant, error) {
	return getGrant(ctx, s.db, id)
}

func getGrant(ctx context.Context, q database.Querier, id string) (access.Grant, error) {
	g, err := scanGrant(q.QueryRow(ctx, `SELECT `+grantColumns+` FROM grants WHERE id = ?`, id))
	if database.NoRows(err) {
		return g, fmt.Errorf("grant %q: %w", id, database.ErrNotFound)
	}
	if err != nil {
		return g, fmt.Errorf("grant %q: %w", id, err)
	}
	return g, nil
}

// ListGrants returns the grants matching f, oldest first (by creation
// time, then id).
func (s *Store) ListGrants(ctx context.Context, f access.GrantFilter) ([]access.Grant, error) {
	w := &database.Filter{Dialect: s.db.Dialect}
	w.In("tenant_id", f.TenantIDs)
	w.Under("tenant_id", f.Under)
	if f.SupporterUserID != "" {
		w.Add("supporter_user_id = ?", f.SupporterUserID)
	}
	if f.SiteID != "" {
		w.Add("site_id = ?", f.SiteID)
	}
	if f.DeviceID != "" {
		w.Add("device_id = ?", f.DeviceID)
	}
	if !f.ActiveAt.IsZero() {
		w.Add("revoked_at = 0 AND (expires_at = 0 OR expires_at > ?)", f.ActiveAt.UnixMilli())
	}
	if w.None {
		return []access.Grant{}, nil
	}
	rows, err := s.db.Query(ctx, `SELECT `+grantColumns+` FROM grants`+w.Where()+` ORDER BY created_at, id`, w.Args...)
	out, err := database.Collect(rows, err, scanGrant)
	if err != nil {
		return nil, fmt.Errorf("list grants: %w", err)
	}
	return out, nil
}

// RevokeGrant marks a grant revoked, once: of concurrent revocations one
// wins, the others find it revoked (ErrConflict).
func (s *Store) RevokeGrant(ctx context.Context, id, by string, at time.Time) error {
	if at.IsZero() {
		return fmt.Errorf("revoke grant %q: no time given", id)
	}
	n, err := database.Affected(s.db.Exec(ctx, `UPDATE grants SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at = 0`,
		at.UnixMilli(), by, id))
	if err != nil {
		return fmt.Errorf("revoke grant %q: %w", id, err)
	}
	if n > 0 {
		return nil
	}
	// Read on the writer: it has seen every revocation committed so far.
	if _, err := getGrant(ctx, s.db.Primary(), id); err != nil {
		return err
	}
	return fmt.Errorf("grant %q: already revoked: %w", id, database.ErrConflict)
}
