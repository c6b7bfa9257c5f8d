// Package identitysql keeps people's accounts, sessions, one-time links,
// failed sign-in counts and API tokens (identity.UserStore,
// identity.SignInStore and identity.TokenStore) in SQLite or PostgreSQL.
// Each statement is written once with ? placeholders; package database
// rebinds it and maps the dialects' differences.
package identitysql

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/identity"
)

// Store is the identity stores on a database.
type Store struct {
	db database.DB
}

var (
	_ identity.UserStore   = (*Store)(nil)
	_ identity.SignInStore = (*Store)(nil)
	_ identity.TokenStore  = (*Store)(nil)
)

// New returns a Store on db, a migrated database.
func New(db database.DB) *Store { return &Store{db: db} }

func (s *Store) filter() *database.Filter { return &database.Filter{Dialect: s.db.Dialect} }

func (s *Store) isUnique(err error) bool { return s.db.Dialect.IsUniqueViolation(err) }

func (s *Store) isForeignKey(err error) bool { return s.db.Dialect.IsForeignKeyViolation(err) }

// updateOne runs an UPDATE of one row and reports ErrNotFound if it
// matched none.
func (s *Store) updateOne(ctx context.Context, what, id, query string, args ...any) error {
	n, err := database.Affected(s.db.Exec(ctx, query, args...))
	if err != nil {
		return fmt.Errorf("update %s %q: %w", what, id, err)
	}
	if n == 0 {
		return fmt.Errorf("%s %q: %w", what, id, database.ErrNotFound)
	}
	return nil
}

// deleteOne runs a DELETE of one row and reports ErrNotFound if it matched
// none.
func (s *Store) deleteOne(ctx context.Context, what, id, query string, args ...any) error {
	n, err := database.Affected(s.db.Exec(ctx, query, args...))
	if err != nil {
		return fmt.Errorf("delete %s %q: %w", what, id, err)
	}
	if n == 0 {
		return fmt.Errorf("%s %q: %w", what, id, database.ErrNotFound)
	}
	return nil
}

// toJSON is v as a JSON TEXT column.
func toJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// fromJSON reads a JSON TEXT column into v; "" leaves v as it is.
func fromJSON(s string, v any) error {
	if s == "" {
		return nil
	}
	return json.Unmarshal([]byte(s), v)
}
