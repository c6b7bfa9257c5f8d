// Package access is Warden's one authorisation point: Decide says whether
// a subject (a signed-in user or an API token) may take an action on a
// resource. It is pure: the API gathers the facts (the resource's tenant
// path, its site's factory-access switch, the supporter's active grants)
// and every request goes through Decide. Grants gives and revokes the
// supporters' grants (kept by a GrantStore) and publishes those facts.
//
// The rules, in short:
//   - Customers (customer-admin, customer-user) act in their own tenant and
//     its sub-tenants, never in a parent or a sibling.
//   - Supporters see only the sites and devices an owner granted them; a
//     grant ends when it is revoked or expires.
//   - The operator (operator-admin) administers every tenant, site, device
//     and account, but a customer's machine data (telemetry, twins,
//     messages, commands, a token to connect as the device) is open to
//     operator staff only while the owner's factory-service-access switch
//     of that device's site is on — for the service desk (operator-service)
//     that switch is the only way in. Whatever would reach the data beyond
//     the switch is never the operator's in a customer's tenant: device and
//     enrollment keys, rules, webhooks, escalation, delivery records.
//   - The operator onboards a customer: it makes the first accounts of a
//     customer tenant. Once a customer administrator of the tenant (or of
//     one above or below it) has activated their account, the customer's
//     accounts are the customer's: operator admins may still disable,
//     unlock and delete them (except such an administrator), but no longer
//     make accounts there, change roles, enable disabled accounts or send
//     activation links — each would let operator staff sign in as the
//     customer and read its machines beyond the switch.
//   - Only the owner turns that switch; supporters and the service desk
//     never see contract or financial data.
package access

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/tenancy"
)

// Kind is a kind of resource.
type Kind string

const (
	KindTenant     Kind = "tenant"
	KindSite       Kind = "site"
	KindDevice     Kind = "device"
	KindUser       Kind = "user"
	KindGrant      Kind = "grant"
	KindToken      Kind = "token"
	KindEnrollment Kind = "enrollment"
	KindAudit      Kind = "audit"
	KindAlarm      Kind = "alarm" // resource facts are the alarm's device's
	KindRule       Kind = "rule"
)

// Action is what a subject wants to do.
type Action string

