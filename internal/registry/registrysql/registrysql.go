// Package registrysql is the registry.Store of both engines, SQLite and
// PostgreSQL, on a database.DB: statements are written once with ?
// placeholders, and branch on the dialect only where the engines differ.
package registrysql

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/registry"
)

// Store keeps the devices in the devices table.
type Store struct {
	db database.DB
}

var _ registry.Store = (*Store)(nil)

// New returns a Store on db.
func New(db database.DB) *Store { return &Store{db: db} }

// DeviceColumns are the columns ScanDevice reads, in its order.
const DeviceColumns = `id, tenant_id, status, primary_key, secondary_key, created_at, last_seen, last_ip,
	site_id, name, serial_number, meter_number, measurement_location, installation_place, model, firmware_version`

// ScanDevice reads a device row of DeviceColumns.
func ScanDevice(row database.Scanner) (registry.Device, error) {
	var d registry.Device
	var status string
	var created, seen int64
	var site sql.NullString
	i := &d.Info
	if err := row.Scan(&d.ID, &d.TenantID, &status, &d.PrimaryKey, &d.SecondaryKey, &created, &seen, &d.LastIP,
		&site, &i.Name, &i.SerialNumber, &i.MeterNumber, &i.MeasurementLocation, &i.InstallationPlace, &i.Model, &i.FirmwareVersion); err != nil {
		return registry.Device{}, err
	}
	i.SiteID = site.String
	d.Status = registry.DeviceStatus(status)
	d.CreatedAt = time.UnixMilli(created).UTC()
	d.LastSeen = database.Time(seen)
	return d, nil
}

// deviceInfoArgs are the values of the info columns of DeviceColumns.
func deviceInfoArgs(i registry.DeviceInfo) []any {
	return []any{database.NullIfEmpty(i.SiteID), i.Name, i.SerialNumber, i.MeterNumber, i.MeasurementLocation,
		i.InstallationPlace, i.Model, i.FirmwareVersion}
}

// siteInTenant is a condition with three parameters (site id or NULL, the
// same again, tenant id) that holds if no site is given or the site is the
// tenant's. In PostgreSQL the foreign key on devices.site_id keeps a
// concurrent DeleteSite from leaving a dangling reference.
func (s *Store) siteInTenant() string {
	return `(` + s.db.Dialect.Param("text") + ` IS NULL OR EXISTS (SELECT 1 FROM sites WHERE id = ? AND tenant_id = ?))`
}

