package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/store"
)

// AddSignInFailure counts a failure, locks at max, and drops quiet counts.
func (s *Store) AddSignInFailure(ctx context.Context, key []byte, at time.Time, window time.Duration, max int, lockFor time.Duration) (store.SignInFailure, error) {
	now, stale, until := at.UnixMilli(), at.Add(-window).UnixMilli(), at.Add(lockFor).UnixMilli()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return store.SignInFailure{}, fmt.Errorf("add sign-in failure: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `DELETE FROM sign_in_failures WHERE last_at <= $1 AND locked_until <= $2`, stale, now); err != nil {
		return store.SignInFailure{}, fmt.Errorf("add sign-in failure: forget quiet counts: %w", err)
	}
	var f store.SignInFailure
	var last, locked int64
	err = tx.QueryRow(ctx, `INSERT INTO sign_in_failures AS f (key, failures, last_at, locked_until)
		VALUES ($1, CASE WHEN $2::int <= 1 THEN 0 ELSE 1 END, $3::bigint, CASE WHEN $2::int <= 1 THEN $4::bigint ELSE 0 END)
		ON CONFLICT (key) DO UPDATE SET
			failures = CASE WHEN f.failures + 1 >= $2::int THEN 0 ELSE f.failures + 1 END,
			locked_until = CASE WHEN f.failures + 1 >= $2::int THEN $4::bigint ELSE f.locked_until END,
			last_at = excluded.last_at
		RETURNING failures, last_at, locked_until`, key, int32(max), now, until).Scan(&f.Failures, &last, &locked)
	if err != nil {
		return store.SignInFailure{}, fmt.Errorf("add sign-in failure: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return store.SignInFailure{}, fmt.Errorf("add sign-in failure: %w", err)
	}
	f.LastAt, f.LockedUntil = database.Time(last), database.Time(locked)
	return f, nil
}
