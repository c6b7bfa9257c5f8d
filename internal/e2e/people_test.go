package e2e

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/api"
	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/cli"
	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/mail/mailtest"
	"github.com/warden-iot/warden/internal/server"
)

func withSMTP(s *mailtest.Sink) option {
	return func(c *server.Config) { c.SMTP = s.Config() }
}

// TestActivationByMail follows the account e-mail a real SMTP server
// receives: open the link's page, post the form, sign in. Then the same
// for a password reset.
func TestActivationByMail(t *testing.T) {
	t.Parallel()
	sink := mailtest.Start(t)
	e := start(t, withSMTP(sink))
	ctx := e.ctx()
	if _, err := e.api.CreateTenant(ctx, apiv1.NewTenant{ID: "pellets-gmbh", TenantPatch: apiv1.TenantPatch{Name: apiv1.Ptr("Pellets GmbH")}}); err != nil {
		t.Fatal(err)
	}
	u, err := e.api.CreateUser(ctx, apiv1.NewUser{TenantID: "pellets-gmbh", Role: "customer-admin", Email: "Anna.Huber@Pellets.example", Profile: apiv1.Profile{FirstName: apiv1.Ptr("Anna"), LastName: apiv1.Ptr("Huber")}})
	if err != nil {
		t.Fatal(err)
	}
	if u.ActivationLink != "" || !u.ActivationMailed || u.Email != "anna.huber@pellets.example" {
		t.Fatalf("created user: link %q mailed %v email %q", u.ActivationLink, u.ActivationMailed, u.Email)
	}
	msgs, err := sink.Wait(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	m := msgs[0]
	if len(m.To) != 1 || m.To[0] != "anna.huber@pellets.example" {
		t.Fatalf("mail to %v", m.To)
	}
	base := "https://" + e.srv.HTTPAddr()
	link := mailtest.FindLink(m.Text, "https://")
	if link == "" {
		t.Fatalf("no link in the mail:\n%s", m.Text)
	}
	// The link names the server by its public URL (localhost); reach it at
	// the address it listens on.
	lu, err := url.Parse(link)
	if err != nil || lu.Path != "/activate" || lu.Query().Get("token") == "" {
		t.Fatalf("activation link %q", link)
	}
	hc := browser(t, e)
	page := get(t, hc, base+"/activate?"+lu.RawQuery)
	if !strings.Contains(page.body, `name="token"`) || page.header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("activation page: %d %q headers %v", page.status, page.body, page.header)
	}
	token := lu.Query().Get("token")
	// A too short password keeps the link usable.
	if r := postForm(t, hc, base+"/activate", url.Values{"token": {token}, "password": {"short"}, "password2": {"short"}}); r.status != http.StatusBadRequest {
		t.Fatalf("short password: %d %s", r.status, r.body)
	}
	pw := "Zażółć gęślą jaźń 2026"
	if r := postForm(t, hc, base+"/activate", url.Values{"token": {token}, "password": {pw}, "password2": {pw}}); r.status != http.StatusOK ||
		!strings.Contains(r.body, "password is set") {
		t.Fatalf("activation: %d %s", r.status, r.body)
	}
	// Single use.
	if r := postForm(t, hc, base+"/activate", url.Values{"token": {token}, "password": {pw}, "password2": {pw}}); r.status != http.StatusGone {
		t.Fatalf("second use of the link: %d %s", r.status, r.body)
	}
	sc, s, err := e.api.Login(ctx, "anna.huber@pellets.example", pw, "")
	if err != nil {
		t.Fatal(err)
	}
	if s.User.TenantID != "pellets-gmbh" || s.User.Role != "customer-admin" || s.User.Status != "active" {
		t.Fatalf("signed in as %+v", s.User)
	}
	var me apiv1.User
	if err := sc.Do(ctx, "GET", "/api/v1/me", nil, nil, &me); err != nil || me.Email != "anna.huber@pellets.example" {
		t.Fatalf("me: %+v %v", me, err)
	}

	// Password reset: the answer does not tell whether the address exists.
	for _, addr := range []string{"anna.huber@pellets.example", "nobody@pellets.example"} {
		if err := e.api.Anonymous().Do(ctx, "POST", "/api/v1/auth/password-reset", nil, map[string]string{"email": addr}, nil); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err = sink.Wait(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(sink.Messages()); n != 2 {
		t.Fatalf("%d mails after two reset requests (one for an unknown address), want 2", n)
	}
	reset := mailtest.FindLink(msgs[1].Text, "https://")
	ru, _ := url.Parse(reset)
	if ru == nil || ru.Path != "/reset-password" {
		t.Fatalf("reset link %q", reset)
	}
	newPW := "Grüße aus Linz 4020"
	if err := e.api.Anonymous().Do(ctx, "POST", "/api/v1/auth/password-reset/confirm", nil,
		map[string]string{"token": ru.Query().Get("token"), "password": newPW}, nil); err != nil {
		t.Fatal(err)
	}
	// The reset ended the old session and replaced the password.
	if err := sc.Do(ctx, "GET", "/api/v1/me", nil, nil, nil); client.StatusOf(err) != http.StatusUnauthorized {
		t.Errorf("session after a password reset: %v", err)
	}
	if _, _, err := e.api.Login(ctx, "anna.huber@pellets.example", pw, ""); client.StatusOf(err) != http.StatusUnauthorized {
		t.Errorf("old password after reset: %v", err)
	}
	if _, _, err := e.api.Login(ctx, "anna.huber@pellets.example", newPW, ""); err != nil {
		t.Errorf("new password: %v", err)
	}
}

type answer struct {
	status int
	body   string
	header http.Header
}

// browser is an HTTP client trusting the server's CA.
func browser(t *testing.T, e *env) *http.Client {
	t.Helper()
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: e.tlsConfig()},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Cleanup(hc.CloseIdleConnections)
	return hc
}

func get(t *testing.T, hc *http.Client, u string) answer {
	t.Helper()
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	return read(t, resp)
}

func postForm(t *testing.T, hc *http.Client, u string, v url.Values) answer {
	t.Helper()
	resp, err := hc.PostForm(u, v)
	if err != nil {
		t.Fatal(err)
	}
	return read(t, resp)
}

func read(t *testing.T, resp *http.Response) answer {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, body: string(b), header: resp.Header}
}

