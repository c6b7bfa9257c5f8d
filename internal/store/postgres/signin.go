package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/store"
)

// SignInFailures returns a key's count of failed sign-ins.
func (s *Store) SignInFailures(ctx context.Context, key []byte) (store.SignInFailure, error) {
	var f store.SignInFailure
	var last, locked int64
	err := s.pool.QueryRow(ctx, `SELECT failures, last_at, locked_until FROM sign_in_failures WHERE key = $1`, key).
		Scan(&f.Failures, &last, &locked)
	if errors.Is(err, pgx.ErrNoRows) {
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

// ClearSignInFailures forgets a key's count and lock.
func (s *Store) ClearSignInFailures(ctx context.Context, key []byte) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM sign_in_failures WHERE key = $1`, key); err != nil {
		return fmt.Errorf("clear sign-in failures: %w", err)
	}
	return nil
}

// RetireID keeps an id from being used again.
func (s *Store) RetireID(ctx context.Context, kind, id string, at time.Time) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO retired_ids (kind, id, retired_at) VALUES ($1, $2, $3)
		ON CONFLICT (kind, id) DO NOTHING`, kind, id, at.UnixMilli()); err != nil {
		return fmt.Errorf("retire %s id %q: %w", kind, id, err)
	}
	return nil
}

// IDRetired says whether an id was retired.
func (s *Store) IDRetired(ctx context.Context, kind, id string) (bool, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM retired_ids WHERE kind = $1 AND id = $2`, kind, id).Scan(&n); err != nil {
		return false, fmt.Errorf("is %s id %q retired: %w", kind, id, err)
	}
	return n > 0, nil
}
