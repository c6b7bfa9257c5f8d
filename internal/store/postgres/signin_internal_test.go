package postgres

import (
	"testing"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/store/postgres/pgtest"
	"github.com/warden-iot/warden/internal/store/storetest"
)

// TestBackfillRetiredTenants: on upgrade, every tenant the audit trail
// names that no longer exists is retired.
func TestBackfillRetiredTenants(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// Run the migration that creates retired_ids (and backfills it) again.
	v, err := database.MigrationVersion("retired_ids")
	if err != nil {
		t.Fatal(err)
	}
	retiredIDs := database.Migrations()[v-1]
	storetest.BackfillRetiredTenants(t, s, func() error {
		_, err := s.pool.Exec(ctx, `DROP TABLE retired_ids`)
		if err == nil {
			_, err = s.pool.Exec(ctx, retiredIDs.SQL(database.Postgres))
		}
		return err
	})
}
