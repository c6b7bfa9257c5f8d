package postgres

// alarmTables are the tables of migrationAlarm, for Reset.
const alarmTables = `alarm_rules, alarms, notification_prefs, webhooks, escalations, deliveries, maintenance_plans, monitor_state, monitor_states`
