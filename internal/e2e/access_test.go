package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/store/postgres/pgtest"
)

const testPassword = "correct horse battery staple"

// person is a signed-up account with a bearer-token client and a session.
type person struct {
	user    apiv1.User
	bearer  *client.Client
	session *client.Client
}

// signUp makes an account through admin, activates it from the link in the
// answer (no mail server is configured), signs in and makes an API token.
func signUp(t *testing.T, e *env, admin *client.Client, tenant, role, email string) person {
	t.Helper()
	u, err := admin.CreateUser(e.ctx(), apiv1.NewUser{TenantID: tenant, Role: role, Email: email, Profile: apiv1.Profile{FirstName: apiv1.Ptr("Test"), LastName: apiv1.Ptr(role), Company: apiv1.Ptr("Firma " + tenant)}})
	if err != nil {
		t.Fatalf("create %s %s in %s: %v", role, email, tenant, err)
	}
	if u.ActivationLink == "" || u.Status != "pending" {
		t.Fatalf("new user: link %q, status %q", u.ActivationLink, u.Status)
	}
	link, err := url.Parse(u.ActivationLink)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.api.Anonymous().Activate(e.ctx(), link.Query().Get("token"), testPassword); err != nil {
		t.Fatalf("activate %s: %v", email, err)
	}
	sc, s, err := e.api.Login(e.ctx(), email, testPassword, "")
	if err != nil {
		t.Fatalf("login %s: %v", email, err)
	}
	if s.User.Status != "active" || s.CSRFToken == "" {
		t.Fatalf("session: %+v", s)
	}
	tok, err := sc.CreateToken(e.ctx(), "matrix", nil, "")
	if err != nil {
		t.Fatalf("token for %s: %v", email, err)
	}
	return person{user: s.User, bearer: e.api.WithToken(tok.Token), session: sc}
}

// world is a tenant tree with a site, a device and a user in each tenant:
//
//	root ─┬─ A ── A1
//	      └─ B
//
// Factory service access is on for the sites of A1 and B, off for root's
// and A's. The supporter (an account of the operator's tenant) holds: an
// active grant on A's device, an active grant on A1's site, a revoked
// grant on B's device and an expired grant on B's site.
type world struct {
	e       *env
	tenants []string // root, A, A1, B
	site    map[string]string
	device  map[string]string
	user    map[string]string // a customer user (root: a service-desk user) per tenant
	grant   map[string]string // tenant → a grant made there
	spare   map[string]string // tenant → a second site, without devices, whose switch is on
	rule    map[string]string // tenant → an alarm rule its owner made
	group   string            // the id of an enrollment group each tenant's owner made
	pending map[string]string // tenant → an account its owner made, waiting for activation
	off     map[string]string // tenant → an account its owner made and disabled
	as      map[string]person // by role
	op      *client.Client    // the bootstrap operator token
	owner   map[string]*client.Client
}

