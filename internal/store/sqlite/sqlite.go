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
