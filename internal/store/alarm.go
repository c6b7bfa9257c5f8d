package store

import (
	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/notify/notifystore"
)

// The alarm and notification model types are packages alarm's and
// notifystore's; these are their old names, kept until every user speaks
// the new ones.
type (
	// AlarmRule is alarm.StoredRule.
	AlarmRule = alarm.StoredRule
	// Alarm is alarm.Record.
	Alarm = alarm.Record
	// AlarmChange is alarm.Change.
	AlarmChange = alarm.Change
	// AlarmFilter is alarm.Filter.
	AlarmFilter = alarm.Filter
	// MaintenancePlan is alarm.MaintenancePlan.
	MaintenancePlan = alarm.MaintenancePlan

	// NotificationPrefs is notifystore.NotificationPrefs.
	NotificationPrefs = notifystore.NotificationPrefs
	// Webhook is notifystore.Webhook.
	Webhook = notifystore.Webhook
	// Escalation is notifystore.Escalation.
	Escalation = notifystore.Escalation
	// Delivery is notifystore.Delivery.
	Delivery = notifystore.Delivery
	// DeliveryFilter is notifystore.DeliveryFilter.
	DeliveryFilter = notifystore.DeliveryFilter
)

// Alarm states (alarm.StateActive, alarm.StateCleared).
const (
	AlarmActive  = alarm.StateActive
	AlarmCleared = alarm.StateCleared
)

// Alarm kinds (alarm.KindRule, alarm.KindMaintenance).
const (
	AlarmKindRule        = alarm.KindRule
	AlarmKindMaintenance = alarm.KindMaintenance
)

// Delivery states (notifystore's).
const (
	DeliveryPending = notifystore.DeliveryPending
	DeliverySent    = notifystore.DeliverySent
	DeliveryFailed  = notifystore.DeliveryFailed
)

// AlarmStore keeps alarm rules, alarms, notification settings, the
// notification outbox and the evaluator's state: alarm.Store and
// notifystore.Store. (Issue 6.)
type AlarmStore interface {
	alarm.Store
	notifystore.Store
}