func newWorld(t *testing.T, opts ...option) *world {
	t.Helper()
	e := start(t, append(opts, withFakeClock())...)
	ctx := e.ctx()
	w := &world{e: e, op: e.api, tenants: []string{"root", "A", "A1", "B"}, site: map[string]string{},
		device: map[string]string{}, user: map[string]string{}, grant: map[string]string{}, as: map[string]person{},
		spare: map[string]string{}, rule: map[string]string{}, group: "matrix-group",
		pending: map[string]string{}, off: map[string]string{}}
	for _, tn := range []struct{ id, parent string }{{"A", ""}, {"A1", "A"}, {"B", ""}} {
		if _, err := w.op.CreateTenant(ctx, apiv1.NewTenant{ID: tn.id, ParentID: tn.parent, TenantPatch: apiv1.TenantPatch{Name: apiv1.Ptr("Customer " + tn.id), Address: &apiv1.Address{Street: "Hauptstraße 1", City: "Wien"},
			Contract: &apiv1.Contract{Number: "K-" + tn.id, NoticeDays: 90}}}); err != nil {
			t.Fatalf("tenant %s: %v", tn.id, err)
		}
	}
	for _, tn := range w.tenants {
		s, err := w.op.CreateSite(ctx, tn, "Building of "+tn)
		if err != nil {
			t.Fatal(err)
		}
		w.site[tn] = s.ID
		if tn == "A1" || tn == "B" {
			// Operator admins cannot flip the owner's switch; the owner does.
			if _, err := w.op.SetFactoryAccess(ctx, s.ID, true); client.StatusOf(err) != http.StatusForbidden {
				t.Fatalf("operator flipped the factory switch of %s: %v", tn, err)
			}
		}
		d := "dev-" + strings.ToLower(tn)
		if err := w.op.Do(ctx, http.MethodPost, "/api/v1/devices", nil, map[string]any{"id": d, "tenantId": tn,
			"siteId": s.ID, "serialNumber": "P" + tn, "model": "pellet-heater"}, nil); err != nil {
			t.Fatalf("device %s: %v", d, err)
		}
		w.device[tn] = d
	}
	w.as["operator-admin"] = signUp(t, e, w.op, "root", "operator-admin", "admin@maker.example")
	w.as["operator-service"] = signUp(t, e, w.op, "root", "operator-service", "desk@maker.example")
	w.as["customer-admin"] = signUp(t, e, w.op, "A", "customer-admin", "boss@a.example")
	w.as["customer-user"] = signUp(t, e, w.as["customer-admin"].bearer, "A", "customer-user", "staff@a.example")
	w.as["supporter"] = signUp(t, e, w.op, "root", "supporter", "tech@installer.example")
	w.user["root"] = w.as["operator-service"].user.ID
	w.user["A"] = w.as["customer-user"].user.ID
	// A's administrator has taken A's accounts over, and so A1's: from
	// now on the operator makes no account there.
	for _, tn := range []string{"A1", "B"} {
		maker := w.op
		if tn == "A1" {
			maker = w.as["customer-admin"].bearer
		}
		u, err := maker.CreateUser(ctx, apiv1.NewUser{TenantID: tn, Role: "customer-user", Email: "user@" + strings.ToLower(tn) + ".example", Profile: apiv1.Profile{FirstName: apiv1.Ptr("U"), LastName: apiv1.Ptr(tn)}})
		if err != nil {
			t.Fatal(err)
		}
		w.user[tn] = u.ID
	}
	// Owners switch factory access on: A1 by A's admin (its parent), B by
	// a customer admin of B.
	bAdmin := signUp(t, e, w.op, "B", "customer-admin", "boss@b.example")
	if _, err := w.as["customer-admin"].bearer.SetFactoryAccess(ctx, w.site["A1"], true); err != nil {
		t.Fatal(err)
	}
	if _, err := bAdmin.bearer.SetFactoryAccess(ctx, w.site["B"], true); err != nil {
		t.Fatal(err)
	}
	sup := w.as["supporter"].user.SupporterID
	if !strings.HasPrefix(sup, "SUP-") {
		t.Fatalf("supporter id %q", sup)
	}
	aAdmin := w.as["customer-admin"].bearer
	g, err := aAdmin.Grant(ctx, sup, "", w.device["A"], "")
	if err != nil {
		t.Fatal(err)
	}
	w.grant["A"] = g.ID
	// The operator cannot open a customer's machine to a supporter.
	if _, err := w.op.Grant(ctx, sup, "", w.device["A"], ""); client.StatusOf(err) != http.StatusForbidden {
		t.Fatalf("operator granted access to a customer's device: %v", err)
	}
	if g, err = aAdmin.Grant(ctx, strings.ToLower(sup), w.site["A1"], "", time.Now().Add(time.Hour).Format(time.RFC3339)); err != nil {
		t.Fatal(err)
	}
	w.grant["A1"] = g.ID
	if g, err = bAdmin.bearer.Grant(ctx, sup, "", w.device["B"], ""); err != nil {
		t.Fatal(err)
	}
	if err := bAdmin.bearer.RevokeGrant(ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	w.grant["B"] = g.ID
	exp := e.now().Add(1500 * time.Millisecond)
	if _, err = bAdmin.bearer.Grant(ctx, sup, w.site["B"], "", exp.Format(time.RFC3339Nano)); err != nil {
		t.Fatal(err)
	}
	// Every tenant has a second site, open to factory service (each owner
	// opens its own; the operator its own), and an alarm rule and an
	// enrollment group made by its owner; the operator's maintenance plan
	// covers every pellet heater.
	owner := map[string]*client.Client{"root": w.op, "A": aAdmin, "A1": aAdmin, "B": bAdmin.bearer}
	w.owner = owner
	for _, tn := range w.tenants {
		s, err := w.op.CreateSite(ctx, tn, "Open building of "+tn)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := owner[tn].SetFactoryAccess(ctx, s.ID, true); err != nil {
			t.Fatalf("open the spare site of %s: %v", tn, err)
		}
		w.spare[tn] = s.ID
		var rule apiv1.Rule
		if err := owner[tn].Do(ctx, "POST", "/api/v1/rules", nil, matrixRule(tn, nil), &rule); err != nil {
			t.Fatalf("rule of %s: %v", tn, err)
		}
		w.rule[tn] = rule.ID
		if err := owner[tn].Do(ctx, "POST", "/api/v1/dps/enrollment-groups", url.Values{"tenant": {tn}},
			map[string]any{"id": w.group}, nil); err != nil {
			t.Fatalf("enrollment group of %s: %v", tn, err)
		}
	}
	// Each owner has an account waiting for activation and a disabled one.
	for _, tn := range w.tenants {
		for _, k := range []string{"pending", "off"} {
			u, err := owner[tn].CreateUser(ctx, apiv1.NewUser{TenantID: tn, Role: matrixRole(tn), Email: k + "@" + strings.ToLower(tn) + ".example", Profile: apiv1.Profile{FirstName: apiv1.Ptr(k), LastName: apiv1.Ptr(tn)}})
			if err != nil {
				t.Fatalf("%s account of %s: %v", k, tn, err)
			}
			if k == "pending" {
				w.pending[tn] = u.ID
				continue
			}
			if _, err := owner[tn].UpdateUser(ctx, u.ID, apiv1.UserPatch{Status: apiv1.Ptr("disabled")}); err != nil {
				t.Fatalf("disable an account of %s: %v", tn, err)
			}
			w.off[tn] = u.ID
		}
	}
	if err := w.op.Do(ctx, "PUT", "/api/v1/maintenance-plans/pellet-heater", nil,
		map[string]any{"service": map[string]any{"everyMonths": 6}}, nil); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(exp.Add(50 * time.Millisecond))
	return w
}

// matrixRole is a role an account of tenant tn can have, short of an
// administrator.
func matrixRole(tn string) string {
	if tn == "root" {
		return "operator-service"
	}
	return "customer-user"
}

// matrixRule is a rule body in tenant tn, scoped to scope (nil: the
// tenant's pellet heaters).
func matrixRule(tn string, scope map[string]string) map[string]any {
	if scope == nil {
		scope = map[string]string{"model": "pellet-heater"}
	}
	return map[string]any{"tenantId": tn, "name": "Flue too hot", "severity": "critical", "scope": scope,
		"threshold": map[string]any{"metric": "flue_temp", "op": "above", "value": 250}}
}

// hasKeys says whether a device's answer carries its keys.
func hasKeys(raw json.RawMessage) bool {
	var d apiv1.Device
	return json.Unmarshal(raw, &d) == nil && d.PrimaryKey != "" && d.SecondaryKey != "" && d.ConnectionString != ""
}

// op is one request of the matrix.
type op struct {
	name   string
	method string
	path   func(w *world, tenant string) string
	// body is the request body: a value, func(tenant) any or
	// func(*world, tenant) any.
	body any
	// success, if set, decides from a 2xx answer whether the caller got
	// what the operation is about (e.g. the device keys in the answer).
	success func(json.RawMessage) bool
	// refusal is a status other than 403 and 404 that means "refused"
	// (a rule naming a device the caller may not see is invalid: 400).
	refusal int
	// undo puts the world back after a request that succeeded (raw is
	// its answer).
	undo func(w *world, tenant string, raw json.RawMessage) error
}

// setUser is an undo: the tenant's owner sets fields of an account back.
func setUser(id func(w *world, tn string) string, patch func(tn string) apiv1.UserPatch) func(*world, string, json.RawMessage) error {
	return func(w *world, tn string, _ json.RawMessage) error {
		_, err := w.owner[tn].UpdateUser(w.e.ctx(), id(w, tn), patch(tn))
		return err
	}
}

func devicePath(w *world, tn string, rest string) string {
	return "/api/v1/devices/" + w.device[tn] + rest
}

var matrixOps = []op{
	{name: "tenant.read", method: "GET", path: func(w *world, tn string) string { return "/api/v1/tenants/" + tn }},
	{name: "tenant.write", method: "PATCH", path: func(w *world, tn string) string { return "/api/v1/tenants/" + tn },
		body: map[string]any{"contact": map[string]string{"name": "Eva", "phone": "+43 1"}}},
	{name: "site.read", method: "GET", path: func(w *world, tn string) string { return "/api/v1/sites/" + w.site[tn] }},
	{name: "site.write", method: "PATCH", path: func(w *world, tn string) string { return "/api/v1/sites/" + w.site[tn] },
		body: map[string]any{"name": "Renamed"}},
	{name: "site.switch", method: "PUT", path: func(w *world, tn string) string { return "/api/v1/sites/" + w.site[tn] + "/factory-access" },
		body: func(tn string) any { return map[string]any{"enabled": tn == "A1" || tn == "B"} }}, // sets it to what it is
	{name: "device.read", method: "GET", path: func(w *world, tn string) string { return devicePath(w, tn, "") }},
	{name: "device.data", method: "GET", path: func(w *world, tn string) string { return devicePath(w, tn, "/telemetry/latest") }},
	{name: "device.twin", method: "GET", path: func(w *world, tn string) string { return devicePath(w, tn, "/twin") }},
	{name: "device.operate", method: "POST", path: func(w *world, tn string) string { return devicePath(w, tn, "/c2d") },
		body: map[string]any{"payload": "ping"}},
	{name: "device.write", method: "PATCH", path: func(w *world, tn string) string { return devicePath(w, tn, "") },
		body: map[string]any{"firmwareVersion": "2.06"}},
	{name: "user.read", method: "GET", path: func(w *world, tn string) string { return "/api/v1/users/" + w.user[tn] }},
	{name: "user.write", method: "PATCH", path: func(w *world, tn string) string { return "/api/v1/users/" + w.user[tn] },
		body: map[string]any{"phone": "+43 2"}},
	// Accounts in a customer's tenant are the customer's once its
	// administrator has taken over (in A, A1 and B): the operator may
	// still administer them, but not make or entrust them.
	{name: "user.create", method: "POST", path: func(*world, string) string { return "/api/v1/users" },
		body: func(tn string) any {
			return map[string]any{"tenantId": tn, "role": matrixRole(tn), "firstName": "New", "lastName": tn,
				"email": fmt.Sprintf("new-%d@%s.example", time.Now().UnixNano(), strings.ToLower(tn))}
		},
		refusal: http.StatusBadRequest,
		undo: func(w *world, tn string, raw json.RawMessage) error {
			var u apiv1.User
			if err := json.Unmarshal(raw, &u); err != nil {
				return err
			}
			return w.owner[tn].Do(w.e.ctx(), "DELETE", "/api/v1/users/"+u.ID, nil, nil, nil)
		}},
	{name: "user.role", method: "PATCH", path: func(w *world, tn string) string { return "/api/v1/users/" + w.user[tn] },
		body: func(tn string) any {
			return map[string]any{"role": map[bool]string{true: "operator-admin", false: "customer-admin"}[tn == "root"]}
		},
		undo: setUser(func(w *world, tn string) string { return w.user[tn] },
			func(tn string) apiv1.UserPatch { return apiv1.UserPatch{Role: apiv1.Ptr(matrixRole(tn))} })},
	{name: "user.enable", method: "PATCH", path: func(w *world, tn string) string { return "/api/v1/users/" + w.off[tn] },
		body: map[string]any{"status": "active"},
		undo: setUser(func(w *world, tn string) string { return w.off[tn] },
			func(string) apiv1.UserPatch { return apiv1.UserPatch{Status: apiv1.Ptr("disabled")} })},
	{name: "user.activation", method: "POST", path: func(w *world, tn string) string { return "/api/v1/users/" + w.pending[tn] + "/activation" },
		success: func(raw json.RawMessage) bool {
			var ans struct{ ActivationLink string }
			return json.Unmarshal(raw, &ans) == nil && ans.ActivationLink != ""
		}},
	{name: "user.disable", method: "PATCH", path: func(w *world, tn string) string { return "/api/v1/users/" + w.pending[tn] },
		body: map[string]any{"status": "disabled"},
		undo: setUser(func(w *world, tn string) string { return w.pending[tn] },
			func(string) apiv1.UserPatch { return apiv1.UserPatch{Status: apiv1.Ptr("active")} })},
	{name: "user.unlock", method: "PATCH", path: func(w *world, tn string) string { return "/api/v1/users/" + w.user[tn] },
		body: map[string]any{"unlock": true}},
	{name: "grant.read", method: "GET", path: func(w *world, tn string) string { return "/api/v1/grants/" + w.grant[tn] }},
	{name: "access-log", method: "GET", path: func(w *world, tn string) string { return "/api/v1/access-log?tenant=" + tn }},
	{name: "dps.read", method: "GET", path: func(w *world, tn string) string { return "/api/v1/dps/enrollment-groups?tenant=" + tn }},

	// Every path to a customer's machine data beyond the device routes,
	// and the credentials that would let someone be the device.
	{name: "device.keys", method: "GET", path: func(w *world, tn string) string { return devicePath(w, tn, "") }, success: hasKeys},
	{name: "device.rekey.keys", method: "POST", path: func(w *world, tn string) string { return devicePath(w, tn, "/keys/regenerate") },
		body: map[string]any{"key": "secondary"}, success: hasKeys},
	{name: "device.token", method: "POST", path: func(w *world, tn string) string { return devicePath(w, tn, "/token") },
		body: map[string]any{"ttl": "5m"}},
	{name: "device.move", method: "PATCH", path: func(w *world, tn string) string { return devicePath(w, tn, "") },
		body: func(w *world, tn string) any { return map[string]any{"siteId": w.spare[tn]} },
		undo: func(w *world, tn string, _ json.RawMessage) error {
			return w.op.Do(w.e.ctx(), "PATCH", devicePath(w, tn, ""), nil, map[string]any{"siteId": w.site[tn]}, nil)
		}},
	{name: "device.messages", method: "GET", path: func(w *world, tn string) string { return devicePath(w, tn, "/messages") }},
	{name: "device.rejected", method: "GET", path: func(w *world, tn string) string { return devicePath(w, tn, "/rejected") }},
	{name: "device.c2d.read", method: "GET", path: func(w *world, tn string) string { return devicePath(w, tn, "/c2d") }},
	{name: "device.twin.write", method: "PATCH", path: func(w *world, tn string) string { return devicePath(w, tn, "/twin") },
		body: map[string]any{"tags": map[string]any{"matrix": true}}},
	{name: "maintenance.read", method: "GET", path: func(w *world, tn string) string { return devicePath(w, tn, "/maintenance") }},
	{name: "maintenance.service", method: "POST", path: func(w *world, tn string) string { return devicePath(w, tn, "/maintenance/service") }},
	{name: "kpi", method: "GET", path: func(w *world, tn string) string { return "/api/v1/kpi?device=" + w.device[tn] }},
	{name: "rule.read", method: "GET", path: func(w *world, tn string) string { return "/api/v1/rules/" + w.rule[tn] }},
	{name: "rule.create", method: "POST", path: func(*world, string) string { return "/api/v1/rules" },
		body: func(tn string) any { return matrixRule(tn, nil) }},
	{name: "rule.update", method: "PUT", path: func(w *world, tn string) string { return "/api/v1/rules/" + w.rule[tn] },
		body: func(tn string) any { r := matrixRule(tn, nil); delete(r, "tenantId"); return r }},
	// The operator's own rule, aimed at the tenant's machine.
	{name: "rule.root-on-device", method: "POST", path: func(*world, string) string { return "/api/v1/rules" },
		body:    func(w *world, tn string) any { return matrixRule("root", map[string]string{"deviceId": w.device[tn]}) },
		refusal: http.StatusBadRequest},
	{name: "rule.root-on-site", method: "POST", path: func(*world, string) string { return "/api/v1/rules" },
		body:    func(w *world, tn string) any { return matrixRule("root", map[string]string{"siteId": w.site[tn]}) },
		refusal: http.StatusBadRequest},
	{name: "plan.read", method: "GET", path: func(w *world, tn string) string { return "/api/v1/maintenance-plans?tenant=" + tn }},
	{name: "plan.write", method: "PUT", path: func(w *world, tn string) string { return "/api/v1/maintenance-plans/boiler?tenant=" + tn },
		body: map[string]any{"service": map[string]any{"everyMonths": 12}}},
	// A tenantId the caller may not know of answers like an unknown one: 400.
	{name: "webhook.create", method: "POST", path: func(*world, string) string { return "/api/v1/webhooks" },
		body:    func(tn string) any { return map[string]any{"tenantId": tn, "url": "https://hooks.example.com/warden"} },
		refusal: http.StatusBadRequest},
	{name: "webhook.read", method: "GET", path: func(w *world, tn string) string { return "/api/v1/webhooks?tenant=" + tn }},
	{name: "escalation.write", method: "PUT", path: func(w *world, tn string) string { return "/api/v1/escalation?tenant=" + tn },
		body: map[string]any{"delayMinutes": 30, "email": "night-shift@maker.example"}},
	{name: "escalation.read", method: "GET", path: func(w *world, tn string) string { return "/api/v1/escalation?tenant=" + tn }},
	{name: "deliveries", method: "GET", path: func(w *world, tn string) string { return "/api/v1/deliveries?tenant=" + tn }},
	{name: "dps.keys", method: "GET", path: func(w *world, tn string) string {
		return "/api/v1/dps/enrollment-groups/" + w.group + "?tenant=" + tn
	}, success: func(raw json.RawMessage) bool {
		var g apiv1.EnrollmentGroup
		return json.Unmarshal(raw, &g) == nil && g.PrimaryKey != ""
	}},
	{name: "dps.write", method: "POST", path: func(w *world, tn string) string { return "/api/v1/dps/enrollments?tenant=" + tn },
		body: func(tn string) any { return map[string]any{"registrationId": "matrix-" + strings.ToLower(tn)} }},
}

// relation of a tenant to a subject's tenant.
func relation(subjectTenant, tn string) string {
	path := map[string]string{"root": "root", "A": "root/A", "A1": "root/A/A1", "B": "root/B"}
	s, r := path[subjectTenant], path[tn]
	switch {
	case s == r:
		return "own"
	case strings.HasPrefix(r, s+"/"):
		return "sub"
	case strings.HasPrefix(s, r+"/"):
		return "parent"
	}
	return "sibling"
}

// expected is the policy written out as a table, independently of
// package access: role → operation → the tenants (by relation, or by name
// for the factory switch and the supporter's grants) where it is allowed.
var expected = map[string]map[string][]string{
	"customer-admin": {
		"tenant.read": {"own", "sub"}, "tenant.write": {"own", "sub"}, "site.read": {"own", "sub"}, "site.write": {"own", "sub"},
		"site.switch": {"own", "sub"}, "device.read": {"own", "sub"}, "device.data": {"own", "sub"}, "device.twin": {"own", "sub"},
		"device.operate": {"own", "sub"}, "device.write": {"own", "sub"}, "user.read": {"own", "sub"}, "user.write": {"own", "sub"},
		"grant.read": {"own", "sub"}, "access-log": {"own", "sub"}, "dps.read": {"own", "sub"},
		"user.create": {"own", "sub"}, "user.role": {"own", "sub"}, "user.enable": {"own", "sub"},
		"user.activation": {"own", "sub"}, "user.disable": {"own", "sub"}, "user.unlock": {"own", "sub"},
		"device.keys": {"own", "sub"}, "device.rekey.keys": {"own", "sub"}, "device.token": {"own", "sub"}, "device.move": {"own", "sub"},
		"device.messages": {"own", "sub"}, "device.rejected": {"own", "sub"}, "device.c2d.read": {"own", "sub"},
		"device.twin.write": {"own", "sub"}, "maintenance.read": {"own", "sub"}, "maintenance.service": {"own", "sub"},
		"kpi": {"own", "sub"}, "rule.read": {"own", "sub"}, "rule.create": {"own", "sub"}, "rule.update": {"own", "sub"},
		"plan.read": {"own", "sub"}, "plan.write": {"own", "sub"}, "webhook.create": {"own", "sub"}, "webhook.read": {"own", "sub"},
		"escalation.write": {"own", "sub"}, "escalation.read": {"own", "sub"}, "deliveries": {"own", "sub"},
		"dps.keys": {"own", "sub"}, "dps.write": {"own", "sub"},
	},
	"customer-user": {
		"tenant.read": {"own", "sub"}, "site.read": {"own", "sub"}, "device.read": {"own", "sub"}, "device.data": {"own", "sub"},
		"device.twin": {"own", "sub"}, "user.read": {"own", "sub"}, "grant.read": {"own", "sub"},
		"device.messages": {"own", "sub"}, "device.rejected": {"own", "sub"}, "device.c2d.read": {"own", "sub"},
		"maintenance.read": {"own", "sub"}, "kpi": {"own", "sub"}, "rule.read": {"own", "sub"}, "plan.read": {"own", "sub"},
	},
	// The operator administers everything but reads and commands a
	// customer's machine, and makes a token to connect as it, only where
	// the owner's switch is on (A1, B). It never learns a customer's device
	// or enrollment keys, and never sets up anything in a customer's tenant
	// that forwards machine data (rules, plans, webhooks, escalation); its
	// own rules may aim only at machines open to it.
	"operator-admin": {
		"tenant.read": {"own", "sub"}, "tenant.write": {"own", "sub"}, "site.read": {"own", "sub"}, "site.write": {"own", "sub"},
		"site.switch": {"root"}, "device.read": {"own", "sub"}, "device.write": {"own", "sub"},
		"device.data": {"root", "A1", "B"}, "device.twin": {"root", "A1", "B"}, "device.operate": {"root", "A1", "B"},
		"user.read": {"own", "sub"}, "user.write": {"own", "sub"}, "grant.read": {"own", "sub"}, "access-log": {"own", "sub"},
		"dps.read": {"own", "sub"},
		// Every customer here has an administrator who has taken over.
		"user.create": {"root"}, "user.role": {"root"}, "user.enable": {"root"}, "user.activation": {"root"},
		"user.disable": {"own", "sub"}, "user.unlock": {"own", "sub"},
		"device.keys": {"root"}, "device.rekey.keys": {"root"}, "device.token": {"root", "A1", "B"}, "device.move": {"root", "A1", "B"},
		"device.messages": {"root", "A1", "B"}, "device.rejected": {"root", "A1", "B"}, "device.c2d.read": {"root", "A1", "B"},
		"device.twin.write": {"root", "A1", "B"}, "maintenance.read": {"root", "A1", "B"}, "maintenance.service": {"root", "A1", "B"},
		"kpi": {"root", "A1", "B"}, "rule.read": {"own", "sub"}, "rule.create": {"root"}, "rule.update": {"root"},
		"rule.root-on-device": {"root", "A1", "B"}, "rule.root-on-site": {"root", "A1", "B"},
		"plan.read": {"own", "sub"}, "plan.write": {"root"}, "webhook.create": {"root"}, "webhook.read": {"root"},
		"escalation.write": {"root"}, "escalation.read": {"root"}, "deliveries": {"root"}, "dps.keys": {"root"}, "dps.write": {"root"},
	},
	"operator-service": {
		"tenant.read": {"root"}, "site.read": {"root", "A1", "B"}, "device.read": {"root", "A1", "B"},
		"device.data": {"root", "A1", "B"}, "device.twin": {"root", "A1", "B"}, "device.operate": {"root", "A1", "B"},
		"user.read": {"root"}, "dps.read": {"root"},
		"device.messages": {"root", "A1", "B"}, "device.rejected": {"root", "A1", "B"}, "device.c2d.read": {"root", "A1", "B"},
		"device.twin.write": {"root", "A1", "B"}, "maintenance.read": {"root", "A1", "B"}, "maintenance.service": {"root", "A1", "B"},
		"kpi": {"root", "A1", "B"},
	},
	// Active grants: A's device, A1's site (and so its device). B's device
	// grant is revoked and B's site grant expired.
	"supporter": {
		"device.read": {"A", "A1"}, "device.data": {"A", "A1"}, "device.twin": {"A", "A1"}, "device.operate": {"A", "A1"},
		"site.read": {"A1"}, "grant.read": {"A", "A1", "B"},
		"device.messages": {"A", "A1"}, "device.rejected": {"A", "A1"}, "device.c2d.read": {"A", "A1"},
		"device.twin.write": {"A", "A1"}, "maintenance.read": {"A", "A1"}, "maintenance.service": {"A", "A1"}, "kpi": {"A", "A1"},
	},
}

func allowedIn(role, opName, subjectTenant, tn string) bool {
	for _, x := range expected[role][opName] {
		if x == tn || x == relation(subjectTenant, tn) {
			return true
		}
	}
	return false
}

func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	authorizationMatrix(t, newWorld(t))
}

