package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/tenancy"
)

// Migrate applies pending migrations and makes sure the root tenant exists,
// in one transaction.
func (s *Store) Migrate(ctx context.Context) error {
	return s.migrate(ctx, len(database.Migrations()))
}

// MigrateBeforeSealing brings a new database to the schema just before
// machine data was sealed, for tests of the upgrade from it.
func (s *Store) MigrateBeforeSealing(ctx context.Context) error {
	v, err := database.MigrationVersion("sealed")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return s.migrate(ctx, v-1)
}

func (s *Store) migrate(ctx context.Context, upTo int) error {
	return s.db.Migrate(ctx, upTo, func(ctx context.Context, tx database.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO tenants (id, parent_id, name, created_at, path) VALUES (?, NULL, 'Operator', ?, ?)
			ON CONFLICT (id) DO NOTHING`, tenancy.RootTenantID, time.Now().UnixMilli(), tenancy.RootTenantID); err != nil {
			return fmt.Errorf("migrate: create root tenant: %w", err)
		}
		return nil
	})
}
