// Package sqlstore holds the store methods whose SQL both engines accept:
// store/sqlite and store/postgres embed a Store and add what only they do
// (telemetry, migration bookkeeping, their own locking). Statements are
// written once with ? placeholders; package database rebinds them and maps
// the dialects' differences.
package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/keyring"
)

// Store runs the shared store methods on a database.
type Store struct {
	db     database.DB
	sealer keyring.Sealer // set once by SetSealer, before use
}

// New returns a Store on db.
func New(db database.DB) *Store { return &Store{db: db} }

// SetSealer sets what seals and opens machine data (sealing/seal.go). The
// engines call it from their own SetSealer.
func (s *Store) SetSealer(sl keyring.Sealer) { s.sealer = sl }

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

// ToJSON is v as a JSON TEXT column.
func ToJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// FromJSON reads a JSON TEXT column into v; "" leaves v as it is.
func FromJSON(s string, v any) error {
	if s == "" {
		return nil
	}
	return json.Unmarshal([]byte(s), v)
}