// The actions. Reads are those whose name ends in ".read" or is ".data"
// (see Action.Read).
const (
	TenantRead     Action = "tenant.read"     // name, address, contact
	TenantContract Action = "tenant.contract" // contract and financial data
	TenantCreate   Action = "tenant.create"   // a sub-tenant below the resource
	TenantUpdate   Action = "tenant.update"
	TenantDelete   Action = "tenant.delete"

	SiteRead          Action = "site.read"
	SiteManage        Action = "site.manage" // create (in the resource tenant), update, delete
	SiteFactoryAccess Action = "site.factory-access"

	DeviceRead    Action = "device.read"    // registry data: id, status, site, metadata
	DeviceData    Action = "device.data"    // machine data: telemetry, twin, messages
	DeviceOperate Action = "device.operate" // desired properties, direct methods, C2D
	DeviceManage  Action = "device.manage"  // create, update, delete, replace keys
	// DeviceKeys is reading a device's keys and connection string: with
	// them anyone can be the device for ever, beyond any switch, so
	// operator staff never get those of a customer's device.
	DeviceKeys Action = "device.keys"
	// DeviceToken is making a SAS token to connect as the device. Operator
	// admins make one for a customer's device only while the owner's
	// switch is on; such a token is recorded and stops working when the
	// switch goes off (package factory).
	DeviceToken Action = "device.token"

	UserRead Action = "user.read"
	// UserManage is administering an existing account: names, phone,
	// address, disabling it, lifting a sign-in lock.
	UserManage Action = "user.manage"
	// UserCreate is making an account in the resource tenant.
	UserCreate Action = "user.create"
	// UserEntrust decides who holds an account and what it may do:
	// changing its role, enabling a disabled account, sending a new
	// activation link.
	UserEntrust Action = "user.entrust"
	// UserDelete is deleting an account.
	UserDelete Action = "user.delete"
	UserSelf   Action = "user.self" // one's own account, sessions and tokens

	GrantRead   Action = "grant.read"
	GrantManage Action = "grant.manage" // revoke, look up supporters
	// GrantCreate opens a customer's machines to a supporter: the owner's
	// decision, so operator admins may give it only for the operator's own
	// machines (they may revoke any grant).
	GrantCreate Action = "grant.create"

	EnrollmentRead   Action = "enrollment.read"
	EnrollmentManage Action = "enrollment.manage"

	AuditRead Action = "audit.read" // the trail of a tenant and its sub-tenants
	AuditAll  Action = "audit.all"  // the whole trail, every tenant

	// MetricsRead is the server's Prometheus metrics (counts, no device
	// data): the operator's staff only.
	MetricsRead Action = "metrics.read"

	// Alarms and maintenance of a device are machine data: reading them
	// follows device.data. Acknowledging is allowed to everyone who may
	// read them, customer users included; clearing by hand to those who
	// may operate the device.
	AlarmRead  Action = "alarm.read"
	AlarmAck   Action = "alarm.ack"
	AlarmClear Action = "alarm.clear"
	// Rules, maintenance plans, webhooks and escalation are a tenant's
	// configuration.
	RuleRead       Action = "rule.read"
	RuleManage     Action = "rule.manage"
	NotifyManage   Action = "notify.manage" // webhooks, escalation
	NotifyReadLogs Action = "notify.read"   // webhooks, deliveries and their failures
)

// Read says whether the action changes nothing.
func (a Action) Read() bool {
	s := string(a)
	return strings.HasSuffix(s, ".read") || a == DeviceData || a == TenantContract || a == AuditAll
}

// MetricsResource is what MetricsRead is decided on: the operator's tenant.
func MetricsResource() Resource {
	return Resource{Kind: KindTenant, ID: tenancy.RootTenantID, TenantID: tenancy.RootTenantID, TenantPath: tenancy.RootTenantID}
}

// asDevice maps the alarm actions to the device actions they follow.
func asDevice(a Action) Action {
	switch a {
	case AlarmRead:
		return DeviceData
	case AlarmClear:
		return DeviceOperate
	}
	return a
}

// Subject is who asks.
type Subject struct {
	UserID     string // empty for the operator's bootstrap token
	Name       string
	TenantID   string
	TenantPath string
	Role       identity.Role
	// Scopes limit an API token (identity.ScopeRead, identity.ScopeWrite);
	// empty means unlimited (a browser session).
	Scopes []string
	// Grants are the supporter's grants; only those active at the
	// decision time count.
	Grants []Grant
}

func (s Subject) hasScope(scope string) bool {
	if len(s.Scopes) == 0 {
		return true
	}
	for _, x := range s.Scopes {
		if x == scope {
			return true
		}
	}
	return false
}

// Resource is what is asked for, with the facts the decision needs.
type Resource struct {
	Kind       Kind
	ID         string
	TenantID   string // the owning tenant
	TenantPath string
	// SiteID is a device's site, or the site itself.
	SiteID string
	// FactoryAccess is the switch of that site.
	FactoryAccess bool
	// UserID is the account a user or token resource belongs to, or a
	// grant's supporter.
	UserID string
	// CustomerAdministered says a customer has taken its accounts over
	// from the operator: a customer administrator who has activated their
	// account (whether enabled or disabled now) exists in the resource's
	// tenant, in a customer tenant above it or in one below it — the
	// tenants an account made there would see, or whose admins see it.
	CustomerAdministered bool
	// ActivatedAdmin says a user resource is such a customer
	// administrator.
	ActivatedAdmin bool
}

