package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/server"
	"github.com/warden-iot/warden/internal/server/servertest"
)

func TestAlarmCommandsAgainstServer(t *testing.T) {
	const op = "cli-alarms-operator"
	srv, c := servertest.Start(t, server.Config{AdminToken: op}, nil)
	t.Setenv("WARDEN_SERVER", "https://"+srv.HTTPAddr())
	t.Setenv("WARDEN_CA", srv.CAFile())
	ctx := t.Context()

	// A customer with a device and an admin who acts through the CLI.
	if _, err := c.CreateTenant(ctx, apiv1.NewTenant{ID: "A", TenantPatch: apiv1.TenantPatch{Name: apiv1.Ptr("Customer A")}}); err != nil {
		t.Fatal(err)
	}
	site, err := c.CreateSite(ctx, "A", "Boiler house")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, http.MethodPost, "/api/v1/devices", nil, map[string]any{"id": "pump-1", "tenantId": "A",
		"siteId": site.ID, "model": "vp-40"}, nil); err != nil {
		t.Fatal(err)
	}
	u, err := c.CreateUser(ctx, apiv1.NewUser{TenantID: "A", Role: "customer-admin", Email: "boss@a.example", Profile: apiv1.Profile{FirstName: apiv1.Ptr("Eva"), LastName: apiv1.Ptr("Boss")}})
	if err != nil {
		t.Fatal(err)
	}
	link, _ := url.Parse(u.ActivationLink)
	if _, err := c.Anonymous().Activate(ctx, link.Query().Get("token"), peoplePassword); err != nil {
		t.Fatal(err)
	}
	sc, _, err := c.Login(ctx, "boss@a.example", peoplePassword, "")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := sc.CreateToken(ctx, "cli", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("WARDEN_TOKEN", tok.Token)

	// Rules from a file and from standard input.
	dir := t.TempDir()
	file := filepath.Join(dir, "rule.json")
	if err := os.WriteFile(file, []byte(`{"name": "Too hot", "severity": "critical", "scope": {"model": "vp-40"},
		"threshold": {"metric": "temp", "op": "above", "value": 90, "hysteresis": 2}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut := mustRun(t, "rule", "create", "--file", file)
	rule := strings.TrimSpace(out)
	if !strings.HasPrefix(rule, "rule_") || !strings.Contains(errOut, "temp above 90") {
		t.Fatalf("rule create printed %q, %q", out, errOut)
	}
	wantFail(t, 2, []string{"--file is required"}, "rule", "create")
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"name": "x", "severity": "fatal", "scope": {"model": "vp-40"}, "offline": {"after": "5m"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	wantFail(t, 1, []string{"400", "severity: "}, "rule", "create", "--file", bad)
	out, _, code := runInput(t, `{"name": "Pump offline", "severity": "warning", "scope": {"deviceId": "pump-1"}, "offline": {"after": "1h"}}`,
		"rule", "create", "--file", "-")
	if code != 0 {
		t.Fatalf("rule create from stdin: exit %d", code)
	}
	offline := strings.TrimSpace(out)
	out, _ = mustRun(t, "rule", "list")
	if !strings.Contains(out, rule) || !strings.Contains(out, "Pump offline") || !strings.Contains(out, "device pump-1") {
		t.Errorf("rule list:\n%s", out)
	}
	if err := os.WriteFile(file, []byte(`{"name": "Too hot", "severity": "critical", "enabled": false, "scope": {"model": "vp-40"},
		"threshold": {"metric": "temp", "op": "above", "value": 95}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "rule", "update", rule, "--file", file)
	out, _ = mustRun(t, "rule", "show", rule, "--json")
	if r := decodeJSON[apiv1.Rule](t, out); r.Enabled || *r.Threshold.Value != 95 {
		t.Errorf("rule after update: %+v", r)
	}
	mustRun(t, "rule", "delete", offline)
	wantFail(t, 1, []string{"404"}, "rule", "show", offline)

	// Alarms, raised as the monitor would.
	raise := func(sev string, at time.Time) alarm.Record {
		as, err := srv.Store().ApplyAlarmChanges(ctx, []alarm.Change{{Kind: "raised", TenantID: "A", RuleID: rule,
			DeviceID: "pump-1", SiteID: site.ID, Severity: sev, Message: "temp 97 above 95", Value: 97, At: at}})
		if err != nil {
			t.Fatal(err)
		}
		return as[0]
	}
	al := raise("critical", time.Now().Add(-2*time.Hour))
	id := fmt.Sprint(al.ID)
	out, _ = mustRun(t, "alarm", "list", "--active")
	if !strings.Contains(out, "Too hot") || !strings.Contains(out, "temp 97 above 95") || !strings.Contains(out, "pump-1") {
		t.Errorf("alarm list:\n%s", out)
	}
	if out, _ = mustRun(t, "alarm", "list", "--cleared"); strings.Contains(out, "pump-1") {
		t.Errorf("alarm list --cleared:\n%s", out)
	}
	wantFail(t, 2, []string{"not both"}, "alarm", "list", "--active", "--cleared")
	wantFail(t, 2, []string{"not an alarm id"}, "alarm", "ack", "first")
	_, errOut = mustRun(t, "alarm", "ack", id, "--comment", "on my way")
	if !strings.Contains(errOut, "acknowledged by boss@a.example") {
		t.Errorf("ack said %q", errOut)
	}
	wantFail(t, 1, []string{"409"}, "alarm", "ack", id)
	_, errOut = mustRun(t, "alarm", "clear", id)
	if !strings.Contains(errOut, "cleared by boss@a.example") {
		t.Errorf("clear said %q", errOut)
	}
	wantFail(t, 1, []string{"409", "not active"}, "alarm", "clear", id)
	out, _ = mustRun(t, "alarm", "show", id, "--json")
	if a := decodeJSON[apiv1.Alarm](t, out); a.State != "cleared" || a.AckComment != "on my way" {
		t.Errorf("alarm show: %+v", a)
	}

	// Webhooks: the secret once.
	out, errOut = mustRun(t, "webhook", "create", "--url", "https://hooks.example.com/w", "--severity", "critical")
	secret := strings.TrimSpace(out)
	if len(secret) != 64 || !strings.Contains(errOut, "shown only now") {
		t.Fatalf("webhook create printed %q, %q", out, errOut)
	}
	out, _ = mustRun(t, "webhook", "list")
	if strings.Contains(out, secret) || !strings.Contains(out, "hooks.example.com") || !strings.Contains(out, "critical") {
		t.Errorf("webhook list:\n%s", out)
	}
	out, _ = mustRun(t, "webhook", "list", "--json")
	hooks := decodeJSON[[]apiv1.Webhook](t, out)
	if len(hooks) != 1 || hooks[0].Secret != "" {
		t.Fatalf("webhook list --json: %s", out)
	}
	wantFail(t, 2, []string{"--severity", "warning or critical"}, "webhook", "create", "--url", "https://x.example", "--severity", "major")
	wantFail(t, 1, []string{"400", "https"}, "webhook", "create", "--url", "http://x.example")
	mustRun(t, "webhook", "delete", hooks[0].ID)

	// Escalation.
	_, errOut = mustRun(t, "escalation", "set", "--delay", "15m", "--email", "chief@a.example")
	if !strings.Contains(errOut, "within 15m go to chief@a.example") {
		t.Errorf("escalation set said %q", errOut)
	}
	if out, _ = mustRun(t, "escalation", "show"); !regexp.MustCompile(`(?m)^delay +15m$`).MatchString(out) {
		t.Errorf("escalation show printed %q", out)
	}
	wantFail(t, 2, []string{"whole minutes"}, "escalation", "set", "--delay", "90s", "--email", "chief@a.example")
	wantFail(t, 2, []string{"--email is required"}, "escalation", "set", "--delay", "15m")
	mustRun(t, "escalation", "set", "--delay", "0")
	if out, _ = mustRun(t, "escalation", "show", "--json"); decodeJSON[apiv1.Escalation](t, out).DelayMinutes != 0 {
		t.Errorf("escalation show printed %q", out)
	}

	// Deliveries.
	if out, errOut = mustRun(t, "deliveries", "--state", "failed"); out != "" || !strings.Contains(errOut, "no notifications") {
		t.Errorf("deliveries printed %q, %q", out, errOut)
	}
	if out, _ = mustRun(t, "deliveries", "--json"); !strings.HasPrefix(out, "[") {
		t.Errorf("deliveries --json printed %q", out)
	}
	wantFail(t, 2, []string{"--state"}, "deliveries", "--state", "lost")

	// Key figures: the critical alarm was active from 2 hours ago until it
	// was cleared above: 2 hours of downtime in the last day.
	out, _ = mustRun(t, "kpi", "--last", "1d")
	if !strings.Contains(out, "pump-1") || !strings.Contains(out, "TOTAL (1)") || !strings.Contains(out, "0/1") {
		t.Errorf("kpi:\n%s", out)
	}
	out, _ = mustRun(t, "kpi", "--device", "pump-1", "--last", "1d", "--json")
	rep := decodeJSON[apiv1.KPIReport](t, out)
	if len(rep.Devices) != 1 || rep.Total.Failures != 1 || rep.Total.Downtime < 7190 || rep.Total.Downtime > 7300 {
		t.Errorf("kpi --json: %+v", rep)
	}
	wantFail(t, 2, []string{"at most one of"}, "kpi", "--device", "pump-1", "--site", site.ID)
	wantFail(t, 2, []string{"--from or --last"}, "kpi", "--from", "2026-01-01", "--last", "3d")
	wantFail(t, 2, []string{"--last"}, "kpi", "--last", "soon")

	// Notifications: a person's own settings; not the bootstrap token's.
	_, errOut = mustRun(t, "notifications", "set", "--email", "on", "--severity", "critical", "--site", site.ID)
	if !strings.Contains(errOut, "alarm e-mails on: critical alarms of sites "+site.ID) {
		t.Errorf("notifications set said %q", errOut)
	}
	mustRun(t, "notifications", "set", "--severity", "all")
	if out, _ = mustRun(t, "notifications", "show"); !regexp.MustCompile(`(?m)^severities +all\nsites +sites ` + site.ID + `$`).MatchString(out) {
		t.Errorf("notifications show printed %q", out)
	}
	wantFail(t, 2, []string{"nothing to change"}, "notifications", "set")
	wantFail(t, 2, []string{"on or off"}, "notifications", "set", "--email", "maybe")
	wantFail(t, 1, []string{"403", "warden login"}, "notifications", "show", "--token", op)
}
