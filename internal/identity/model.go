package identity

import (
	"time"

	"github.com/warden-iot/warden/internal/tenancy"
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

// UserStatus is where an account is in its life.
type UserStatus string

// The statuses of an account.
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
	Address      tenancy.Address
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

// Token scopes. A token acts as its user (or, without one, with its own
// Role) but only within its scopes.
const (
	ScopeRead  = "read"  // every read the principal may do
	ScopeWrite = "write" // every change the principal may do
)

// APIToken is a bearer token for the HTTP API; only its SHA-256 is stored.
// UserID is the user it acts for; the operator's bootstrap token has none
// and carries its Role itself.
type APIToken struct {
	ID         string
	TenantID   string
	UserID     string
	Name       string
	Role       Role
	Scopes     []string // empty means every scope
	Hash       []byte
	CreatedAt  time.Time
	ExpiresAt  time.Time // zero: does not expire
	LastUsedAt time.Time
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