// CreateDevice registers a device with its metadata; a site must be one of
// the device's tenant.
func (s *Store) CreateDevice(ctx context.Context, d registry.Device) error {
	site := database.NullIfEmpty(d.Info.SiteID)
	args := append([]any{d.ID, d.TenantID, string(d.Status), d.PrimaryKey, d.SecondaryKey, d.CreatedAt.UnixMilli()},
		deviceInfoArgs(d.Info)...)
	n, err := database.Affected(s.db.Exec(ctx, `INSERT INTO devices (id, tenant_id, status, primary_key, secondary_key, created_at,
			site_id, name, serial_number, meter_number, measurement_location, installation_place, model, firmware_version)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE `+s.siteInTenant(), append(args, site, site, d.TenantID)...))
	if s.db.Dialect.IsUniqueViolation(err) {
		return fmt.Errorf("device %q: %w", d.ID, database.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create device %q: %w", d.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("device %q: site %q of tenant %q: %w", d.ID, d.Info.SiteID, d.TenantID, database.ErrNotFound)
	}
	return nil
}

// GetDevice looks a device up by id.
func (s *Store) GetDevice(ctx context.Context, id string) (registry.Device, error) {
	d, err := ScanDevice(s.db.QueryRow(ctx, `SELECT `+DeviceColumns+` FROM devices WHERE id = ?`, id))
	if database.NoRows(err) {
		return registry.Device{}, fmt.Errorf("device %q: %w", id, database.ErrNotFound)
	}
	if err != nil {
		return registry.Device{}, fmt.Errorf("get device %q: %w", id, err)
	}
	return d, nil
}

// ListDevices returns a tenant's devices in id order.
func (s *Store) ListDevices(ctx context.Context, tenantID string) ([]registry.Device, error) {
	rows, err := s.db.Query(ctx, `SELECT `+DeviceColumns+` FROM devices WHERE tenant_id = ? ORDER BY id`, tenantID)
	out, err := database.Collect(rows, err, ScanDevice)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	if len(out) == 0 {
		return nil, nil // a tenant without devices lists nil, as it always has
	}
	return out, nil
}

// FindDevices returns the devices matching f in id order.
func (s *Store) FindDevices(ctx context.Context, f registry.DeviceFilter) ([]registry.Device, error) {
	w := &database.Filter{Dialect: s.db.Dialect}
	w.In("tenant_id", f.TenantIDs)
	w.In("site_id", f.SiteIDs)
	w.In("id", f.IDs)
	w.Under("tenant_id", f.Under)
	if f.FactoryAccess {
		w.Add("site_id IN (SELECT id FROM sites WHERE factory_access)")
	}
	if f.Model != "" {
		w.Add("model = ?", f.Model)
	}
	if f.After != "" {
		w.Add("id > ?", f.After)
	}
	if w.None {
		return []registry.Device{}, nil
	}
	limit := -1
	if f.Limit > 0 {
		limit = f.Limit
	}
	rows, err := s.db.Query(ctx, `SELECT `+DeviceColumns+` FROM devices`+w.Where()+` ORDER BY id LIMIT ?`,
		append(w.Args, s.db.Dialect.Limit(limit))...)
	out, err := database.Collect(rows, err, ScanDevice)
	if err != nil {
		return nil, fmt.Errorf("find devices: %w", err)
	}
	return out, nil
}

// updateDevice runs an UPDATE of one device and reports ErrNotFound if it
// matched none.
func (s *Store) updateDevice(ctx context.Context, what, id, query string, args ...any) error {
	n, err := database.Affected(s.db.Exec(ctx, query, args...))
	if err != nil {
		return fmt.Errorf("%s %q: %w", what, id, err)
	}
	if n == 0 {
		return fmt.Errorf("device %q: %w", id, database.ErrNotFound)
	}
	return nil
}

// SetDeviceStatus enables or disables a device.
func (s *Store) SetDeviceStatus(ctx context.Context, tenantID, id string, st registry.DeviceStatus) error {
	return s.updateDevice(ctx, "set status of device", id,
		`UPDATE devices SET status = ? WHERE tenant_id = ? AND id = ?`, string(st), tenantID, id)
}

// SetDeviceKeys replaces a device's symmetric keys.
func (s *Store) SetDeviceKeys(ctx context.Context, tenantID, id string, primary, secondary []byte) error {
	return s.updateDevice(ctx, "set keys of device", id,
		`UPDATE devices SET primary_key = ?, secondary_key = ? WHERE tenant_id = ? AND id = ?`, primary, secondary, tenantID, id)
}

// SetDeviceInfo replaces a device's metadata. A site must be one of the
// device's tenant.
func (s *Store) SetDeviceInfo(ctx context.Context, tenantID, id string, info registry.DeviceInfo) error {
	site := database.NullIfEmpty(info.SiteID)
	args := append(deviceInfoArgs(info), tenantID, id, site, site, tenantID)
	n, err := database.Affected(s.db.Exec(ctx, `UPDATE devices SET site_id = ?, name = ?, serial_number = ?, meter_number = ?,
		measurement_location = ?, installation_place = ?, model = ?, firmware_version = ?
		WHERE tenant_id = ? AND id = ? AND `+s.siteInTenant(), args...))
	if err != nil {
		return fmt.Errorf("set info of device %q: %w", id, err)
	}
	if n > 0 {
		return nil
	}
	var one int
	err = s.db.Primary().QueryRow(ctx, `SELECT 1 FROM devices WHERE tenant_id = ? AND id = ?`, tenantID, id).Scan(&one)
	if database.NoRows(err) {
		return fmt.Errorf("device %q: %w", id, database.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("device %q: %w", id, err)
	}
	return fmt.Errorf("site %q of tenant %q: %w", info.SiteID, tenantID, database.ErrNotFound)
}

// TouchDevices records devices' latest activity in one transaction (one
// fsync, however many devices); PostgreSQL takes them in one statement.
func (s *Store) TouchDevices(ctx context.Context, seen []registry.DeviceSeen) error {
	if len(seen) == 0 {
		return nil
	}
	if s.db.Dialect == database.Postgres {
		ids := make([]string, len(seen))
		ats := make([]int64, len(seen))
		ips := make([]string, len(seen))
		for i, d := range seen {
			ids[i], ats[i], ips[i] = d.ID, d.At.UnixMilli(), d.IP
		}
		if _, err := s.db.Exec(ctx, `UPDATE devices d SET last_seen = u.at, last_ip = u.ip
			FROM unnest(?::text[], ?::bigint[], ?::text[]) AS u(id, at, ip) WHERE d.id = u.id`, ids, ats, ips); err != nil {
			return fmt.Errorf("touch devices: %w", err)
		}
		return nil
	}
	err := s.db.InTx(ctx, func(tx database.Tx) error {
		stmt, err := tx.Prepare(ctx, `UPDATE devices SET last_seen = ?, last_ip = ? WHERE id = ?`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, d := range seen {
			if _, err := stmt.ExecContext(ctx, d.At.UnixMilli(), d.IP, d.ID); err != nil {
				return fmt.Errorf("device %q: %w", d.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("touch devices: %w", err)
	}
	return nil
}

// DeleteDevice removes a device and everything recorded for it, including
// the grants on it (deleted, not revoked) and its alarms with their
// deliveries, in one transaction, then purges the database files. The
// device row goes first: a CreateGrant holding it finishes before, and its
// grant is then deleted too; a WriteHead of the device that runs at the
// same time ends up wholly before or wholly after the delete. The twin,
// cloud-to-device messages and session go by ON DELETE CASCADE; the other
// tables come in the order in which WriteHead locks their rows in
// PostgreSQL (latest before head_stats), so the two cannot deadlock.
func (s *Store) DeleteDevice(ctx context.Context, tenantID, id string) error {
	found := false
	err := s.db.InTx(ctx, func(tx database.Tx) error {
		n, err := database.Affected(tx.Exec(ctx, `DELETE FROM devices WHERE tenant_id = ? AND id = ?`, tenantID, id))
		if err != nil || n == 0 {
			return err // n == 0: no such device, nothing deleted
		}
		found = true
		for _, table := range []string{"latest", "head_stats", "head", "chunks", "message_ids", "rejected", "grants"} {
			if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE device_id = ?`, id); err != nil {
				return fmt.Errorf("%s: %w", table, err)
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM deliveries WHERE alarm_id IN (SELECT id FROM alarms WHERE device_id = ?)`, id); err != nil {
			return fmt.Errorf("deliveries: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM alarms WHERE device_id = ?`, id); err != nil {
			return fmt.Errorf("alarms: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete device %q: %w", id, err)
	}
	if !found {
		return fmt.Errorf("device %q: %w", id, database.ErrNotFound)
	}
	if err := s.db.PurgeDeleted(ctx); err != nil {
		return fmt.Errorf("delete device %q: %w", id, err)
	}
	return nil
}
