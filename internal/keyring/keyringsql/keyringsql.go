// Package keyringsql keeps the tenants' wrapped data keys (keyring.Store)
// in SQL, on SQLite or PostgreSQL. Reading is written once; making a key
// and destroying a tenant's keys differ by engine: each engine has its own
// way to reserve an id, and its own way to make sure that destroyed keys
// leave no copy in the database files.
package keyringsql

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/keyring"
)

// Store is a keyring.Store on a database.
type Store struct {
	db database.DB
	// horizonWait bounds how long DeleteTenantKeys waits, in PostgreSQL,
	// for older transactions to end before it vacuums anyway.
	horizonWait time.Duration
}

var _ keyring.Store = (*Store)(nil)

// New returns a Store on db.
func New(db database.DB) *Store { return &Store{db: db, horizonWait: 15 * time.Second} }

// SetHorizonWait changes how long DeleteTenantKeys waits, in PostgreSQL,
// for transactions older than the deletion to end (15 s by default); tests
// shorten it. Call it before use.
func (s *Store) SetHorizonWait(d time.Duration) { s.horizonWait = d }

// CreateTenantKey reserves a key id, calls wrap with it with no transaction
// open, and stores the wrapped key, only for a tenant that exists: a key
// made for a tenant being deleted would outlive it (the error then wraps
// database.ErrNotFound).
func (s *Store) CreateTenantKey(ctx context.Context, tenantID string, at time.Time, wrap func(id uint32) ([]byte, error)) (keyring.TenantKey, error) {
	if s.db.Dialect == database.Postgres {
		return s.createKeyPostgres(ctx, tenantID, at, wrap)
	}
	return s.createKeySQLite(ctx, tenantID, at, wrap)
}

// createKeySQLite reserves a key id with a row whose wrapped key is empty
// (which no lookup returns), wraps the key for it, and fills the row in. If
// the row was deleted meanwhile (the tenant's keys destroyed, or the tenant
// deleted) the error wraps ErrConflict, or ErrNotFound if the tenant is
// gone.
func (s *Store) createKeySQLite(ctx context.Context, tenantID string, at time.Time, wrap func(id uint32) ([]byte, error)) (keyring.TenantKey, error) {
	w := s.db.Primary()
	var id int64
	err := w.QueryRow(ctx, `INSERT INTO tenant_keys (tenant_id, wrapped, created_at)
		SELECT ?, x'', ? WHERE EXISTS (SELECT 1 FROM tenants WHERE id = ?) RETURNING id`,
		tenantID, at.UnixMilli(), tenantID).Scan(&id)
	if database.NoRows(err) {
		return keyring.TenantKey{}, fmt.Errorf("create key: tenant %q: %w", tenantID, database.ErrNotFound)
	}
	if err != nil {
		return keyring.TenantKey{}, fmt.Errorf("create key: %w", err)
	}
	k := keyring.TenantKey{ID: uint32(id), TenantID: tenantID, CreatedAt: at.Truncate(time.Millisecond)}
	if k.Wrapped, err = wrap(k.ID); err != nil {
		if _, derr := w.Exec(context.WithoutCancel(ctx), `DELETE FROM tenant_keys WHERE id = ?`, id); derr != nil {
			return keyring.TenantKey{}, fmt.Errorf("create key: wrap: %w (and removing the reserved id: %w)", err, derr)
		}
		return keyring.TenantKey{}, fmt.Errorf("create key: wrap: %w", err)
	}
	n, err := database.Affected(w.Exec(ctx, `UPDATE tenant_keys SET wrapped = ? WHERE id = ? AND length(wrapped) = 0
		AND EXISTS (SELECT 1 FROM tenants WHERE id = ?)`, k.Wrapped, id, tenantID))
	if err != nil {
		return keyring.TenantKey{}, fmt.Errorf("create key: %w", err)
	}
	if n == 0 {
		var one int
		if err := w.QueryRow(ctx, `SELECT 1 FROM tenants WHERE id = ?`, tenantID).Scan(&one); database.NoRows(err) {
			return keyring.TenantKey{}, fmt.Errorf("create key: tenant %q: %w", tenantID, database.ErrNotFound)
		}
		return keyring.TenantKey{}, fmt.Errorf("create key: key %d of tenant %q was destroyed as it was made: %w", id, tenantID, database.ErrConflict)
	}
	return k, nil
}

// createKeyPostgres reserves a key id from the table's identity sequence,
// wraps the key for it and stores it; if wrap fails, nothing is stored
// (the id is skipped).
func (s *Store) createKeyPostgres(ctx context.Context, tenantID string, at time.Time, wrap func(id uint32) ([]byte, error)) (keyring.TenantKey, error) {
	var id int64
	if err := s.db.Primary().QueryRow(ctx, `SELECT nextval(pg_get_serial_sequence('tenant_keys', 'id'))`).Scan(&id); err != nil {
		return keyring.TenantKey{}, fmt.Errorf("create key: reserve id: %w", err)
	}
	if id <= 0 || id > math.MaxUint32 {
		return keyring.TenantKey{}, fmt.Errorf("create key: id %d out of range", id)
	}
	k := keyring.TenantKey{ID: uint32(id), TenantID: tenantID, CreatedAt: at.Truncate(time.Millisecond)}
	var err error
	if k.Wrapped, err = wrap(k.ID); err != nil {
		return keyring.TenantKey{}, fmt.Errorf("create key: wrap: %w", err)
	}
	// The tenant's row is locked against DeleteTenant meanwhile.
	n, err := database.Affected(s.db.Exec(ctx, `INSERT INTO tenant_keys (id, tenant_id, wrapped, created_at)
		SELECT ?, id, ?, ? FROM tenants WHERE id = ? FOR SHARE`,
		id, k.Wrapped, at.UnixMilli(), tenantID))
	if err != nil {
		return keyring.TenantKey{}, fmt.Errorf("create key: %w", err)
	}
	if n == 0 {
		return keyring.TenantKey{}, fmt.Errorf("create key: tenant %q: %w", tenantID, database.ErrNotFound)
	}
	return k, nil
}

