// Package sqlstore holds the store methods whose SQL both engines accept:
// store/sqlite and store/postgres embed a Store and add what only they do
// (telemetry, migration bookkeeping, their own locking). Statements are
// written once with ? placeholders; package database rebinds them and maps
// the dialects' differences.
package sqlstore

import (
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
