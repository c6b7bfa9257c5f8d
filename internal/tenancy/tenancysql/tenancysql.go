// Package tenancysql is tenancy.Store on Warden's database, one set of
// statements for SQLite and PostgreSQL (package database rebinds the
// placeholders and maps the dialects' differences).
package tenancysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/tenancy"
)

// Store is tenancy.Store on a database.
type Store struct {
	db database.DB
}

var _ tenancy.Store = (*Store)(nil)

// New returns a Store on db.
func New(db database.DB) *Store { return &Store{db: db} }

// ---- Tenants ----

// normContract stores contract dates like every other time: UTC, in
// milliseconds.
func normContract(c tenancy.Contract) tenancy.Contract {
	for _, t := range []*time.Time{&c.Start, &c.End} {
		if !t.IsZero() {
			*t = t.UTC().Truncate(time.Millisecond)
		}
	}
	return c
}

// tenantJSON encodes a tenant's address, contact and contract.
func tenantJSON(t tenancy.Tenant) (addr, contact, contract string, err error) {
	if addr, err = database.ToJSON(t.Address); err != nil {
		return
	}
	if contact, err = database.ToJSON(t.Contact); err != nil {
		return
	}
	contract, err = database.ToJSON(normContract(t.Contract))
	return
}

const tenantColumns = `tenants.id, tenants.parent_id, tenants.name, tenants.created_at, tenants.retention_days,
	tenants.path, tenants.address, tenants.contact, tenants.contract`

func scanTenant(row database.Scanner) (tenancy.Tenant, error) {
	var t tenancy.Tenant
	var parent sql.NullString
	var created int64
	var addr, contact, contract string
	if err := row.Scan(&t.ID, &parent, &t.Name, &created, &t.RetentionDays, &t.Path, &addr, &contact, &contract); err != nil {
		return tenancy.Tenant{}, err
	}
	t.ParentID = parent.String
	t.CreatedAt = time.UnixMilli(created).UTC()
	for _, c := range []struct {
		col string
		v   any
	}{{addr, &t.Address}, {contact, &t.Contact}, {contract, &t.Contract}} {
		if err := database.FromJSON(c.col, c.v); err != nil {
			return tenancy.Tenant{}, fmt.Errorf("tenant %q: %w", t.ID, err)
		}
	}
	return t, nil
}

