package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/warden-iot/warden/internal/store"
)

// SetDeviceModelID records the model id a device announced at connect.
func (s *Store) SetDeviceModelID(ctx context.Context, tenantID, deviceID, modelID string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE devices SET model_id = $1 WHERE tenant_id = $2 AND id = $3`, modelID, tenantID, deviceID)
	if err != nil {
		return fmt.Errorf("model id of %q: %w", deviceID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("device %q: %w", deviceID, store.ErrNotFound)
	}
	return nil
}

// DeviceModelID returns the model id a device last announced ("" if none).
func (s *Store) DeviceModelID(ctx context.Context, tenantID, deviceID string) (string, error) {
	var id string
	err := s.pool.QueryRow(ctx, `SELECT model_id FROM devices WHERE tenant_id = $1 AND id = $2`, tenantID, deviceID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("device %q: %w", deviceID, store.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("model id of %q: %w", deviceID, err)
	}
	return id, nil
}
