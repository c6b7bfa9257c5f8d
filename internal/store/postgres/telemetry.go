package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/warden-iot/warden/internal/store"
)

// CreateTenant adds a tenant below its parent, in one statement that takes
// the path from the parent's row (the foreign key holds the parent until
// the insert commits): no row is inserted if the parent does not exist.
func (s *Store) CreateTenant(ctx context.Context, t store.Tenant) error {
	if t.ID == "" || strings.Contains(t.ID, "/") {
		return fmt.Errorf("create tenant %q: invalid id", t.ID)
	}
	addr, contact, contract, err := tenantJSON(t)
	if err != nil {
		return fmt.Errorf("create tenant %q: %w", t.ID, err)
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO tenants (id, parent_id, name, created_at, retention_days, path, address, contact, contract)
		SELECT $1::text, id, $2, $3, $4, path || '/' || $1::text, $5, $6, $7 FROM tenants WHERE id = $8`,
		t.ID, t.Name, t.CreatedAt.UnixMilli(), int32(t.RetentionDays), addr, contact, contract, t.ParentID)
	if isUniqueViolation(err) {
		return fmt.Errorf("tenant %q: %w", t.ID, store.ErrConflict)
	}
	if isForeignKeyViolation(err) {
		return fmt.Errorf("parent tenant %q: %w", t.ParentID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("create tenant %q: %w", t.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("parent tenant %q: %w", t.ParentID, store.ErrNotFound)
	}
	return nil
}

const tenantColumns = `tenants.id, tenants.parent_id, tenants.name, tenants.created_at, tenants.retention_days,
	tenants.path, tenants.address, tenants.contact, tenants.contract`

func scanTenant(row pgx.Row) (store.Tenant, error) {
	var t store.Tenant
	var parent *string
	var created int64
	var days int32
	var addr, contact, contract string
	if err := row.Scan(&t.ID, &parent, &t.Name, &created, &days, &t.Path, &addr, &contact, &contract); err != nil {
		return store.Tenant{}, err
	}
	if parent != nil {
		t.ParentID = *parent
	}
	t.CreatedAt = time.UnixMilli(created).UTC()
	t.RetentionDays = int(days)
	for _, c := range []struct {
		col string
		v   any
	}{{addr, &t.Address}, {contact, &t.Contact}, {contract, &t.Contract}} {
		if err := fromJSON(c.col, c.v); err != nil {
			return store.Tenant{}, fmt.Errorf("tenant %q: %w", t.ID, err)
		}
	}
	return t, nil
}

// GetTenant returns one tenant.
func (s *Store) GetTenant(ctx context.Context, id string) (store.Tenant, error) {
	t, err := scanTenant(s.pool.QueryRow(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return t, fmt.Errorf("tenant %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("tenant %q: %w", id, err)
	}
	return t, nil
}

// ListTenants returns every tenant in id order.
func (s *Store) ListTenants(ctx context.Context) ([]store.Tenant, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+tenantColumns+` FROM tenants ORDER BY id`)
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
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	return out, nil
}

// SetTenantRetention sets how many days a tenant's telemetry is kept.
func (s *Store) SetTenantRetention(ctx context.Context, id string, days int) error {
	tag, err := s.pool.Exec(ctx, `UPDATE tenants SET retention_days = $1 WHERE id = $2`, days, id)
	if err != nil {
		return fmt.Errorf("set retention of %q: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("tenant %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// DeleteTenant removes a tenant and everything it owns, in one transaction
// and one round trip for the deletes. latest comes before head_stats, the
// order of WriteHead. Its sites, users (with their sessions, tokens and
// grants) and grants go with it (ON DELETE CASCADE). A tenant with
// sub-tenants is not deleted (ErrConflict): the batch then fails at the
// tenants row (foreign key) and is rolled back.
func (s *Store) DeleteTenant(ctx context.Context, id string) error {
	if id == store.RootTenantID {
		return errors.New("the root tenant cannot be deleted")
	}
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	// Lock the tenant first: a CreateTenantKey under way finishes before,
	// and its key is deleted too; one that starts later finds no tenant.
	b.Queue(`SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE`, id)
	var children int64
	b.Queue(`SELECT count(*) FROM tenants WHERE parent_id = $1`, id).QueryRow(func(row pgx.Row) error {
		return row.Scan(&children)
	})
	for _, table := range []string{"latest", "head_stats", "head", "chunks", "message_ids", "rejected", "api_tokens", "tenant_keys", "monitor_states", "devices"} {
		b.Queue(`DELETE FROM `+table+` WHERE tenant_id = $1`, id)
	}
	var found bool
	b.Queue(`DELETE FROM tenants WHERE id = $1`, id).Exec(func(tag pgconn.CommandTag) error {
		found = tag.RowsAffected() > 0
		return nil
	})
	br := s.pool.SendBatch(ctx, b)
	tx := br.Tx()
	defer tx.Rollback(ctx)
	err := br.Close()
	var pgErr *pgconn.PgError
	if children > 0 || (errors.As(err, &pgErr) && pgErr.Code == foreignKeyViolation && pgErr.TableName == "tenants") {
		return fmt.Errorf("tenant %q has sub-tenants: %w", id, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("delete tenant %q: %w", id, err)
	}
	if !found {
		return fmt.Errorf("tenant %q: %w", id, store.ErrNotFound)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("delete tenant %q: commit: %w", id, err)
	}
	return nil
}

// CreateTenantKey reserves a key id from the table's identity sequence,
// wraps the key for it and stores it. No transaction is open while wrap
// runs; if it fails, nothing is stored (the id is skipped).
func (s *Store) CreateTenantKey(ctx context.Context, tenantID string, at time.Time, wrap func(id uint32) ([]byte, error)) (store.TenantKey, error) {
	var id int64
	if err := s.pool.QueryRow(ctx, `SELECT nextval(pg_get_serial_sequence('tenant_keys', 'id'))`).Scan(&id); err != nil {
		return store.TenantKey{}, fmt.Errorf("create key: reserve id: %w", err)
	}
	if id <= 0 || id > math.MaxUint32 {
		return store.TenantKey{}, fmt.Errorf("create key: id %d out of range", id)
	}
	k := store.TenantKey{ID: uint32(id), TenantID: tenantID, CreatedAt: at.Truncate(time.Millisecond)}
	var err error
	if k.Wrapped, err = wrap(k.ID); err != nil {
		return store.TenantKey{}, fmt.Errorf("create key: wrap: %w", err)
	}
	// Only for a tenant that exists, whose row is locked against
	// DeleteTenant meanwhile: a key made for a tenant being deleted would
	// outlive it.
	tag, err := s.pool.Exec(ctx, `INSERT INTO tenant_keys (id, tenant_id, wrapped, created_at)
		SELECT $1, id, $3, $4 FROM tenants WHERE id = $2 FOR SHARE`,
		id, tenantID, k.Wrapped, at.UnixMilli())
	if err != nil {
		return store.TenantKey{}, fmt.Errorf("create key: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return store.TenantKey{}, fmt.Errorf("create key: tenant %q: %w", tenantID, store.ErrNotFound)
	}
	return k, nil
}

func (s *Store) tenantKey(ctx context.Context, where string, arg any) (store.TenantKey, error) {
	var k store.TenantKey
	var id, at int64
	err := s.pool.QueryRow(ctx, `SELECT id, tenant_id, wrapped, created_at FROM tenant_keys WHERE `+where+
		` AND length(wrapped) > 0 ORDER BY id DESC LIMIT 1`, arg).Scan(&id, &k.TenantID, &k.Wrapped, &at)
	if errors.Is(err, pgx.ErrNoRows) {
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
	return s.tenantKey(ctx, `tenant_id = $1`, tenantID)
}

// TenantKey returns a data key by id.
func (s *Store) TenantKey(ctx context.Context, id uint32) (store.TenantKey, error) {
	return s.tenantKey(ctx, `id = $1`, int64(id))
}

// DeleteTenantKeys destroys a tenant's data keys and leaves no live or dead
// tuple holding them (nor any deleted before, e.g. by DeleteTenant): a
// DELETE only marks rows dead, and their bytes stay in the table's pages
// until the space is reused, which VACUUM does not promise. VACUUM FULL
// rewrites the small tenant_keys table and its indexes into new files and
// drops the old ones. It copies dead rows that a snapshot still sees, so it
// runs once no transaction older than the deletion is open in the database
// (see waitForHorizon). PostgreSQL's WAL, and archives of it, still hold the
// wrapped keys: they stay protected by the master key.
func (s *Store) DeleteTenantKeys(ctx context.Context, tenantID string) error {
	var xid string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM tenant_keys WHERE tenant_id = $1`, tenantID); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT pg_current_xact_id()::text`).Scan(&xid)
	})
	if err != nil {
		return fmt.Errorf("delete keys of %q: %w", tenantID, err)
	}
	waitErr := s.waitForHorizon(ctx, xid, s.horizonWait)
	if err := s.vacuumFull(ctx, "tenant_keys"); err != nil {
		return fmt.Errorf("delete keys of %q: %w: %w", tenantID, store.ErrNotPurged, err)
	}
	if waitErr != nil {
		return fmt.Errorf("delete keys of %q: %w: %w", tenantID, store.ErrNotPurged, waitErr)
	}
	return nil
}

// xid32 turns a 64-bit transaction id (epoch and xid, as text) into the
// 32-bit xid that pg_stat_activity shows.
func xid32(xid8 string) string {
	n, err := strconv.ParseUint(xid8, 10, 64)
	if err != nil {
		return xid8 // the query then reports the malformed id
	}
	return strconv.FormatUint(n&math.MaxUint32, 10)
}

// waitForHorizon waits until no transaction that began before transaction
// xid committed is still running anywhere on the server (the xmin of a new
// snapshot, VACUUM's own included, is the oldest running transaction of any
// database), and no session of this database (on any node) or replication
// slot still holds a snapshot older than that; VACUUM can then remove what
// xid deleted. Sessions of other roles are visible only to roles with
// pg_read_all_stats.
func (s *Store) waitForHorizon(ctx context.Context, xid string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		var older int
		err := s.pool.QueryRow(ctx, `SELECT
			(SELECT count(*) WHERE pg_snapshot_xmin(pg_current_snapshot()) <= $1::text::xid8)
			+ (SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_xmin IS NOT NULL
				AND (datid IS NULL OR datname = current_database()) AND age(backend_xmin) >= age($2::text::xid))
			+ (SELECT count(*) FROM pg_replication_slots WHERE xmin IS NOT NULL AND age(xmin) >= age($2::text::xid))`,
			xid, xid32(xid)).Scan(&older)
		if err != nil {
			return fmt.Errorf("look for older transactions: %w", err)
		}
		if older == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d transactions, sessions or replication slots older than the deletion stayed open for %v", older, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// vacuumFull rewrites a (small) table. It holds an exclusive lock on it
// meanwhile, so it gives up waiting for the lock after a while, and tries
// again, rather than queueing every other user of the table behind it.
func (s *Store) vacuumFull(ctx context.Context, table string) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("vacuum %s: %w", table, err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET lock_timeout = '2s'`); err != nil {
		return fmt.Errorf("vacuum %s: %w", table, err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `RESET lock_timeout`)
	for attempt := 1; ; attempt++ {
		_, err := conn.Exec(ctx, `VACUUM FULL `+table)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != lockNotAvailable || attempt == 5 {
			if err != nil {
				return fmt.Errorf("vacuum %s: %w", table, err)
			}
			return nil
		}
	}
}

// lockNotAvailable is PostgreSQL's SQLSTATE for lock_not_available (here:
// lock_timeout expired).
const lockNotAvailable = "55P03"
