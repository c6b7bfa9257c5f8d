package access

import (
	"context"
	"time"

	"github.com/warden-iot/warden/internal/store"
)

// Grant is an owner's permission for a supporter to see one site (and its
// devices) or one device; Decide takes the supporter's active grants. A
// revoked grant is kept, for the owner's record.
//
// Grant and GrantFilter are still declared in package store, which will
// alias them once roles have left store (access then need not import it).
type Grant = store.Grant

// GrantFilter selects grants. Zero fields do not filter.
type GrantFilter = store.GrantFilter

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
