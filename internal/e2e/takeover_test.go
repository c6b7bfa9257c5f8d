package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/store/postgres/pgtest"
)

// TestFactorySwitchAccountTakeover is the operator's admin trying to get
// round the owner's switch by becoming the customer: making an account in
// the customer's tenant with an address the operator controls, or taking
// over one of the customer's accounts (a new activation link, a new role,
// enabling a disabled account, deleting the customer's administrator to
// start the onboarding again). The operator onboards a new customer — its
// first administrator, with the activation link — and administers accounts
// afterwards (disable, unlock); everything else is refused once the
// customer's administrator has taken over, and the owner sees every
// attempt in the access log.
func TestFactorySwitchAccountTakeover(t *testing.T) {
	t.Parallel()
	accountTakeover(t, start(t))
}

// TestFactorySwitchAccountTakeoverPostgres is the same on PostgreSQL.
func TestFactorySwitchAccountTakeoverPostgres(t *testing.T) {
	t.Parallel()
	accountTakeover(t, start(t, withDatabase(pgtest.URL(t))))
}

func accountTakeover(t *testing.T, e *env) {
	ctx := e.ctx()
	staff := signUp(t, e, e.api, "root", "operator-admin", "admin@maker.example").bearer
	if _, err := staff.CreateTenant(ctx, apiv1.NewTenant{ID: "acme", TenantPatch: apiv1.TenantPatch{Name: apiv1.Ptr("Acme Heating")}}); err != nil {
		t.Fatal(err)
	}
	site, err := staff.CreateSite(ctx, "acme", "Boiler house")
	if err != nil {
		t.Fatal(err)
	}
	if err := staff.Do(ctx, "POST", "/api/v1/devices", nil, map[string]any{"id": "pump-1", "tenantId": "acme",
		"siteId": site.ID, "model": "pellet-heater"}, nil); err != nil {
		t.Fatal(err)
	}
	refused := func(what string, err error) {
		t.Helper()
		if s := client.StatusOf(err); s != http.StatusForbidden {
			t.Errorf("%s: %v (status %d), want 403", what, err, s)
		}
	}

	// Onboarding: the operator makes the customer's accounts, and without
	// a mail server is handed the links to pass on.
	helper, err := staff.CreateUser(ctx, apiv1.NewUser{TenantID: "acme", Role: "customer-user", Email: "helper@acme.example", Profile: apiv1.Profile{FirstName: apiv1.Ptr("Hel"), LastName: apiv1.Ptr("Per")}})
	if err != nil || helper.ActivationLink == "" {
		t.Fatalf("onboarding: the operator makes a customer user: %+v, %v", helper, err)
	}
	if a, err := staff.ResendActivation(ctx, helper.ID); err != nil || a.Link == "" {
		t.Fatalf("onboarding: a new activation link: %+v, %v", a, err)
	}
	// The customer's first administrator, activated from the link the
	// operator was handed: from here on the accounts are the customer's.
	owner := signUp(t, e, staff, "acme", "customer-admin", "owner@acme.example")
	deputy := signUp(t, e, owner.bearer, "acme", "customer-admin", "deputy@acme.example")

	// Making an account in the customer's tenant, whatever its role, by
	// the admin and by the operator's bootstrap token.
	for _, role := range []string{"customer-admin", "customer-user", "supporter"} {
		for name, c := range map[string]*client.Client{"admin": staff, "bootstrap token": e.api} {
			u, err := c.CreateUser(ctx, apiv1.NewUser{TenantID: "acme", Role: role, Email: "evil-" + role + "@maker.example", Profile: apiv1.Profile{FirstName: apiv1.Ptr("Evil"), LastName: apiv1.Ptr(name)}})
			refused("operator "+name+" makes a "+role+" in the customer's tenant", err)
			if u.ActivationLink != "" {
				t.Errorf("operator %s was handed an activation link for a %s in the customer's tenant", name, role)
			}
		}
	}
	if _, _, err := e.api.Login(ctx, "evil-customer-admin@maker.example", testPassword, ""); client.StatusOf(err) != http.StatusUnauthorized {
		t.Errorf("signing in as the planted administrator: %v, want 401", err)
	}
	// A sub-tenant the operator makes below the customer belongs to the
	// customer: its administrators see it.
	if _, err := staff.CreateTenant(ctx, apiv1.NewTenant{ID: "acme-north", ParentID: "acme", TenantPatch: apiv1.TenantPatch{Name: apiv1.Ptr("Acme North")}}); err != nil {
		t.Fatal(err)
	}
	_, err = staff.CreateUser(ctx, apiv1.NewUser{TenantID: "acme-north", Role: "customer-admin", Email: "north@maker.example", Profile: apiv1.Profile{FirstName: apiv1.Ptr("Evil"), LastName: apiv1.Ptr("North")}})
	refused("operator makes an administrator of a sub-tenant below the customer", err)
	// A tenant above a customer's tenant would see it: a group whose
	// member has taken over is no longer onboarding either.
	if _, err := staff.CreateTenant(ctx, apiv1.NewTenant{ID: "group", TenantPatch: apiv1.TenantPatch{Name: apiv1.Ptr("Holding")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := staff.CreateTenant(ctx, apiv1.NewTenant{ID: "group-x", ParentID: "group", TenantPatch: apiv1.TenantPatch{Name: apiv1.Ptr("Member")}}); err != nil {
		t.Fatal(err)
	}
	signUp(t, e, staff, "group-x", "customer-admin", "boss@member.example")
	_, err = staff.CreateUser(ctx, apiv1.NewUser{TenantID: "group", Role: "customer-admin", Email: "group@maker.example", Profile: apiv1.Profile{FirstName: apiv1.Ptr("Evil"), LastName: apiv1.Ptr("Group")}})
	refused("operator makes an administrator above a customer who has taken over", err)

	// Taking over one of the customer's accounts.
	_, err = staff.ResendActivation(ctx, helper.ID)
	refused("operator gets a new activation link for the customer's pending account", err)
	_, err = staff.UpdateUser(ctx, helper.ID, apiv1.UserPatch{Role: apiv1.Ptr("customer-admin")})
	refused("operator makes the customer's user an administrator", err)
	_, err = staff.UpdateUser(ctx, deputy.user.ID, apiv1.UserPatch{Role: apiv1.Ptr("customer-user")})
	refused("operator demotes the customer's administrator", err)
	// Administration stays: disabling, unlocking, editing names.
	if u, err := staff.UpdateUser(ctx, helper.ID, apiv1.UserPatch{Status: apiv1.Ptr("disabled")}); err != nil || u.Status != "disabled" {
		t.Fatalf("operator disables a customer's account: %+v, %v", u, err)
	}
	_, err = staff.UpdateUser(ctx, helper.ID, apiv1.UserPatch{Status: apiv1.Ptr("active")})
	refused("operator enables the customer's disabled account", err)
	if _, err := staff.UpdateUser(ctx, owner.user.ID, apiv1.UserPatch{Unlock: true}); err != nil {
		t.Errorf("operator lifts a sign-in lock of a customer's account: %v", err)
	}
	if u, err := owner.bearer.UpdateUser(ctx, helper.ID, apiv1.UserPatch{Status: apiv1.Ptr("active")}); err != nil || u.Status != "pending" {
		t.Errorf("the owner enables its account again: %+v, %v", u, err)
	}
	// Deleting the customer's administrators would start the onboarding
	// again; disabling them does not.
	refused("operator deletes the customer's administrator", staff.DeleteUser(ctx, owner.user.ID))
	if u, err := staff.UpdateUser(ctx, owner.user.ID, apiv1.UserPatch{Status: apiv1.Ptr("disabled")}); err != nil || u.Status != "disabled" {
		t.Fatalf("operator disables the customer's administrator: %+v, %v", u, err)
	}
	if _, err := staff.UpdateUser(ctx, deputy.user.ID, apiv1.UserPatch{Status: apiv1.Ptr("disabled")}); err != nil {
		t.Fatal(err)
	}
	if _, err := deputy.bearer.Tokens(ctx); client.StatusOf(err) != http.StatusUnauthorized {
		t.Errorf("a disabled administrator's token still works: %v", err)
	}
	_, err = staff.CreateUser(ctx, apiv1.NewUser{TenantID: "acme", Role: "customer-admin", Email: "evil-again@maker.example", Profile: apiv1.Profile{FirstName: apiv1.Ptr("Evil"), LastName: apiv1.Ptr("Again")}})
	refused("operator makes an administrator while the customer's are disabled", err)
	_, err = staff.UpdateUser(ctx, owner.user.ID, apiv1.UserPatch{Status: apiv1.Ptr("active")})
	refused("operator enables the customer's administrator", err)
	// A password reset goes to the account's own address, never to the
	// caller.
	var reset map[string]any
	if err := e.api.Anonymous().Do(ctx, "POST", "/api/v1/auth/password-reset", nil, map[string]string{"email": "helper@acme.example"}, &reset); err != nil {
		t.Fatal(err)
	}
	for k, v := range reset {
		if s, _ := v.(string); strings.Contains(s, "token=") || k != "status" {
			t.Errorf("the password reset answer hands out %s=%v", k, v)
		}
	}
	// The operator cannot read the customer's machine without the switch.
	refused("operator reads the customer's machine", staff.Do(ctx, "GET", "/api/v1/devices/pump-1/telemetry/latest", nil, nil, nil))

	// The owner's access log (GET /api/v1/access-log?tenant=acme, the same
	// answer the owner gets; read by the operator here because the
	// customer's administrators are disabled now) holds every attempt.
	var log apiv1.AuditPage
	if err := e.api.Do(ctx, "GET", "/api/v1/access-log", url.Values{"tenant": {"acme"}, "outside": {"true"}, "limit": {"1000"}}, nil, &log); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, en := range log.Entries {
		if strings.HasPrefix(en.OwnerTenantID, "acme") && en.ActorName == "admin@maker.example" {
			count[en.Action+":"+en.Outcome]++
		}
	}
	for want, n := range map[string]int{
		"user.create:success":          2, // the helper and the owner (the deputy is the owner's)
		"user.create:denied":           5, // three roles, the sub-tenant, while the admins are disabled
		"user.activation.send:success": 1,
		"user.activation.send:denied":  1,
		"user.update:denied":           4, // two roles, two enables
		"user.update:success":          4, // disable the helper, unlock, disable both admins
		"user.delete:denied":           1,
	} {
		if count[want] != n {
			t.Errorf("the owner's access log has %d %s entries by the operator's admin, want %d (all: %v)", count[want], want, n, count)
		}
	}
}
