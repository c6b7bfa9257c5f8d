package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/store"
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
		return fmt.Errorf("site %q of tenant %q: %w", info.SiteID, tenantID, database.ErrNotFound)
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
