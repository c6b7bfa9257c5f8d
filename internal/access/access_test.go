package access

import (
	"errors"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/identity"
)

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func dev(tenant, path, site string, factory bool) Resource {
	return Resource{Kind: KindDevice, ID: "d-" + tenant, TenantID: tenant, TenantPath: path, SiteID: site, FactoryAccess: factory}
}

func TestDecideTenantTree(t *testing.T) {
	admin := Subject{UserID: "u1", TenantID: "a", TenantPath: "root/a", Role: identity.RoleCustomerAdmin}
	user := Subject{UserID: "u2", TenantID: "a", TenantPath: "root/a", Role: identity.RoleCustomerUser}
	cases := []struct {
		name string
		s    Subject
		act  Action
		r    Resource
		ok   bool
	}{
		{"admin reads own device", admin, DeviceData, dev("a", "root/a", "", false), true},
		{"admin writes sub-tenant device", admin, DeviceManage, dev("a1", "root/a/a1", "", false), true},
		{"admin reads parent", admin, DeviceRead, dev("root", "root", "", false), false},
		{"admin reads sibling", admin, DeviceRead, dev("b", "root/b", "", false), false},
		// "root/ab" starts with "root/a" but is not below it.
		{"admin reads prefix-named sibling", admin, DeviceRead, dev("ab", "root/ab", "", false), false},
		{"admin deletes own tenant", admin, TenantDelete, Resource{Kind: KindTenant, ID: "a", TenantID: "a", TenantPath: "root/a"}, false},
		{"admin deletes sub-tenant", admin, TenantDelete, Resource{Kind: KindTenant, ID: "a1", TenantID: "a1", TenantPath: "root/a/a1"}, true},
		{"admin whole audit", admin, AuditAll, Resource{Kind: KindAudit, TenantID: "a", TenantPath: "root/a"}, false},
		{"user reads", user, DeviceData, dev("a1", "root/a/a1", "", false), true},
		{"user operates", user, DeviceOperate, dev("a", "root/a", "", false), false},
		{"user manages users", user, UserManage, Resource{Kind: KindUser, ID: "x", TenantID: "a", TenantPath: "root/a"}, false},
		{"user flips switch", user, SiteFactoryAccess, Resource{Kind: KindSite, ID: "s", TenantID: "a", TenantPath: "root/a"}, false},
		{"customer role in root", Subject{TenantID: "root", TenantPath: "root", Role: identity.RoleCustomerAdmin}, DeviceRead, dev("root", "root", "", false), false},
		{"operator role below root", Subject{TenantID: "a", TenantPath: "root/a", Role: identity.RoleOperatorAdmin}, DeviceRead, dev("a", "root/a", "", false), false},
		{"unknown role", Subject{TenantID: "a", TenantPath: "root/a", Role: "god"}, DeviceRead, dev("a", "root/a", "", false), false},
		{"resource without tenant", admin, DeviceRead, Resource{Kind: KindDevice, ID: "x"}, false},
	}
	for _, c := range cases {
		err := Decide(c.s, c.act, c.r, now)
		if (err == nil) != c.ok {
			t.Errorf("%s: Decide = %v, want allowed=%v", c.name, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrDenied) {
			t.Errorf("%s: error %v does not wrap ErrDenied", c.name, err)
		}
	}
}

func TestDecideOperatorAndFactorySwitch(t *testing.T) {
	op := Subject{UserID: "o", TenantID: "root", TenantPath: "root", Role: identity.RoleOperatorAdmin}
	desk := Subject{UserID: "s", TenantID: "root", TenantPath: "root", Role: identity.RoleOperatorService}
	off, on := dev("a", "root/a", "s1", false), dev("a", "root/a", "s1", true)
	site := Resource{Kind: KindSite, ID: "s1", TenantID: "a", TenantPath: "root/a", SiteID: "s1"}
	for _, c := range []struct {
		name string
		s    Subject
		act  Action
		r    Resource
		ok   bool
	}{
		{"operator manages customer device", op, DeviceManage, off, true},
		{"operator reads machine data, switch off", op, DeviceData, off, false},
		{"operator reads machine data, switch on", op, DeviceData, on, true},
		{"operator flips the owner's switch", op, SiteFactoryAccess, site, false},
		{"operator grants a supporter a customer's site", op, GrantCreate, Resource{Kind: KindGrant, TenantID: "a", TenantPath: "root/a"}, false},
		{"operator revokes a grant", op, GrantManage, Resource{Kind: KindGrant, ID: "g", TenantID: "a", TenantPath: "root/a"}, true},
		{"operator grants on its own machines", op, GrantCreate, Resource{Kind: KindGrant, TenantID: "root", TenantPath: "root"}, true},
		{"operator reads contract", op, TenantContract, Resource{Kind: KindTenant, ID: "a", TenantID: "a", TenantPath: "root/a"}, true},
		{"operator reads customer keys, switch off", op, DeviceKeys, off, false},
		{"operator reads customer keys, switch on", op, DeviceKeys, on, false},
		{"operator reads own keys", op, DeviceKeys, dev("root", "root", "", false), true},
		{"operator makes a token, switch off", op, DeviceToken, off, false},
		{"operator makes a token, switch on", op, DeviceToken, on, true},
		{"operator enrolls in a customer's tenant", op, EnrollmentManage, Resource{Kind: KindEnrollment, TenantID: "a", TenantPath: "root/a"}, false},
		{"operator reads a customer's enrollments", op, EnrollmentRead, Resource{Kind: KindEnrollment, TenantID: "a", TenantPath: "root/a"}, true},
		{"operator makes a customer's rule", op, RuleManage, Resource{Kind: KindRule, TenantID: "a", TenantPath: "root/a"}, false},
		{"operator reads a customer's rule", op, RuleRead, Resource{Kind: KindRule, ID: "r", TenantID: "a", TenantPath: "root/a"}, true},
		{"operator makes its own rule", op, RuleManage, Resource{Kind: KindRule, TenantID: "root", TenantPath: "root"}, true},
		{"operator makes a customer's webhook", op, NotifyManage, Resource{Kind: KindTenant, ID: "a", TenantID: "a", TenantPath: "root/a"}, false},
		{"operator reads a customer's deliveries", op, NotifyReadLogs, Resource{Kind: KindTenant, ID: "a", TenantID: "a", TenantPath: "root/a"}, false},
		{"operator makes its own webhook", op, NotifyManage, Resource{Kind: KindTenant, ID: "root", TenantID: "root", TenantPath: "root"}, true},
		{"operator reads alarms, switch on", op, AlarmRead, on, true},
		{"operator reads alarms, switch off", op, AlarmRead, off, false},
		{"desk makes a token, switch on", desk, DeviceToken, on, false},
		{"desk reads keys, switch on", desk, DeviceKeys, on, false},
		{"desk reads machine data, switch off", desk, DeviceData, off, false},
		{"desk reads machine data, switch on", desk, DeviceData, on, true},
		{"desk operates, switch on", desk, DeviceOperate, on, true},
		{"desk manages device, switch on", desk, DeviceManage, on, false},
		{"desk reads customer tenant", desk, TenantRead, Resource{Kind: KindTenant, ID: "a", TenantID: "a", TenantPath: "root/a"}, false},
		{"desk reads contract", desk, TenantContract, Resource{Kind: KindTenant, ID: "a", TenantID: "a", TenantPath: "root/a"}, false},
		{"desk reads own tenant's device", desk, DeviceData, dev("root", "root", "", false), true},
		{"desk manages users", desk, UserManage, Resource{Kind: KindUser, ID: "u", TenantID: "root", TenantPath: "root"}, false},
	} {
		if err := Decide(c.s, c.act, c.r, now); (err == nil) != c.ok {
			t.Errorf("%s: Decide = %v, want allowed=%v", c.name, err, c.ok)
		}
	}
}

func TestDecideSupporterGrants(t *testing.T) {
	g := func(site, device string, exp, revoked time.Time) Grant {
		return Grant{ID: "g", TenantID: "a", SupporterUserID: "sup", SiteID: site, DeviceID: device, ExpiresAt: exp, RevokedAt: revoked}
	}
	var never time.Time
	d := dev("a", "root/a", "s1", false)
	for _, c := range []struct {
		name   string
		grants []Grant
		act    Action
		r      Resource
		ok     bool
	}{
		{"no grant", nil, DeviceData, d, false},
		{"device grant", []Grant{g("", d.ID, never, never)}, DeviceData, d, true},
		{"device grant, operate", []Grant{g("", d.ID, never, never)}, DeviceOperate, d, true},
		{"device grant, manage", []Grant{g("", d.ID, never, never)}, DeviceManage, d, false},
		{"site grant covers its device", []Grant{g("s1", "", never, never)}, DeviceData, d, true},
		{"site grant, other site", []Grant{g("s2", "", never, never)}, DeviceData, d, false},
		{"site grant reads site", []Grant{g("s1", "", never, never)}, SiteRead,
			Resource{Kind: KindSite, ID: "s1", TenantID: "a", TenantPath: "root/a", SiteID: "s1"}, true},
		{"device grant does not read its site", []Grant{g("", d.ID, never, never)}, SiteRead,
			Resource{Kind: KindSite, ID: "s1", TenantID: "a", TenantPath: "root/a", SiteID: "s1"}, false},
		{"revoked", []Grant{g("", d.ID, never, now.Add(-time.Second))}, DeviceData, d, false},
		{"expired", []Grant{g("", d.ID, now, never)}, DeviceData, d, false},
		{"expires later", []Grant{g("", d.ID, now.Add(time.Millisecond), never)}, DeviceData, d, true},
		{"someone else's grant", []Grant{{ID: "g", SupporterUserID: "other", DeviceID: d.ID}}, DeviceData, d, false},
		{"tenant read", []Grant{g("s1", "", never, never)}, TenantRead, Resource{Kind: KindTenant, ID: "a", TenantID: "a", TenantPath: "root/a"}, false},
		{"own grant read", nil, GrantRead, Resource{Kind: KindGrant, ID: "g", TenantID: "a", TenantPath: "root/a", UserID: "sup"}, true},
		{"other's grant read", nil, GrantRead, Resource{Kind: KindGrant, ID: "g", TenantID: "a", TenantPath: "root/a", UserID: "x"}, false},
	} {
		s := Subject{UserID: "sup", TenantID: "root", TenantPath: "root", Role: identity.RoleSupporter, Grants: c.grants}
		if err := Decide(s, c.act, c.r, now); (err == nil) != c.ok {
			t.Errorf("%s: Decide = %v, want allowed=%v", c.name, err, c.ok)
		}
	}
}

func TestDecideScopes(t *testing.T) {
	s := Subject{UserID: "u", TenantID: "a", TenantPath: "root/a", Role: identity.RoleCustomerAdmin, Scopes: []string{identity.ScopeRead}}
	d := dev("a", "root/a", "", false)
	if err := Decide(s, DeviceData, d, now); err != nil {
		t.Errorf("read scope cannot read: %v", err)
	}
	if err := Decide(s, DeviceOperate, d, now); err == nil {
		t.Error("read scope may operate")
	}
	s.Scopes = []string{identity.ScopeWrite}
	if err := Decide(s, DeviceData, d, now); err == nil {
		t.Error("write-only scope may read")
	}
}

func TestDecideSelf(t *testing.T) {
	s := Subject{UserID: "u", TenantID: "a", TenantPath: "root/a", Role: identity.RoleSupporter}
	if err := Decide(s, UserSelf, Resource{Kind: KindUser, UserID: "u"}, now); err != nil {
		t.Errorf("self: %v", err)
	}
	if err := Decide(s, UserSelf, Resource{Kind: KindUser, UserID: "v"}, now); err == nil {
		t.Error("another user's account as self")
	}
	if err := Decide(Subject{Role: identity.RoleOperatorAdmin, TenantID: "root", TenantPath: "root"}, UserSelf, Resource{Kind: KindUser}, now); err == nil {
		t.Error("a token without account has a self")
	}
}

func TestCanAssign(t *testing.T) {
	op := Subject{TenantID: "root", TenantPath: "root", Role: identity.RoleOperatorAdmin}
	ca := Subject{TenantID: "a", TenantPath: "root/a", Role: identity.RoleCustomerAdmin}
	cu := Subject{TenantID: "a", TenantPath: "root/a", Role: identity.RoleCustomerUser}
	for _, c := range []struct {
		name       string
		s          Subject
		role       identity.Role
		tenant     string
		path       string
		ok, denied bool
	}{
		{"operator makes customer admin", op, identity.RoleCustomerAdmin, "a", "root/a", true, false},
		{"operator makes service desk", op, identity.RoleOperatorService, "root", "root", true, false},
		{"operator role in a customer", op, identity.RoleOperatorAdmin, "a", "root/a", false, false},
		{"customer role in root", op, identity.RoleCustomerUser, "root", "root", false, false},
		{"supporter anywhere", op, identity.RoleSupporter, "root", "root", true, false},
		{"customer admin below", ca, identity.RoleCustomerUser, "a1", "root/a/a1", true, false},
		{"customer admin makes supporter", ca, identity.RoleSupporter, "a", "root/a", true, false},
		{"customer admin makes operator", ca, identity.RoleOperatorService, "root", "root", false, false},
		{"customer admin in sibling", ca, identity.RoleCustomerUser, "b", "root/b", false, true},
		{"customer user", cu, identity.RoleCustomerUser, "a", "root/a", false, true},
		{"unknown role", op, "root-of-all", "a", "root/a", false, false},
	} {
		err := CanAssign(c.s, c.role, c.tenant, c.path)
		if (err == nil) != c.ok {
			t.Errorf("%s: CanAssign = %v, want ok=%v", c.name, err, c.ok)
		}
		if c.denied && !errors.Is(err, ErrDenied) {
			t.Errorf("%s: %v is not a denial", c.name, err)
		}
	}
}

func TestDecideCustomerAccounts(t *testing.T) {
	op := Subject{UserID: "o", TenantID: "root", TenantPath: "root", Role: identity.RoleOperatorAdmin}
	desk := Subject{UserID: "s", TenantID: "root", TenantPath: "root", Role: identity.RoleOperatorService}
	ca := Subject{UserID: "c", TenantID: "a", TenantPath: "root/a", Role: identity.RoleCustomerAdmin}
	cu := Subject{UserID: "u", TenantID: "a", TenantPath: "root/a", Role: identity.RoleCustomerUser}
	onboarding := Resource{Kind: KindUser, TenantID: "a", TenantPath: "root/a"}
	takenOver := Resource{Kind: KindUser, TenantID: "a", TenantPath: "root/a", CustomerAdministered: true}
	account := func(r Resource, admin bool) Resource {
		r.ID, r.UserID, r.ActivatedAdmin = "x", "x", admin
		return r
	}
	rootUsers := Resource{Kind: KindUser, TenantID: "root", TenantPath: "root"}
	for _, c := range []struct {
		name string
		s    Subject
		act  Action
		r    Resource
		ok   bool
	}{
		// Onboarding: no customer administrator has taken over yet.
		{"operator makes the first account", op, UserCreate, onboarding, true},
		{"operator sends an activation link, onboarding", op, UserEntrust, account(onboarding, false), true},
		{"operator changes a role, onboarding", op, UserEntrust, account(onboarding, false), true},
		// After the customer's administrator has activated their account.
		{"operator makes an account, taken over", op, UserCreate, takenOver, false},
		{"operator entrusts an account, taken over", op, UserEntrust, account(takenOver, false), false},
		{"operator administers an account, taken over", op, UserManage, account(takenOver, false), true},
		{"operator reads an account, taken over", op, UserRead, account(takenOver, false), true},
		{"operator deletes a user, taken over", op, UserDelete, account(takenOver, false), true},
		{"operator deletes an activated admin", op, UserDelete, account(takenOver, true), false},
		{"operator disables an activated admin", op, UserManage, account(takenOver, true), true},
		// The operator's own tenant stays the operator's.
		{"operator makes staff", op, UserCreate, rootUsers, true},
		{"operator entrusts staff", op, UserEntrust, account(rootUsers, false), true},
		{"operator deletes staff", op, UserDelete, account(rootUsers, false), true},
		{"desk makes staff", desk, UserCreate, rootUsers, false},
		{"desk makes a customer account, onboarding", desk, UserCreate, onboarding, false},
		// Customers run their own accounts.
		{"customer admin makes an account", ca, UserCreate, takenOver, true},
		{"customer admin entrusts an account", ca, UserEntrust, account(takenOver, false), true},
		{"customer admin deletes an admin", ca, UserDelete, account(takenOver, true), true},
		{"customer admin makes an account in a sibling", ca, UserCreate, Resource{Kind: KindUser, TenantID: "b", TenantPath: "root/b"}, false},
		{"customer user makes an account", cu, UserCreate, takenOver, false},
		{"customer user entrusts an account", cu, UserEntrust, account(takenOver, false), false},
		{"customer user deletes an account", cu, UserDelete, account(takenOver, false), false},
	} {
		err := Decide(c.s, c.act, c.r, now)
		if (err == nil) != c.ok {
			t.Errorf("%s: Decide = %v, want allowed=%v", c.name, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrDenied) {
			t.Errorf("%s: %v is not a denial", c.name, err)
		}
	}
}
