package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/store/storetest"
)

// TestBackfillRetiredTenants: on upgrade, every tenant the audit trail
// names that no longer exists is retired, so a tenant deleted before
// retired_ids existed cannot be made again with its id either.
func TestBackfillRetiredTenants(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "warden.db"))
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
		_, err := s.w.ExecContext(ctx, `DROP TABLE retired_ids`)
		if err == nil {
			_, err = s.w.ExecContext(ctx, retiredIDs.SQL(database.SQLite))
		}
		return err
	})
}
