package cli

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/server"
	"github.com/warden-iot/warden/internal/server/servertest"
)

const peoplePassword = "correct horse battery staple"

// mustRun runs the command line and fails the test unless it exits 0.
func mustRun(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	out, errOut, code := run(t, args...)
	if code != 0 {
		t.Fatalf("warden %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out, errOut
}

// wantFail runs the command line and checks its exit status and that
// stderr holds every one of want.
func wantFail(t *testing.T, code int, want []string, args ...string) {
	t.Helper()
	_, errOut, got := run(t, args...)
	if got != code {
		t.Errorf("warden %s: exit %d, want %d; stderr: %s", strings.Join(args, " "), got, code, errOut)
	}
	for _, w := range want {
		if !strings.Contains(errOut, w) {
			t.Errorf("warden %s: stderr lacks %q:\n%s", strings.Join(args, " "), w, errOut)
		}
	}
}

func decodeJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	return v
}

// exported finds "export NAME=value" in login's output.
func exported(t *testing.T, out, name string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "export "+name+"="); ok {
			return strings.Trim(v, "'")
		}
	}
	t.Fatalf("no export of %s in:\n%s", name, out)
	return ""
}

func TestPeopleCommandsAgainstServer(t *testing.T) {
	const op = "cli-people-operator"
	srv, c := servertest.Start(t, server.Config{AdminToken: op}, nil)
	t.Setenv("WARDEN_SERVER", "https://"+srv.HTTPAddr())
	t.Setenv("WARDEN_TOKEN", op)
	t.Setenv("WARDEN_CA", srv.CAFile())

	// Tenants.
	out, _ := mustRun(t, "tenant", "create", "--name", "Customer A", "--id", "A", "--city", "Wien",
		"--contact-name", "Eva", "--retention-days", "30")
	if out != "A\n" {
		t.Fatalf("tenant create printed %q, want the id", out)
	}
	wantFail(t, 2, []string{"--name is required"}, "tenant", "create", "--id", "B")
	wantFail(t, 2, []string{"nothing to change"}, "tenant", "update", "A")
	wantFail(t, 2, []string{"unknown subcommand"}, "tenant", "frobnicate")
	mustRun(t, "tenant", "update", "A", "--postal-code", "1010", "--contact-phone", "+43 1 234")
	out, _ = mustRun(t, "tenant", "show", "A", "--json")
	ta := decodeJSON[apiv1.Tenant](t, out)
	if ta.Name != "Customer A" || ta.Address.City != "Wien" || ta.Address.PostalCode != "1010" ||
		ta.Contact.Name != "Eva" || ta.Contact.Phone != "+43 1 234" || ta.TelemetryRetentionDays != 30 {
		t.Errorf("after update, tenant A is %+v; want only postal code and phone changed", ta)
	}
	out, _ = mustRun(t, "tenant", "list")
	if !strings.Contains(out, "root/A") || !strings.Contains(out, "30 days") {
		t.Errorf("tenant list:\n%s", out)
	}
	mustRun(t, "tenant", "create", "--name", "Short-lived", "--id", "tmp", "--parent", "A")
	mustRun(t, "tenant", "delete", "tmp")
	wantFail(t, 1, []string{"404"}, "tenant", "show", "tmp")

	// A site of A.
	out, _ = mustRun(t, "site", "create", "--name", "Boiler house", "--tenant", "A", "--street", "Hauptstraße 1")
	site := strings.TrimSpace(out)
	if !strings.HasPrefix(site, "site") || strings.Count(out, "\n") != 1 {
		t.Fatalf("site create printed %q", out)
	}
	mustRun(t, "site", "update", site, "--city", "Wien")
	out, _ = mustRun(t, "site", "show", site, "--json")
	if s := decodeJSON[apiv1.Site](t, out); s.Address.Street != "Hauptstraße 1" || s.Address.City != "Wien" || s.FactoryAccess {
		t.Errorf("site after update: %+v", s)
	}
	wantFail(t, 2, []string{"want on or off"}, "site", "factory-access", site, "maybe")

	// A customer admin of A; no mail server, so the link is printed.
	wantFail(t, 2, []string{`--role "boss"`, "customer-admin"}, "user", "create", "--email", "boss@a.example",
		"--role", "boss", "--first-name", "Eva", "--last-name", "Boss", "--tenant", "A")
	wantFail(t, 2, []string{"--last-name is required"}, "user", "create", "--email", "boss@a.example",
		"--role", "customer-admin", "--first-name", "Eva", "--tenant", "A")
	out, errOut := mustRun(t, "user", "create", "--email", "boss@a.example", "--role", "customer-admin",
		"--first-name", "Eva", "--last-name", "Boss", "--tenant", "A")
	if !strings.HasPrefix(out, "usr") || strings.Count(out, "\n") != 1 {
		t.Errorf("user create printed %q on stdout, want only the id", out)
	}
	var link string
	for _, line := range strings.Split(errOut, "\n") {
		if l, ok := strings.CutPrefix(line, activationPrefix); ok {
			link = l
		}
	}
	u, err := url.Parse(link)
	if link == "" || err != nil || u.Query().Get("token") == "" {
		t.Fatalf("user create printed no activation link:\n%s", out)
	}
	boss, err := c.Anonymous().Activate(t.Context(), u.Query().Get("token"), peoplePassword)
	if err != nil {
		t.Fatalf("activate: %v", err)
	}

	// A supporter, made by the operator.
	_, errOut = mustRun(t, "user", "create", "--email", "tech@installer.example", "--role", "supporter",
		"--first-name", "Tom", "--last-name", "Tech", "--company", "Installer GmbH", "--tenant", "root")
	var sup string
	for _, line := range strings.Split(errOut, "\n") {
		if s, ok := strings.CutPrefix(line, "supporter id: "); ok {
			sup, _, _ = strings.Cut(s, " ")
		}
	}
	if !strings.HasPrefix(sup, "SUP-") {
		t.Fatalf("user create of a supporter printed no supporter id:\n%s", out)
	}
	out, _ = mustRun(t, "user", "list", "--json")
	users := decodeJSON[[]apiv1.User](t, out)
	var supID string
	for _, x := range users {
		if x.SupporterID == sup {
			supID = x.ID
		}
	}
	if supID == "" {
		t.Fatalf("user list lacks the supporter %s:\n%s", sup, out)
	}
	out, _ = mustRun(t, "user", "activation", supID)
	if !strings.Contains(out, activationPrefix+"https://") {
		t.Errorf("user activation printed %q", out)
	}
	mustRun(t, "user", "update", supID, "--company", "Service AG")
	out, _ = mustRun(t, "user", "show", supID, "--json")
	if x := decodeJSON[apiv1.User](t, out); x.Company != "Service AG" || x.FirstName != "Tom" || x.Role != "supporter" {
		t.Errorf("supporter after update: %+v", x)
	}

	// The customer admin signs in through the command line.
	t.Setenv("WARDEN_PASSWORD", peoplePassword)
	out, errOut = mustRun(t, "login", "--email", "boss@a.example")
	tok := exported(t, out, "WARDEN_TOKEN")
	if exported(t, out, "WARDEN_SERVER") != "https://"+srv.HTTPAddr() || exported(t, out, "WARDEN_CA") == "" {
		t.Errorf("login printed:\n%s", out)
	}
	if !strings.Contains(errOut, "customer-admin") || !strings.Contains(errOut, "warden cli ") {
		t.Errorf("login said: %s", errOut)
	}
	t.Setenv("WARDEN_TOKEN", tok)

	// The owner switches factory access on (the operator may not) and
	// grants the supporter the site.
	wantFail(t, 1, []string{"403"}, "site", "factory-access", site, "on", "--token", op)
	if _, errOut = mustRun(t, "site", "factory-access", site, "on"); !strings.Contains(errOut, "access on") {
		t.Errorf("factory-access on said %q", errOut)
	}
	wantFail(t, 2, []string{"exactly one of --site and --device"}, "grant", "create", "--supporter", sup)
	wantFail(t, 2, []string{"--until"}, "grant", "create", "--supporter", sup, "--site", site, "--until", "soon")
	out, _ = mustRun(t, "grant", "create", "--supporter", strings.ToLower(sup), "--site", site, "--until", "72h")
	grant := strings.TrimSpace(out)
	if !strings.HasPrefix(grant, "grt") {
		t.Fatalf("grant create printed %q", out)
	}
	out, _ = mustRun(t, "grant", "list", "--active", "--json")
	gs := decodeJSON[[]apiv1.Grant](t, out)
	if len(gs) != 1 || gs[0].ID != grant || gs[0].SiteID != site || gs[0].ExpiresAt == nil ||
		time.Until(*gs[0].ExpiresAt) < 71*time.Hour || time.Until(*gs[0].ExpiresAt) > 73*time.Hour {
		t.Fatalf("grant list --active: %s", out)
	}
	mustRun(t, "grant", "revoke", grant)
	if out, _ = mustRun(t, "grant", "list", "--active"); strings.Contains(out, grant) {
		t.Errorf("revoked grant still listed as active:\n%s", out)
	}
	if out, _ = mustRun(t, "grant", "list"); !strings.Contains(out, grant) || !strings.Contains(out, "revoked") {
		t.Errorf("grant list after revoke:\n%s", out)
	}

	// API tokens of the signed-in account.
	// (The login token ends in 30 days; a token it makes may not end later.)
	out, errOut = mustRun(t, "token", "create", "--name", "dashboard", "--read-only", "--ttl", "240h")
	ro := strings.TrimSpace(out)
	if ro == "" || strings.Count(out, "\n") != 1 || !strings.Contains(errOut, "shown only now") {
		t.Fatalf("token create printed %q, %q", out, errOut)
	}
	mustRun(t, "tenant", "show", "--token", ro)
	wantFail(t, 1, []string{"403"}, "site", "update", site, "--name", "Renamed", "--token", ro)
	out, _ = mustRun(t, "token", "list")
	if !strings.Contains(out, "dashboard") || !strings.Contains(out, "read") || !strings.Contains(out, "warden cli ") {
		t.Errorf("token list:\n%s", out)
	}
	out, _ = mustRun(t, "token", "list", "--json")
	var roID string
	for _, x := range decodeJSON[[]apiv1.Token](t, out) {
		if x.Name == "dashboard" {
			roID = x.ID
			if len(x.Scopes) != 1 || x.Scopes[0] != "read" || x.ExpiresAt == nil {
				t.Errorf("read-only token: %+v", x)
			}
		}
	}
	mustRun(t, "token", "revoke", roID)
	wantFail(t, 1, []string{"401"}, "tenant", "show", "--token", ro)
	wantFail(t, 2, []string{"--name is required"}, "token", "create")
	wantFail(t, 1, []string{"403", "bootstrap", "warden login"}, "token", "list", "--token", op)

	// The operator disables and enables an account of its own tenant.
	mustRun(t, "user", "disable", supID, "--token", op)
	if _, errOut = mustRun(t, "user", "enable", supID, "--token", op); !strings.Contains(errOut, "status pending") {
		t.Errorf("enable said %q", errOut)
	}
	// In A, whose administrator has taken its accounts over, the
	// operator disables an account and lifts a sign-in lock, but enabling
	// an account is the customer's.
	out, _ = mustRun(t, "user", "create", "--email", "staff@a.example", "--role", "customer-user",
		"--first-name", "Sam", "--last-name", "Staff", "--tenant", "A")
	var staffID string
	list, _ := mustRun(t, "user", "list", "--json")
	for _, x := range decodeJSON[[]apiv1.User](t, list) {
		if x.Email == "staff@a.example" {
			staffID = x.ID
		}
	}
	if staffID == "" {
		t.Fatalf("the customer admin's new account is not listed (create printed %q)", out)
	}
	mustRun(t, "user", "disable", staffID, "--token", op)
	wantFail(t, 1, []string{"403", "taken over"}, "user", "enable", staffID, "--token", op)
	wantFail(t, 1, []string{"403", "taken over"}, "user", "create", "--email", "evil@maker.example", "--role", "customer-admin",
		"--first-name", "Evil", "--last-name", "Admin", "--tenant", "A", "--token", op)
	if _, errOut = mustRun(t, "user", "enable", staffID); !strings.Contains(errOut, "status pending") {
		t.Errorf("enable by the customer admin said %q", errOut)
	}
	mustRun(t, "user", "unlock", boss.ID, "--token", op)

	// Sign-in with the password on standard input, and a wrong one.
	t.Setenv("WARDEN_PASSWORD", "")
	out, errOut, code := runInput(t, peoplePassword+"\n", "login", "--email", "boss@a.example", "--ttl", "1h")
	if code != 0 {
		t.Fatalf("login with the password on stdin: exit %d: %s", code, errOut)
	}
	if exported(t, out, "WARDEN_TOKEN") == tok {
		t.Error("a second login printed the same token")
	}
	if _, errOut, code = runInput(t, "wrong password\n", "login", "--email", "boss@a.example"); code != 1 || !strings.Contains(errOut, "wrong e-mail address or password") {
		t.Errorf("wrong password: exit %d: %s", code, errOut)
	}
	if _, errOut, code = runInput(t, "", "login", "--email", "boss@a.example"); code != 1 || !strings.Contains(errOut, "no password") {
		t.Errorf("no password: exit %d: %s", code, errOut)
	}
	wantFail(t, 2, []string{"--email is required"}, "login")
}
