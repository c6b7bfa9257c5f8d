package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/store"
)

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
