// Package factorysql is factory.Store on Warden's database, one set of
// statements for SQLite and PostgreSQL.
package factorysql

import (
	"context"
	"fmt"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/factory"
)

// Store is factory.Store on a database.
type Store struct {
	db database.DB
}

var _ factory.Store = (*Store)(nil)

// New returns a Store on db.
func New(db database.DB) *Store { return &Store{db: db} }

// CreateStaffCredential records a credential made by operator staff.
func (s *Store) CreateStaffCredential(ctx context.Context, c factory.StaffCredential) error {
	_, err := s.db.Exec(ctx, `INSERT INTO staff_credentials (id, tenant_id, device_id, site_id, actor_user_id, actor_id,
		actor_name, actor_tenant_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.TenantID, c.DeviceID, c.SiteID, c.ActorUserID, c.ActorID, c.ActorName, c.ActorTenantID, c.CreatedAt.UnixMilli(), c.ExpiresAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("create staff credential for %q: %w", c.DeviceID, err)
	}
	return nil
}

// GetStaffCredential looks a staff credential up by id.
func (s *Store) GetStaffCredential(ctx context.Context, id string) (factory.StaffCredential, error) {
	var c factory.StaffCredential
	var created, expires int64
	err := s.db.QueryRow(ctx, `SELECT id, tenant_id, device_id, site_id, actor_user_id, actor_id, actor_name, actor_tenant_id,
		created_at, expires_at FROM staff_credentials WHERE id = ?`, id).
		Scan(&c.ID, &c.TenantID, &c.DeviceID, &c.SiteID, &c.ActorUserID, &c.ActorID, &c.ActorName, &c.ActorTenantID, &created, &expires)
	if database.NoRows(err) {
		return c, fmt.Errorf("staff credential %q: %w", id, database.ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("get staff credential %q: %w", id, err)
	}
	c.CreatedAt, c.ExpiresAt = database.Time(created), database.Time(expires)
	return c, nil
}
