package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/warden-iot/warden/internal/store"
)

// optMillis is t in Unix ms, 0 for the zero time (optTime's inverse).
func optMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// nullIfEmpty passes an empty string as NULL.
func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// toJSON encodes an address, contact or contract for a TEXT column.
func toJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// fromJSON decodes a column written by toJSON; empty is the zero value.
func fromJSON(s string, v any) error {
	if s == "" {
		return nil
	}
	return json.Unmarshal([]byte(s), v)
}

// normContract stores contract dates like every other time: UTC, in
// milliseconds.
func normContract(c store.Contract) store.Contract {
	for _, t := range []*time.Time{&c.Start, &c.End} {
		if !t.IsZero() {
			*t = t.UTC().Truncate(time.Millisecond)
		}
	}
	return c
}

// tenantJSON encodes a tenant's address, contact and contract.
func tenantJSON(t store.Tenant) (addr, contact, contract string, err error) {
	if addr, err = toJSON(t.Address); err != nil {
		return
	}
	if contact, err = toJSON(t.Contact); err != nil {
		return
	}
	contract, err = toJSON(normContract(t.Contract))
	return
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

func isForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == foreignKeyViolation
}

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

// UpdateTenant replaces a tenant's name, address, contact and contract.
func (s *Store) UpdateTenant(ctx context.Context, t store.Tenant) error {
	addr, contact, contract, err := tenantJSON(t)
	if err != nil {
		return fmt.Errorf("update tenant %q: %w", t.ID, err)
	}
	return s.updateOne(ctx, "tenant", t.ID, `UPDATE tenants SET name = $1, address = $2, contact = $3, contract = $4 WHERE id = $5`,
		t.Name, addr, contact, contract, t.ID)
}

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

const siteColumns = `id, tenant_id, name, address, factory_access, factory_access_changed_at, created_at`

func scanSite(row pgx.Row) (store.Site, error) {
	var st store.Site
	var addr string
	var changed, created int64
	if err := row.Scan(&st.ID, &st.TenantID, &st.Name, &addr, &st.FactoryAccess, &changed, &created); err != nil {
		return store.Site{}, err
	}
	if err := fromJSON(addr, &st.Address); err != nil {
		return store.Site{}, fmt.Errorf("address of site %q: %w", st.ID, err)
	}
	st.FactoryAccessChangedAt, st.CreatedAt = optTime(changed), optTime(created)
	return st, nil
}

