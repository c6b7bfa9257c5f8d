// Package sqlite is the embedded store: one SQLite file in WAL mode, written
// through a single connection (SQLite allows one writer at a time) and read
// through a small pool.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/sqlstore"
	"github.com/warden-iot/warden/internal/tsdb/tsdbsqlite"
)

// Store is a store.Store on a SQLite file.
type Store struct {
	*sqlstore.Store  // the methods both engines share
	sqlstore.Domains // the domain stores
	*telemetry       // the telemetry store

	w  *sql.DB     // exactly one connection: all writes
	r  *sql.DB     // readers
	db database.DB // both, for the domain stores

	sealer keyring.Sealer // set once by SetSealer, before use
}

var _ store.Store = (*Store)(nil)

// telemetry is the telemetry store the engine embeds, under a name of its
// own (sqlstore.Store is embedded as Store).
type telemetry = tsdbsqlite.Store

// Open opens (creating if needed) the database file at path. Call Migrate
// before use.
func Open(ctx context.Context, path string) (*Store, error) {
	pragmas := []string{
		"journal_mode(WAL)",
		"synchronous(FULL)", // a commit is on disk before we acknowledge it
		"busy_timeout(10000)",
		"foreign_keys(ON)",
	}
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	dsn := "file:" + path + "?" + q.Encode()
	// secure_delete overwrites what a write deletes or replaces (cells,
	// freed and overflow pages) with zeros, so deleted rows leave no bytes
	// in the database file once the WAL is checkpointed (see purge).
	w, err := sql.Open("sqlite", dsn+"&_pragma=secure_delete(ON)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", dsn+"&mode=ro")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite %s for reading: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	s := &Store{w: w, r: r}
	s.db = database.DB{Dialect: database.SQLite, W: w, R: r, Purge: s.purge}
	s.Store = sqlstore.New(s.db)
	s.Domains = sqlstore.NewDomains(s.db)
	s.telemetry = tsdbsqlite.New(s.db)
	return s, nil
}

// DB is the database the domain stores run on.
func (s *Store) DB() database.DB { return s.db }

// Close closes both connection pools.
func (s *Store) Close() error {
	return errors.Join(s.r.Close(), s.w.Close())
}

// CreateDevice registers a device with its metadata; a site must be one of
// the device's tenant.
func (s *Store) CreateDevice(ctx context.Context, d store.Device) error {
	site := database.NullIfEmpty(d.Info.SiteID)
	args := append([]any{d.ID, d.TenantID, string(d.Status), d.PrimaryKey, d.SecondaryKey, d.CreatedAt.UnixMilli()},
		deviceInfoArgs(d.Info)...)
	res, err := s.w.ExecContext(ctx, `INSERT INTO devices (id, tenant_id, status, primary_key, secondary_key, created_at,
			site_id, name, serial_number, meter_number, measurement_location, installation_place, model, firmware_version)
		SELECT `+placeholders(14)+` WHERE `+siteInTenant, append(args, site, site, d.TenantID)...)
	if isUniqueViolation(err) {
		return fmt.Errorf("device %q: %w", d.ID, database.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create device %q: %w", d.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("device %q: site %q of tenant %q: %w", d.ID, d.Info.SiteID, d.TenantID, database.ErrNotFound)
	}
	return nil
}

// TouchDevices records devices' latest activity in one transaction (one
// fsync, however many devices).
func (s *Store) TouchDevices(ctx context.Context, seen []store.DeviceSeen) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("touch devices: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `UPDATE devices SET last_seen = ?, last_ip = ? WHERE id = ?`)
	if err != nil {
		return fmt.Errorf("touch devices: %w", err)
	}
	defer stmt.Close()
	for _, d := range seen {
		if _, err := stmt.ExecContext(ctx, d.At.UnixMilli(), d.IP, d.ID); err != nil {
			return fmt.Errorf("touch device %q: %w", d.ID, err)
		}
	}
	return tx.Commit()
}

// DeleteDevice removes a device and everything recorded for it, including
// the grants on it (deleted, not revoked).
func (s *Store) DeleteDevice(ctx context.Context, tenantID, id string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete device %q: %w", id, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM devices WHERE tenant_id = ? AND id = ?`, tenantID, id)
	if err != nil {
		return fmt.Errorf("delete device %q: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("device %q: %w", id, database.ErrNotFound)
	}
	for _, table := range []string{"head", "head_stats", "chunks", "latest", "message_ids", "rejected", "grants"} {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE device_id = ?`, id); err != nil {
			return fmt.Errorf("delete device %q: %s: %w", id, table, err)
		}
	}
	if err := deleteDeviceAlarms(ctx, tx, id); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete device %q: %w", id, err)
	}
	if err := s.purge(ctx); err != nil {
		return fmt.Errorf("delete device %q: %w: %w", id, database.ErrNotPurged, err)
	}
	return nil
}

// purgeAttempts bounds how often purge retries a checkpoint that readers
// kept from finishing; each attempt waits up to the busy timeout.
const purgeAttempts = 3

// purge checkpoints the WAL into the database file and truncates it to
// zero bytes. With secure_delete, the database file's pages then hold no
// byte of what was deleted, and the WAL no older page version holding it.
// It fails if readers keep the checkpoint from finishing.
func (s *Store) purge(ctx context.Context) error {
	var busy, logFrames, checkpointed int
	for attempt := 1; ; attempt++ {
		if err := s.w.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &checkpointed); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		if busy == 0 {
			return nil
		}
		if attempt == purgeAttempts {
			return fmt.Errorf("checkpoint: readers kept it from finishing (%d of %d WAL frames copied)", checkpointed, logFrames)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("checkpoint: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// checkDevice returns ErrNotFound unless the device belongs to the tenant.
func (s *Store) checkDevice(ctx context.Context, tenantID, deviceID string) error {
	var one int
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM devices WHERE tenant_id = ? AND id = ?`, tenantID, deviceID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("device %q: %w", deviceID, database.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("device %q: %w", deviceID, err)
	}
	return nil
}

func isUniqueViolation(err error) bool { return database.SQLite.IsUniqueViolation(err) }

// Vacuum rebuilds the database file to its smallest size (used by the
// storage benchmark to measure bytes on disk).
func (s *Store) Vacuum(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	if _, err := s.w.ExecContext(ctx, `VACUUM`); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	if _, err := s.w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	return nil
}
