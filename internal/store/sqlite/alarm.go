package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/warden-iot/warden/internal/alarm/alarmsql"
	"github.com/warden-iot/warden/internal/notify/notifysql"
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

// The domain stores an engine embeds, under names of their own (each
// package's type is called Store).
type (
	alarmStore  = alarmsql.Store
	notifyStore = notifysql.Store
)
