package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/warden-iot/warden/internal/store"
)

// migrationSignInFailures counts failed sign-ins per address (known or
// not), and migrationRetiredIDs keeps the ids of deleted tenants (those
// of tenants deleted before it are found in the audit trail).
const (
	migrationSignInFailures = `CREATE TABLE sign_in_failures (
		key          BLOB PRIMARY KEY,
		failures     INTEGER NOT NULL,
		last_at      INTEGER NOT NULL,
		locked_until INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX sign_in_failures_last ON sign_in_failures(last_at);`
	migrationRetiredIDs = `CREATE TABLE retired_ids (
		kind       TEXT NOT NULL,
		id         TEXT NOT NULL,
		retired_at INTEGER NOT NULL,
		PRIMARY KEY (kind, id)
	);
	` + backfillRetiredTenants
	// backfillRetiredTenants retires the ids of tenants deleted before
	// retired_ids existed: every tenant the audit trail names that is gone.
	backfillRetiredTenants = `INSERT OR IGNORE INTO retired_ids (kind, id, retired_at)
		SELECT 'tenant', id, 0 FROM (
			SELECT owner_tenant_id AS id FROM audit_log WHERE owner_tenant_id <> ''
			UNION SELECT tenant_id FROM audit_log WHERE tenant_id <> ''
		) WHERE id NOT IN (SELECT id FROM tenants);`
)

// SignInFailures returns a key's count of failed sign-ins.
func (s *Store) SignInFailures(ctx context.Context, key []byte) (store.SignInFailure, error) {
	var f store.SignInFailure
	var last, locked int64
	err := s.r.QueryRowContext(ctx, `SELECT failures, last_at, locked_until FROM sign_in_failures WHERE key = ?`, key).
		Scan(&f.Failures, &last, &locked)
	if errors.Is(err, sql.ErrNoRows) {
		return store.SignInFailure{}, nil
	}
	if err != nil {
		return f, fmt.Errorf("sign-in failures: %w", err)
	}
	f.LastAt, f.LockedUntil = optTime(last), optTime(locked)
	return f, nil
}

// AddSignInFailure counts a failure, locks at max, and drops quiet counts.
func (s *Store) AddSignInFailure(ctx context.Context, key []byte, at time.Time, window time.Duration, max int, lockFor time.Duration) (store.SignInFailure, error) {
	now, stale := at.UnixMilli(), at.Add(-window).UnixMilli()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return store.SignInFailure{}, fmt.Errorf("add sign-in failure: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM sign_in_failures WHERE last_at <= ? AND locked_until <= ?`, stale, now); err != nil {
		return store.SignInFailure{}, fmt.Errorf("add sign-in failure: forget quiet counts: %w", err)
	}
	var f store.SignInFailure
	var last, locked int64
	err = tx.QueryRowContext(ctx, `INSERT INTO sign_in_failures (key, failures, last_at, locked_until)
		VALUES (?, CASE WHEN ? <= 1 THEN 0 ELSE 1 END, ?, CASE WHEN ? <= 1 THEN ? ELSE 0 END)
		ON CONFLICT (key) DO UPDATE SET
			failures = CASE WHEN failures + 1 >= ? THEN 0 ELSE failures + 1 END,
			locked_until = CASE WHEN failures + 1 >= ? THEN ? ELSE locked_until END,
			last_at = excluded.last_at
		RETURNING failures, last_at, locked_until`,
		key, max, now, max, at.Add(lockFor).UnixMilli(), max, max, at.Add(lockFor).UnixMilli()).Scan(&f.Failures, &last, &locked)
	if err != nil {
		return store.SignInFailure{}, fmt.Errorf("add sign-in failure: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return store.SignInFailure{}, fmt.Errorf("add sign-in failure: %w", err)
	}
	f.LastAt, f.LockedUntil = optTime(last), optTime(locked)
	return f, nil
}

// ClearSignInFailures forgets a key's count and lock.
func (s *Store) ClearSignInFailures(ctx context.Context, key []byte) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM sign_in_failures WHERE key = ?`, key); err != nil {
		return fmt.Errorf("clear sign-in failures: %w", err)
	}
	return nil
}

// RetireID keeps an id from being used again.
func (s *Store) RetireID(ctx context.Context, kind, id string, at time.Time) error {
	if _, err := s.w.ExecContext(ctx, `INSERT INTO retired_ids (kind, id, retired_at) VALUES (?, ?, ?)
		ON CONFLICT (kind, id) DO NOTHING`, kind, id, at.UnixMilli()); err != nil {
		return fmt.Errorf("retire %s id %q: %w", kind, id, err)
	}
	return nil
}

// IDRetired says whether an id was retired.
func (s *Store) IDRetired(ctx context.Context, kind, id string) (bool, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM retired_ids WHERE kind = ? AND id = ?`, kind, id).Scan(&n); err != nil {
		return false, fmt.Errorf("is %s id %q retired: %w", kind, id, err)
	}
	return n > 0, nil
}
