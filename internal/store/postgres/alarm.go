package postgres

import (
	"github.com/jackc/pgx/v5"
)

// alarmTables are the tables of migrationAlarm, for Reset.
const alarmTables = `alarm_rules, alarms, notification_prefs, webhooks, escalations, deliveries, maintenance_plans, monitor_state, monitor_states`

// queueDeleteDeviceAlarms queues the deletion of a device's alarms and
// their deliveries, for DeleteDevice.
func queueDeleteDeviceAlarms(b *pgx.Batch, deviceID string) {
	b.Queue(`DELETE FROM deliveries WHERE alarm_id IN (SELECT id FROM alarms WHERE device_id = $1)`, deviceID)
	b.Queue(`DELETE FROM alarms WHERE device_id = $1`, deviceID)
}
