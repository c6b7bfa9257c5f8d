package sqlstore

import (
	"context"
	"fmt"

	"github.com/warden-iot/warden/internal/database"
)

// SetDeviceModelID records the model id a device announced at connect.
func (s *Store) SetDeviceModelID(ctx context.Context, tenantID, deviceID, modelID string) error {
	res, err := s.db.Exec(ctx, `UPDATE devices SET model_id = ? WHERE tenant_id = ? AND id = ?`, modelID, tenantID, deviceID)
	if err != nil {
		return fmt.Errorf("model id of %q: %w", deviceID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("model id of %q: %w", deviceID, err)
	} else if n == 0 {
		return fmt.Errorf("device %q: %w", deviceID, database.ErrNotFound)
	}
	return nil
}

// DeviceModelID returns the model id a device last announced ("" if none).
func (s *Store) DeviceModelID(ctx context.Context, tenantID, deviceID string) (string, error) {
	var id string
	err := s.db.QueryRow(ctx, `SELECT model_id FROM devices WHERE tenant_id = ? AND id = ?`, tenantID, deviceID).Scan(&id)
	if database.NoRows(err) {
		return "", fmt.Errorf("device %q: %w", deviceID, database.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("model id of %q: %w", deviceID, err)
	}
	return id, nil
}
