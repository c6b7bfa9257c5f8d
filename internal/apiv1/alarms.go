package apiv1

import (
	"time"
)

// Alarm is the API view of an alarm: one occurrence of a rule's condition
// on a device, from raised to cleared.
type Alarm struct {
	ID         int64      `json:"id"`
	TenantID   string     `json:"tenantId"`
	RuleID     string     `json:"ruleId"`
	RuleName   string     `json:"ruleName,omitempty"`
	DeviceID   string     `json:"deviceId"`
	SiteID     string     `json:"siteId,omitempty"`
	Kind       string     `json:"kind"`
	Severity   string     `json:"severity"`
	Message    string     `json:"message"`
	Value      float64    `json:"value"`
	State      string     `json:"state"`
	RaisedAt   time.Time  `json:"raisedAt"`
	LastAt     time.Time  `json:"lastAt"`
	Retriggers int        `json:"retriggers"`
	AckedAt    *time.Time `json:"ackedAt,omitempty"`
	AckedBy    string     `json:"ackedBy,omitempty"`
	AckComment string     `json:"ackComment,omitempty"`
	Unreadable bool       `json:"unreadable,omitempty"` // its tenant's keys were destroyed
	ClearedAt  *time.Time `json:"clearedAt,omitempty"`
	ClearedBy  string     `json:"clearedBy,omitempty"`
}

// AlarmPage is the answer of GET /api/v1/alarms.
type AlarmPage struct {
	Alarms []Alarm `json:"alarms"`
	// Next is the "after" of the next page; 0 when this is the last.
	Next int64 `json:"next,omitempty"`
}