// CreateSite adds a site to its tenant.
func (s *Store) CreateSite(ctx context.Context, st store.Site) error {
	addr, err := toJSON(st.Address)
	if err != nil {
		return fmt.Errorf("create site %q: %w", st.ID, err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO sites (`+siteColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		st.ID, st.TenantID, st.Name, addr, st.FactoryAccess, optMillis(st.FactoryAccessChangedAt), optMillis(st.CreatedAt))
	switch {
	case isUniqueViolation(err):
		return fmt.Errorf("site %q: %w", st.ID, store.ErrConflict)
	case isForeignKeyViolation(err):
		return fmt.Errorf("tenant %q: %w", st.TenantID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create site %q: %w", st.ID, err)
	}
	return nil
}

// GetSite returns one site.
func (s *Store) GetSite(ctx context.Context, id string) (store.Site, error) {
	st, err := scanSite(s.pool.QueryRow(ctx, `SELECT `+siteColumns+` FROM sites WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return st, fmt.Errorf("site %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return st, fmt.Errorf("get site %q: %w", id, err)
	}
	return st, nil
}

// ListSites returns the sites matching f in id order.
func (s *Store) ListSites(ctx context.Context, f store.SiteFilter) ([]store.Site, error) {
	var w filter
	w.in("tenant_id", f.TenantIDs)
	w.in("id", f.IDs)
	if f.FactoryAccess {
		w.add("factory_access")
	}
	if w.none {
		return []store.Site{}, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+siteColumns+` FROM sites`+w.where()+` ORDER BY id`, w.args...)
	out, err := collect(rows, err, scanSite)
	if err != nil {
		return nil, fmt.Errorf("list sites: %w", err)
	}
	return out, nil
}

// updateOne runs an UPDATE of one row and reports ErrNotFound, naming
// what, if it matched none.
func (s *Store) updateOne(ctx context.Context, what, id, query string, args ...any) error {
	tag, err := s.pool.Exec(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("update %s %q: %w", what, id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s %q: %w", what, id, store.ErrNotFound)
	}
	return nil
}

// UpdateSite replaces a site's name and address.
func (s *Store) UpdateSite(ctx context.Context, st store.Site) error {
	addr, err := toJSON(st.Address)
	if err != nil {
		return fmt.Errorf("update site %q: %w", st.ID, err)
	}
	return s.updateOne(ctx, "site", st.ID, `UPDATE sites SET name = $1, address = $2 WHERE id = $3`, st.Name, addr, st.ID)
}

// SetFactoryAccess switches the service desk's access to a site's
// machines. The time of the switch is recorded only if the setting
// changes.
func (s *Store) SetFactoryAccess(ctx context.Context, id string, on bool, at time.Time) error {
	return s.updateOne(ctx, "site", id, `UPDATE sites SET factory_access = $1,
		factory_access_changed_at = CASE WHEN factory_access <> $1 THEN $2 ELSE factory_access_changed_at END
		WHERE id = $3`, on, optMillis(at), id)
}

// DeleteSite removes a site, unassigns its devices (ON DELETE SET NULL) and
// revokes the grants on it that are still in force. The site row goes
// first: a CreateGrant holding it (FOR KEY SHARE) finishes before, and its
// grant is then revoked too.
func (s *Store) DeleteSite(ctx context.Context, id string, at time.Time) error {
	if at.IsZero() {
		return fmt.Errorf("delete site %q: no time given", id)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("delete site %q: %w", id, err)
	}
	defer tx.Rollback(ctx)
	tag, err := tx.Exec(ctx, `DELETE FROM sites WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete site %q: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("site %q: %w", id, store.ErrNotFound)
	}
	if _, err := tx.Exec(ctx, `UPDATE grants SET revoked_at = $1, revoked_by = 'site.delete'
		WHERE site_id = $2 AND revoked_at = 0`, at.UnixMilli(), id); err != nil {
		return fmt.Errorf("delete site %q: revoke grants: %w", id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("delete site %q: commit: %w", id, err)
	}
	return nil
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

const userColumns = `id, tenant_id, email, first_name, last_name, phone, company, address, role, supporter_id,
	status, password_hash, totp_secret, totp_enabled, failed_logins, locked_until, last_login_at, created_by, created_at`

func scanUser(row pgx.Row) (store.User, error) {
	var u store.User
	var addr, role, status string
	var supporter *string
	var failed int32
	var locked, lastLogin, created int64
	if err := row.Scan(&u.ID, &u.TenantID, &u.Email, &u.FirstName, &u.LastName, &u.Phone, &u.Company, &addr, &role, &supporter,
		&status, &u.PasswordHash, &u.TOTPSecret, &u.TOTPEnabled, &failed, &locked, &lastLogin, &u.CreatedBy, &created); err != nil {
		return store.User{}, err
	}
	if err := fromJSON(addr, &u.Address); err != nil {
		return store.User{}, fmt.Errorf("address of user %q: %w", u.ID, err)
	}
	if supporter != nil {
		u.SupporterID = *supporter
	}
	u.Role, u.Status, u.FailedLogins = store.Role(role), store.UserStatus(status), int(failed)
	u.LockedUntil, u.LastLoginAt, u.CreatedAt = optTime(locked), optTime(lastLogin), optTime(created)
	return u, nil
}

// CreateUser adds an account. The e-mail address is stored in lower case.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	addr, err := toJSON(u.Address)
	if err != nil {
		return fmt.Errorf("create user %q: %w", u.ID, err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO users (`+userColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
		u.ID, u.TenantID, strings.ToLower(u.Email), u.FirstName, u.LastName, u.Phone, u.Company, addr, string(u.Role),
		nullIfEmpty(u.SupporterID), string(u.Status), u.PasswordHash, u.TOTPSecret, u.TOTPEnabled, int32(u.FailedLogins),
		optMillis(u.LockedUntil), optMillis(u.LastLoginAt), u.CreatedBy, optMillis(u.CreatedAt))
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

func (s *Store) userWhere(ctx context.Context, what, cond string, arg any) (store.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE `+cond, arg))
	if errors.Is(err, pgx.ErrNoRows) {
		return u, fmt.Errorf("user %s: %w", what, store.ErrNotFound)
	}
	if err != nil {
		return u, fmt.Errorf("user %s: %w", what, err)
	}
	return u, nil
}

// GetUser returns one account.
func (s *Store) GetUser(ctx context.Context, id string) (store.User, error) {
	return s.userWhere(ctx, fmt.Sprintf("%q", id), `id = $1`, id)
}

// UserByEmail finds an account by its e-mail address, in any case.
func (s *Store) UserByEmail(ctx context.Context, email string) (store.User, error) {
	return s.userWhere(ctx, fmt.Sprintf("with e-mail address %q", email), `email = $1`, strings.ToLower(email))
}

// UserBySupporterID finds a supporter by their public id.
func (s *Store) UserBySupporterID(ctx context.Context, supporterID string) (store.User, error) {
	if supporterID == "" {
		return store.User{}, fmt.Errorf("user without supporter id: %w", store.ErrNotFound)
	}
	return s.userWhere(ctx, fmt.Sprintf("with supporter id %q", supporterID), `supporter_id = $1`, supporterID)
}

// ListUsers returns the accounts of the tenants (nil: of all) in id order.
func (s *Store) ListUsers(ctx context.Context, tenantIDs []string) ([]store.User, error) {
	var w filter
	w.in("tenant_id", tenantIDs)
	if w.none {
		return []store.User{}, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users`+w.where()+` ORDER BY id`, w.args...)
	out, err := collect(rows, err, scanUser)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// UpdateUser replaces names, phone, company, address, role and status.
func (s *Store) UpdateUser(ctx context.Context, u store.User) error {
	addr, err := toJSON(u.Address)
	if err != nil {
		return fmt.Errorf("update user %q: %w", u.ID, err)
	}
	return s.updateOne(ctx, "user", u.ID, `UPDATE users SET first_name = $1, last_name = $2, phone = $3, company = $4,
		address = $5, role = $6, status = $7 WHERE id = $8`,
		u.FirstName, u.LastName, u.Phone, u.Company, addr, string(u.Role), string(u.Status), u.ID)
}

// SetPassword stores a new password hash, activates the account unless it
// is disabled, and clears failed logins and any lock.
func (s *Store) SetPassword(ctx context.Context, userID, hash string) error {
	return s.updateOne(ctx, "user", userID, `UPDATE users SET password_hash = $1,
		status = CASE WHEN status = $2 THEN status ELSE $3 END, failed_logins = 0, locked_until = 0
		WHERE id = $4`, hash, string(store.UserDisabled), string(store.UserActive), userID)
}

// SetTOTP stores a sealed TOTP secret (nil: none) and whether it is enabled.
func (s *Store) SetTOTP(ctx context.Context, userID string, secret []byte, enabled bool) error {
	return s.updateOne(ctx, "user", userID, `UPDATE users SET totp_secret = $1, totp_enabled = $2 WHERE id = $3`,
		secret, enabled, userID)
}

// LoginSucceeded clears failed logins and any lock, and records the
// sign-in (package api also uses it, with the last sign-in time, to lift a
// lock).
func (s *Store) LoginSucceeded(ctx context.Context, userID string, at time.Time) error {
	return s.updateOne(ctx, "user", userID, `UPDATE users SET failed_logins = 0, locked_until = 0, last_login_at = $1 WHERE id = $2`,
		optMillis(at), userID)
}

// DeleteUser removes an account; its sessions, one-time tokens, API tokens
// and the grants made to it go with it (ON DELETE CASCADE).
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM users WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete user %q: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("user %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// ---- Sessions ----

const sessionColumns = `id, user_id, hash, created_at, last_seen_at, expires_at, ip, user_agent`

func scanSession(row pgx.Row) (store.Session, error) {
	var se store.Session
	var created, seen, expires int64
	if err := row.Scan(&se.ID, &se.UserID, &se.Hash, &created, &seen, &expires, &se.IP, &se.UserAgent); err != nil {
		return store.Session{}, err
	}
	se.CreatedAt, se.LastSeenAt, se.ExpiresAt = optTime(created), optTime(seen), optTime(expires)
	return se, nil
}

// CreateSession stores a signed-in browser.
func (s *Store) CreateSession(ctx context.Context, se store.Session) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO sessions (`+sessionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		se.ID, se.UserID, se.Hash, optMillis(se.CreatedAt), optMillis(se.LastSeenAt), optMillis(se.ExpiresAt), se.IP, se.UserAgent)
	switch {
	case isUniqueViolation(err):
		return fmt.Errorf("session %q: %w", se.ID, store.ErrConflict)
	case isForeignKeyViolation(err):
		return fmt.Errorf("user %q: %w", se.UserID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create session %q: %w", se.ID, err)
	}
	return nil
}

// SessionByHash finds a session by the hash of its secret, expired or not.
func (s *Store) SessionByHash(ctx context.Context, hash []byte) (store.Session, error) {
	se, err := scanSession(s.pool.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return se, fmt.Errorf("session: %w", store.ErrNotFound)
	}
	if err != nil {
		return se, fmt.Errorf("session: %w", err)
	}
	return se, nil
}

// TouchSession records activity and moves the expiry.
func (s *Store) TouchSession(ctx context.Context, id string, at, expires time.Time) error {
	return s.updateOne(ctx, "session", id, `UPDATE sessions SET last_seen_at = $1, expires_at = $2 WHERE id = $3`,
		optMillis(at), optMillis(expires), id)
}

// DeleteSession signs a session out.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete session %q: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("session %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// DeleteUserSessions signs a user out everywhere.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("delete sessions of user %q: %w", userID, err)
	}
	return nil
}

// ListSessions returns a user's sessions, oldest first.
func (s *Store) ListSessions(ctx context.Context, userID string) ([]store.Session, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE user_id = $1 ORDER BY created_at, id`, userID)
	out, err := collect(rows, err, scanSession)
	if err != nil {
		return nil, fmt.Errorf("list sessions of %q: %w", userID, err)
	}
	return out, nil
}

// ---- One-time tokens ----

// CreateUserToken stores a one-time token in place of the user's token of
// the same purpose, if any.
func (s *Store) CreateUserToken(ctx context.Context, t store.UserToken) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO user_tokens (hash, user_id, purpose, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (user_id, purpose) DO UPDATE SET hash = excluded.hash, created_at = excluded.created_at,
			expires_at = excluded.expires_at`,
		t.Hash, t.UserID, t.Purpose, optMillis(t.CreatedAt), optMillis(t.ExpiresAt))
	switch {
	case isUniqueViolation(err):
		return fmt.Errorf("user token: %w", store.ErrConflict)
	case isForeignKeyViolation(err):
		return fmt.Errorf("user %q: %w", t.UserID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create user token: %w", err)
	}
	return nil
}

// ConsumeUserToken deletes and returns a token in one statement, so it
// can be used once. A token whose expiry is not after now is not found
// (and stays until replaced or its user goes).
func (s *Store) ConsumeUserToken(ctx context.Context, hash []byte, purpose string, now time.Time) (store.UserToken, error) {
	t := store.UserToken{Purpose: purpose}
	var created, expires int64
	err := s.pool.QueryRow(ctx, `DELETE FROM user_tokens WHERE hash = $1 AND purpose = $2 AND expires_at > $3
		RETURNING hash, user_id, created_at, expires_at`, hash, purpose, now.UnixMilli()).
		Scan(&t.Hash, &t.UserID, &created, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.UserToken{}, fmt.Errorf("%s token: %w", purpose, store.ErrNotFound)
	}
	if err != nil {
		return store.UserToken{}, fmt.Errorf("consume %s token: %w", purpose, err)
	}
	t.CreatedAt, t.ExpiresAt = optTime(created), optTime(expires)
	return t, nil
}

// ---- API tokens ----

const apiTokenColumns = `id, tenant_id, user_id, name, role, scopes, hash, created_at, expires_at, last_used_at`

func scanAPIToken(row pgx.Row) (store.APIToken, error) {
	var t store.APIToken
	var user *string
	var role, scopes string
	var created, expires, used int64
	if err := row.Scan(&t.ID, &t.TenantID, &user, &t.Name, &role, &scopes, &t.Hash, &created, &expires, &used); err != nil {
		return store.APIToken{}, err
	}
	if user != nil {
		t.UserID = *user
	}
	t.Role, t.Scopes = store.Role(role), strings.Fields(scopes)
	t.CreatedAt, t.ExpiresAt, t.LastUsedAt = time.UnixMilli(created).UTC(), optTime(expires), optTime(used)
	return t, nil
}

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
	rows, err := s.pool.Query(ctx, `SELECT `+apiTokenColumns+` FROM api_tokens
		WHERE user_id IS NOT DISTINCT FROM $1 ORDER BY created_at, id`, nullIfEmpty(userID))
	out, err := collect(rows, err, scanAPIToken)
	if err != nil {
		return nil, fmt.Errorf("list api tokens of %q: %w", userID, err)
	}
	return out, nil
}

// GetAPIToken returns one token.
func (s *Store) GetAPIToken(ctx context.Context, id string) (store.APIToken, error) {
	t, err := scanAPIToken(s.pool.QueryRow(ctx, `SELECT `+apiTokenColumns+` FROM api_tokens WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return t, fmt.Errorf("api token %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("api token %q: %w", id, err)
	}
	return t, nil
}

// DeleteAPIToken revokes a token.
func (s *Store) DeleteAPIToken(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM api_tokens WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete api token %q: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("api token %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// TouchAPIToken records when a token was last used.
func (s *Store) TouchAPIToken(ctx context.Context, id string, at time.Time) error {
	return s.updateOne(ctx, "api token", id, `UPDATE api_tokens SET last_used_at = $1 WHERE id = $2`, optMillis(at), id)
}

// ---- Grants ----

const grantColumns = `id, tenant_id, supporter_user_id, site_id, device_id, expires_at, created_by, created_at, revoked_at, revoked_by`

func scanGrant(row pgx.Row) (store.Grant, error) {
	var g store.Grant
	var site, device *string
	var expires, created, revoked int64
	if err := row.Scan(&g.ID, &g.TenantID, &g.SupporterUserID, &site, &device, &expires, &g.CreatedBy, &created,
		&revoked, &g.RevokedBy); err != nil {
		return store.Grant{}, err
	}
	if site != nil {
		g.SiteID = *site
	}
	if device != nil {
		g.DeviceID = *device
	}
	g.ExpiresAt, g.CreatedAt, g.RevokedAt = optTime(expires), optTime(created), optTime(revoked)
	return g, nil
}

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
		g.ID, g.TenantID, g.SupporterUserID, nullIfEmpty(g.SiteID), nullIfEmpty(g.DeviceID), optMillis(g.ExpiresAt),
		g.CreatedBy, optMillis(g.CreatedAt), optMillis(g.RevokedAt), g.RevokedBy, target)
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

// GetGrant returns one grant.
func (s *Store) GetGrant(ctx context.Context, id string) (store.Grant, error) {
	g, err := scanGrant(s.pool.QueryRow(ctx, `SELECT `+grantColumns+` FROM grants WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return g, fmt.Errorf("grant %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return g, fmt.Errorf("grant %q: %w", id, err)
	}
	return g, nil
}

// ListGrants returns the grants matching f, oldest first (by creation
// time, then id).
func (s *Store) ListGrants(ctx context.Context, f store.GrantFilter) ([]store.Grant, error) {
	var w filter
	w.in("tenant_id", f.TenantIDs)
	if f.SupporterUserID != "" {
		w.add("supporter_user_id = ?", f.SupporterUserID)
	}
	if f.SiteID != "" {
		w.add("site_id = ?", f.SiteID)
	}
	if f.DeviceID != "" {
		w.add("device_id = ?", f.DeviceID)
	}
	if !f.ActiveAt.IsZero() {
		w.add("revoked_at = 0 AND (expires_at = 0 OR expires_at > ?)", f.ActiveAt.UnixMilli())
	}
	if w.none {
		return []store.Grant{}, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+grantColumns+` FROM grants`+w.where()+` ORDER BY created_at, id`, w.args...)
	out, err := collect(rows, err, scanGrant)
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

// PurgeExpired deletes expired sessions and one-time tokens.
func (s *Store) PurgeExpired(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	for _, q := range []string{`DELETE FROM sessions WHERE expires_at <= $1`, `DELETE FROM user_tokens WHERE expires_at <= $1`} {
		tag, err := s.pool.Exec(ctx, q, now.UnixMilli())
		if err != nil {
			return n, fmt.Errorf("purge expired: %w", err)
		}
		n += tag.RowsAffected()
	}
	return n, nil
}

// UseTOTPStep records a used TOTP step unless it is not after the last.
func (s *Store) UseTOTPStep(ctx context.Context, userID string, step int64) error {
	tag, err := s.pool.Exec(ctx, `UPDATE users SET totp_step = $1 WHERE id = $2 AND totp_step < $1`, step, userID)
	if err != nil {
		return fmt.Errorf("use totp step of %q: %w", userID, err)
	}
	if tag.RowsAffected() == 0 {
		if _, err := s.GetUser(ctx, userID); err != nil {
			return err
		}
		return fmt.Errorf("totp code of %q used already: %w", userID, store.ErrConflict)
	}
	return nil
}
