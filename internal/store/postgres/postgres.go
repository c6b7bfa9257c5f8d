// Package postgres is the store for several Warden nodes sharing one
// PostgreSQL database. It has the same tables and semantics as store/sqlite:
// timestamps are BIGINT unix milliseconds; keys, hashes, payloads and the
// encrypted telemetry blobs are BYTEA. It talks to the server through a pgx
// connection pool. The telemetry methods are in telemetry.go.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/hub/hubsql"
	"github.com/warden-iot/warden/internal/registry/registrysql"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/sqlstore"
)

// Store is a store.Store on a PostgreSQL database.
type Store struct {
	*sqlstore.Store // the methods both engines share
	*registryStore  // devices
	*hubStore       // twins, cloud-to-device messages, sessions

	pool *pgxpool.Pool
	db   *sql.DB // pool behind database/sql, for the shared methods
	ddb  database.DB
	// horizonWait bounds how long DeleteTenantKeys waits for older
	// transactions to end before it vacuums anyway.
	horizonWait time.Duration

	sealer store.Sealer // set once by SetSealer, before use
}

var _ store.Store = (*Store)(nil)

// The domain stores Store embeds, under names of their own (each package's
// type is called Store).
type (
	registryStore = registrysql.Store
	hubStore      = hubsql.Store
)

// Open connects to the database at url (a postgres:// URL or a key=value
// connection string) and checks that it is reachable. Call Migrate before
// use. Errors never quote url, which may hold a password.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		var perr *pgconn.ParseConfigError
		if errors.As(err, &perr) {
			// pgx redacts passwords in parse errors only on a best-effort
			// basis, so say nothing about the string itself.
			return nil, errors.New("open postgres: cannot parse the connection URL (not shown: it may hold a password)")
		}
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	ddb := database.DB{Dialect: database.Postgres, W: db, R: db}
	return &Store{
		Store:         sqlstore.New(ddb),
		registryStore: registrysql.New(ddb),
		hubStore:      hubsql.New(ddb),
		ddb:           ddb,
		pool:          pool,
		db:            db,
		horizonWait:   15 * time.Second,
	}, nil
}

// DB is the database the domain stores run on.
func (s *Store) DB() database.DB { return s.ddb }

// Close closes the connection pool, waiting for connections in use to be
// released.
func (s *Store) Close() error {
	err := s.db.Close()
	s.pool.Close()
	return err
}

// CreateAPIToken stores a token's hash. A token's user must be one of the
// token's tenant (otherwise ErrNotFound).
func (s *Store) CreateAPIToken(ctx context.Context, t store.APIToken) error {
	scopes, err := joinScopes(t.Scopes)
	if err != nil {
		return fmt.Errorf("create api token %q: %w", t.ID, err)
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO api_tokens (`+apiTokenColumns+`)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10
		WHERE $3::text IS NULL OR EXISTS (SELECT 1 FROM users WHERE id = $3 AND tenant_id = $2)`,
		t.ID, t.TenantID, nullIfEmpty(t.UserID), t.Name, string(t.Role), scopes, t.Hash, t.CreatedAt.UnixMilli(),
		database.Millis(t.ExpiresAt), database.Millis(t.LastUsedAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("api token %q: %w", t.ID, store.ErrConflict)
	}
	if isForeignKeyViolation(err) {
		return fmt.Errorf("api token %q: tenant %q or user %q: %w", t.ID, t.TenantID, t.UserID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("create api token %q: %w", t.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("api token %q: user %q of tenant %q: %w", t.ID, t.UserID, t.TenantID, store.ErrNotFound)
	}
	return nil
}

// limitArg turns a limit into a LIMIT parameter: as in SQLite, a negative
// limit means none, which is LIMIT NULL in PostgreSQL.
func limitArg(limit int) any {
	if limit < 0 {
		return nil
	}
	return int64(limit)
}

// maxRejectedPerDevice bounds the rejected-message list of one device; the
// oldest entries give way (the rejects counter keeps the total).
const maxRejectedPerDevice = 1000

// AddRejected keeps a message that could not be accepted, and trims the
// device's list to the newest maxRejectedPerDevice, in one transaction and
// one round trip.
func (s *Store) AddRejected(ctx context.Context, r store.Rejected) error {
	payload := r.Payload
	if payload == nil {
		payload = []byte{}
	}
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	b.Queue(`INSERT INTO rejected (tenant_id, device_id, message_id, topic, reason, payload, received_at, size, sealed)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, r.TenantID, r.DeviceID, r.MessageID, r.Topic, r.Reason, payload,
		r.ReceivedAt.UnixMilli(), r.Size, r.Sealed)
	// The subquery is NULL, and nothing is deleted, while the device has
	// no more entries than the bound.
	b.Queue(`DELETE FROM rejected WHERE device_id = $1 AND id <
		(SELECT id FROM rejected WHERE device_id = $1 ORDER BY id DESC OFFSET $2 LIMIT 1)`,
		r.DeviceID, maxRejectedPerDevice-1)
	br := s.pool.SendBatch(ctx, b)
	tx := br.Tx()
	defer tx.Rollback(ctx)
	if err := br.Close(); err != nil {
		return fmt.Errorf("add rejected: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("add rejected: commit: %w", err)
	}
	return nil
}

// UpgradeRejected stores the new form of old rejected messages, each only
// if it is still old (another node may have upgraded it meanwhile).
func (s *Store) UpgradeRejected(ctx context.Context, rs []store.Rejected) (int64, error) {
	if len(rs) == 0 {
		return 0, nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("upgrade rejected messages: %w", err)
	}
	defer tx.Rollback(ctx)
	var n int64
	for _, r := range rs {
		payload := r.Payload
		if payload == nil {
			payload = []byte{}
		}
		tag, err := tx.Exec(ctx, `UPDATE rejected SET payload = $1, size = $2, sealed = $3, topic = '', reason = ''
			WHERE id = $4 AND size = $5`, payload, r.Size, r.Sealed, r.ID, store.RejectedOld)
		if err != nil {
			return 0, fmt.Errorf("upgrade rejected message %d: %w", r.ID, err)
		}
		n += tag.RowsAffected()
	}
	if n > 0 {
		if err := setCompactPending(ctx, tx); err != nil {
			return 0, fmt.Errorf("upgrade rejected messages: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("upgrade rejected messages: %w", err)
	}
	return n, nil
}

// uniqueViolation is PostgreSQL's SQLSTATE for unique_violation.
const uniqueViolation = "23505"

func isUniqueViolation(err error) bool { return database.Postgres.IsUniqueViolation(err) }

// Reset drops every Warden table, leaving an empty database for Migrate.
// It destroys all data: only `warden bench storage --database` uses it, on a
// database made for the benchmark.
func (s *Store) Reset(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `DROP TABLE IF EXISTS meta, tenants, tenant_keys, devices, api_tokens, message_ids,
		head, head_stats, chunks, latest, rejected, device_twins, c2d_messages, device_sessions,
		id_scopes, enrollment_groups, enrollments, registrations, audit_log,
		sites, users, sessions, user_tokens, grants, sign_in_failures, retired_ids,
		sites, users, sessions, user_tokens, grants, staff_credentials,
		`+alarmTables+`,
		schema_migrations CASCADE`)
	if err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	return nil
}
