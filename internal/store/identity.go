package store

import (
	"context"
	"time"

	"github.com/warden-iot/warden/internal/identity"
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

// Contact is a tenant's contact person.
type Contact struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
}

// Contract is a customer's contract and billing data: financial and
// contract data that supporters and the service desk never see.
type Contract struct {
	Number           string    `json:"number,omitempty"`
	Start            time.Time `json:"start,omitzero"`
	End              time.Time `json:"end,omitzero"`
	NoticeDays       int       `json:"noticeDays,omitempty"`
	BillingReference string    `json:"billingReference,omitempty"`
	Notes            string    `json:"notes,omitempty"`
}

// Site is an installation: a building or place with an address that
// holds devices. FactoryAccess is the owner's switch that lets the
// operator's service desk see the site's machines.
type Site struct {
	ID                     string
	TenantID               string
	Name                   string
	Address                Address
	FactoryAccess          bool
	FactoryAccessChangedAt time.Time // zero if never switched
	CreatedAt              time.Time
}

// SiteFilter selects sites. Zero fields do not filter; the result is the
// intersection of the non-zero ones, in id order.
type SiteFilter struct {
	TenantIDs     []string // sites of these tenants
	IDs           []string
	FactoryAccess bool // only sites with the switch on
}

// DeviceInfo is a device's descriptive metadata.
type DeviceInfo struct {
	SiteID              string // empty: not assigned to a site
	Name                string
	SerialNumber        string // serial or control-unit number, e.g. "P1234567"
	MeterNumber         string
	MeasurementLocation string
	InstallationPlace   string
	Model               string
	FirmwareVersion     string
}

// DeviceFilter selects devices. Zero fields do not filter; the result is
// the intersection of the non-zero ones, in id order.
type DeviceFilter struct {
	TenantIDs []string
	SiteIDs   []string
	IDs       []string
	Model     string
	After     string // only ids > After
	Limit     int    // 0: no limit
}

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
	SupporterUserID string
	SiteID          string
	DeviceID        string
	ActiveAt        time.Time // only grants Active at this time
}

// IdentityStore keeps what people may see: the tenant hierarchy beyond the
// basic tenant methods, sites, device metadata and grants. (Issue 5.)
// People, sessions and tokens are identity's stores.
type IdentityStore interface {
	// UpdateTenant replaces a tenant's name, address, contact and contract.
	UpdateTenant(ctx context.Context, t Tenant) error
	// TenantsUnder returns the tenant and all its descendants, in path order.
	TenantsUnder(ctx context.Context, id string) ([]Tenant, error)

	CreateSite(ctx context.Context, s Site) error
	GetSite(ctx context.Context, id string) (Site, error)
	ListSites(ctx context.Context, f SiteFilter) ([]Site, error)
	// UpdateSite replaces name and address.
	UpdateSite(ctx context.Context, s Site) error
	SetFactoryAccess(ctx context.Context, id string, on bool, at time.Time) error
	// DeleteSite removes a site; its devices stay, unassigned, and grants
	// on it are revoked (RevokedBy "site.delete").
	DeleteSite(ctx context.Context, id string, at time.Time) error

	// SetDeviceInfo replaces a device's metadata.
	SetDeviceInfo(ctx context.Context, tenantID, id string, info DeviceInfo) error
	FindDevices(ctx context.Context, f DeviceFilter) ([]Device, error)

	CreateGrant(ctx context.Context, g Grant) error
	GetGrant(ctx context.Context, id string) (Grant, error)
	ListGrants(ctx context.Context, f GrantFilter) ([]Grant, error)
	// RevokeGrant marks a grant revoked; revoking twice is ErrConflict.
	RevokeGrant(ctx context.Context, id, by string, at time.Time) error
}

// SignInFailure is identity.SignInFailure.
type SignInFailure = identity.SignInFailure

// SignInStore remembers the ids that may never be used again (the failed
// sign-in counts are identity.SignInStore's).
type SignInStore interface {
	// RetireID records that an id of a kind ("tenant") was used and its
	// owner deleted: it must never name anything new, so that nothing
	// keyed by it (the access log) passes to a newcomer.
	RetireID(ctx context.Context, kind, id string, at time.Time) error
	// IDRetired says whether RetireID was called for kind and id.
	IDRetired(ctx context.Context, kind, id string) (bool, error)
}
