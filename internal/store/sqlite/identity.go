package sqlite

import (
	"context"
	"fmt"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/sqlstore"
)

func isForeignKeyViolation(err error) bool { return database.SQLite.IsForeignKeyViolation(err) }

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
		return fmt.Errorf("site %q of tenant %q: %w", info.SiteID, tenantID, database.ErrNotFound)
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
