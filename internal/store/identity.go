package store

import (
	"context"
	"time"

	"github.com/warden-iot/warden/internal/registry"
)

// Role is what a user (and the API tokens acting for that user) may do;
// package access turns roles into decisions.
type Role string

// The roles. Operator roles exist only in the root tenant; customer roles
// only below it; supporters may belong to any tenant, and a supporter's
// own tenant gives them nothing: they see only what owners grant them.
const (
	RoleOperatorAdmin   Role = "operator-admin"
	RoleOperatorService Role = "operator-service" // the maker's central service desk
	RoleCustomerAdmin   Role = "customer-admin"
	RoleCustomerUser    Role = "customer-user" // read and acknowledge
	RoleSupporter       Role = "supporter"     // installer, technician, subcontractor
)

// Roles lists every role.
var Roles = []Role{RoleOperatorAdmin, RoleOperatorService, RoleCustomerAdmin, RoleCustomerUser, RoleSupporter}

// Valid says whether r is one of Roles.
func (r Role) Valid() bool {
	for _, x := range Roles {
		if r == x {
			return true
		}
	}
	return false
}

// Address is a postal address.
type Address struct {
	Street     string `json:"street,omitempty"`
	PostalCode string `json:"postalCode,omitempty"`
	City       string `json:"city,omitempty"`
	Country    string `json:"country,omitempty"`
}

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

// DeviceInfo is registry.DeviceInfo.
type DeviceInfo = registry.DeviceInfo

// DeviceFilter is registry.DeviceFilter.
type DeviceFilter = registry.DeviceFilter

// UserStatus is where an account is in its life.
type UserStatus string

const (
	UserPending  UserStatus = "pending" // created, not yet activated
	UserActive   UserStatus = "active"
	UserDisabled UserStatus = "disabled"
)

// User is a person's account. The e-mail address (lower case) is the user
// name and unique; so is a supporter's SupporterID.
type User struct {
	ID           string
	TenantID     string
	Email        string
	FirstName    string
	LastName     string
	Phone        string
	Company      string
	Address      Address
	Role         Role
	SupporterID  string // short public id, supporters only
	Status       UserStatus
	PasswordHash string // argon2id in PHC form; empty until activated
	// TOTPSecret is the sealed (tenant-key encrypted) TOTP secret; nil if
	// none. TOTPEnabled is set once a code confirmed it.
	TOTPSecret  []byte
	TOTPEnabled bool
	// FailedLogins and LockedUntil are the sign-in count and lock of the
	// account's address; they live in SignInStore (the API fills them in
	// for a view), the columns of the same name are no longer written.
	FailedLogins int
	LockedUntil  time.Time
	LastLoginAt  time.Time
	CreatedBy    string
	CreatedAt    time.Time
}

// Session is a signed-in browser. Only the SHA-256 of its cookie secret is
// stored.
type Session struct {
	ID         string
	UserID     string
	Hash       []byte
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
	IP         string
	UserAgent  string
}

// Purposes of one-time user tokens.
const (
	PurposeActivate = "activate"
	PurposeReset    = "reset"
)

// UserToken is a single-use link secret (activation, password reset);
// only its SHA-256 is stored.
type UserToken struct {
	Hash      []byte
	UserID    string
	Purpose   string
	CreatedAt time.Time
	ExpiresAt time.Time
}

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

