package sqlstore

import (
	"context"
	"fmt"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/store"
)

// CreateStaffCredential records a credential made by operator staff.
func (s *Store) CreateStaffCredential(ctx context.Context, c store.StaffCredential) error {
	_, err := s.db.Exec(ctx, `INSERT INTO staff_credentials (id, tenant_id, device_id, site_id, actor_user_id, actor_id,
		actor_name, actor_tenant_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.TenantID, c.DeviceID, c.SiteID, c.ActorUserID, c.ActorID, c.ActorName, c.ActorTenantID, c.CreatedAt.UnixMilli(), c.ExpiresAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("create staff credential for %q: %w", c.DeviceID, err)
	}
	return nil
}

// GetStaffCredential looks a staff credential up by id.
func (s *Store) GetStaffCredential(ctx context.Context, id string) (store.StaffCredential, error) {
	var c store.StaffCredential
	var created, expires int64
	err := s.db.QueryRow(ctx, `SELECT id, tenant_id, device_id, site_id, actor_user_id, actor_id, actor_name, actor_tenant_id,
		created_at, expires_at FROM staff_credentials WHERE id = ?`, id).
		Scan(&c.ID, &c.TenantID, &c.DeviceID, &c.SiteID, &c.ActorUserID, &c.ActorID, &c.ActorName, &c.ActorTenantID, &created, &expires)
	if database.NoRows(err) {
		return c, fmt.Errorf("staff credential %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("get staff credential %q: %w", id, err)
	}
	c.CreatedAt, c.ExpiresAt = database.Time(created), database.Time(expires)
	return c, nil
}
