package e2e

// Oracles: answers that tell an outsider whether an account or a tenant
// exists. Each test attacks a real server the way an attacker would and
// compares what a known and an unknown name get back: status, body,
// headers and time.

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/api"
	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/server"
	"github.com/warden-iot/warden/internal/store/postgres/pgtest"
)

// behindProxy makes 127.0.0.1 a trusted reverse proxy, so a test can play
// many client addresses through X-Forwarded-For, as a botnet would.
func behindProxy() option {
	return func(c *server.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	}
}

// signInAttempt is one raw sign-in: its answer and how long it took.
type signInAttempt struct {
	answer
	took time.Duration
}

// signInFrom posts a sign-in as the client address ip.
func signInFrom(t *testing.T, e *env, hc *http.Client, ip, email, password string) signInAttempt {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"email": email, "password": password})
	req, err := http.NewRequestWithContext(e.ctx(), http.MethodPost, "https://"+e.srv.HTTPAddr()+"/api/v1/auth/login", strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if ip != "" {
		req.Header.Set("X-Forwarded-For", ip)
	}
	t0 := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	a := read(t, resp)
	return signInAttempt{answer: a, took: time.Since(t0)}
}

// activeAccount makes an account with testPassword, without signing in.
func activeAccount(t *testing.T, e *env, tenant, email string) apiv1.User {
	t.Helper()
	u, err := e.api.CreateUser(e.ctx(), apiv1.NewUser{TenantID: tenant, Role: "customer-user", Email: email, Profile: apiv1.Profile{FirstName: apiv1.Ptr("Test"), LastName: apiv1.Ptr("User")}})
	if err != nil {
		t.Fatalf("create %s: %v", email, err)
	}
	link, err := url.Parse(u.ActivationLink)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.api.Anonymous().Activate(e.ctx(), link.Query().Get("token"), testPassword); err != nil {
		t.Fatalf("activate %s: %v", email, err)
	}
	return u
}

// headerShape is an answer's header names and values, without those that
// differ between any two answers (Date).
func headerShape(h http.Header) string {
	var out []string
	for k, v := range h {
		if k == "Date" {
			continue
		}
		out = append(out, k+": "+strings.Join(v, ","))
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1))]
}

// TestSignInTimingKnownVsUnknown: a wrong password for an account and any
// password for an unknown address take the same time and get the same
// answer. Like a real attack, every sample uses a fresh address (known or
// not) from a fresh client address, so neither the per-address slow-down
// nor the per-client limit is what is measured; the two kinds are
// interleaved so load on the machine hits both alike.
func TestSignInTimingKnownVsUnknown(t *testing.T) {
	if raceEnabled {
		// The race detector slows password hashing several times over and
		// unevenly; the README's test command runs this test again
		// without -race, where its times mean something.
		t.Skip("timing test: run without -race")
	}
	e := start(t, behindProxy())
	if _, err := e.api.CreateTenant(e.ctx(), apiv1.NewTenant{ID: "timing", TenantPatch: apiv1.TenantPatch{Name: apiv1.Ptr("Timing")}}); err != nil {
		t.Fatal(err)
	}
	const n = 30
	for i := range n {
		activeAccount(t, e, "timing", fmt.Sprintf("known%d@timing.example", i))
	}
	hc := browser(t, e)
	var known, unknown []time.Duration
	var first signInAttempt
	for i := range n {
		attempts := []struct {
			email string
			dst   *[]time.Duration
		}{
			{fmt.Sprintf("known%d@timing.example", i), &known},
			{fmt.Sprintf("unknown%d@timing.example", i), &unknown},
		}
		if i%2 == 1 {
			attempts[0], attempts[1] = attempts[1], attempts[0]
		}
		for j, at := range attempts {
			a := signInFrom(t, e, hc, fmt.Sprintf("198.51.100.%d", 2*i+j+1), at.email, "a wrong password!")
			if i == 0 && j == 0 {
				first = a
			}
			if a.status != http.StatusUnauthorized || a.body != first.body || headerShape(a.header) != headerShape(first.header) {
				t.Fatalf("%s: %d %q\n%s\nwant the same as the first: %d %q\n%s", at.email, a.status, a.body, headerShape(a.header),
					first.status, first.body, headerShape(first.header))
			}
			*at.dst = append(*at.dst, a.took)
		}
	}
	// Each pair was measured back to back, so the machine's load hits
	// both alike: their differences are the signal.
	diffs := make([]time.Duration, n)
	for i := range n {
		diffs[i] = known[i] - unknown[i]
	}
	mk, mu, md := median(known), median(unknown), median(diffs)
	t.Logf("known: median %v, 25%% %v, 75%% %v; unknown: median %v, 25%% %v, 75%% %v; paired difference: median %v",
		mk, quantile(known, 0.25), quantile(known, 0.75), mu, quantile(unknown, 0.25), quantile(unknown, 0.75), md)
	// Each answer is slowed 250 ms (one failure); a known address that
	// is 250 ms slower (or 10× faster) than an unknown one fails this
	// comfortably, while the noise of a busy machine (tens of ms) does
	// not.
	const tolerance = 100 * time.Millisecond
	if md.Abs() > tolerance {
		t.Errorf("known addresses answer %v later than unknown ones (median of %d pairs; tolerance %v)", md, n, tolerance)
	}
	if lo, hi := min(mk, mu), max(mk, mu); hi > lo*3/2 {
		t.Errorf("median sign-in time: known %v, unknown %v: more than half apart", mk, mu)
	}
}