// IdentityStore keeps people and what they may see: the tenant hierarchy
// beyond the basic tenant methods, sites, users, sessions, one-time
// tokens and grants (device metadata is package registry's). (Issue 5.)
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

	// CreateUser adds an account; a taken e-mail or supporter id is
	// ErrConflict.
	CreateUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, id string) (User, error)
	UserByEmail(ctx context.Context, email string) (User, error)
	UserBySupporterID(ctx context.Context, supporterID string) (User, error)
	ListUsers(ctx context.Context, tenantIDs []string) ([]User, error)
	// UpdateUser replaces names, phone, company, address, role and status.
	UpdateUser(ctx context.Context, u User) error
	// SetPassword stores a new password hash, activates a pending account
	// and clears failed logins and any lock.
	SetPassword(ctx context.Context, userID, hash string) error
	SetTOTP(ctx context.Context, userID string, secret []byte, enabled bool) error
	// UseTOTPStep records that the TOTP code of time step step was used;
	// a step not after the last one used is ErrConflict (a replayed code).
	UseTOTPStep(ctx context.Context, userID string, step int64) error
	// LoginSucceeded clears failures and any lock and records the time
	// (also used by an admin to lift a lock).
	LoginSucceeded(ctx context.Context, userID string, at time.Time) error
	// DeleteUser removes the account with its sessions, tokens, one-time
	// tokens and the grants made to it.
	DeleteUser(ctx context.Context, id string) error

	CreateSession(ctx context.Context, s Session) error
	SessionByHash(ctx context.Context, hash []byte) (Session, error)
	// TouchSession records activity and moves the expiry.
	TouchSession(ctx context.Context, id string, at, expires time.Time) error
	DeleteSession(ctx context.Context, id string) error
	DeleteUserSessions(ctx context.Context, userID string) error
	ListSessions(ctx context.Context, userID string) ([]Session, error)

	// CreateUserToken stores a one-time token, replacing any unused token
	// of the same user and purpose (an older link stops working).
	CreateUserToken(ctx context.Context, t UserToken) error
	// ConsumeUserToken deletes and returns the token with this hash and
	// purpose if it has not expired at now; otherwise ErrNotFound.
	ConsumeUserToken(ctx context.Context, hash []byte, purpose string, now time.Time) (UserToken, error)

	// PurgeExpired deletes sessions and one-time tokens that expired
	// before now, and returns how many.
	PurgeExpired(ctx context.Context, now time.Time) (int64, error)

	ListAPITokens(ctx context.Context, userID string) ([]APIToken, error)
	GetAPIToken(ctx context.Context, id string) (APIToken, error)
	DeleteAPIToken(ctx context.Context, id string) error
	// TouchAPIToken records when a token was last used.
	TouchAPIToken(ctx context.Context, id string, at time.Time) error

	CreateGrant(ctx context.Context, g Grant) error
	GetGrant(ctx context.Context, id string) (Grant, error)
	ListGrants(ctx context.Context, f GrantFilter) ([]Grant, error)
	// RevokeGrant marks a grant revoked; revoking twice is ErrConflict.
	RevokeGrant(ctx context.Context, id, by string, at time.Time) error
}

// SignInFailure is the count of failed sign-ins of one e-mail address,
// whether or not an account has it, so that an unknown address is slowed
// down and locked exactly like a known one (no answer tells them apart).
type SignInFailure struct {
	// Failures in a row, since the last success, lock or quiet window.
	Failures int
	// LastAt is the last failure.
	LastAt time.Time
	// LockedUntil is when a lock ends (zero: none).
	LockedUntil time.Time
}

// SignInStore counts failed sign-ins per address key (a hash of the
// normalised e-mail address) and remembers the ids that may never be used
// again.
type SignInStore interface {
	// SignInFailures returns the count of a key (zero if none).
	SignInFailures(ctx context.Context, key []byte) (SignInFailure, error)
	// AddSignInFailure counts a failed sign-in of key at at. A count whose
	// last failure is window or more before at (and which is not locked)
	// starts again; reaching max locks the key until at+lockFor and starts
	// the count again. Counts quiet for window whose lock is over are
	// dropped, so the table holds only the last window's addresses.
	AddSignInFailure(ctx context.Context, key []byte, at time.Time, window time.Duration, max int, lockFor time.Duration) (SignInFailure, error)
	// ClearSignInFailures forgets a key's count and lock (a success, an
	// admin's unlock, a new password).
	ClearSignInFailures(ctx context.Context, key []byte) error

	// RetireID records that an id of a kind ("tenant") was used and its
	// owner deleted: it must never name anything new, so that nothing
	// keyed by it (the access log) passes to a newcomer.
	RetireID(ctx context.Context, kind, id string, at time.Time) error
	// IDRetired says whether RetireID was called for kind and id.
	IDRetired(ctx context.Context, kind, id string) (bool, error)
}