// ErrDenied is wrapped by every refusal.
var ErrDenied = errors.New("access denied")

func deny(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrDenied, fmt.Sprintf(format, args...))
}

// Within says whether path is the tenant at base or below it.
func Within(path, base string) bool {
	return path == base || strings.HasPrefix(path, base+"/")
}

// Decide returns nil if s may take act on r at time now, and an error
// wrapping ErrDenied that says why not.
func Decide(s Subject, act Action, r Resource, now time.Time) error {
	if !act.Read() && !s.hasScope(identity.ScopeWrite) {
		return deny("the token's scopes do not allow changes")
	}
	if act.Read() && !s.hasScope(identity.ScopeRead) {
		return deny("the token's scopes do not allow reading")
	}
	if act == UserSelf {
		if s.UserID != "" && r.UserID == s.UserID {
			return nil
		}
		return deny("not your account")
	}
	if r.TenantPath == "" {
		return deny("resource without a tenant")
	}
	if act == AlarmAck {
		// Acknowledging says "I have seen it": whoever may read the
		// alarm may, and it needs the write scope.
		return Decide(s, DeviceData, r, now)
	}
	act = asDevice(act)
	switch s.Role {
	case identity.RoleOperatorAdmin:
		return operatorAdmin(s, act, r)
	case identity.RoleOperatorService:
		return serviceDesk(s, act, r)
	case identity.RoleCustomerAdmin:
		return customerAdmin(s, act, r)
	case identity.RoleCustomerUser:
		return customerUser(s, act, r)
	case identity.RoleSupporter:
		return supporter(s, act, r, now)
	}
	return deny("unknown role %q", s.Role)
}

func inRoot(r Resource) bool { return r.TenantID == tenancy.RootTenantID }

func machineData(act Action) bool { return act == DeviceData || act == DeviceOperate }

// ownersOnly are the actions in a customer's tenant that the operator's
// admins may not take whatever the switch says: each either hands out a
// lasting way to be one of the customer's devices (keys, enrollments) or
// forwards the customer's machine data to wherever its author chooses
// (rules, webhooks, escalation, their delivery records).
func ownersOnly(act Action) bool {
	switch act {
	case DeviceKeys, EnrollmentManage, RuleManage, NotifyManage, NotifyReadLogs:
		return true
	}
	return false
}

func operatorAdmin(s Subject, act Action, r Resource) error {
	if s.TenantID != tenancy.RootTenantID {
		return deny("operator roles belong to the operator's tenant")
	}
	switch {
	case act == SiteFactoryAccess && !inRoot(r):
		return deny("factory service access is the owner's switch")
	case act == GrantCreate && !inRoot(r):
		return deny("access to a customer's machines is the owner's to grant")
	case (machineData(act) || act == DeviceToken) && !inRoot(r) && !r.FactoryAccess:
		return deny("the owner has not switched on factory service access for this machine's site")
	case !inRoot(r) && ownersOnly(act):
		return deny("%s in a customer's tenant is the owner's: it would reach the machines' data beyond the factory service access switch", act)
	case !inRoot(r) && r.CustomerAdministered && (act == UserCreate || act == UserEntrust):
		return deny("the customer's administrator has taken over its accounts: making accounts, changing roles, enabling accounts and sending activation links there is the customer's; operator staff may disable, unlock and delete them")
	case !inRoot(r) && act == UserDelete && r.ActivatedAdmin:
		return deny("an activated customer administrator can be disabled, not deleted, by the operator: deleting the last one would give the customer's accounts back to the operator")
	case act == TenantDelete && r.ID == tenancy.RootTenantID:
		return deny("the operator's tenant cannot be deleted")
	}
	return nil
}

