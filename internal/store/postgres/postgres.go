// Package postgres is the store for several Warden nodes sharing one
// PostgreSQL database. It has the same tables and semantics as store/sqlite:
// timestamps are BIGINT unix milliseconds; keys, hashes, payloads and the
// encrypted telemetry blobs are BYTEA. It talks to the server through a pgx
// connection pool. Its telemetry store is tsdbpg's, which it embeds.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/sqlstore"
	"github.com/warden-iot/warden/internal/tsdb/tsdbpg"
)

// Store is a store.Store on a PostgreSQL database.
type Store struct {
	*sqlstore.Store  // the methods both engines share
	sqlstore.Domains // the domain stores
	*telemetry       // the telemetry store

	pool *pgxpool.Pool
	db   *sql.DB // pool behind database/sql, for the shared methods
	ddb  database.DB

	sealer keyring.Sealer // set once by SetSealer, before use
}

var _ store.Store = (*Store)(nil)

// telemetry is the telemetry store the engine embeds, under a name of its
// own (sqlstore.Store is embedded as Store).
type telemetry = tsdbpg.Store

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
		Store:     sqlstore.New(ddb),
		Domains:   sqlstore.NewDomains(ddb),
		telemetry: tsdbpg.New(ddb, pool),
		ddb:       ddb,
		pool:      pool,
		db:        db,
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

// limitArg turns a limit into a LIMIT parameter: as in SQLite, a negative
// limit means none, which is LIMIT NULL in PostgreSQL.
func limitArg(limit int) any {
	if limit < 0 {
		return nil
	}
	return int64(limit)
}

func isUniqueViolation(err error) bool { return database.Postgres.IsUniqueViolation(err) }

// foreignKeyViolation is PostgreSQL's SQLSTATE for foreign_key_violation.
const foreignKeyViolation = "23503"

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
