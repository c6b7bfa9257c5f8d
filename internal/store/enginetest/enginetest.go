// Package enginetest gives a domain store's conformance suite a fresh,
// migrated database of each engine, so that the same suite runs on SQLite
// and on PostgreSQL (skipped, or failed with CI=true, when PostgreSQL is not
// reachable; see package pgtest), and the fixtures such suites share: a
// keyring, tenants, sites, devices, users, telemetry, alarms and
// registrations made in one call that fails the test when refused. Only
// tests and test suites import it.
package enginetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/postgres"
	"github.com/warden-iot/warden/internal/store/postgres/pgtest"
	"github.com/warden-iot/warden/internal/store/sqlite"
)

// Engine opens a fresh, migrated database: its engine (for what only the
// engine does: migration, sealing passes, closing) and the database the
// domain stores run on. Both are closed when t ends.
type Engine struct {
	Name string
	Open func(t *testing.T) (store.Store, database.DB)
}

// Engines are SQLite (a file in t's temporary directory) and PostgreSQL (a
// throw-away database of the test server).
func Engines() []Engine {
	return []Engine{
		{Name: "sqlite", Open: func(t *testing.T) (store.Store, database.DB) {
			t.Helper()
			s := SQLite(t)
			return s, s.DB()
		}},
		{Name: "postgres", Open: func(t *testing.T) (store.Store, database.DB) {
			t.Helper()
			s := Postgres(t)
			return s, s.DB()
		}},
	}
}

// SQLite is a fresh, migrated SQLite engine on a file in t's temporary
// directory, closed when t ends.
func SQLite(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	return migrated(t, s)
}

// Postgres is a fresh, migrated PostgreSQL engine on a throw-away database
// of the test server (see package pgtest), closed when t ends.
func Postgres(t *testing.T) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	return migrated(t, s)
}

// migrated closes s when t ends and migrates it.
func migrated[S interface {
	Close() error
	Migrate(ctx context.Context) error
}](t *testing.T, s S) S {
	t.Helper()
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

// Run runs suite once per engine, as subtests named after them.
func Run(t *testing.T, suite func(t *testing.T, open func(t *testing.T) (store.Store, database.DB))) {
	for _, e := range Engines() {
		t.Run(e.Name, func(t *testing.T) { suite(t, e.Open) })
	}
}

// Test is one test of a domain store's conformance suite: its name and
// what it checks on the engine (for prerequisites from other domains) and
// the store under test.
type Test[S any] struct {
	Name string
	Fn   func(t *testing.T, e store.Store, s S)
}

// RunTests runs tests on each engine (Run), each on a fresh database
// whose engine has a keyring (WithKeyring) and with the store under test
// made by newStore on that database. A store that seals (it has a
// SetSealer) is given the keyring, as the engine's SetSealer gives it to
// the stores it embeds.
func RunTests[S any](t *testing.T, newStore func(db database.DB) S, tests []Test[S]) {
	Run(t, func(t *testing.T, open func(t *testing.T) (store.Store, database.DB)) {
		for _, tc := range tests {
			t.Run(tc.Name, func(t *testing.T) {
				e, db := open(t)
				kr := WithKeyring(t, e)
				s := newStore(db)
				if sl, ok := any(s).(interface{ SetSealer(keyring.Sealer) }); ok {
					sl.SetSealer(kr)
				}
				tc.Fn(t, e, s)
			})
		}
	})
}
