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
	"github.com/warden-iot/warden/internal/hub/hubsql"
	"github.com/warden-iot/warden/internal/registry/registrysql"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/sqlstore"
)

// Store is a store.Store on a SQLite file.
type Store struct {
	*sqlstore.Store // the methods both engines share
	*registryStore  // devices
	*hubStore       // twins, cloud-to-device messages, sessions

	w  *sql.DB     // exactly one connection: all writes
	r  *sql.DB     // readers
	db database.DB // both, for the domain stores

	sealer store.Sealer // set once by SetSealer, before use
}

var _ store.Store = (*Store)(nil)

// The domain stores Store embeds, under names of their own (each package's
// type is called Store).
type (
	registryStore = registrysql.Store
	hubStore      = hubsql.Store
)

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
	s.registryStore = registrysql.New(s.db)
	s.hubStore = hubsql.New(s.db)
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

// CreateAPIToken stores a token's hash. A token's user must be one of the
// token's tenant (otherwise ErrNotFound).
func (s *Store) CreateAPIToken(ctx context.Context, t store.APIToken) error {
	scopes, err := joinScopes(t.Scopes)
	if err != nil {
		return fmt.Errorf("create api token %q: %w", t.ID, err)
	}
	user := database.NullIfEmpty(t.UserID)
	res, err := s.w.ExecContext(ctx, `INSERT INTO api_tokens (`+sqlstore.APITokenColumns+`)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE ? IS NULL OR EXISTS (SELECT 1 FROM users WHERE id = ? AND tenant_id = ?)`,
		t.ID, t.TenantID, user, t.Name, string(t.Role), scopes, t.Hash, t.CreatedAt.UnixMilli(), database.Millis(t.ExpiresAt),
		database.Millis(t.LastUsedAt), user, user, t.TenantID)
	if isUniqueViolation(err) {
		return fmt.Errorf("api token %q: %w", t.ID, store.ErrConflict)
	}
	if isForeignKeyViolation(err) {
		return fmt.Errorf("api token %q: tenant %q: %w", t.ID, t.TenantID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("create api token %q: %w", t.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("api token %q: user %q of tenant %q: %w", t.ID, t.UserID, t.TenantID, store.ErrNotFound)
	}
	return nil
}

// maxRejectedPerDevice bounds the rejected-message list of one device; the
// oldest entries give way (the rejects counter keeps the total).
const maxRejectedPerDevice = 1000

// AddRejected keeps a message that could not be accepted.
func (s *Store) AddRejected(ctx context.Context, r store.Rejected) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add rejected: %w", err)
	}
	defer tx.Rollback()
	payload := r.Payload
	if payload == nil {
		payload = []byte{}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO rejected (tenant_id, device_id, message_id, topic, reason, payload, received_at, size, sealed)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.TenantID, r.DeviceID, r.MessageID, r.Topic, r.Reason, payload, r.ReceivedAt.UnixMilli(),
		r.Size, r.Sealed); err != nil {
		return fmt.Errorf("add rejected: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM rejected WHERE device_id = ? AND id NOT IN
		(SELECT id FROM rejected WHERE device_id = ? ORDER BY id DESC LIMIT ?)`,
		r.DeviceID, r.DeviceID, maxRejectedPerDevice); err != nil {
		return fmt.Errorf("add rejected: trim: %w", err)
	}
	return tx.Commit()
}

// UpgradeRejected stores the new form of old rejected messages, each only
// if it is still old (another node may have upgraded it meanwhile).
func (s *Store) UpgradeRejected(ctx context.Context, rs []store.Rejected) (int64, error) {
	if len(rs) == 0 {
		return 0, nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("upgrade rejected messages: %w", err)
	}
	defer tx.Rollback()
	var n int64
	for _, r := range rs {
		payload := r.Payload
		if payload == nil {
			payload = []byte{}
		}
		res, err := tx.ExecContext(ctx, `UPDATE rejected SET payload = ?, size = ?, sealed = ?, topic = '', reason = ''
			WHERE id = ? AND size = ?`, payload, r.Size, r.Sealed, r.ID, store.RejectedOld)
		if err != nil {
			return 0, fmt.Errorf("upgrade rejected message %d: %w", r.ID, err)
		}
		k, err := res.RowsAffected()
		if err != nil {
			return 0, fmt.Errorf("upgrade rejected message %d: %w", r.ID, err)
		}
		n += k
	}
	if n > 0 {
		if err := setCompactPending(ctx, tx); err != nil {
			return 0, fmt.Errorf("upgrade rejected messages: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("upgrade rejected messages: %w", err)
	}
	return n, nil
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