// TestSessionCookieCSRFAndLockout checks the session cookie's attributes,
// that a state-changing request without the CSRF token is refused, and
// that repeated failed sign-ins lock the account.
func TestSessionCookieCSRFAndLockout(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := e.ctx()
	if _, err := e.api.CreateTenant(ctx, apiv1.NewTenant{ID: "cafe", TenantPatch: apiv1.TenantPatch{Name: apiv1.Ptr("Café Central")}}); err != nil {
		t.Fatal(err)
	}
	p := signUp(t, e, e.api, "cafe", "customer-admin", "chef@cafe.example")

	// The raw Set-Cookie header of a sign-in.
	hc := browser(t, e)
	body := strings.NewReader(`{"email":"chef@cafe.example","password":"` + testPassword + `"}`)
	resp, err := hc.Post("https://"+e.srv.HTTPAddr()+"/api/v1/auth/login", "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	a := read(t, resp)
	cookies := resp.Cookies()
	if a.status != http.StatusOK || len(cookies) != 1 {
		t.Fatalf("login: %d %s, cookies %v", a.status, a.body, cookies)
	}
	ck := cookies[0]
	if ck.Name != apiv1.SessionCookie || !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" ||
		!ck.Expires.IsZero() || ck.MaxAge != 0 || len(ck.Value) < 40 {
		t.Errorf("session cookie %q: HttpOnly=%v Secure=%v SameSite=%v Path=%q Expires=%v MaxAge=%d",
			resp.Header.Get("Set-Cookie"), ck.HttpOnly, ck.Secure, ck.SameSite, ck.Path, ck.Expires, ck.MaxAge)
	}
	if cc := a.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}

	// CSRF: with the cookie but without the header, a change is refused;
	// reads work; with the header, the change goes through.
	sc := p.session
	if err := sc.WithoutCSRF().Do(ctx, "POST", "/api/v1/sites", nil, map[string]any{"name": "Ring"}, nil); client.StatusOf(err) != http.StatusForbidden ||
		!strings.Contains(err.Error(), "CSRF") {
		t.Errorf("change without CSRF token: %v", err)
	}
	if err := sc.WithoutCSRF().Do(ctx, "GET", "/api/v1/sites", nil, nil, nil); err != nil {
		t.Errorf("read without CSRF token: %v", err)
	}
	if err := sc.Do(ctx, "POST", "/api/v1/sites", nil, map[string]any{"name": "Ring"}, nil); err != nil {
		t.Errorf("change with CSRF token: %v", err)
	}
	// A token of another session does not fit.
	other, s2, err := e.api.Login(ctx, "chef@cafe.example", testPassword, "")
	if err != nil {
		t.Fatal(err)
	}
	_ = other
	var sess apiv1.Session
	if err := sc.Do(ctx, "GET", "/api/v1/session", nil, nil, &sess); err != nil || sess.CSRFToken == s2.CSRFToken {
		t.Errorf("two sessions share a CSRF token: %v", err)
	}

	// Sign-out ends the session on the server.
	if err := sc.Do(ctx, "DELETE", "/api/v1/session", nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := sc.Do(ctx, "GET", "/api/v1/me", nil, nil, nil); client.StatusOf(err) != http.StatusUnauthorized {
		t.Errorf("after sign-out: %v", err)
	}

	// Lockout: four failures answer 401 (slower each time), the fifth
	// locks, and then even the right password is refused.
	anon := e.api.Anonymous()
	var last time.Duration
	for i := 1; i <= api.MaxFailedLogins; i++ {
		t0 := time.Now()
		_, _, err := anon.Login(ctx, "chef@cafe.example", "wrong password "+string(rune('a'+i)), "")
		took := time.Since(t0)
		want := http.StatusUnauthorized
		if i == api.MaxFailedLogins {
			want = http.StatusTooManyRequests
		} else if i > 1 && took < last {
			// Each failure waits failures × 250 ms before answering.
			t.Logf("failure %d took %v, the one before %v", i, took, last)
		}
		if client.StatusOf(err) != want {
			t.Fatalf("failed login %d: %v, want HTTP %d", i, err, want)
		}
		if i < api.MaxFailedLogins && took < time.Duration(i)*200*time.Millisecond {
			t.Errorf("failed login %d answered after %v: not slowed", i, took)
		}
		last = took
	}
	if _, _, err := anon.Login(ctx, "chef@cafe.example", testPassword, ""); client.StatusOf(err) != http.StatusTooManyRequests {
		t.Fatalf("right password on a locked account: %v", err)
	}
	// The bearer token keeps working (it is not a sign-in), and an admin
	// can lift the lock.
	if err := e.api.Do(ctx, "PATCH", "/api/v1/users/"+p.user.ID, nil, map[string]any{"unlock": true}, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := anon.Login(ctx, "chef@cafe.example", testPassword, ""); err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	// Unknown addresses get the same answer as wrong passwords.
	if _, _, err := anon.Login(ctx, "nobody@cafe.example", testPassword, ""); client.StatusOf(err) != http.StatusUnauthorized {
		t.Errorf("unknown address: %v", err)
	}

	// The trail has the sign-ins, the failures, the lock and the sign-out.
	var page apiv1.AuditPage
	if err := e.api.Do(ctx, "GET", "/api/v1/audit", url.Values{"limit": {"1000"}}, nil, &page); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, en := range page.Entries {
		if en.Action == "auth.login" || en.Action == "auth.logout" {
			count[en.Action+"/"+en.Outcome]++
		}
	}
	if count["auth.login/success"] < 3 || count["auth.login/denied"] < 5 || count["auth.logout/success"] != 1 {
		t.Errorf("audited sign-ins: %v", count)
	}
}

// TestTOTP turns two-factor sign-in on and signs in with a code.
func TestTOTP(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := e.ctx()
	p := signUp(t, e, e.api, "root", "operator-service", "desk@maker.example")
	var k struct{ Secret, URL string }
	if err := p.session.Do(ctx, "POST", "/api/v1/me/totp", nil, nil, &k); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k.URL, "otpauth://totp/") {
		t.Fatalf("totp url %q", k.URL)
	}
	if err := p.session.Do(ctx, "POST", "/api/v1/me/totp/confirm", nil, map[string]string{"code": "000000"}, nil); client.StatusOf(err) != http.StatusBadRequest {
		t.Fatalf("wrong confirmation code: %v", err)
	}
	base := time.Now()
	code, _ := identity.TOTPCode(k.Secret, base)
	if err := p.session.Do(ctx, "POST", "/api/v1/me/totp/confirm", nil, map[string]string{"code": code}, nil); err != nil {
		t.Fatal(err)
	}
	_, _, err := e.api.Login(ctx, "desk@maker.example", testPassword, "")
	if client.StatusOf(err) != http.StatusUnauthorized || !strings.Contains(err.Error(), "TOTP") {
		t.Fatalf("sign-in without a code: %v", err)
	}
	// A code is spent once used, even within its 30 seconds.
	if _, _, err := e.api.Login(ctx, "desk@maker.example", testPassword, code); client.StatusOf(err) != http.StatusUnauthorized {
		t.Fatalf("sign-in with the code the confirmation used: %v", err)
	}
	next, _ := identity.TOTPCode(k.Secret, base.Add(30*time.Second)) // the next step, within the allowed skew
	if _, _, err := e.api.Login(ctx, "desk@maker.example", testPassword, next); err != nil {
		t.Fatalf("sign-in with a fresh code: %v", err)
	}
	if _, _, err := e.api.Login(ctx, "desk@maker.example", testPassword, next); client.StatusOf(err) != http.StatusUnauthorized {
		t.Fatalf("the same code twice: %v", err)
	}
}

// TestGrantRevokeAndExpiry: an owner grants a supporter a device; the
// supporter reads it; the owner revokes; the very next request is refused.
// A grant with an expiry stops working at that instant. The owner sees
// every read in the access log.
func TestGrantRevokeAndExpiry(t *testing.T) {
	t.Parallel()
	e := start(t, withFakeClock())
	ctx := e.ctx()
	if _, err := e.api.CreateTenant(ctx, apiv1.NewTenant{ID: "farm", TenantPatch: apiv1.TenantPatch{Name: apiv1.Ptr("Bauernhof Gruber")}}); err != nil {
		t.Fatal(err)
	}
	owner := signUp(t, e, e.api, "farm", "customer-admin", "gruber@farm.example")
	tech := signUp(t, e, e.api, "root", "supporter", "tech@installer.example")
	site, err := owner.bearer.CreateSite(ctx, "farm", "Hof 3, 4020 Linz")
	if err != nil {
		t.Fatal(err)
	}
	if err := owner.bearer.Do(ctx, "POST", "/api/v1/devices", nil, map[string]any{"id": "P1234567", "siteId": site.ID,
		"model": "pellet-heater", "serialNumber": "P1234567"}, nil); err != nil {
		t.Fatal(err)
	}
	read := func() error {
		return tech.bearer.Do(ctx, "GET", "/api/v1/devices/P1234567/telemetry/latest", nil, nil, nil)
	}
	if err := read(); client.StatusOf(err) != http.StatusNotFound {
		t.Fatalf("before any grant: %v", err)
	}
	// The owner checks who the id belongs to, then grants.
	var who map[string]string
	if err := owner.bearer.Do(ctx, "GET", "/api/v1/supporters/"+tech.user.SupporterID, nil, nil, &who); err != nil || who["lastName"] != "supporter" {
		t.Fatalf("supporter lookup: %v %v", who, err)
	}
	g, err := owner.bearer.Grant(ctx, tech.user.SupporterID, "", "P1234567", "")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := read(); err != nil {
			t.Fatalf("granted read: %v", err)
		}
	}
	if err := owner.bearer.RevokeGrant(ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	if err := read(); client.StatusOf(err) != http.StatusNotFound {
		t.Fatalf("the request right after the revocation: %v", err)
	}
	if err := owner.bearer.RevokeGrant(ctx, g.ID); client.StatusOf(err) != http.StatusConflict {
		t.Errorf("revoking twice: %v", err)
	}

	// Expiry: a site grant for two seconds.
	exp := e.now().Add(2 * time.Second).UTC()
	if _, err := owner.bearer.Grant(ctx, tech.user.SupporterID, site.ID, "", exp.Format(time.RFC3339Nano)); err != nil {
		t.Fatal(err)
	}
	if err := read(); err != nil {
		t.Fatalf("read under the site grant: %v", err)
	}
	e.clock.Set(exp.Add(20 * time.Millisecond))
	if err := read(); client.StatusOf(err) != http.StatusNotFound {
		t.Fatalf("the request right after expiry: %v", err)
	}

	// The owner sees the supporter's reads and the grant changes.
	var log apiv1.AuditPage
	if err := owner.bearer.Do(ctx, "GET", "/api/v1/access-log", url.Values{"outside": {"true"}, "limit": {"1000"}}, nil, &log); err != nil {
		t.Fatal(err)
	}
	reads, refused := 0, 0
	for _, en := range log.Entries {
		if en.ActorID == tech.user.ID && en.Action == "device.data.read" && en.Target == "P1234567" && en.OwnerTenantID == "farm" {
			switch en.Outcome {
			case "success":
				reads++
			case "denied":
				refused++
			}
		}
		if en.TenantID == "farm" {
			t.Errorf("outside=true listed an insider's entry: %+v", en)
		}
	}
	if reads != 4 || refused != 3 {
		t.Errorf("access log holds %d reads and %d refused reads by the supporter, want 4 and 3 (before the grant, after revocation, after expiry)", reads, refused)
	}
	if err := owner.bearer.Do(ctx, "GET", "/api/v1/access-log", url.Values{"limit": {"1000"}}, nil, &log); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, en := range log.Entries {
		seen[en.Action]++
	}
	if seen["grant.create"] != 2 || seen["grant.revoke"] < 1 {
		t.Errorf("owner's log actions: %v", seen)
	}
	// The same through the command line.
	var out, errOut bytes.Buffer
	if code := cli.Main(ctx, []string{"audit", "list", "--access-log", "--outside", "--tenant", "farm", "--server", "https://" + e.srv.HTTPAddr(),
		"--token", adminToken, "--ca", e.srv.CAFile()}, strings.NewReader(""), &out, &errOut); code != 0 ||
		strings.Count(out.String(), "device.data.read") != 7 {
		t.Errorf("warden audit list --access-log: exit %d\n%s%s", code, out.String(), errOut.String())
	}

	// The supporter cannot read the owner's log.
	if err := tech.bearer.Do(ctx, "GET", "/api/v1/access-log", url.Values{"tenant": {"farm"}}, nil, nil); client.StatusOf(err) != http.StatusForbidden &&
		client.StatusOf(err) != http.StatusNotFound {
		t.Errorf("supporter reading the owner's access log: %v", err)
	}
}

// TestSignInNeedsJSON: a cross-site form cannot post to the sign-in
// routes (they accept application/json only).
func TestSignInNeedsJSON(t *testing.T) {
	t.Parallel()
	e := start(t)
	hc := browser(t, e)
	for _, ct := range []string{"application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"} {
		resp, err := hc.Post("https://"+e.srv.HTTPAddr()+"/api/v1/auth/login", ct, strings.NewReader(`{"email":"a@b.c","password":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		a := read(t, resp)
		if a.status != http.StatusUnsupportedMediaType {
			t.Errorf("login as %s: %d %s", ct, a.status, a.body)
		}
	}
}

// TestSignInLimitPerAddress: one address trying many accounts is stopped,
// though no single account reaches its lock.
func TestSignInLimitPerAddress(t *testing.T) {
	t.Parallel()
	e := start(t)
	anon := e.api.Anonymous()
	for i := range api.MaxSignInFailuresPerIP {
		if _, _, err := anon.Login(e.ctx(), "user"+strconv.Itoa(i)+"@example.com", "guess", ""); client.StatusOf(err) != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	_, _, err := anon.Login(e.ctx(), "another@example.com", "guess", "")
	if client.StatusOf(err) != http.StatusTooManyRequests || !strings.Contains(err.Error(), "this address") {
		t.Fatalf("attempt past the limit: %v", err)
	}
}

// TestPasswordChangeGuessesLock: guessing the current password through
// PUT /me/password (with a stolen session, say) counts as failed sign-ins
// of the address and locks it like them.
func TestPasswordChangeGuessesLock(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := e.ctx()
	if _, err := e.api.CreateTenant(ctx, apiv1.NewTenant{ID: "cafe", TenantPatch: apiv1.TenantPatch{Name: apiv1.Ptr("Café Central")}}); err != nil {
		t.Fatal(err)
	}
	signUp(t, e, e.api, "cafe", "customer-admin", "chef@cafe.example")
	sc, _, err := e.api.Login(ctx, "chef@cafe.example", testPassword, "")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= api.MaxFailedLogins; i++ {
		err := sc.Do(ctx, "PUT", "/api/v1/me/password", nil,
			map[string]any{"currentPassword": "guess " + strconv.Itoa(i), "newPassword": "a brand new passphrase"}, nil)
		want := http.StatusForbidden
		if i == api.MaxFailedLogins {
			want = http.StatusTooManyRequests
		}
		if client.StatusOf(err) != want {
			t.Fatalf("guess %d: %v, want HTTP %d", i, err, want)
		}
	}
	// Now even the right current password is refused, and so is a sign-in.
	if err := sc.Do(ctx, "PUT", "/api/v1/me/password", nil,
		map[string]any{"currentPassword": testPassword, "newPassword": "a brand new passphrase"}, nil); client.StatusOf(err) != http.StatusTooManyRequests {
		t.Fatalf("right password while locked: %v", err)
	}
	if _, _, err := e.api.Anonymous().Login(ctx, "chef@cafe.example", testPassword, ""); client.StatusOf(err) != http.StatusTooManyRequests {
		t.Fatalf("sign-in while locked: %v", err)
	}
}
