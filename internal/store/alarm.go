package store

import (
	"context"
	"encoding/json"
	"time"
)

// AlarmRule is a tenant's alarm rule. Spec is the rule as package alarm
// defines it (JSON); the store keeps it opaque.
type AlarmRule struct {
	ID        string
	TenantID  string
	Name      string
	Enabled   bool
	Spec      json.RawMessage
	CreatedBy string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Alarm states.
const (
	AlarmActive  = "active"
	AlarmCleared = "cleared"
)

// Alarm kinds: from a rule, or a maintenance warning.
const (
	AlarmKindRule        = "rule"
	AlarmKindMaintenance = "maintenance"
)

// Alarm is one occurrence of a rule's condition on a device, from raised
// to cleared. At most one alarm per (rule, device) is active.
type Alarm struct {
	ID         int64
	TenantID   string
	RuleID     string // for maintenance warnings: "maintenance:<kind>:<metric>"
	DeviceID   string
	SiteID     string // the device's site when raised
	Kind       string // AlarmKindRule or AlarmKindMaintenance
	Severity   string // "warning" or "critical"
	Message    string
	Value      float64
	State      string // AlarmActive or AlarmCleared
	RaisedAt   time.Time
	LastAt     time.Time // the latest raise or retrigger
	Retriggers int
	AckedAt    time.Time // zero: not acknowledged
	AckedBy    string
	AckComment string
	ClearedAt  time.Time
	ClearedBy  string // "auto" when the condition ended, else who cleared it
	// Unreadable: the sealed message, value or comment cannot be opened
	// (the tenant's keys were destroyed); they read as empty.
	Unreadable bool
}

// AlarmChange is a transition to apply to the alarm table.
type AlarmChange struct {
	Kind     string // "raised", "retriggered" or "cleared"
	TenantID string
	RuleID   string
	DeviceID string
	SiteID   string
	Alarm    string // AlarmKindRule or AlarmKindMaintenance
	Severity string
	Message  string
	Value    float64
	At       time.Time
	By       string // who cleared it; "auto" for the evaluator
}

// AlarmFilter selects alarms. Zero fields do not filter; nil slices do not
// filter, empty ones match nothing.
type AlarmFilter struct {
	TenantIDs []string
	DeviceIDs []string
	SiteIDs   []string
	RuleID    string
	State     string    // AlarmActive or AlarmCleared
	Severity  string    // "warning" or "critical"
	Since     time.Time // alarms still active at or raised after Since
	Until     time.Time // alarms raised before Until
	Unacked   bool      // only alarms not acknowledged
	After     int64     // only ids > After (paging)
	Limit     int       // 0: 1000
}

// NotificationPrefs is what a user wants to be told about by e-mail.
type NotificationPrefs struct {
	UserID     string
	Email      bool     // e-mail at all
	Severities []string // empty: every severity
	SiteIDs    []string // empty: every site the user may see
}

// Webhook is a tenant's HTTP endpoint for alarm events, signed with
// HMAC-SHA256 over the body with Secret.
type Webhook struct {
	ID         string
	TenantID   string
	URL        string
	Secret     []byte
	Severities []string // empty: every severity
	Enabled    bool
	CreatedAt  time.Time
}

// Escalation sends an unacknowledged critical alarm of a tenant to a second
// recipient after Delay.
type Escalation struct {
	TenantID string
	Delay    time.Duration
	Email    string
}

// Delivery states.
const (
	DeliveryPending = "pending"
	DeliverySent    = "sent"
	DeliveryFailed  = "failed" // gave up after the last attempt
)

// Delivery is one notification in the outbox: an e-mail or a webhook call
// about an alarm, retried with backoff until sent or given up.
type Delivery struct {
	ID        int64
	TenantID  string
	AlarmID   int64
	Channel   string // "email" or "webhook"
	Target    string // e-mail address, or webhook id
	Event     string // "raised", "retriggered", "acknowledged", "cleared", "escalated"
	Payload   json.RawMessage
	State     string
	Attempts  int
	NextAt    time.Time
	LastError string
	CreatedAt time.Time
	SentAt    time.Time
	// Unreadable: the sealed payload or error cannot be opened (the
	// tenant's keys were destroyed); they read as empty.
	Unreadable bool
}

// DeliveryFilter selects deliveries.
type DeliveryFilter struct {
	TenantIDs []string
	AlarmID   int64
	State     string
	Limit     int // 0: 100
}

// MaintenancePlan is a tenant's maintenance configuration for a device
// model (service intervals, run counter source, wear trends, anomaly
// watches); Spec is package maintenance's JSON.
type MaintenancePlan struct {
	TenantID  string
	Model     string
	Spec      json.RawMessage
	UpdatedAt time.Time
}

// AlarmStore keeps alarm rules, alarms, notification settings, the
// notification outbox and the evaluator's state. (Issue 6.)
type AlarmStore interface {
	CreateAlarmRule(ctx context.Context, r AlarmRule) error
	GetAlarmRule(ctx context.Context, id string) (AlarmRule, error)
	// ListAlarmRules lists rules of the given tenants (nil: all tenants).
	ListAlarmRules(ctx context.Context, tenantIDs []string) ([]AlarmRule, error)
	UpdateAlarmRule(ctx context.Context, r AlarmRule) error
	DeleteAlarmRule(ctx context.Context, id string) error

	// ApplyAlarmChanges applies transitions in one transaction, in order:
	// "raised" inserts an active alarm unless one is active for the rule
	// and device (then it counts as a retrigger); "retriggered" increments
	// the active alarm's count and LastAt; "cleared" clears it. It returns
	// the alarm each change touched (zero ID if none, e.g. a clear with no
	// active alarm).
	ApplyAlarmChanges(ctx context.Context, changes []AlarmChange) ([]Alarm, error)
	GetAlarm(ctx context.Context, id int64) (Alarm, error)
	ListAlarms(ctx context.Context, f AlarmFilter) ([]Alarm, error)
	// AckAlarm acknowledges an alarm (active or not); twice is ErrConflict.
	AckAlarm(ctx context.Context, id int64, by, comment string, at time.Time) (Alarm, error)

	GetNotificationPrefs(ctx context.Context, userID string) (NotificationPrefs, error)
	SetNotificationPrefs(ctx context.Context, p NotificationPrefs) error
	CreateWebhook(ctx context.Context, w Webhook) error
	ListWebhooks(ctx context.Context, tenantIDs []string) ([]Webhook, error)
	DeleteWebhook(ctx context.Context, id string) error
	GetEscalation(ctx context.Context, tenantID string) (Escalation, error)
	SetEscalation(ctx context.Context, e Escalation) error // Delay 0 removes it

	EnqueueDeliveries(ctx context.Context, ds []Delivery) error
	// DueDeliveries returns up to limit pending deliveries with NextAt <= now.
	DueDeliveries(ctx context.Context, now time.Time, limit int) ([]Delivery, error)
	// UpdateDelivery stores a delivery's state, attempts, next time, error
	// and sent time.
	UpdateDelivery(ctx context.Context, d Delivery) error
	ListDeliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error)

	SetMaintenancePlan(ctx context.Context, p MaintenancePlan) error
	ListMaintenancePlans(ctx context.Context, tenantIDs []string) ([]MaintenancePlan, error)
	DeleteMaintenancePlan(ctx context.Context, tenantID, model string) error

	// SaveMonitorState replaces the alarm evaluator's state under a key:
	// one part per tenant, each sealed with its tenant's key. Tenants not
	// in byTenant lose their part.
	SaveMonitorState(ctx context.Context, key string, byTenant map[string][]byte) error
	// LoadMonitorState returns the parts stored under key, by tenant
	// (empty if none). A part that cannot be opened (its tenant's keys were
	// destroyed) is left out. A state saved before states were sealed
	// comes back whole under the tenant "".
	LoadMonitorState(ctx context.Context, key string) (map[string][]byte, error)
}