// stamp is an RFC 3339 time in an answer: the lock's end, which differs
// by the moment each address was locked.
var stamp = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)

// TestLockoutAnswersAlike: five failures in a row lock a known and an
// unknown address alike (same status, body and Retry-After); after that
// even the right password gets the lock's answer; an admin's unlock and
// a quiet window end it.
func TestLockoutAnswersAlike(t *testing.T) {
	t.Parallel()
	for _, db := range []struct {
		name string
		opts func(t *testing.T) []option
	}{
		{"sqlite", func(*testing.T) []option { return nil }},
		{"postgres", func(t *testing.T) []option { return []option{withDatabase(pgtest.URL(t))} }},
	} {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			e := start(t, append(db.opts(t), behindProxy())...)
			if _, err := e.api.CreateTenant(e.ctx(), apiv1.NewTenant{ID: "lock", TenantPatch: apiv1.TenantPatch{Name: apiv1.Ptr("Lock")}}); err != nil {
				t.Fatal(err)
			}
			u := activeAccount(t, e, "lock", "chef@lock.example")
			hc := browser(t, e)
			shape := func(a signInAttempt) string {
				h := a.header.Clone()
				ra, _ := strconv.Atoi(h.Get("Retry-After"))
				h.Del("Retry-After")
				// Retry-After counts down by the second: two answers a
				// moment apart may be a second apart.
				return fmt.Sprintf("%d %s ra=%d\n%s", a.status, stamp.ReplaceAllString(a.body, "<time>"), (ra+1)/2, headerShape(h))
			}
			for i := 1; i <= api.MaxFailedLogins+1; i++ {
				k := signInFrom(t, e, hc, "203.0.113.1", "chef@lock.example", "wrong password "+strconv.Itoa(i))
				x := signInFrom(t, e, hc, "203.0.113.2", "nobody@lock.example", "wrong password "+strconv.Itoa(i))
				want := http.StatusUnauthorized
				if i >= api.MaxFailedLogins {
					want = http.StatusTooManyRequests
				}
				if k.status != want || shape(k) != shape(x) {
					t.Fatalf("failure %d: known %s\nunknown %s\nwant both HTTP %d and alike", i, shape(k), shape(x), want)
				}
				if i >= api.MaxFailedLogins {
					for _, a := range []signInAttempt{k, x} {
						ra, err := strconv.Atoi(a.header.Get("Retry-After"))
						if err != nil || ra < int(api.LockDuration.Seconds())-5 || ra > int(api.LockDuration.Seconds())+1 {
							t.Errorf("failure %d: Retry-After %q, want about %v", i, a.header.Get("Retry-After"), api.LockDuration)
						}
					}
				}
			}
			// The right password on a locked address is refused like a
			// wrong one on a locked unknown address.
			k := signInFrom(t, e, hc, "203.0.113.1", "chef@lock.example", testPassword)
			x := signInFrom(t, e, hc, "203.0.113.2", "nobody@lock.example", testPassword)
			if k.status != http.StatusTooManyRequests || shape(k) != shape(x) {
				t.Fatalf("right password while locked: known %s\nunknown %s", shape(k), shape(x))
			}
			// The admin sees the lock and lifts it.
			var v apiv1.User
			if err := e.api.Do(e.ctx(), http.MethodGet, "/api/v1/users/"+u.ID, nil, nil, &v); err != nil || v.LockedUntil == nil {
				t.Fatalf("locked account's view: %+v, %v", v.LockedUntil, err)
			}
			var after apiv1.User
			if err := e.api.Do(e.ctx(), http.MethodPatch, "/api/v1/users/"+u.ID, nil, map[string]any{"unlock": true}, &after); err != nil || after.LockedUntil != nil {
				t.Fatalf("unlock: %+v, %v", after.LockedUntil, err)
			}
			if a := signInFrom(t, e, hc, "203.0.113.1", "chef@lock.example", testPassword); a.status != http.StatusOK {
				t.Fatalf("after unlock: %d %s", a.status, a.body)
			}
		})
	}
}

