package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/store"
)

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

// TenantJSON encodes a tenant's address, contact and contract.
func TenantJSON(t store.Tenant) (addr, contact, contract string, err error) {
	if addr, err = ToJSON(t.Address); err != nil {
		return
	}
	if contact, err = ToJSON(t.Contact); err != nil {
		return
	}
	contract, err = ToJSON(normContract(t.Contract))
	return
}

// ---- Tenants ----

// UpdateTenant replaces a tenant's name, address, contact and contract.
func (s *Store) UpdateTenant(ctx context.Context, t store.Tenant) error {
	addr, contact, contract, err := TenantJSON(t)
	if err != nil {
		return fmt.Errorf("update tenant %q: %w", t.ID, err)
	}
	res, err := s.db.Exec(ctx, `UPDATE tenants SET name = ?, address = ?, contact = ?, contract = ? WHERE id = ?`,
		t.Name, addr, contact, contract, t.ID)
	if err != nil {
		return fmt.Errorf("update tenant %q: %w", t.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("tenant %q: %w", t.ID, store.ErrNotFound)
	}
	return nil
}

// ---- Sites ----

const siteColumns = `id, tenant_id, name, address, factory_access, factory_access_changed_at, created_at`

func scanSite(row database.Scanner) (store.Site, error) {
	var st store.Site
	var addr string
	var changed, created int64
	if err := row.Scan(&st.ID, &st.TenantID, &st.Name, &addr, &st.FactoryAccess, &changed, &created); err != nil {
		return store.Site{}, err
	}
	if err := FromJSON(addr, &st.Address); err != nil {
		return store.Site{}, fmt.Errorf("address of site %q: %w", st.ID, err)
	}
	st.FactoryAccessChangedAt, st.CreatedAt = database.Time(changed), database.Time(created)
	return st, nil
}

// CreateSite adds a site to its tenant.
func (s *Store) CreateSite(ctx context.Context, st store.Site) error {
	addr, err := ToJSON(st.Address)
	if err != nil {
		return fmt.Errorf("create site %q: %w", st.ID, err)
	}
	_, err = s.db.Exec(ctx, `INSERT INTO sites (`+siteColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		st.ID, st.TenantID, st.Name, addr, st.FactoryAccess, database.Millis(st.FactoryAccessChangedAt), database.Millis(st.CreatedAt))
	switch {
	case s.isUnique(err):
		return fmt.Errorf("site %q: %w", st.ID, store.ErrConflict)
	case s.isForeignKey(err):
		return fmt.Errorf("tenant %q: %w", st.TenantID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create site %q: %w", st.ID, err)
	}
	return nil
}

// GetSite returns one site.
func (s *Store) GetSite(ctx context.Context, id string) (store.Site, error) {
	st, err := scanSite(s.db.QueryRow(ctx, `SELECT `+siteColumns+` FROM sites WHERE id = ?`, id))
	if database.NoRows(err) {
		return st, fmt.Errorf("site %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return st, fmt.Errorf("get site %q: %w", id, err)
	}
	return st, nil
}

// ListSites returns the sites matching f in id order.
func (s *Store) ListSites(ctx context.Context, f store.SiteFilter) ([]store.Site, error) {
	w := s.filter()
	w.In("tenant_id", f.TenantIDs)
	w.In("id", f.IDs)
	if f.FactoryAccess {
		w.Add("factory_access")
	}
	out := []store.Site{}
	if w.None {
		return out, nil
	}
	rows, err := s.db.Query(ctx, `SELECT `+siteColumns+` FROM sites`+w.Where()+` ORDER BY id`, w.Args...)
	if err != nil {
		return nil, fmt.Errorf("list sites: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		st, err := scanSite(rows)
		if err != nil {
			return nil, fmt.Errorf("list sites: %w", err)
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sites: %w", err)
	}
	return out, nil
}

// UpdateSite replaces a site's name and address.
func (s *Store) UpdateSite(ctx context.Context, st store.Site) error {
	addr, err := ToJSON(st.Address)
	if err != nil {
		return fmt.Errorf("update site %q: %w", st.ID, err)
	}
	return s.updateOne(ctx, "site", st.ID, `UPDATE sites SET name = ?, address = ? WHERE id = ?`, st.Name, addr, st.ID)
}

// SetFactoryAccess switches the service desk's access to a site's
// machines. The time of the switch is recorded only if the setting
// changes.
func (s *Store) SetFactoryAccess(ctx context.Context, id string, on bool, at time.Time) error {
	return s.updateOne(ctx, "site", id, `UPDATE sites SET factory_access = ?,
		factory_access_changed_at = CASE WHEN factory_access <> ? THEN ? ELSE factory_access_changed_at END
		WHERE id = ?`, on, on, database.Millis(at), id)
}

// DeleteSite removes a site, unassigns its devices (ON DELETE SET NULL) and
// revokes the grants on it that are still in force.
func (s *Store) DeleteSite(ctx context.Context, id string, at time.Time) error {
	if at.IsZero() {
		return fmt.Errorf("delete site %q: no time given", id)
	}
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("delete site %q: %w", id, err)
	}
	defer tx.Rollback()
	res, err := tx.Exec(ctx, `DELETE FROM sites WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete site %q: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("site %q: %w", id, store.ErrNotFound)
	}
	if _, err := tx.Exec(ctx, `UPDATE grants SET revoked_at = ?, revoked_by = 'site.delete'
		WHERE site_id = ? AND revoked_at = 0`, at.UnixMilli(), id); err != nil {
		return fmt.Errorf("delete site %q: revoke grants: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete site %q: %w", id, err)
	}
	return nil
}

// ---- Devices ----

// ---- Grants ----

const grantColumns = `id, tenant_id, supporter_user_id, site_id, device_id, expires_at, created_by, created_at, revoked_at, revoked_by`

func scanGrant(row database.Scanner) (store.Grant, error) {
	var g store.Grant
	var site, device sql.NullString
	var expires, created, revoked int64
	if err := row.Scan(&g.ID, &g.TenantID, &g.SupporterUserID, &site, &device, &expires, &g.CreatedBy, &created,
		&revoked, &g.RevokedBy); err != nil {
		return store.Grant{}, err
	}
	g.SiteID, g.DeviceID = site.String, device.String
	g.ExpiresAt, g.CreatedAt, g.RevokedAt = database.Time(expires), database.Time(created), database.Time(revoked)
	return g, nil
}

// GetGrant returns one grant.
func (s *Store) GetGrant(ctx context.Context, id string) (store.Grant, error) {
	g, err := scanGrant(s.db.QueryRow(ctx, `SELECT `+grantColumns+` FROM grants WHERE id = ?`, id))
	if database.NoRows(err) {
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
	w := s.filter()
	w.In("tenant_id", f.TenantIDs)
	if f.SupporterUserID != "" {
		w.Add("supporter_user_id = ?", f.SupporterUserID)
	}
	if f.SiteID != "" {
		w.Add("site_id = ?", f.SiteID)
	}
	if f.DeviceID != "" {
		w.Add("device_id = ?", f.DeviceID)
	}
	if !f.ActiveAt.IsZero() {
		w.Add("revoked_at = 0 AND (expires_at = 0 OR expires_at > ?)", f.ActiveAt.UnixMilli())
	}
	out := []store.Grant{}
	if w.None {
		return out, nil
	}
	rows, err := s.db.Query(ctx, `SELECT `+grantColumns+` FROM grants`+w.Where()+` ORDER BY created_at, id`, w.Args...)
	if err != nil {
		return nil, fmt.Errorf("list grants: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, fmt.Errorf("list grants: %w", err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list grants: %w", err)
	}
	return out, nil
}
