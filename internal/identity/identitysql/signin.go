package identitysql

import (
	"context"
	"fmt"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/identity"
)

// CreateUserToken stores a one-time token in place of the user's token of
// the same purpose, if any.
func (s *Store) CreateUserToken(ctx context.Context, t identity.UserToken) error {
	_, err := s.db.Exec(ctx, `INSERT INTO user_tokens (hash, user_id, purpose, created_at, expires_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (user_id, purpose) DO UPDATE SET hash = excluded.hash, created_at = excluded.created_at,
			expires_at = excluded.expires_at`,
		t.Hash, t.UserID, t.Purpose, database.Millis(t.CreatedAt), database.Millis(t.ExpiresAt))
	switch {
	case s.isUnique(err):
		return fmt.Errorf("user token: %w", database.ErrConflict)
	case s.isForeignKey(err):
		return fmt.Errorf("user %q: %w", t.UserID, database.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create user token: %w", err)
	}
	return nil
}

// ConsumeUserToken deletes and returns a token in one statement, so it
// can be used once. A token whose expiry is not after now is not found
// (and stays until replaced or its user goes).
func (s *Store) ConsumeUserToken(ctx context.Context, hash []byte, purpose string, now time.Time) (identity.UserToken, error) {
	t := identity.UserToken{Purpose: purpose}
	var created, expires int64
	err := s.db.Primary().QueryRow(ctx, `DELETE FROM user_tokens WHERE hash = ? AND purpose = ? AND expires_at > ?
		RETURNING hash, user_id, created_at, expires_at`, hash, purpose, now.UnixMilli()).
		Scan(&t.Hash, &t.UserID, &created, &expires)
	if database.NoRows(err) {
		return identity.UserToken{}, fmt.Errorf("%s token: %w", purpose, database.ErrNotFound)
	}
	if err != nil {
		return identity.UserToken{}, fmt.Errorf("consume %s token: %w", purpose, err)
	}
	t.CreatedAt, t.ExpiresAt = database.Time(created), database.Time(expires)
	return t, nil
}

// PurgeExpired deletes expired sessions and one-time tokens.
func (s *Store) PurgeExpired(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	for _, q := range []string{`DELETE FROM sessions WHERE expires_at <= ?`, `DELETE FROM user_tokens WHERE expires_at <= ?`} {
		m, err := database.Affected(s.db.Exec(ctx, q, now.UnixMilli()))
		if err != nil {
			return n, fmt.Errorf("purge expired: %w", err)
		}
		n += m
	}
	return n, nil
}

// SignInFailures returns a key's count of failed sign-ins.
func (s *Store) SignInFailures(ctx context.Context, key []byte) (identity.SignInFailure, error) {
	var f identity.SignInFailure
	var last, locked int64
	err := s.db.QueryRow(ctx, `SELECT failures, last_at, locked_until FROM sign_in_failures WHERE key = ?`, key).
		Scan(&f.Failures, &last, &locked)
	if database.NoRows(err) {
		return identity.SignInFailure{}, nil
	}
	if err != nil {
		return f, fmt.Errorf("sign-in failures: %w", err)
	}
	f.LastAt, f.LockedUntil = database.Time(last), database.Time(locked)
	return f, nil
}

// AddSignInFailure counts a failure, locks at max, and drops quiet counts,
// in one transaction: concurrent failures of one key are each counted once
// (the upsert takes the row's lock).
func (s *Store) AddSignInFailure(ctx context.Context, key []byte, at time.Time, window time.Duration, max int, lockFor time.Duration) (identity.SignInFailure, error) {
	now, stale, until := at.UnixMilli(), at.Add(-window).UnixMilli(), at.Add(lockFor).UnixMilli()
	d := s.db.Dialect
	maxP, msP := d.Param("int"), d.Param("bigint")
	var f identity.SignInFailure
	var last, locked int64
	err := s.db.InTx(ctx, func(tx database.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM sign_in_failures WHERE last_at <= ? AND locked_until <= ?`, stale, now); err != nil {
			return fmt.Errorf("forget quiet counts: %w", err)
		}
		return tx.QueryRow(ctx, `INSERT INTO sign_in_failures AS f (key, failures, last_at, locked_until)
			VALUES (?, CASE WHEN `+maxP+` <= 1 THEN 0 ELSE 1 END, `+msP+`, CASE WHEN `+maxP+` <= 1 THEN `+msP+` ELSE 0 END)
			ON CONFLICT (key) DO UPDATE SET
				failures = CASE WHEN f.failures + 1 >= `+maxP+` THEN 0 ELSE f.failures + 1 END,
				locked_until = CASE WHEN f.failures + 1 >= `+maxP+` THEN `+msP+` ELSE f.locked_until END,
				last_at = excluded.last_at
			RETURNING failures, last_at, locked_until`,
			key, max, now, max, until, max, max, until).Scan(&f.Failures, &last, &locked)
	})
	if err != nil {
		return identity.SignInFailure{}, fmt.Errorf("add sign-in failure: %w", err)
	}
	f.LastAt, f.LockedUntil = database.Time(last), database.Time(locked)
	return f, nil
}

// ClearSignInFailures forgets a key's count and lock.
func (s *Store) ClearSignInFailures(ctx context.Context, key []byte) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM sign_in_failures WHERE key = ?`, key); err != nil {
		return fmt.Errorf("clear sign-in failures: %w", err)
	}
	return nil
}