// TestPasswordResetAnswersAlike: a reset request for an account and for
// an unknown address get the same answer in the same time, with a mail
// server configured (the mail goes out after the answer).
func TestPasswordResetAnswersAlike(t *testing.T) {
	e := start(t, behindProxy())
	if _, err := e.api.CreateTenant(e.ctx(), apiv1.NewTenant{ID: "reset", TenantPatch: apiv1.TenantPatch{Name: apiv1.Ptr("Reset")}}); err != nil {
		t.Fatal(err)
	}
	activeAccount(t, e, "reset", "chef@reset.example")
	hc := browser(t, e)
	post := func(ip, email string) answer {
		req, _ := http.NewRequestWithContext(e.ctx(), http.MethodPost, "https://"+e.srv.HTTPAddr()+"/api/v1/auth/password-reset",
			strings.NewReader(`{"email":"`+email+`"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", ip)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return read(t, resp)
	}
	k, x := post("203.0.113.5", "chef@reset.example"), post("203.0.113.6", "nobody@reset.example")
	if k.status != http.StatusAccepted || k.body != x.body || headerShape(k.header) != headerShape(x.header) {
		t.Fatalf("reset: known %d %s, unknown %d %s", k.status, k.body, x.status, x.body)
	}
}

// anyTime is a time in an answer (a report's period ends "now").
var anyTime = regexp.MustCompile(`\d{4}-\d\d-\d\dT[\d:.]+Z`)

// outcome is a request's answer as one comparable string, with the names
// given replaced by placeholders.
func outcome(c *client.Client, t *testing.T, method, path string, query url.Values, body any, names map[string]string) string {
	t.Helper()
	var raw json.RawMessage
	err := c.Do(t.Context(), method, path, query, body, &raw)
	s := "2xx " + string(raw)
	if err != nil {
		var e *client.Error
		if !errors.As(err, &e) {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		s = fmt.Sprintf("%d %s", e.Status, e.Message)
	}
	s = anyTime.ReplaceAllString(s, "<time>")
	for name, ph := range names {
		s = strings.ReplaceAll(s, `"`+name+`"`, ph)
		s = strings.ReplaceAll(s, `\"`+name+`\"`, ph)
		s = strings.ReplaceAll(s, name, ph)
	}
	return s
}

// TestIDParametersAnswerAlike: every query parameter and body field that
// names a tenant, a site or a device answers a tenant (site, device) that
// exists but is not the caller's exactly as one that does not exist, for
// every role.
func TestIDParametersAnswerAlike(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	e, ctx := w.e, w.e.ctx()
	// C is a customer none of the roles below has anything of: no
	// grant, no factory switch, another branch of the tree.
	if _, err := w.op.CreateTenant(ctx, apiv1.NewTenant{ID: "C", TenantPatch: apiv1.TenantPatch{Name: apiv1.Ptr("Customer C")}}); err != nil {
		t.Fatal(err)
	}
	site, err := w.op.CreateSite(ctx, "C", "Building of C")
	if err != nil {
		t.Fatal(err)
	}
	var dc apiv1.Device
	if err := w.op.Do(ctx, http.MethodPost, "/api/v1/devices", nil, map[string]any{"id": "dev-c", "tenantId": "C", "siteId": site.ID}, &dc); err != nil {
		t.Fatal(err)
	}
	key := e.ownerKey("C", "dev-c")
	e.deviceConn("dev-c", key).mustPublish(t, "devices/dev-c/messages/events/", `{"temperature": 61.5}`)
	w.site["C"], w.device["C"] = site.ID, "dev-c"
	cAdmin := signUp(t, e, e.customerAdmin("C"), "C", "customer-admin", "boss@c.example").bearer
	deadline := time.Now().Add(10 * time.Second)
	for {
		var page struct{ Devices []apiv1.DeviceLatest }
		if err := cAdmin.Do(ctx, http.MethodGet, "/api/v1/telemetry/latest", nil, nil, &page); err != nil {
			t.Fatal(err)
		}
		if len(page.Devices) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("C's telemetry never arrived")
		}
		time.Sleep(50 * time.Millisecond)
	}

	const ghostTenant, ghostSite, ghostDevice = "ghost-tenant", "site_ghost0000000000", "ghost-device"
	type probe struct {
		method, path string
		query        func(x string) url.Values
		body         func(x string) any
	}
	q := func(k string, extra ...string) func(string) url.Values {
		return func(x string) url.Values {
			v := url.Values{k: {x}}
			for i := 0; i+1 < len(extra); i += 2 {
				v.Set(extra[i], extra[i+1])
			}
			return v
		}
	}
	var tenantProbes []probe
	for _, p := range []string{"/api/v1/kpi", "/api/v1/tenants", "/api/v1/tenant", "/api/v1/devices", "/api/v1/sites",
		"/api/v1/users", "/api/v1/grants", "/api/v1/alarms", "/api/v1/rules", "/api/v1/access-log", "/api/v1/audit",
		"/api/v1/dps", "/api/v1/dps/enrollment-groups", "/api/v1/dps/enrollments", "/api/v1/dps/registrations",
		"/api/v1/webhooks", "/api/v1/escalation", "/api/v1/deliveries", "/api/v1/maintenance-plans",
		"/api/v1/supporters/" + w.as["supporter"].user.SupporterID} {
		tenantProbes = append(tenantProbes, probe{method: http.MethodGet, path: p, query: q("tenant")})
	}
	tenantProbes = append(tenantProbes,
		probe{method: http.MethodGet, path: "/api/v1/telemetry/latest", query: q("tenant", "limit", "1")},
		probe{method: http.MethodPost, path: "/api/v1/devices", body: func(x string) any {
			return map[string]any{"id": "probe-device", "tenantId": x}
		}},
		probe{method: http.MethodPost, path: "/api/v1/sites", body: func(x string) any {
			return map[string]any{"tenantId": x, "name": "Probe"}
		}},
		probe{method: http.MethodPost, path: "/api/v1/users", body: func(x string) any {
			return map[string]any{"tenantId": x, "email": "probe@probe.example", "role": "customer-user", "firstName": "P", "lastName": "Q"}
		}},
		probe{method: http.MethodPost, path: "/api/v1/tenants", body: func(x string) any {
			return map[string]any{"parentId": x, "name": "Probe"}
		}},
	)
	siteProbes := []probe{
		{method: http.MethodGet, path: "/api/v1/kpi", query: q("site")},
		{method: http.MethodGet, path: "/api/v1/devices", query: q("site")},
		{method: http.MethodGet, path: "/api/v1/alarms", query: q("site")},
		{method: http.MethodGet, path: "/api/v1/grants", query: q("site")},
	}
	deviceProbes := []probe{
		{method: http.MethodGet, path: "/api/v1/kpi", query: q("device")},
		{method: http.MethodGet, path: "/api/v1/alarms", query: q("device")},
		{method: http.MethodGet, path: "/api/v1/grants", query: q("device")},
	}
	checked := 0
	for _, role := range []string{"customer-admin", "customer-user", "supporter", "operator-service"} {
		c := w.as[role].bearer
		const ft = "C"
		for _, set := range []struct {
			kind           string
			probes         []probe
			existing, none string
		}{
			{"tenant", tenantProbes, ft, ghostTenant},
			{"site", siteProbes, w.site[ft], ghostSite},
			{"device", deviceProbes, w.device[ft], ghostDevice},
		} {
			names := map[string]string{set.existing: "<" + set.kind + ">", set.none: "<" + set.kind + ">"}
			for _, p := range set.probes {
				call := func(x string) string {
					var qv url.Values
					var body any
					if p.query != nil {
						qv = p.query(x)
					}
					if p.body != nil {
						body = p.body(x)
					}
					return outcome(c, t, p.method, p.path, qv, body, names)
				}
				got, want := call(set.existing), call(set.none)
				if got != want {
					t.Errorf("%s: %s %s with %s %q (exists, not theirs): %s\nwith %q (does not exist): %s",
						role, p.method, p.path, set.kind, set.existing, got, set.none, want)
				}
				checked++
			}
		}
	}
	t.Logf("%d probes compared", checked)
}

// TestTenantIDNeverReused: a deleted tenant's id cannot be taken again, so
// its access log (e-mails, addresses, browsers) never reaches a
// newcomer; a deleted device's id made again in another tenant brings
// none of its old history along.
func TestTenantIDNeverReused(t *testing.T) {
	t.Parallel()
	tenantIDNeverReused(t, start(t))
}

func TestTenantIDNeverReusedPostgres(t *testing.T) {
	t.Parallel()
	tenantIDNeverReused(t, start(t, withDatabase(pgtest.URL(t))))
}

func tenantIDNeverReused(t *testing.T, e *env) {
	ctx := e.ctx()
	for _, id := range []string{"gone", "live", "newcomer"} {
		if _, err := e.api.CreateTenant(ctx, apiv1.NewTenant{ID: id, TenantPatch: apiv1.TenantPatch{Name: apiv1.Ptr("Tenant " + id)}}); err != nil {
			t.Fatal(err)
		}
	}
	// History in "gone": an account that signs in (e-mail, IP, browser in
	// the access log) and a device with a refused message.
	gone := signUp(t, e, e.api, "gone", "customer-admin", "secret.person@gone.example").bearer
	var d apiv1.Device
	if err := gone.Do(ctx, http.MethodPost, "/api/v1/devices", nil, map[string]any{"id": "pump-7"}, &d); err != nil {
		t.Fatal(err)
	}
	key, _ := base64.StdEncoding.DecodeString(d.PrimaryKey)
	e.deviceConn("pump-7", key).mustPublish(t, "devices/pump-7/messages/events/", "not json at all")
	var rejected struct{ Rejected []json.RawMessage }
	deadline := time.Now().Add(10 * time.Second)
	for len(rejected.Rejected) == 0 {
		if err := gone.Do(ctx, http.MethodGet, "/api/v1/devices/pump-7/rejected", nil, nil, &rejected); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the refused message was not recorded")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var log apiv1.AuditPage
	if err := e.api.Do(ctx, http.MethodGet, "/api/v1/access-log", url.Values{"tenant": {"gone"}}, nil, &log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fmt.Sprint(log.Entries), "secret.person@gone.example") {
		t.Fatalf("the access log of gone lacks the sign-in: %+v", log.Entries)
	}
	if err := e.api.Do(ctx, http.MethodDelete, "/api/v1/tenants/gone", nil, nil, nil); err != nil {
		t.Fatal(err)
	}

	// The id is refused like a taken one.
	taken := outcome(e.api, t, http.MethodPost, "/api/v1/tenants", nil, map[string]any{"id": "live", "name": "x"}, map[string]string{"live": "<id>"})
	again := outcome(e.api, t, http.MethodPost, "/api/v1/tenants", nil, map[string]any{"id": "gone", "name": "x"}, map[string]string{"gone": "<id>"})
	if !strings.HasPrefix(again, "409 ") || again != taken {
		t.Fatalf("re-creating a deleted tenant's id: %s; a taken id: %s", again, taken)
	}
	if err := e.api.Do(ctx, http.MethodGet, "/api/v1/tenants/gone", nil, nil, nil); !client.IsNotFound(err) {
		t.Fatalf("the deleted tenant: %v", err)
	}

	// The device id is free again, in another tenant, without its past.
	if err := e.api.Do(ctx, http.MethodPost, "/api/v1/devices", nil, map[string]any{"id": "pump-7", "tenantId": "newcomer"}, nil); err != nil {
		t.Fatal(err)
	}
	admin := signUp(t, e, e.api, "newcomer", "customer-admin", "boss@newcomer.example")
	rejected.Rejected = nil
	if err := admin.bearer.Do(ctx, http.MethodGet, "/api/v1/devices/pump-7/rejected", nil, nil, &rejected); err != nil || len(rejected.Rejected) != 0 {
		t.Errorf("the new pump-7's refused messages: %d, %v", len(rejected.Rejected), err)
	}
	var alarms apiv1.AlarmPage
	if err := admin.bearer.Do(ctx, http.MethodGet, "/api/v1/alarms", url.Values{"device": {"pump-7"}}, nil, &alarms); err != nil || len(alarms.Alarms) != 0 {
		t.Errorf("the new pump-7's alarms: %d, %v", len(alarms.Alarms), err)
	}
	log = apiv1.AuditPage{}
	if err := admin.bearer.Do(ctx, http.MethodGet, "/api/v1/access-log", url.Values{"limit": {"1000"}}, nil, &log); err != nil {
		t.Fatal(err)
	}
	for _, en := range log.Entries {
		if en.OwnerTenantID == "gone" || en.TenantID == "gone" || strings.Contains(en.ActorName, "gone.example") {
			t.Errorf("the newcomer sees the deleted tenant's history: %+v", en)
		}
	}
}

// TestTokenCannotOutliveOrOutscopeItsMaker: a token makes only tokens that
// end no later than itself (never tokens without an end) and have no scope
// it lacks.
func TestTokenCannotOutliveOrOutscopeItsMaker(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := e.ctx()
	if _, err := e.api.CreateTenant(ctx, apiv1.NewTenant{ID: "tok", TenantPatch: apiv1.TenantPatch{Name: apiv1.Ptr("Tok")}}); err != nil {
		t.Fatal(err)
	}
	p := signUp(t, e, e.api, "tok", "customer-admin", "boss@tok.example")
	hour, err := p.session.CreateToken(ctx, "one hour", nil, "1h")
	if err != nil {
		t.Fatal(err)
	}
	writeOnly, err := p.session.CreateToken(ctx, "write only", []string{"write"}, "")
	if err != nil {
		t.Fatal(err)
	}
	readOnly, err := p.session.CreateToken(ctx, "read only", []string{"read"}, "")
	if err != nil {
		t.Fatal(err)
	}
	byHour, byWrite, byRead := e.api.WithToken(hour.Token), e.api.WithToken(writeOnly.Token), e.api.WithToken(readOnly.Token)
	for _, c := range []struct {
		name   string
		by     *client.Client
		scopes []string
		ttl    string
		want   int // 0: made
	}{
		{"longer than its maker", byHour, nil, "2h", http.StatusForbidden},
		{"the maximum from an expiring maker", byHour, nil, api.MaxAPITokenTTL.String(), http.StatusForbidden},
		{"shorter than its maker", byHour, nil, "30m", 0},
		{"a scope its maker lacks", byWrite, []string{"read"}, "", http.StatusForbidden},
		{"both scopes from a write-only maker", byWrite, []string{"read", "write"}, "", http.StatusForbidden},
		{"its maker's scope", byWrite, []string{"write"}, "", 0},
		{"anything from a read-only maker", byRead, []string{"read"}, "", http.StatusForbidden},
	} {
		tok, err := c.by.CreateToken(ctx, c.name, c.scopes, c.ttl)
		switch {
		case c.want == 0 && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != 0 && client.StatusOf(err) != c.want:
			t.Errorf("%s: made (%+v, %v), want HTTP %d", c.name, tok.ExpiresAt, err, c.want)
		case c.want == 0 && c.ttl != "" && (tok.ExpiresAt == nil || tok.ExpiresAt.After(*hour.ExpiresAt)):
			t.Errorf("%s: expires %v, after its maker's %v", c.name, tok.ExpiresAt, hour.ExpiresAt)
		case c.want == 0 && c.by == byWrite && slices.Contains(tok.Scopes, "read"):
			t.Errorf("%s: scopes %v", c.name, tok.Scopes)
		}
	}
	// Without a ttl, a token made by an expiring token ends with it.
	tok, err := byHour.CreateToken(ctx, "no ttl", nil, "")
	if err != nil || tok.ExpiresAt == nil || !tok.ExpiresAt.Equal(*hour.ExpiresAt) {
		t.Errorf("no ttl from an expiring maker: expires %v (maker %v), %v", tok.ExpiresAt, hour.ExpiresAt, err)
	}
	// A token made by a write-only token without scopes is write-only too.
	tok, err = byWrite.CreateToken(ctx, "default scopes", nil, "")
	if err != nil || !slices.Equal(tok.Scopes, []string{"write"}) {
		t.Errorf("default scopes from a write-only maker: %v, %v", tok.Scopes, err)
	}
}

// TestEmailNormalisedAndLookAlikesRefused: addresses are stored in one
// form (NFKC, lower case) and found in any case or width; addresses with
// invisible or mixed-script characters are refused with a clear error.
func TestEmailNormalisedAndLookAlikesRefused(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := e.ctx()
	if _, err := e.api.CreateTenant(ctx, apiv1.NewTenant{ID: "mail", TenantPatch: apiv1.TenantPatch{Name: apiv1.Ptr("Mail")}}); err != nil {
		t.Fatal(err)
	}
	u := activeAccount(t, e, "mail", "  Anna.Müller@Bäckerei.Example ")
	if u.Email != "anna.müller@bäckerei.example" {
		t.Fatalf("stored e-mail %q", u.Email)
	}
	for _, typed := range []string{"ANNA.MÜLLER@BÄCKEREI.EXAMPLE", "Ａｎｎａ.Müller@Bäckerei.Example", "anna.mu\u0308ller@ba\u0308ckerei.example"} {
		if _, _, err := e.api.Login(ctx, typed, testPassword, ""); err != nil {
			t.Errorf("sign in as %q: %v", typed, err)
		}
	}
	if _, err := e.api.CreateUser(ctx, apiv1.NewUser{TenantID: "mail", Role: "customer-user", Email: "ANNA.MÜLLER@bäckerei.example", Profile: apiv1.Profile{FirstName: apiv1.Ptr("A"), LastName: apiv1.Ptr("M")}}); !client.IsConflict(err) {
		t.Errorf("the same address in capitals: %v, want a conflict", err)
	}
	for _, c := range []struct{ email, why string }{
		{"p\u0430ypal@example.com", "mixes the scripts"},
		{"paypal@ex\u0430mple.com", "mixes the scripts"},
		{"anna\u200b@example.com", "invisible character"},
		{"\u202eanna@example.com", "invisible character"},
		{"Anna <anna@example.com>", "not an e-mail address"},
	} {
		_, err := e.api.CreateUser(ctx, apiv1.NewUser{TenantID: "mail", Role: "customer-user", Email: c.email, Profile: apiv1.Profile{FirstName: apiv1.Ptr("A"), LastName: apiv1.Ptr("M")}})
		if client.StatusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), c.why) {
			t.Errorf("account %q: %v, want 400 saying %q", c.email, err, c.why)
		}
		err = e.api.Do(ctx, http.MethodPatch, "/api/v1/tenants/mail", nil, map[string]any{"contact": map[string]string{"email": c.email}}, nil)
		if client.StatusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), c.why) {
			t.Errorf("contact %q: %v, want 400 saying %q", c.email, err, c.why)
		}
	}
}