// CreateTenant adds a tenant below its parent, in one statement that takes
// the path from the parent's row: no row is inserted if the parent does not
// exist (in PostgreSQL the foreign key holds the parent until the insert
// commits).
func (s *Store) CreateTenant(ctx context.Context, t tenancy.Tenant) error {
	if t.ID == "" || strings.Contains(t.ID, "/") {
		return fmt.Errorf("create tenant %q: invalid id", t.ID)
	}
	addr, contact, contract, err := tenantJSON(t)
	if err != nil {
		return fmt.Errorf("create tenant %q: %w", t.ID, err)
	}
	n, err := database.Affected(s.db.Exec(ctx, `INSERT INTO tenants (id, parent_id, name, created_at, retention_days, path, address, contact, contract)
		SELECT CAST(? AS TEXT), id, ?, ?, ?, path || '/' || CAST(? AS TEXT), ?, ?, ? FROM tenants WHERE id = ?`,
		t.ID, t.Name, t.CreatedAt.UnixMilli(), t.RetentionDays, t.ID, addr, contact, contract, t.ParentID))
	switch {
	case s.db.Dialect.IsUniqueViolation(err):
		return fmt.Errorf("tenant %q: %w", t.ID, database.ErrConflict)
	case s.db.Dialect.IsForeignKeyViolation(err):
		return fmt.Errorf("parent tenant %q: %w", t.ParentID, database.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create tenant %q: %w", t.ID, err)
	case n == 0:
		return fmt.Errorf("parent tenant %q: %w", t.ParentID, database.ErrNotFound)
	}
	return nil
}

// GetTenant returns one tenant.
func (s *Store) GetTenant(ctx context.Context, id string) (tenancy.Tenant, error) {
	t, err := scanTenant(s.db.QueryRow(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE id = ?`, id))
	if database.NoRows(err) {
		return t, fmt.Errorf("tenant %q: %w", id, database.ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("tenant %q: %w", id, err)
	}
	return t, nil
}

// ListTenants returns every tenant in id order.
func (s *Store) ListTenants(ctx context.Context) ([]tenancy.Tenant, error) {
	rows, err := s.db.Query(ctx, `SELECT `+tenantColumns+` FROM tenants ORDER BY id`)
	out, err := database.Collect(rows, err, scanTenant)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	return out, nil
}

// UpdateTenant replaces a tenant's name, address, contact and contract.
func (s *Store) UpdateTenant(ctx context.Context, t tenancy.Tenant) error {
	addr, contact, contract, err := tenantJSON(t)
	if err != nil {
		return fmt.Errorf("update tenant %q: %w", t.ID, err)
	}
	n, err := database.Affected(s.db.Exec(ctx, `UPDATE tenants SET name = ?, address = ?, contact = ?, contract = ? WHERE id = ?`,
		t.Name, addr, contact, contract, t.ID))
	if err != nil {
		return fmt.Errorf("update tenant %q: %w", t.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("tenant %q: %w", t.ID, database.ErrNotFound)
	}
	return nil
}

// TenantsUnder returns the tenant and its descendants in path order: the
// paths equal to the tenant's or starting with it and "/" ("0" follows "/"
// in byte order).
func (s *Store) TenantsUnder(ctx context.Context, id string) ([]tenancy.Tenant, error) {
	rows, err := s.db.Query(ctx, `WITH p AS (SELECT path FROM tenants WHERE id = ?)
		SELECT `+tenantColumns+` FROM tenants, p
		WHERE tenants.path = p.path OR (tenants.path > p.path || '/' AND tenants.path < p.path || '0')
		ORDER BY tenants.path`, id)
	out, err := database.Collect(rows, err, scanTenant)
	if err != nil {
		return nil, fmt.Errorf("tenants under %q: %w", id, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("tenant %q: %w", id, database.ErrNotFound)
	}
	return out, nil
}

// SetTenantRetention sets how many days a tenant's telemetry is kept.
func (s *Store) SetTenantRetention(ctx context.Context, id string, days int) error {
	n, err := database.Affected(s.db.Exec(ctx, `UPDATE tenants SET retention_days = ? WHERE id = ?`, days, id))
	if err != nil {
		return fmt.Errorf("set retention of %q: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("tenant %q: %w", id, database.ErrNotFound)
	}
	return nil
}

// tenantTables are the tables DeleteTenant empties of a tenant's rows
// before the tenant's own row, in the order WriteHead writes them (latest
// before head_stats), so that the two never wait on each other in
// opposite orders. The other tables holding a tenant's rows go with it
// (ON DELETE CASCADE).
var tenantTables = []string{"latest", "head_stats", "head", "chunks", "message_ids", "rejected", "api_tokens",
	"tenant_keys", "monitor_states", "devices"}

// DeleteTenant removes a tenant and everything it owns, in one
// transaction; its sites, users (with their sessions, tokens and grants)
// and grants go with it (ON DELETE CASCADE). A tenant with sub-tenants is
// not deleted (ErrConflict). In PostgreSQL the tenant's row is locked
// first: a CreateTenantKey under way finishes before, and its key is
// deleted too; one that starts later finds no tenant. (SQLite's single
// writer runs the transaction alone.)
func (s *Store) DeleteTenant(ctx context.Context, id string) error {
	if id == tenancy.RootTenantID {
		return errors.New("the root tenant cannot be deleted")
	}
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("delete tenant %q: %w", id, err)
	}
	defer tx.Rollback()
	if tx.Dialect == database.Postgres {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM tenants WHERE id = ? FOR UPDATE`, id); err != nil {
			return fmt.Errorf("delete tenant %q: %w", id, err)
		}
	}
	var children int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM tenants WHERE parent_id = ?`, id).Scan(&children); err != nil {
		return fmt.Errorf("delete tenant %q: %w", id, err)
	}
	if children > 0 {
		return fmt.Errorf("tenant %q has %d sub-tenants: %w", id, children, database.ErrConflict)
	}
	for _, table := range tenantTables {
		if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE tenant_id = ?`, id); err != nil {
			return fmt.Errorf("delete tenant %q: %s: %w", id, table, err)
		}
	}
	n, err := database.Affected(tx.Exec(ctx, `DELETE FROM tenants WHERE id = ?`, id))
	switch {
	case subTenantAdded(tx.Dialect, err):
		return fmt.Errorf("tenant %q has sub-tenants: %w", id, database.ErrConflict)
	case err != nil:
		return fmt.Errorf("delete tenant %q: %w", id, err)
	case n == 0:
		return fmt.Errorf("tenant %q: %w", id, database.ErrNotFound)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete tenant %q: commit: %w", id, err)
	}
	return nil
}

// subTenantAdded says whether err is PostgreSQL refusing to delete a
// tenant that a sub-tenant created since the count refers to.
func subTenantAdded(d database.Dialect, err error) bool {
	var pgErr *pgconn.PgError
	return d == database.Postgres && d.IsForeignKeyViolation(err) && errors.As(err, &pgErr) && pgErr.TableName == "tenants"
}

// ---- Sites ----

