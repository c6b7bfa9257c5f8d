package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/store"
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
	f.LastAt, f.LockedUntil = database.Time(last), database.Time(locked)
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
	f.LastAt, f.LockedUntil = database.Time(last), database.Time(locked)
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
