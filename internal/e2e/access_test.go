package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/api"
	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/store/postgres/pgtest"
)

const testPassword = "correct horse battery staple"

// person is a signed-up account with a bearer-token client and a session.
type person struct {
	user    api.User
	bearer  *client.Client
	session *client.Client
}

// signUp makes an account through admin, activates it from the link in the
// answer (no mail server is configured), signs in and makes an API token.
func signUp(t *testing.T, e *env, admin *client.Client, tenant, role, email string) person {
	t.Helper()
	u, err := admin.CreateUser(e.ctx(), map[string]any{"tenantId": tenant, "role": role, "email": email,
		"firstName": "Test", "lastName": role, "company": "Firma " + tenant})
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
	as      map[string]person // by role
	op      *client.Client    // the bootstrap operator token
}

func newWorld(t *testing.T, opts ...option) *world {
	t.Helper()
	e := start(t, opts...)
	ctx := e.ctx()
	w := &world{e: e, op: e.api, tenants: []string{"root", "A", "A1", "B"}, site: map[string]string{},
		device: map[string]string{}, user: map[string]string{}, grant: map[string]string{}, as: map[string]person{}}
	for _, tn := range []struct{ id, parent string }{{"A", ""}, {"A1", "A"}, {"B", ""}} {
		if _, err := w.op.CreateTenant(ctx, map[string]any{"id": tn.id, "parentId": tn.parent, "name": "Customer " + tn.id,
			"address":  map[string]string{"street": "Hauptstraße 1", "city": "Wien"},
			"contract": map[string]any{"number": "K-" + tn.id, "noticeDays": 90}}); err != nil {
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
	for _, tn := range []string{"A1", "B"} {
		u, err := w.op.CreateUser(ctx, map[string]any{"tenantId": tn, "role": "customer-user", "email": "user@" + strings.ToLower(tn) + ".example",
			"firstName": "U", "lastName": tn})
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
	exp := time.Now().Add(1500 * time.Millisecond)
	if _, err = bAdmin.bearer.Grant(ctx, sup, w.site["B"], "", exp.Format(time.RFC3339Nano)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(exp) + 50*time.Millisecond)
	return w
}

// op is one request of the matrix.
type op struct {
	name   string
	method string
	path   func(w *world, tenant string) string
	body   any
}

var matrixOps = []op{
	{"tenant.read", "GET", func(w *world, tn string) string { return "/api/v1/tenants/" + tn }, nil},
	{"tenant.write", "PATCH", func(w *world, tn string) string { return "/api/v1/tenants/" + tn },
		map[string]any{"contact": map[string]string{"name": "Eva", "phone": "+43 1"}}},
	{"site.read", "GET", func(w *world, tn string) string { return "/api/v1/sites/" + w.site[tn] }, nil},
	{"site.write", "PATCH", func(w *world, tn string) string { return "/api/v1/sites/" + w.site[tn] }, map[string]any{"name": "Renamed"}},
	{"site.switch", "PUT", func(w *world, tn string) string { return "/api/v1/sites/" + w.site[tn] + "/factory-access" },
		func(tn string) any { return map[string]any{"enabled": tn == "A1" || tn == "B"} }}, // sets it to what it is
	{"device.read", "GET", func(w *world, tn string) string { return "/api/v1/devices/" + w.device[tn] }, nil},
	{"device.data", "GET", func(w *world, tn string) string { return "/api/v1/devices/" + w.device[tn] + "/telemetry/latest" }, nil},
	{"device.twin", "GET", func(w *world, tn string) string { return "/api/v1/devices/" + w.device[tn] + "/twin" }, nil},
	{"device.operate", "POST", func(w *world, tn string) string { return "/api/v1/devices/" + w.device[tn] + "/c2d" },
		map[string]any{"payload": "ping"}},
	{"device.write", "PATCH", func(w *world, tn string) string { return "/api/v1/devices/" + w.device[tn] },
		map[string]any{"firmwareVersion": "2.06"}},
	{"user.read", "GET", func(w *world, tn string) string { return "/api/v1/users/" + w.user[tn] }, nil},
	{"user.write", "PATCH", func(w *world, tn string) string { return "/api/v1/users/" + w.user[tn] }, map[string]any{"phone": "+43 2"}},
	{"grant.read", "GET", func(w *world, tn string) string { return "/api/v1/grants/" + w.grant[tn] }, nil},
	{"access-log", "GET", func(w *world, tn string) string { return "/api/v1/access-log?tenant=" + tn }, nil},
	{"dps.read", "GET", func(w *world, tn string) string { return "/api/v1/dps/enrollment-groups?tenant=" + tn }, nil},
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
	},
	"customer-user": {
		"tenant.read": {"own", "sub"}, "site.read": {"own", "sub"}, "device.read": {"own", "sub"}, "device.data": {"own", "sub"},
		"device.twin": {"own", "sub"}, "user.read": {"own", "sub"}, "grant.read": {"own", "sub"},
	},
	// The operator administers everything but reads and commands a
	// customer's machine only where the owner's switch is on (A1, B).
	"operator-admin": {
		"tenant.read": {"own", "sub"}, "tenant.write": {"own", "sub"}, "site.read": {"own", "sub"}, "site.write": {"own", "sub"},
		"site.switch": {"root"}, "device.read": {"own", "sub"}, "device.write": {"own", "sub"},
		"device.data": {"root", "A1", "B"}, "device.twin": {"root", "A1", "B"}, "device.operate": {"root", "A1", "B"},
		"user.read": {"own", "sub"}, "user.write": {"own", "sub"}, "grant.read": {"own", "sub"}, "access-log": {"own", "sub"},
		"dps.read": {"own", "sub"},
	},
	"operator-service": {
		"tenant.read": {"root"}, "site.read": {"root", "A1", "B"}, "device.read": {"root", "A1", "B"},
		"device.data": {"root", "A1", "B"}, "device.twin": {"root", "A1", "B"}, "device.operate": {"root", "A1", "B"},
		"user.read": {"root"}, "dps.read": {"root"},
	},
	// Active grants: A's device, A1's site (and so its device). B's device
	// grant is revoked and B's site grant expired.
	"supporter": {
		"device.read": {"A", "A1"}, "device.data": {"A", "A1"}, "device.twin": {"A", "A1"}, "device.operate": {"A", "A1"},
		"site.read": {"A1"}, "grant.read": {"A", "A1", "B"},
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

func TestAuthorizationMatrix(t *testing.T) { authorizationMatrix(t, newWorld(t)) }

// TestAuthorizationMatrixPostgres is the same on PostgreSQL.
func TestAuthorizationMatrixPostgres(t *testing.T) {
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
				if f, ok := body.(func(string) any); ok {
					body = f(tn)
				}
				err := p.bearer.Do(ctx, o.method, pathOnly(o.path(w, tn)), queryOf(o.path(w, tn)), body, nil)
				status := client.StatusOf(err)
				got := err == nil
				if err != nil && status != http.StatusForbidden && status != http.StatusNotFound {
					t.Errorf("%s %s on %s (%s): unexpected error %v", role, o.name, tn, relation(p.user.TenantID, tn), err)
					continue
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
	var tn api.Tenant
	if err := w.as["customer-user"].bearer.Do(ctx, "GET", "/api/v1/tenants/A1", nil, nil, &tn); err != nil || tn.Contract == nil || tn.Contract.Number != "K-A1" {
		t.Errorf("customer user reading its sub-tenant's contract: %+v, %v", tn.Contract, err)
	}
	var rootT api.Tenant
	if err := w.as["operator-service"].bearer.Do(ctx, "GET", "/api/v1/tenants/root", nil, nil, &rootT); err != nil || rootT.Contract != nil {
		t.Errorf("the service desk sees contract data: %+v, %v", rootT.Contract, err)
	}

	// Device keys (enough to impersonate the device) only for those who
	// manage the device.
	for role, want := range map[string]bool{"customer-admin": true, "customer-user": false, "supporter": false, "operator-admin": true} {
		var d api.Device
		if err := w.as[role].bearer.Do(ctx, "GET", "/api/v1/devices/dev-a", nil, nil, &d); err != nil {
			t.Fatalf("%s reads dev-a: %v", role, err)
		}
		if got := d.PrimaryKey != "" && d.ConnectionString != ""; got != want {
			t.Errorf("%s sees the device keys: %v, want %v", role, got, want)
		}
	}

	// Lists show exactly what single reads allow.
	for _, role := range roles {
		var got struct{ Devices []api.Device }
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