func serviceDesk(s Subject, act Action, r Resource) error {
	if s.TenantID != tenancy.RootTenantID {
		return deny("operator roles belong to the operator's tenant")
	}
	if inRoot(r) {
		switch act {
		case TenantRead, SiteRead, DeviceRead, DeviceData, DeviceOperate, UserRead, EnrollmentRead, MetricsRead:
			return nil
		}
		return deny("the service desk may not %s", act)
	}
	switch act {
	case SiteRead, DeviceRead, DeviceData, DeviceOperate:
		if r.FactoryAccess && (r.Kind == KindDevice || r.Kind == KindSite) {
			return nil
		}
		return deny("the owner has not switched on factory service access")
	}
	return deny("the service desk may not %s in a customer's tenant", act)
}

func customerAdmin(s Subject, act Action, r Resource) error {
	if s.TenantID == tenancy.RootTenantID {
		return deny("customer roles belong below the operator's tenant")
	}
	if !Within(r.TenantPath, s.TenantPath) {
		return deny("outside your tenant")
	}
	switch {
	case act == AuditAll:
		return deny("the whole audit trail is the operator's")
	case act == TenantDelete && r.ID == s.TenantID:
		return deny("a tenant cannot delete itself")
	}
	return nil
}

func customerUser(s Subject, act Action, r Resource) error {
	if s.TenantID == tenancy.RootTenantID {
		return deny("customer roles belong below the operator's tenant")
	}
	if !Within(r.TenantPath, s.TenantPath) {
		return deny("outside your tenant")
	}
	switch act {
	case TenantRead, TenantContract, SiteRead, DeviceRead, DeviceData, UserRead, GrantRead, RuleRead:
		return nil
	}
	return deny("customer users may read, not %s", act)
}

func supporter(s Subject, act Action, r Resource, now time.Time) error {
	switch act {
	case GrantRead:
		// A supporter sees the grants made to them (UserID is the
		// grantee), active or not.
		if r.Kind == KindGrant && s.UserID != "" && r.UserID == s.UserID {
			return nil
		}
		return deny("not a grant to you")
	case DeviceRead, DeviceData, DeviceOperate:
		if r.Kind != KindDevice {
			return deny("supporters see devices and sites only")
		}
	case SiteRead:
		if r.Kind != KindSite {
			return deny("supporters see devices and sites only")
		}
	default:
		return deny("supporters may not %s", act)
	}
	for _, g := range s.Grants {
		if g.SupporterUserID != s.UserID || !g.Active(now) {
			continue
		}
		if g.DeviceID != "" && r.Kind == KindDevice && g.DeviceID == r.ID {
			return nil
		}
		if g.SiteID != "" && r.SiteID == g.SiteID {
			return nil
		}
	}
	return deny("no active grant from the owner")
}

// CanAssign says whether s may give an account in the tenant at path the
// given role: operator roles only in the operator's tenant, customer roles
// only below it, supporters anywhere; customer admins hand out customer
// roles and supporter accounts in their own tenant and below.
func CanAssign(s Subject, role identity.Role, tenantID, tenantPath string) error {
	if !role.Valid() {
		return fmt.Errorf("unknown role %q", role)
	}
	root := tenantID == tenancy.RootTenantID
	switch role {
	case identity.RoleOperatorAdmin, identity.RoleOperatorService:
		if !root {
			return fmt.Errorf("role %s exists only in the operator's tenant", role)
		}
	case identity.RoleCustomerAdmin, identity.RoleCustomerUser:
		if root {
			return fmt.Errorf("role %s exists only in customers' tenants", role)
		}
	}
	switch s.Role {
	case identity.RoleOperatorAdmin:
		if s.TenantID == tenancy.RootTenantID {
			return nil
		}
	case identity.RoleCustomerAdmin:
		if role == identity.RoleOperatorAdmin || role == identity.RoleOperatorService {
			return deny("customer admins cannot make operator accounts")
		}
		if Within(tenantPath, s.TenantPath) && !root {
			return nil
		}
		return deny("outside your tenant")
	}
	return deny("your role cannot make accounts")
}
