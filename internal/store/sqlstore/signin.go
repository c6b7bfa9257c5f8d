package sqlstore

import (
	"context"
	"fmt"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/store"
)

// SignInFailures returns a key's count of failed sign-ins.
func (s *Store) SignInFailures(ctx context.Context, key []byte) (store.SignInFailure, error) {
	var f store.SignInFailure
	var last, locked int64
	err := s.db.QueryRow(ctx, `SELECT failures, last_at, locked_until FROM sign_in_failures WHERE key = ?`, key).
		Scan(&f.Failures, &last, &locked)
	if database.NoRows(err) {
		return store.SignInFailure{}, nil
	}
	if err != nil {
		return f, fmt.Errorf("sign-in failures: %w", err)
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
