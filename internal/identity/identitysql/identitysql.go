// Package identitysql keeps people's accounts, sessions, one-time links,
// failed sign-in counts and API tokens (identity.UserStore,
// identity.SignInStore and identity.TokenStore) in SQLite or PostgreSQL.
// Each statement is written once with ? placeholders; package database
// rebinds it and maps the dialects' differences.
package identitysql

import (
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
