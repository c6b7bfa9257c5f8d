package store

import (
	"context"
	"time"

	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/tenancy"
)

// Role is identity.Role.
type Role = identity.Role

// The roles (identity's).
const (
	RoleOperatorAdmin   = identity.RoleOperatorAdmin
	RoleOperatorService = identity.RoleOperatorService
	RoleCustomerAdmin   = identity.RoleCustomerAdmin
	RoleCustomerUser    = identity.RoleCustomerUser
	RoleSupporter       = identity.RoleSupporter
)

// Roles lists every role (identity.Roles).
var Roles = identity.Roles

// Address is tenancy.Address.
type Address = tenancy.Address

// Contact is a tenant's contact person (package tenancy).
type Contact = tenancy.Contact

// Contract is a customer's contract and billing data (package tenancy).
type Contract = tenancy.Contract

// Site is an installation that holds devices (package tenancy).
type Site = tenancy.Site

// SiteFilter selects sites (package tenancy).
type SiteFilter = tenancy.SiteFilter

// DeviceInfo is registry.DeviceInfo.
type DeviceInfo = registry.DeviceInfo

// DeviceFilter is registry.DeviceFilter.
type DeviceFilter = registry.DeviceFilter

// UserStatus is identity.UserStatus.
type UserStatus = identity.UserStatus

// The statuses of an account (identity's).
const (
	UserPending  = identity.UserPending
	UserActive   = identity.UserActive
	UserDisabled = identity.UserDisabled
)

// User is identity.User.
type User = identity.User

// Session is identity.Session.
type Session = identity.Session

// Purposes of one-time user tokens (identity's).
const (
	PurposeActivate = identity.PurposeActivate
	PurposeReset    = identity.PurposeReset
)

// UserToken is identity.UserToken.
type UserToken = identity.UserToken

// Grant is an owner's permission for a supporter to see one site (and its
// devices) or one device. A revoked grant is kept, for the owner's record.
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

// IdentityStore keeps the supporters' grants.
type IdentityStore interface {
	// The grant methods are access.GrantStore's (access/accesssql
	// implements them); they are listed here until Grant leaves store.
	CreateGrant(ctx context.Context, g Grant) error
	GetGrant(ctx context.Context, id string) (Grant, error)
	ListGrants(ctx context.Context, f GrantFilter) ([]Grant, error)
	// RevokeGrant marks a grant revoked; revoking twice is ErrConflict.
	RevokeGrant(ctx context.Context, id, by string, at time.Time) error
}

// SignInFailure is identity.SignInFailure.
type SignInFailure = identity.SignInFailure
