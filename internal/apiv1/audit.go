package apiv1

import (
	"time"
)

// AuditEntry is an audit trail entry as the API shows it.
type AuditEntry struct {
	Seq            int64     `json:"seq"`
	At             time.Time `json:"at"`
	TenantID       string    `json:"tenantId"`
	ActorID        string    `json:"actorId"`
	ActorName      string    `json:"actorName,omitempty"`
	Action         string    `json:"action"`
	Target         string    `json:"target,omitempty"`
	OwnerTenantID  string    `json:"ownerTenantId,omitempty"`
	Outcome        string    `json:"outcome"`
	Status         int       `json:"status"`
	IP             string    `json:"ip"`
	UserAgent      string    `json:"userAgent,omitempty"`
	Browser        string    `json:"browser,omitempty"`
	BrowserVersion string    `json:"browserVersion,omitempty"`
	OS             string    `json:"os,omitempty"`
	PrevHash       string    `json:"prevHash"`
	Hash           string    `json:"hash"`
}

// AuditPage is the answer of GET /api/v1/audit.
type AuditPage struct {
	Entries []AuditEntry `json:"entries"`
	// Next is the "after" of the next page; 0 when this is the last.
	Next int64 `json:"next,omitempty"`
}