// TestSignInLimitPerIPv6Prefix: one client walking the addresses of its
// IPv6 /64 is limited as one address.
func TestSignInLimitPerIPv6Prefix(t *testing.T) {
	t.Parallel()
	e := start(t, behindProxy())
	hc := browser(t, e)
	reset := func(ip string) int {
		req, _ := http.NewRequestWithContext(e.ctx(), http.MethodPost, "https://"+e.srv.HTTPAddr()+"/api/v1/auth/password-reset",
			strings.NewReader(`{"email":"someone@example.com"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", ip)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return read(t, resp).status
	}
	// Reset requests count towards the limit like failed sign-ins.
	for i := range api.MaxSignInFailuresPerIP {
		if st := reset(fmt.Sprintf("2001:db8:77:1::%x", i+1)); st != http.StatusAccepted {
			t.Fatalf("request %d: %d", i, st)
		}
	}
	if a := signInFrom(t, e, hc, "2001:db8:77:1:abcd:ef01:2345:6789", "someone@example.com", "guess"); a.status != http.StatusTooManyRequests ||
		!strings.Contains(a.body, "this address") {
		t.Errorf("another address of the same /64: %d %s", a.status, a.body)
	}
	if a := signInFrom(t, e, hc, "2001:db8:77:2::1", "someone@example.com", "guess"); a.status != http.StatusUnauthorized {
		t.Errorf("the next /64: %d %s", a.status, a.body)
	}
}
