package access

import (
	"context"
	"time"
)

// Grant is an owner's permission for a supporter to see one site (and its
// devices) or one device; Decide takes the supporter's active grants. A
// revoked grant is kept, for the owner's record.
type Grant struct {
	ID              string
	TenantID        string // the granting (owner) tenant
	SupporterUserID string
	SiteID          string // exactly one of SiteID and DeviceID is set
	DeviceID        string
	ExpiresAt       time.Time // zero: until revoked
	CreatedBy       string
	CreatedAt       time.Time
	RevokedAt       time.Time // zero: not revoked
	RevokedBy       string
}

// Active says whether g is in force at t.
func (g Grant) Active(t time.Time) bool {
	return g.RevokedAt.IsZero() && (g.ExpiresAt.IsZero() || t.Before(g.ExpiresAt))
}

// GrantFilter selects grants. Zero fields do not filter.
type GrantFilter struct {
	TenantIDs       []string
	Under           string // grants of this tenant and the tenants below it
	SupporterUserID string
	SiteID          string
	DeviceID        string
	ActiveAt        time.Time // only grants Active at this time
}

// GrantStore keeps grants. Package accesssql implements it on both
// database engines.
type GrantStore interface {
	// CreateGrant stores a grant. Its site or device must be one of the
	// granting tenant's, and its supporter must exist: otherwise
	// ErrNotFound; a taken id is ErrConflict.
	CreateGrant(ctx context.Context, g Grant) error
	// GetGrant returns one grant (ErrNotFound if there is none).
	GetGrant(ctx context.Context, id string) (Grant, error)
	// ListGrants returns the grants matching f, oldest first; never nil.
	ListGrants(ctx context.Context, f GrantFilter) ([]Grant, error)
	// RevokeGrant marks a grant revoked; revoking twice is ErrConflict.
	RevokeGrant(ctx context.Context, id, by string, at time.Time) error
}
