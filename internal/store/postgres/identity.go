package postgres

import (
	"context"
	"fmt"
	"strconv"
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

// filter collects the conditions of a WHERE clause; each "?" of a
// condition becomes the next $n.
type filter struct {
	conds []string
	args  []any
	none  bool // an empty, non-nil list: nothing can match
}

func (f *filter) add(cond string, args ...any) {
	for _, a := range args {
		f.args = append(f.args, a)
		cond = strings.Replace(cond, "?", "$"+strconv.Itoa(len(f.args)), 1)
	}
	f.conds = append(f.conds, cond)
}

// in restricts col to vals: nil does not filter, an empty list matches
// nothing.
func (f *filter) in(col string, vals []string) {
	switch {
	case vals == nil:
	case len(vals) == 0:
		f.none = true
	default:
		f.add(col+` = ANY(?::text[])`, vals)
	}
}

func (f *filter) where() string {
	if len(f.conds) == 0 {
		return ""
	}
	return ` WHERE ` + strings.Join(f.conds, " AND ")
}

// next is the placeholder of the next argument.
func (f *filter) next() string { return "$" + strconv.Itoa(len(f.args)+1) }

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

// deviceInfoArgs are the values of the info columns of deviceColumns.
func deviceInfoArgs(i store.DeviceInfo) []any {
	return []any{nullIfEmpty(i.SiteID), i.Name, i.SerialNumber, i.MeterNumber, i.MeasurementLocation,
		i.InstallationPlace, i.Model, i.FirmwareVersion}
}

// siteInTenant is a condition that holds if no site is given ($site is
// NULL) or the site is the tenant's. The foreign key on devices.site_id
// keeps a concurrent DeleteSite from leaving a dangling reference.
func siteInTenant(site, tenant string) string {
	return `(` + site + `::text IS NULL OR EXISTS (SELECT 1 FROM sites WHERE id = ` + site + ` AND tenant_id = ` + tenant + `))`
}

// SetDeviceInfo replaces a device's metadata. A site must be one of the
// device's tenant.
func (s *Store) SetDeviceInfo(ctx context.Context, tenantID, id string, info store.DeviceInfo) error {
	args := append(deviceInfoArgs(info), tenantID, id)
	tag, err := s.pool.Exec(ctx, `UPDATE devices SET site_id = $1, name = $2, serial_number = $3, meter_number = $4,
		measurement_location = $5, installation_place = $6, model = $7, firmware_version = $8
		WHERE tenant_id = $9 AND id = $10 AND `+siteInTenant("$1", "$9"), args...)
	if err != nil {
		return fmt.Errorf("set info of device %q: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		if err := s.checkDevice(ctx, tenantID, id); err != nil {
			return err
		}
		return fmt.Errorf("site %q of tenant %q: %w", info.SiteID, tenantID, store.ErrNotFound)
	}
	return nil
}

// FindDevices returns the devices matching f in id order.
func (s *Store) FindDevices(ctx context.Context, f store.DeviceFilter) ([]store.Device, error) {
	var w filter
	w.in("tenant_id", f.TenantIDs)
	w.in("site_id", f.SiteIDs)
	w.in("id", f.IDs)
	if f.Model != "" {
		w.add("model = ?", f.Model)
	}
	if f.After != "" {
		w.add("id > ?", f.After)
	}
	if w.none {
		return []store.Device{}, nil
	}
	var limit any // NULL: no limit
	if f.Limit > 0 {
		limit = int64(f.Limit)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+deviceColumns+` FROM devices`+w.where()+` ORDER BY id LIMIT `+w.next(),
		append(w.args, limit)...)
	out, err := collect(rows, err, scanDevice)
	if err != nil {
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