// TestAuthorizationMatrixPostgres is the same on PostgreSQL.
func TestAuthorizationMatrixPostgres(t *testing.T) {
	t.Parallel()
	authorizationMatrix(t, newWorld(t, withDatabase(pgtest.URL(t))))
}

func authorizationMatrix(t *testing.T, w *world) {
	ctx := w.e.ctx()
	roles := []string{"operator-admin", "operator-service", "customer-admin", "customer-user", "supporter"}
	checked := 0
	for _, role := range roles {
		p := w.as[role]
		for _, o := range matrixOps {
			for _, tn := range w.tenants {
				if o.name == "grant.read" && tn == "root" {
					continue // no grant is made in the operator's tenant
				}
				want := allowedIn(role, o.name, p.user.TenantID, tn)
				body := o.body
				switch f := body.(type) {
				case func(string) any:
					body = f(tn)
				case func(*world, string) any:
					body = f(w, tn)
				}
				var raw json.RawMessage
				err := p.bearer.Do(ctx, o.method, pathOnly(o.path(w, tn)), queryOf(o.path(w, tn)), body, &raw)
				status := client.StatusOf(err)
				got := err == nil
				if err != nil && status != http.StatusForbidden && status != http.StatusNotFound && (o.refusal == 0 || status != o.refusal) {
					t.Errorf("%s %s on %s (%s): unexpected error %v", role, o.name, tn, relation(p.user.TenantID, tn), err)
					continue
				}
				if got && o.undo != nil {
					if err := o.undo(w, tn, raw); err != nil {
						t.Fatalf("undo %s %s on %s: %v", role, o.name, tn, err)
					}
				}
				if got && o.success != nil {
					got = o.success(raw)
				}
				if got != want {
					t.Errorf("%s %s on %s's %s (%s): allowed=%v, want %v (%v)", role, o.name, tn, strings.Split(o.name, ".")[0],
						relation(p.user.TenantID, tn), got, want, err)
				}
				checked++
			}
		}
	}
	t.Logf("%d role × operation × tenant cases checked", checked)

	// Contract data: customers see their own; nobody else's.
	var tn apiv1.Tenant
	if err := w.as["customer-user"].bearer.Do(ctx, "GET", "/api/v1/tenants/A1", nil, nil, &tn); err != nil || tn.Contract == nil || tn.Contract.Number != "K-A1" {
		t.Errorf("customer user reading its sub-tenant's contract: %+v, %v", tn.Contract, err)
	}
	var rootT apiv1.Tenant
	if err := w.as["operator-service"].bearer.Do(ctx, "GET", "/api/v1/tenants/root", nil, nil, &rootT); err != nil || rootT.Contract != nil {
		t.Errorf("the service desk sees contract data: %+v, %v", rootT.Contract, err)
	}

	// Device keys (enough to impersonate the device) only for those who
	// manage the device.
	for role, want := range map[string]bool{"customer-admin": true, "customer-user": false, "supporter": false, "operator-admin": false} {
		var d apiv1.Device
		if err := w.as[role].bearer.Do(ctx, "GET", "/api/v1/devices/dev-a", nil, nil, &d); err != nil {
			t.Fatalf("%s reads dev-a: %v", role, err)
		}
		if got := d.PrimaryKey != "" && d.ConnectionString != ""; got != want {
			t.Errorf("%s sees the device keys: %v, want %v", role, got, want)
		}
	}

	// Lists show exactly what single reads allow.
	for _, role := range roles {
		var got struct{ Devices []apiv1.Device }
		if err := w.as[role].bearer.Do(ctx, "GET", "/api/v1/devices", nil, nil, &got); err != nil {
			t.Fatalf("%s lists devices: %v", role, err)
		}
		var ids []string
		for _, d := range got.Devices {
			ids = append(ids, d.ID)
		}
		var want []string
		for _, tn := range w.tenants {
			if allowedIn(role, "device.read", w.as[role].user.TenantID, tn) {
				want = append(want, w.device[tn])
			}
		}
		slices.Sort(want)
		if fmt.Sprint(ids) != fmt.Sprint(want) {
			t.Errorf("%s lists devices %v, want %v", role, ids, want)
		}
	}

	// Prometheus metrics: the operator's staff only, and not anonymously.
	for role, want := range map[string]bool{"operator-admin": true, "operator-service": true, "customer-admin": false,
		"customer-user": false, "supporter": false} {
		if _, err := w.as[role].bearer.Metrics(ctx); (err == nil) != want {
			t.Errorf("%s reads /metrics: %v, want allowed=%v", role, err, want)
		}
	}
	if _, err := w.e.api.Anonymous().Metrics(ctx); client.StatusOf(err) != http.StatusUnauthorized {
		t.Errorf("anonymous /metrics: %v", err)
	}

	// A read-only token cannot change anything its user could.
	ro, err := w.as["customer-admin"].session.CreateToken(ctx, "read-only", []string{"read"}, "1h")
	if err != nil {
		t.Fatal(err)
	}
	roc := w.e.api.WithToken(ro.Token)
	if err := roc.Do(ctx, "GET", "/api/v1/devices/dev-a", nil, nil, nil); err != nil {
		t.Errorf("read-only token cannot read: %v", err)
	}
	if err := roc.Do(ctx, "PATCH", "/api/v1/devices/dev-a", nil, map[string]any{"name": "x"}, nil); client.StatusOf(err) != http.StatusForbidden {
		t.Errorf("read-only token changed a device: %v", err)
	}
}

func pathOnly(p string) string { s, _, _ := strings.Cut(p, "?"); return s }

func queryOf(p string) url.Values {
	_, q, _ := strings.Cut(p, "?")
	v, _ := url.ParseQuery(q)
	return v
}
