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

// deviceInfoArgs are the values of the info columns of sqlstore.DeviceColumns.
func deviceInfoArgs(i store.DeviceInfo) []any {
	return []any{database.NullIfEmpty(i.SiteID), i.Name, i.SerialNumber, i.MeterNumber, i.MeasurementLocation,
		i.InstallationPlace, i.Model, i.FirmwareVersion}
}

// siteInTenant is a condition, with two parameters (site id or NULL,
// tenant id), that holds if no site is given or the site is the tenant's.
const siteInTenant = `(? IS NULL OR EXISTS (SELECT 1 FROM sites WHERE id = ? AND tenant_id = ?))`

// SetDeviceInfo replaces a device's metadata. A site must be one of the
// device's tenant.
func (s *Store) SetDeviceInfo(ctx context.Context, tenantID, id string, info store.DeviceInfo) error {
	site := database.NullIfEmpty(info.SiteID)
	args := append(deviceInfoArgs(info), tenantID, id, site, site, tenantID)
	res, err := s.w.ExecContext(ctx, `UPDATE devices SET site_id = ?, name = ?, serial_number = ?, meter_number = ?,
		measurement_location = ?, installation_place = ?, model = ?, firmware_version = ?
		WHERE tenant_id = ? AND id = ? AND `+siteInTenant, args...)
	if err != nil {
		return fmt.Errorf("set info of device %q: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if err := s.checkDevice(ctx, tenantID, id); err != nil {
			return err
		}
		return fmt.Errorf("site %q of tenant %q: %w", info.SiteID, tenantID, store.ErrNotFound)
	}
	return nil
}

// FindDevices returns the devices matching f in id order.
func (s *Store) FindDevices(ctx context.Context, f store.DeviceFilter) ([]store.Device, error) {
	w := &database.Filter{Dialect: database.SQLite}
	w.In("tenant_id", f.TenantIDs)
	w.In("site_id", f.SiteIDs)
	w.In("id", f.IDs)
	if f.Model != "" {
		w.Add("model = ?", f.Model)
	}
	if f.After != "" {
		w.Add("id > ?", f.After)
	}
	out := []store.Device{}
	if w.None {
		return out, nil
	}
	limit := int64(-1)
	if f.Limit > 0 {
		limit = int64(f.Limit)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+sqlstore.DeviceColumns+` FROM devices`+w.Where()+` ORDER BY id LIMIT ?`,
		append(w.Args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("find devices: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		d, err := sqlstore.ScanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("find devices: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find devices: %w", err)
	}
	return out, nil
}

// ---- Users ----

// ---- Sessions ----

// ---- One-time tokens ----

// ---- API tokens ----

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
