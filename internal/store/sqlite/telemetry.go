package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/warden-iot/warden/internal/store"
)

// values returns "(?, …), (?, …), …": rows tuples of cols placeholders.
func values(rows, cols int) string {
	tuple := "(" + placeholders(cols) + ")"
	return strings.Repeat(tuple+", ", rows-1) + tuple
}

// placeholders returns "?, ?, …" with n question marks.
func placeholders(n int) string {
	return strings.Repeat("?, ", n-1) + "?"
}

// CreateTenant adds a tenant below its parent, in one statement that takes
// the path from the parent's row: no row is inserted if the parent does not
// exist.
func (s *Store) CreateTenant(ctx context.Context, t store.Tenant) error {
	if t.ID == "" || strings.Contains(t.ID, "/") {
		return fmt.Errorf("create tenant %q: invalid id", t.ID)
	}
	addr, contact, contract, err := tenantJSON(t)
	if err != nil {
		return fmt.Errorf("create tenant %q: %w", t.ID, err)
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO tenants (id, parent_id, name, created_at, retention_days, path, address, contact, contract)
		SELECT ?, id, ?, ?, ?, path || '/' || ?, ?, ?, ? FROM tenants WHERE id = ?`,
		t.ID, t.Name, t.CreatedAt.UnixMilli(), t.RetentionDays, t.ID, addr, contact, contract, t.ParentID)
	if isUniqueViolation(err) {
		return fmt.Errorf("tenant %q: %w", t.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create tenant %q: %w", t.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("parent tenant %q: %w", t.ParentID, store.ErrNotFound)
	}
	return nil
}

const tenantColumns = `tenants.id, tenants.parent_id, tenants.name, tenants.created_at, tenants.retention_days,
	tenants.path, tenants.address, tenants.contact, tenants.contract`

func scanTenant(row interface{ Scan(...any) error }) (store.Tenant, error) {
	var t store.Tenant
	var parent sql.NullString
	var created int64
	var addr, contact, contract string
	if err := row.Scan(&t.ID, &parent, &t.Name, &created, &t.RetentionDays, &t.Path, &addr, &contact, &contract); err != nil {
		return t, err
	}
	t.ParentID = parent.String
	t.CreatedAt = time.UnixMilli(created).UTC()
	for _, c := range []struct {
		col string
		v   any
	}{{addr, &t.Address}, {contact, &t.Contact}, {contract, &t.Contract}} {
		if err := fromJSON(c.col, c.v); err != nil {
			return t, fmt.Errorf("tenant %q: %w", t.ID, err)
		}
	}
	return t, nil
}

// GetTenant returns one tenant.
func (s *Store) GetTenant(ctx context.Context, id string) (store.Tenant, error) {
	t, err := scanTenant(s.r.QueryRowContext(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("tenant %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("tenant %q: %w", id, err)
	}
	return t, nil
}

// ListTenants returns every tenant in id order.
func (s *Store) ListTenants(ctx context.Context) ([]store.Tenant, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+tenantColumns+` FROM tenants ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	defer rows.Close()
	var out []store.Tenant
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, fmt.Errorf("list tenants: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// SetTenantRetention sets how many days a tenant's telemetry is kept.
func (s *Store) SetTenantRetention(ctx context.Context, id string, days int) error {
	res, err := s.w.ExecContext(ctx, `UPDATE tenants SET retention_days = ? WHERE id = ?`, days, id)
	if err != nil {
		return fmt.Errorf("set retention of %q: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("tenant %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// DeleteTenant removes a tenant and everything it owns; its sites, users
// (with their sessions, tokens and grants) and grants go with it (ON DELETE
// CASCADE). A tenant with sub-tenants is not deleted (ErrConflict).
func (s *Store) DeleteTenant(ctx context.Context, id string) error {
	if id == store.RootTenantID {
		return errors.New("the root tenant cannot be deleted")
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete tenant %q: %w", id, err)
	}
	defer tx.Rollback()
	var children int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM tenants WHERE parent_id = ?`, id).Scan(&children); err != nil {
		return fmt.Errorf("delete tenant %q: %w", id, err)
	}
	if children > 0 {
		return fmt.Errorf("tenant %q has %d sub-tenants: %w", id, children, store.ErrConflict)
	}
	for _, table := range []string{"head", "head_stats", "chunks", "latest", "message_ids", "rejected", "api_tokens", "tenant_keys", "monitor_states", "devices"} {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE tenant_id = ?`, id); err != nil {
			return fmt.Errorf("delete tenant %q: %s: %w", id, table, err)
		}
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM tenants WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete tenant %q: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("tenant %q: %w", id, store.ErrNotFound)
	}
	return tx.Commit()
}

// CreateTenantKey reserves a key id with a row whose wrapped key is empty
// (which no lookup returns), wraps the key for it with no transaction
// open, and fills the row in. If the row was deleted meanwhile (the
// tenant's keys destroyed, or the tenant deleted) the error wraps
// store.ErrConflict, or store.ErrNotFound if the tenant is gone.
func (s *Store) CreateTenantKey(ctx context.Context, tenantID string, at time.Time, wrap func(id uint32) ([]byte, error)) (store.TenantKey, error) {
	var id int64
	// Only for a tenant that exists: a key made for a tenant being deleted
	// would outlive it.
	err := s.w.QueryRowContext(ctx, `INSERT INTO tenant_keys (tenant_id, wrapped, created_at)
		SELECT ?, x'', ? WHERE EXISTS (SELECT 1 FROM tenants WHERE id = ?) RETURNING id`,
		tenantID, at.UnixMilli(), tenantID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return store.TenantKey{}, fmt.Errorf("create key: tenant %q: %w", tenantID, store.ErrNotFound)
	}
	if err != nil {
		return store.TenantKey{}, fmt.Errorf("create key: %w", err)
	}
	k := store.TenantKey{ID: uint32(id), TenantID: tenantID, CreatedAt: at.Truncate(time.Millisecond)}
	if k.Wrapped, err = wrap(k.ID); err != nil {
		if _, derr := s.w.ExecContext(context.WithoutCancel(ctx), `DELETE FROM tenant_keys WHERE id = ?`, id); derr != nil {
			return store.TenantKey{}, fmt.Errorf("create key: wrap: %w (and removing the reserved id: %w)", err, derr)
		}
		return store.TenantKey{}, fmt.Errorf("create key: wrap: %w", err)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE tenant_keys SET wrapped = ? WHERE id = ? AND length(wrapped) = 0
		AND EXISTS (SELECT 1 FROM tenants WHERE id = ?)`, k.Wrapped, id, tenantID)
	if err != nil {
		return store.TenantKey{}, fmt.Errorf("create key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := s.GetTenant(ctx, tenantID); errors.Is(err, store.ErrNotFound) {
			return store.TenantKey{}, fmt.Errorf("create key: tenant %q: %w", tenantID, store.ErrNotFound)
		}
		return store.TenantKey{}, fmt.Errorf("create key: key %d of tenant %q was destroyed as it was made: %w", id, tenantID, store.ErrConflict)
	}
	return k, nil
}

func (s *Store) tenantKey(ctx context.Context, where string, arg any) (store.TenantKey, error) {
	var k store.TenantKey
	var id, at int64
	err := s.r.QueryRowContext(ctx, `SELECT id, tenant_id, wrapped, created_at FROM tenant_keys WHERE `+where+
		` AND length(wrapped) > 0 ORDER BY id DESC LIMIT 1`, arg).Scan(&id, &k.TenantID, &k.Wrapped, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return k, fmt.Errorf("data key: %w", store.ErrNotFound)
	}
	if err != nil {
		return k, fmt.Errorf("data key: %w", err)
	}
	k.ID, k.CreatedAt = uint32(id), time.UnixMilli(at).UTC()
	return k, nil
}

// ActiveTenantKey returns a tenant's newest data key.
func (s *Store) ActiveTenantKey(ctx context.Context, tenantID string) (store.TenantKey, error) {
	return s.tenantKey(ctx, `tenant_id = ?`, tenantID)
}

// TenantKey returns a data key by id.
func (s *Store) TenantKey(ctx context.Context, id uint32) (store.TenantKey, error) {
	return s.tenantKey(ctx, `id = ?`, int64(id))
}

// DeleteTenantKeys destroys a tenant's data keys and purges the database
// files: secure_delete has overwritten the deleted rows (of this call and of
// DeleteTenant before it) in their pages, and the checkpoint copies those
// pages into the database file and empties the WAL, where older versions
// of the pages were. So no byte of the wrapped keys remains in either file.
func (s *Store) DeleteTenantKeys(ctx context.Context, tenantID string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM tenant_keys WHERE tenant_id = ?`, tenantID); err != nil {
		return fmt.Errorf("delete keys of %q: %w", tenantID, err)
	}
	if err := s.purge(ctx); err != nil {
		return fmt.Errorf("delete keys of %q: %w: %w", tenantID, store.ErrNotPurged, err)
	}
	return nil
}