const siteColumns = `id, tenant_id, name, address, factory_access, factory_access_changed_at, created_at`

func scanSite(row database.Scanner) (tenancy.Site, error) {
	var st tenancy.Site
	var addr string
	var changed, created int64
	if err := row.Scan(&st.ID, &st.TenantID, &st.Name, &addr, &st.FactoryAccess, &changed, &created); err != nil {
		return tenancy.Site{}, err
	}
	if err := database.FromJSON(addr, &st.Address); err != nil {
		return tenancy.Site{}, fmt.Errorf("address of site %q: %w", st.ID, err)
	}
	st.FactoryAccessChangedAt, st.CreatedAt = database.Time(changed), database.Time(created)
	return st, nil
}

// CreateSite adds a site to its tenant.
func (s *Store) CreateSite(ctx context.Context, st tenancy.Site) error {
	addr, err := database.ToJSON(st.Address)
	if err != nil {
		return fmt.Errorf("create site %q: %w", st.ID, err)
	}
	_, err = s.db.Exec(ctx, `INSERT INTO sites (`+siteColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		st.ID, st.TenantID, st.Name, addr, st.FactoryAccess, database.Millis(st.FactoryAccessChangedAt), database.Millis(st.CreatedAt))
	switch {
	case s.db.Dialect.IsUniqueViolation(err):
		return fmt.Errorf("site %q: %w", st.ID, database.ErrConflict)
	case s.db.Dialect.IsForeignKeyViolation(err):
		return fmt.Errorf("tenant %q: %w", st.TenantID, database.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create site %q: %w", st.ID, err)
	}
	return nil
}

// GetSite returns one site.
func (s *Store) GetSite(ctx context.Context, id string) (tenancy.Site, error) {
	st, err := scanSite(s.db.QueryRow(ctx, `SELECT `+siteColumns+` FROM sites WHERE id = ?`, id))
	if database.NoRows(err) {
		return st, fmt.Errorf("site %q: %w", id, database.ErrNotFound)
	}
	if err != nil {
		return st, fmt.Errorf("get site %q: %w", id, err)
	}
	return st, nil
}

// ListSites returns the sites matching f in id order.
func (s *Store) ListSites(ctx context.Context, f tenancy.SiteFilter) ([]tenancy.Site, error) {
	w := &database.Filter{Dialect: s.db.Dialect}
	w.In("tenant_id", f.TenantIDs)
	w.Under("tenant_id", f.Under)
	w.In("id", f.IDs)
	if f.FactoryAccess {
		w.Add("factory_access")
	}
	if w.None {
		return []tenancy.Site{}, nil
	}
	rows, err := s.db.Query(ctx, `SELECT `+siteColumns+` FROM sites`+w.Where()+` ORDER BY id`, w.Args...)
	out, err := database.Collect(rows, err, scanSite)
	if err != nil {
		return nil, fmt.Errorf("list sites: %w", err)
	}
	return out, nil
}

// UpdateSite replaces a site's name and address.
func (s *Store) UpdateSite(ctx context.Context, st tenancy.Site) error {
	addr, err := database.ToJSON(st.Address)
	if err != nil {
		return fmt.Errorf("update site %q: %w", st.ID, err)
	}
	return database.UpdateOne(ctx, s.db, "site", st.ID, `UPDATE sites SET name = ?, address = ? WHERE id = ?`, st.Name, addr, st.ID)
}

// SetFactoryAccess switches the service desk's access to a site's
// machines. The time of the switch is recorded only if the setting
// changes.
func (s *Store) SetFactoryAccess(ctx context.Context, id string, on bool, at time.Time) error {
	return database.UpdateOne(ctx, s.db, "site", id, `UPDATE sites SET factory_access = ?,
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
		return fmt.Errorf("site %q: %w", id, database.ErrNotFound)
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

// ---- Retired ids ----

// RetireID keeps an id from being used again.
func (s *Store) RetireID(ctx context.Context, kind, id string, at time.Time) error {
	if _, err := s.db.Exec(ctx, `INSERT INTO retired_ids (kind, id, retired_at) VALUES (?, ?, ?)
		ON CONFLICT (kind, id) DO NOTHING`, kind, id, at.UnixMilli()); err != nil {
		return fmt.Errorf("retire %s id %q: %w", kind, id, err)
	}
	return nil
}

// IDRetired says whether an id was retired.
func (s *Store) IDRetired(ctx context.Context, kind, id string) (bool, error) {
	var n int
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM retired_ids WHERE kind = ? AND id = ?`, kind, id).Scan(&n); err != nil {
		return false, fmt.Errorf("is %s id %q retired: %w", kind, id, err)
	}
	return n > 0, nil
}
