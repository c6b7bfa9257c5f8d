package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/store"
)

// GetMeta reads a server setting.
func (s *Store) GetMeta(ctx context.Context, key string) (string, error) {
	var v string
	err := s.db.QueryRow(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if database.NoRows(err) {
		return "", fmt.Errorf("meta %q: %w", key, database.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("meta %q: %w", key, err)
	}
	return v, nil
}

// SetMeta writes a server setting.
func (s *Store) SetMeta(ctx context.Context, key, value string) error {
	_, err := s.db.Exec(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("set meta %q: %w", key, err)
	}
	return nil
}

// DeviceColumns are the columns ScanDevice reads, in its order.
const DeviceColumns = `id, tenant_id, status, primary_key, secondary_key, created_at, last_seen, last_ip,
	site_id, name, serial_number, meter_number, measurement_location, installation_place, model, firmware_version`

// ScanDevice reads a device row of DeviceColumns.
func ScanDevice(row interface{ Scan(...any) error }) (store.Device, error) {
	var d store.Device
	var status string
	var created, seen int64
	var site sql.NullString
	i := &d.Info
	if err := row.Scan(&d.ID, &d.TenantID, &status, &d.PrimaryKey, &d.SecondaryKey, &created, &seen, &d.LastIP,
		&site, &i.Name, &i.SerialNumber, &i.MeterNumber, &i.MeasurementLocation, &i.InstallationPlace, &i.Model, &i.FirmwareVersion); err != nil {
		return store.Device{}, err
	}
	i.SiteID = site.String
	d.Status = store.DeviceStatus(status)
	d.CreatedAt = time.UnixMilli(created).UTC()
	if seen != 0 {
		d.LastSeen = time.UnixMilli(seen).UTC()
	}
	return d, nil
}

// GetDevice looks a device up by id.
func (s *Store) GetDevice(ctx context.Context, id string) (store.Device, error) {
	d, err := ScanDevice(s.db.QueryRow(ctx, `SELECT `+DeviceColumns+` FROM devices WHERE id = ?`, id))
	if database.NoRows(err) {
		return store.Device{}, fmt.Errorf("device %q: %w", id, database.ErrNotFound)
	}
	if err != nil {
		return store.Device{}, fmt.Errorf("get device %q: %w", id, err)
	}
	return d, nil
}

// ListDevices returns a tenant's devices in id order.
func (s *Store) ListDevices(ctx context.Context, tenantID string) ([]store.Device, error) {
	rows, err := s.db.Query(ctx, `SELECT `+DeviceColumns+` FROM devices WHERE tenant_id = ? ORDER BY id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	defer rows.Close()
	var out []store.Device
	for rows.Next() {
		d, err := ScanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("list devices: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	return out, nil
}

func (s *Store) execOne(ctx context.Context, what, id, query string, args ...any) error {
	res, err := s.db.Exec(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s %q: %w", what, id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("%s %q: %w", what, id, err)
	} else if n == 0 {
		return fmt.Errorf("device %q: %w", id, database.ErrNotFound)
	}
	return nil
}

// SetDeviceStatus enables or disables a device.
func (s *Store) SetDeviceStatus(ctx context.Context, tenantID, id string, st store.DeviceStatus) error {
	return s.execOne(ctx, "set status of device", id,
		`UPDATE devices SET status = ? WHERE tenant_id = ? AND id = ?`, string(st), tenantID, id)
}

// SetDeviceKeys replaces a device's symmetric keys.
func (s *Store) SetDeviceKeys(ctx context.Context, tenantID, id string, primary, secondary []byte) error {
	return s.execOne(ctx, "set keys of device", id,
		`UPDATE devices SET primary_key = ?, secondary_key = ? WHERE tenant_id = ? AND id = ?`, primary, secondary, tenantID, id)
}

// checkDevice returns ErrNotFound unless the device belongs to the tenant.
func (s *Store) checkDevice(ctx context.Context, tenantID, deviceID string) error {
	var one int
	err := s.db.QueryRow(ctx, `SELECT 1 FROM devices WHERE tenant_id = ? AND id = ?`, tenantID, deviceID).Scan(&one)
	if database.NoRows(err) {
		return fmt.Errorf("device %q: %w", deviceID, database.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("device %q: %w", deviceID, err)
	}
	return nil
}
