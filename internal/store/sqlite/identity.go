package sqlite

import (
	"context"
	"fmt"
	"strings"

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

const userColumns = `id, tenant_id, email, first_name, last_name, phone, company, address, role, supporter_id,
	status, password_hash, totp_secret, totp_enabled, failed_logins, locked_until, last_login_at, created_by, created_at`

// CreateUser adds an account. The e-mail address is stored in lower case.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	addr, err := sqlstore.ToJSON(u.Address)
	if err != nil {
		return fmt.Errorf("create user %q: %w", u.ID, err)
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES (`+placeholders(19)+`)`,
		u.ID, u.TenantID, strings.ToLower(u.Email), u.FirstName, u.LastName, u.Phone, u.Company, addr, string(u.Role),
		database.NullIfEmpty(u.SupporterID), string(u.Status), u.PasswordHash, u.TOTPSecret, u.TOTPEnabled, u.FailedLogins,
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
	rows, err := s.r.QueryContext(ctx, `SELECT `+sqlstore.APITokenColumns+` FROM api_tokens
		WHERE user_id IS ? ORDER BY created_at, id`, database.NullIfEmpty(userID))
	if err != nil {
		return nil, fmt.Errorf("list api tokens of %q: %w", userID, err)
	}
	defer rows.Close()
	out := []store.APIToken{}
	for rows.Next() {
		t, err := sqlstore.ScanAPIToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list api tokens of %q: %w", userID, err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list api tokens of %q: %w", userID, err)
	}
	return out, nil
}