func (s *Store) tenantKey(ctx context.Context, where string, arg any) (keyring.TenantKey, error) {
	var k keyring.TenantKey
	var id, at int64
	err := s.db.QueryRow(ctx, `SELECT id, tenant_id, wrapped, created_at FROM tenant_keys WHERE `+where+
		` AND length(wrapped) > 0 ORDER BY id DESC LIMIT 1`, arg).Scan(&id, &k.TenantID, &k.Wrapped, &at)
	if database.NoRows(err) {
		return k, fmt.Errorf("data key: %w", database.ErrNotFound)
	}
	if err != nil {
		return k, fmt.Errorf("data key: %w", err)
	}
	k.ID, k.CreatedAt = uint32(id), time.UnixMilli(at).UTC()
	return k, nil
}

// ActiveTenantKey returns a tenant's newest data key.
func (s *Store) ActiveTenantKey(ctx context.Context, tenantID string) (keyring.TenantKey, error) {
	return s.tenantKey(ctx, `tenant_id = ?`, tenantID)
}

// TenantKey returns a data key by id.
func (s *Store) TenantKey(ctx context.Context, id uint32) (keyring.TenantKey, error) {
	return s.tenantKey(ctx, `id = ?`, int64(id))
}

// DeleteTenantKeys destroys a tenant's data keys and purges the database
// files of them, and of keys deleted before (by DeleteTenant):
//
//   - SQLite: secure_delete has overwritten the deleted rows in their
//     pages, and the checkpoint (database.DB.PurgeDeleted) copies those
//     pages into the database file and empties the WAL, where older
//     versions of the pages were. So no byte of the wrapped keys remains in
//     either file.
//   - PostgreSQL: a DELETE only marks rows dead, and their bytes stay in
//     the table's pages until the space is reused, which VACUUM does not
//     promise. VACUUM FULL rewrites the small tenant_keys table and its
//     indexes into new files and drops the old ones. It copies dead rows
//     that a snapshot still sees, so it runs once no transaction older than
//     the deletion is open in the database (database.DB.WaitForHorizon).
//     PostgreSQL's WAL, and archives of it, still hold the wrapped keys:
//     they stay protected by the master key.
//
// If the purge fails, the keys are deleted all the same and the error
// wraps database.ErrNotPurged.
func (s *Store) DeleteTenantKeys(ctx context.Context, tenantID string) error {
	if s.db.Dialect != database.Postgres {
		if _, err := s.db.Exec(ctx, `DELETE FROM tenant_keys WHERE tenant_id = ?`, tenantID); err != nil {
			return fmt.Errorf("delete keys of %q: %w", tenantID, err)
		}
		if err := s.db.PurgeDeleted(ctx); err != nil {
			return fmt.Errorf("delete keys of %q: %w", tenantID, err)
		}
		return nil
	}
	var xid string
	err := s.db.InTx(ctx, func(tx database.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM tenant_keys WHERE tenant_id = ?`, tenantID); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT pg_current_xact_id()::text`).Scan(&xid)
	})
	if err != nil {
		return fmt.Errorf("delete keys of %q: %w", tenantID, err)
	}
	waitErr := s.db.WaitForHorizon(ctx, xid, s.horizonWait)
	if err := s.vacuumFull(ctx, "tenant_keys"); err != nil {
		return fmt.Errorf("delete keys of %q: %w: %w", tenantID, database.ErrNotPurged, err)
	}
	if waitErr != nil {
		return fmt.Errorf("delete keys of %q: %w: %w", tenantID, database.ErrNotPurged, waitErr)
	}
	return nil
}

// lockNotAvailable is PostgreSQL's SQLSTATE for lock_not_available (here:
// lock_timeout expired).
const lockNotAvailable = "55P03"

// vacuumFull rewrites a (small) PostgreSQL table. It holds an exclusive
// lock on it meanwhile, so it gives up waiting for the lock after a while,
// and tries again, rather than queueing every other user of the table
// behind it.
func (s *Store) vacuumFull(ctx context.Context, table string) error {
	conn, err := s.db.W.Conn(ctx)
	if err != nil {
		return fmt.Errorf("vacuum %s: %w", table, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SET lock_timeout = '2s'`); err != nil {
		return fmt.Errorf("vacuum %s: %w", table, err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `RESET lock_timeout`)
	for attempt := 1; ; attempt++ {
		_, err := conn.ExecContext(ctx, `VACUUM FULL `+table)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != lockNotAvailable || attempt == 5 {
			if err != nil {
				return fmt.Errorf("vacuum %s: %w", table, err)
			}
			return nil
		}
	}
}
