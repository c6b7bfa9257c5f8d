// Package enginetest gives a domain store's conformance suite a fresh,
// migrated database of each engine, so that the same suite runs on SQLite
// and on PostgreSQL (skipped, or failed with CI=true, when PostgreSQL is not
// reachable; see package pgtest).
package enginetest

import (
	"path/filepath"
	"testing"

	"github.com/warden-iot/warden/internal/database"
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
			s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "warden.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			if err := s.Migrate(t.Context()); err != nil {
				t.Fatal(err)
			}
			return s, s.DB()
		}},
		{Name: "postgres", Open: func(t *testing.T) (store.Store, database.DB) {
			t.Helper()
			s, err := postgres.Open(t.Context(), pgtest.URL(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			if err := s.Migrate(t.Context()); err != nil {
				t.Fatal(err)
			}
			return s, s.DB()
		}},
	}
}

// Run runs suite once per engine, as subtests named after them.
func Run(t *testing.T, suite func(t *testing.T, open func(t *testing.T) (store.Store, database.DB))) {
	for _, e := range Engines() {
		t.Run(e.Name, func(t *testing.T) { suite(t, e.Open) })
	}
}
