package alarm

import (
	"context"
	"encoding/json"
	"time"
)

// StoredRule is a tenant's alarm rule as stored. Spec is the Rule as JSON;
// the store keeps it opaque.
type StoredRule struct {
	ID        string
	TenantID  string
	Name      string
	Enabled   bool
	Spec      json.RawMessage
	CreatedBy string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// The states of a stored alarm (Record.State).
const (
	StateActive  = "active"
	StateCleared = "cleared"
)

// The kinds of a stored alarm (Record.Kind): from a rule, or a maintenance
// warning.
const (
	KindRule        = "rule"
	KindMaintenance = "maintenance"
)

// Record is one stored alarm: one occurrence of a rule's condition on a
// device, from raised to cleared. At most one alarm per (rule, device) is
// active.
type Record struct {
	ID         int64
	TenantID   string
	RuleID     string // for maintenance warnings: "maintenance:<kind>:<metric>"
	DeviceID   string
	SiteID     string // the device's site when raised
	Kind       string // KindRule or KindMaintenance
	Severity   string // "warning" or "critical"
	Message    string
	Value      float64
	State      string // StateActive or StateCleared
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

// Change is a transition to apply to the stored alarms.
type Change struct {
	Kind     string // "raised", "retriggered" or "cleared"
	TenantID string
	RuleID   string
	DeviceID string
	SiteID   string
	Alarm    string // KindRule or KindMaintenance
	Severity string
	Message  string
	Value    float64
	At       time.Time
	By       string // who cleared it; "auto" for the evaluator
}

// Filter selects stored alarms. Zero fields do not filter; nil slices do
// not filter, empty ones match nothing.
type Filter struct {
	TenantIDs []string
	DeviceIDs []string
	SiteIDs   []string
	// Under keeps the alarms of this tenant and the tenants below it
	// (found in the query by the tenants' paths).
	Under string
	// DeviceSiteIDs keeps the alarms of the devices now at these sites
	// (SiteIDs is the site an alarm was raised at).
	DeviceSiteIDs []string
	// FactoryAccess keeps the alarms of the devices now at a site whose
	// owner has switched the factory service access on.
	FactoryAccess bool
	RuleID        string
	State         string    // StateActive or StateCleared
	Severity      string    // "warning" or "critical"
	Since         time.Time // alarms still active at or raised after Since
	Until         time.Time // alarms raised before Until
	Unacked       bool      // only alarms not acknowledged
	After         int64     // only ids > After (paging)
	Limit         int       // 0: 1000
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

// Store keeps what the alarm runtime needs across restarts and what the
// API shows of it: alarm rules, the alarms they raised, maintenance plans
// and the evaluators' state. Messages, values, comments, plans and states
// are sealed with their tenant's key (see package store's Sealer); one
// that cannot be opened any more reads as empty (Record.Unreadable) or is
// left out. Missing rows are database.ErrNotFound, duplicates
// database.ErrConflict (wrapped).
type Store interface {
	CreateAlarmRule(ctx context.Context, r StoredRule) error
	GetAlarmRule(ctx context.Context, id string) (StoredRule, error)
	// ListAlarmRules lists rules of the given tenants (nil: all tenants).
	ListAlarmRules(ctx context.Context, tenantIDs []string) ([]StoredRule, error)
	// ListAlarmRulesUnder lists the rules of a tenant and the tenants
	// below it.
	ListAlarmRulesUnder(ctx context.Context, tenantID string) ([]StoredRule, error)
	UpdateAlarmRule(ctx context.Context, r StoredRule) error
	DeleteAlarmRule(ctx context.Context, id string) error

	// ApplyAlarmChanges applies transitions in one transaction, in order:
	// "raised" inserts an active alarm unless one is active for the rule
	// and device (then it counts as a retrigger); "retriggered" increments
	// the active alarm's count and LastAt; "cleared" clears it. It returns
	// the alarm each change touched (zero ID if none, e.g. a clear with no
	// active alarm).
	ApplyAlarmChanges(ctx context.Context, changes []Change) ([]Record, error)
	GetAlarm(ctx context.Context, id int64) (Record, error)
	ListAlarms(ctx context.Context, f Filter) ([]Record, error)
	// AckAlarm acknowledges an alarm (active or not); twice is ErrConflict.
	AckAlarm(ctx context.Context, id int64, by, comment string, at time.Time) (Record, error)

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
