package database

import (
	"context"
	"fmt"
	"time"
)

// migrateLock is the pg_advisory_xact_lock key that serialises Migrate
// across PostgreSQL nodes starting at the same time ("warden" in ASCII).
const migrateLock int64 = 0x77617264656e

// Migrate brings the schema to version upTo (len(Migrations()) for all),
// then runs after, all in one transaction. A database newer than this
// program's schema is refused. SQLite keeps the version in user_version;
// PostgreSQL in schema_migrations, under an advisory lock, so several nodes
// may migrate at once: the first does the work, the others then find
// nothing to do.
func (db DB) Migrate(ctx context.Context, upTo int, after func(context.Context, Tx) error) error {
	migrations := Migrations()
	if upTo < 0 || upTo > len(migrations) {
		return fmt.Errorf("migrate: no schema version %d", upTo)
	}
	return db.InTx(ctx, func(tx Tx) error {
		version, err := schemaVersion(ctx, tx)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if version > len(migrations) {
			return fmt.Errorf("migrate: database schema version %d is newer than this warden (%d)", version, len(migrations))
		}
		for i := version; i < upTo; i++ {
			// Without arguments the PostgreSQL driver uses the simple
			// protocol, which allows several statements in one Exec.
			if _, err := tx.Exec(ctx, migrations[i].SQL(tx.Dialect)); err != nil {
				return fmt.Errorf("migrate to version %d (%s): %w", i+1, migrations[i].Name, err)
			}
			if tx.Dialect == Postgres {
				if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
					i+1, time.Now().UnixMilli()); err != nil {
					return fmt.Errorf("migrate to version %d: record version: %w", i+1, err)
				}
			}
		}
		if tx.Dialect == SQLite {
			if _, err := tx.Exec(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, max(version, upTo))); err != nil {
				return fmt.Errorf("migrate: set schema version: %w", err)
			}
		}
		if after != nil {
			return after(ctx, tx)
		}
		return nil
	})
}

// schemaVersion reads the schema version, in PostgreSQL after taking the
// migration lock and making sure schema_migrations exists.
func schemaVersion(ctx context.Context, tx Tx) (int, error) {
	var version int
	if tx.Dialect == SQLite {
		if err := tx.QueryRow(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
			return 0, fmt.Errorf("read schema version: %w", err)
		}
		return version, nil
	}
	if err := tx.Lock(ctx, migrateLock); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at BIGINT NOT NULL
	)`); err != nil {
		return 0, fmt.Errorf("create schema_migrations: %w", err)
	}
	if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&version); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return version, nil
}
