package apiv1

import (
	"time"
)

// Grant is the API view of an owner's grant to a supporter.
type Grant struct {
	ID          string     `json:"id"`
	TenantID    string     `json:"tenantId"`
	SupporterID string     `json:"supporterId"`
	Supporter   string     `json:"supporter"` // name and company
	SiteID      string     `json:"siteId,omitempty"`
	DeviceID    string     `json:"deviceId,omitempty"`
	ExpiresAt   *time.Time `json:"expiresAt,omitempty"`
	CreatedBy   string     `json:"createdBy"`
	CreatedAt   time.Time  `json:"createdAt"`
	RevokedAt   *time.Time `json:"revokedAt,omitempty"`
	RevokedBy   string     `json:"revokedBy,omitempty"`
	// State is "active", "expired" or "revoked".
	State string `json:"state"`
}
