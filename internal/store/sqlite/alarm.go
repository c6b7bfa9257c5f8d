package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// deleteDeviceAlarms deletes a device's alarms and their deliveries, for
// DeleteDevice.
func deleteDeviceAlarms(ctx context.Context, tx *sql.Tx, deviceID string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM deliveries WHERE alarm_id IN (SELECT id FROM alarms WHERE device_id = ?)`,
		deviceID); err != nil {
		return fmt.Errorf("delete device %q: deliveries: %w", deviceID, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM alarms WHERE device_id = ?`, deviceID); err != nil {
		return fmt.Errorf("delete device %q: alarms: %w", deviceID, err)
	}
	return nil
}
