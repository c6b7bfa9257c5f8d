package tsdbsqlite_test

import (
	"testing"

	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/enginetest"
	"github.com/warden-iot/warden/internal/tsdb/tsdbsqlite"
	"github.com/warden-iot/warden/internal/tsdb/tsdbstore"
	"github.com/warden-iot/warden/internal/tsdb/tsdbtest"
)

// TestStore runs the telemetry suite, each test on a fresh SQLite engine
// (see package enginetest) with a telemetry store of its own on the
// engine's database.
func TestStore(t *testing.T) {
	tsdbtest.Run(t, func(t *testing.T) (store.Store, tsdbstore.Store) {
		eng := enginetest.SQLite(t)
		return eng, tsdbsqlite.New(eng.DB())
	})
}
