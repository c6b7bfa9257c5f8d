package api_test

import (
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/api"
	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/server"
	"github.com/warden-iot/warden/internal/server/servertest"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/telemetry"
)

const alarmTestPassword = "correct horse battery staple"

// alarmWorld is two customers with a site and devices each, their people
// and a supporter:
//
//	A: site sa, devices a1 (at sa, model pump) and a2 (no site);
//	   admin, user (customer-user)
//	B: device b1; admin
//	supporter (operator's tenant), granted device a1 by A's admin
type alarmWorld struct {
	srv                 *server.Server
	op                  *client.Client
	st                  store.Store
	siteA               string
	adminA, userA       *client.Client
	adminB, supporter   *client.Client
	userAEmail, adminAE string
}

// signUpAs makes an account through admin, activates it, signs in and
// returns a client with an API token of it.
func signUpAs(t *testing.T, op, admin *client.Client, tenant, role, email string) (*client.Client, apiv1.User) {
	t.Helper()
	ctx := t.Context()
	u, err := admin.CreateUser(ctx, apiv1.NewUser{TenantID: tenant, Role: role, Email: email, Profile: apiv1.Profile{FirstName: apiv1.Ptr("Test"), LastName: apiv1.Ptr(role)}})
	if err != nil {
		t.Fatalf("create %s: %v", email, err)
	}
	link, err := url.Parse(u.ActivationLink)
	if err != nil || u.ActivationLink == "" {
		t.Fatalf("activation link of %s: %q", email, u.ActivationLink)
	}
	if _, err := op.Anonymous().Activate(ctx, link.Query().Get("token"), alarmTestPassword); err != nil {
		t.Fatalf("activate %s: %v", email, err)
	}
	sc, _, err := op.Login(ctx, email, alarmTestPassword, "")
	if err != nil {
		t.Fatalf("login %s: %v", email, err)
	}
	tok, err := sc.CreateToken(ctx, "test", nil, "")
	if err != nil {
		t.Fatalf("token of %s: %v", email, err)
	}
	return op.WithToken(tok.Token), u
}

func newAlarmWorld(t *testing.T) *alarmWorld {
	t.Helper()
	srv, op := servertest.Start(t, server.Config{}, nil)
	ctx := t.Context()
	w := &alarmWorld{srv: srv, op: op, st: srv.Store()}
	for _, tn := range []string{"A", "B"} {
		if _, err := op.CreateTenant(ctx, apiv1.NewTenant{ID: tn, TenantPatch: apiv1.TenantPatch{Name: apiv1.Ptr("Customer " + tn)}}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := op.CreateSite(ctx, "A", "Boiler house")
	if err != nil {
		t.Fatal(err)
	}
	w.siteA = s.ID
	for _, d := range []map[string]any{
		{"id": "a1", "tenantId": "A", "siteId": w.siteA, "model": "pump"},
		{"id": "a2", "tenantId": "A"},
		{"id": "b1", "tenantId": "B", "model": "pump"},
	} {
		if err := op.Do(ctx, http.MethodPost, "/api/v1/devices", nil, d, nil); err != nil {
			t.Fatal(err)
		}
	}
	w.adminAE, w.userAEmail = "boss@a.example", "staff@a.example"
	w.adminA, _ = signUpAs(t, op, op, "A", "customer-admin", w.adminAE)
	w.userA, _ = signUpAs(t, op, w.adminA, "A", "customer-user", w.userAEmail)
	w.adminB, _ = signUpAs(t, op, op, "B", "customer-admin", "boss@b.example")
	var sup apiv1.User
	w.supporter, sup = signUpAs(t, op, op, "root", "supporter", "tech@installer.example")
	if _, err := w.adminA.Grant(ctx, sup.SupporterID, "", "a1", ""); err != nil {
		t.Fatalf("grant: %v", err)
	}
	return w
}

// raise stores an alarm as the monitor would.
func (w *alarmWorld) raise(t *testing.T, tenant, rule, device, severity string, at time.Time) alarm.Record {
	t.Helper()
	as, err := w.st.ApplyAlarmChanges(t.Context(), []alarm.Change{{Kind: "raised", TenantID: tenant, RuleID: rule,
		DeviceID: device, Alarm: alarm.KindRule, Severity: severity, Message: "too hot", Value: 95, At: at}})
	if err != nil {
		t.Fatalf("raise: %v", err)
	}
	return as[0]
}

func (w *alarmWorld) clear(t *testing.T, rule, device string, at time.Time) {
	t.Helper()
	if _, err := w.st.ApplyAlarmChanges(t.Context(), []alarm.Change{{Kind: "cleared", RuleID: rule, DeviceID: device,
		At: at, By: "auto"}}); err != nil {
		t.Fatalf("clear: %v", err)
	}
}

func wantStatus(t *testing.T, what string, err error, status int) {
	t.Helper()
	if got := client.StatusOf(err); got != status {
		t.Errorf("%s: status %d (%v), want %d", what, got, err, status)
	}
}

func rawRule(s string) json.RawMessage { return json.RawMessage(s) }

const pumpRule = `{"name": "Pump too hot", "severity": "critical", "scope": {"model": "pump"},
	"threshold": {"metric": "temp", "op": "above", "value": 90, "hysteresis": 2}}`

func TestRuleValidation(t *testing.T) {
	w := newAlarmWorld(t)
	ctx := t.Context()
	for _, tc := range []struct {
		name   string
		rule   string
		fields []string
	}{
		{"no name, bad op", `{"severity": "warning", "scope": {"model": "pump"}, "threshold": {"metric": "temp", "op": "over", "value": 1}}`,
			[]string{"name", "threshold.op"}},
		{"two conditions", `{"name": "x", "severity": "warning", "scope": {"model": "pump"},
			"threshold": {"metric": "temp", "op": "above", "value": 1}, "offline": {"after": "5m"}}`, []string{"condition"}},
		{"no scope", `{"name": "x", "severity": "critical", "scope": {}, "offline": {"after": "5m"}}`, []string{"scope"}},
		{"bad severity", `{"name": "x", "severity": "fatal", "scope": {"model": "pump"}, "offline": {"after": "5m"}}`, []string{"severity"}},
		{"bad expression", `{"name": "x", "severity": "warning", "scope": {"model": "pump"}, "expression": {"expr": "temp >"}}`, []string{"expression.expr"}},
		{"another customer's device", `{"name": "x", "severity": "warning", "scope": {"deviceId": "b1"}, "offline": {"after": "5m"}}`,
			[]string{"scope.deviceId"}},
		{"no such site", `{"name": "x", "severity": "warning", "scope": {"siteId": "site_nope"}, "offline": {"after": "5m"}}`,
			[]string{"scope.siteId"}},
		{"id given", `{"id": "mine", "name": "x", "severity": "warning", "scope": {"model": "pump"}, "offline": {"after": "5m"}}`,
			[]string{"id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := w.adminA.Do(ctx, http.MethodPost, "/api/v1/rules", nil, rawRule(tc.rule), nil)
			wantStatus(t, "create", err, http.StatusBadRequest)
			for _, f := range tc.fields {
				if !strings.Contains(err.Error(), f+": ") {
					t.Errorf("error %q does not name %s", err, f)
				}
			}
		})
	}
	// Unknown fields are refused too.
	err := w.adminA.Do(ctx, http.MethodPost, "/api/v1/rules", nil, rawRule(`{"name": "x", "colour": "red"}`), nil)
	wantStatus(t, "unknown field", err, http.StatusBadRequest)
}

func TestRuleCRUDAndIsolation(t *testing.T) {
	w := newAlarmWorld(t)
	ctx := t.Context()
	r, err := w.adminA.CreateRule(ctx, rawRule(pumpRule))
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if !strings.HasPrefix(r.ID, "rule_") || r.TenantID != "A" || !r.Enabled || r.Threshold == nil || *r.Threshold.Value != 90 {
		t.Fatalf("created %+v", r)
	}
	if rs, err := w.adminA.Rules(ctx, ""); err != nil || len(rs) != 1 || rs[0].ID != r.ID {
		t.Errorf("A's list: %v %+v", err, rs)
	}
	if got, err := w.userA.Rule(ctx, r.ID); err != nil || got.Name != "Pump too hot" {
		t.Errorf("customer user reads the rule: %v %+v", err, got)
	}

	// Replace it: a disabled device rule.
	upd := `{"name": "a1 offline", "severity": "warning", "enabled": false, "scope": {"deviceId": "a1"}, "offline": {"after": "1h"}}`
	r2, err := w.adminA.UpdateRule(ctx, r.ID, rawRule(upd))
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if r2.ID != r.ID || r2.Enabled || r2.Threshold != nil || r2.Offline == nil || r2.Scope.DeviceID != "a1" || !r2.CreatedAt.Equal(r.CreatedAt) {
		t.Errorf("updated %+v", r2)
	}
	_, err = w.adminA.UpdateRule(ctx, r.ID, rawRule(`{"tenantId": "B", "name": "x", "severity": "warning", "scope": {"model": "pump"}, "offline": {"after": "1h"}}`))
	wantStatus(t, "move to B", err, http.StatusBadRequest)
	_, err = w.adminA.UpdateRule(ctx, r.ID, rawRule(`{"name": "x", "severity": "warning", "scope": {"model": "pump"}, "threshold": {"metric": "t", "op": "above"}}`))
	wantStatus(t, "invalid update", err, http.StatusBadRequest)

	// Another customer neither sees nor changes it.
	if rs, err := w.adminB.Rules(ctx, ""); err != nil || len(rs) != 0 {
		t.Errorf("B's list: %v %+v", err, rs)
	}
	_, err = w.adminB.Rules(ctx, "A")
	wantStatus(t, "B lists A's rules", err, http.StatusNotFound)
	_, err = w.adminB.Rule(ctx, r.ID)
	wantStatus(t, "B reads A's rule", err, http.StatusNotFound)
	_, err = w.adminB.UpdateRule(ctx, r.ID, rawRule(pumpRule))
	wantStatus(t, "B changes A's rule", err, http.StatusNotFound)
	wantStatus(t, "B deletes A's rule", w.adminB.DeleteRule(ctx, r.ID), http.StatusNotFound)
	_, err = w.adminB.CreateRule(ctx, rawRule(`{"tenantId": "A", "name": "x", "severity": "warning", "scope": {"model": "pump"}, "offline": {"after": "1h"}}`))
	wantStatus(t, "B makes a rule in A", err, http.StatusForbidden)
	_, err = w.supporter.Rule(ctx, r.ID)
	wantStatus(t, "supporter reads a rule", err, http.StatusNotFound)

	// The customer user reads but does not change.
	_, err = w.userA.UpdateRule(ctx, r.ID, rawRule(pumpRule))
	wantStatus(t, "user changes", err, http.StatusForbidden)
	_, err = w.userA.CreateRule(ctx, rawRule(pumpRule))
	wantStatus(t, "user creates", err, http.StatusForbidden)

	// Deleting keeps the rule's alarms.
	al := w.raise(t, "A", r.ID, "a1", "warning", time.Now().Add(-time.Minute))
	if got, err := w.adminA.Alarm(ctx, al.ID); err != nil || got.RuleName != "a1 offline" {
		t.Errorf("alarm before delete: %v %+v", err, got)
	}
	if err := w.adminA.DeleteRule(ctx, r.ID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	_, err = w.adminA.Rule(ctx, r.ID)
	wantStatus(t, "deleted rule", err, http.StatusNotFound)
	if got, err := w.adminA.Alarm(ctx, al.ID); err != nil || got.RuleID != r.ID || got.RuleName != "" {
		t.Errorf("alarm after delete: %v %+v", err, got)
	}

	// The operator's rules for all pumps; a root rule is not a customer's to see.
	if _, err := w.op.CreateRule(ctx, rawRule(pumpRule)); err != nil {
		t.Fatalf("operator rule: %v", err)
	}
	if rs, _ := w.adminA.Rules(ctx, ""); len(rs) != 0 {
		t.Errorf("A sees %+v", rs)
	}
}

func TestAlarmLifecycle(t *testing.T) {
	w := newAlarmWorld(t)
	ctx := t.Context()
	r, err := w.adminA.CreateRule(ctx, rawRule(pumpRule))
	if err != nil {
		t.Fatal(err)
	}
	al := w.raise(t, "A", r.ID, "a1", "critical", time.Now().Add(-time.Hour))

	page, err := w.userA.Alarms(ctx, client.AlarmFilter{State: "active"})
	if err != nil || len(page.Alarms) != 1 || page.Alarms[0].ID != al.ID || page.Alarms[0].RuleName != "Pump too hot" {
		t.Fatalf("user's list: %v %+v", err, page)
	}
	if page, _ := w.userA.Alarms(ctx, client.AlarmFilter{State: "cleared"}); len(page.Alarms) != 0 {
		t.Errorf("cleared: %+v", page)
	}

	// A customer user acknowledges, once.
	got, err := w.userA.AckAlarm(ctx, al.ID, "on my way")
	if err != nil {
		t.Fatalf("ack: %v", err)
	}
	if got.AckedAt == nil || !strings.Contains(got.AckedBy, w.userAEmail) || got.AckComment != "on my way" || got.State != "active" {
		t.Errorf("acked: %+v", got)
	}
	_, err = w.adminA.AckAlarm(ctx, al.ID, "")
	wantStatus(t, "second ack", err, http.StatusConflict)
	if page, _ := w.userA.Alarms(ctx, client.AlarmFilter{Unacked: true}); len(page.Alarms) != 0 {
		t.Errorf("unacked: %+v", page)
	}

	// ...but may not clear; the admin may, once.
	_, err = w.userA.ClearAlarm(ctx, al.ID, "")
	wantStatus(t, "user clears", err, http.StatusForbidden)
	got, err = w.adminA.ClearAlarm(ctx, al.ID, "fixed")
	if err != nil {
		t.Fatalf("clear: %v", err)
	}
	if got.State != "cleared" || got.ClearedAt == nil || !strings.Contains(got.ClearedBy, w.adminAE) || got.AckComment != "on my way" {
		t.Errorf("cleared: %+v", got)
	}
	_, err = w.adminA.ClearAlarm(ctx, al.ID, "")
	wantStatus(t, "second clear", err, http.StatusConflict)

	// Clearing an alarm nobody acknowledged acknowledges it.
	al2 := w.raise(t, "A", r.ID, "a1", "critical", time.Now())
	if al2.ID == al.ID {
		t.Fatal("a new raise reused the cleared alarm")
	}
	got, err = w.adminA.ClearAlarm(ctx, al2.ID, "reset by hand")
	if err != nil || got.AckedAt == nil || got.AckComment != "reset by hand" || got.State != "cleared" {
		t.Errorf("clear of an unacknowledged alarm: %v %+v", err, got)
	}
	// A cleared alarm may still be acknowledged... this one was.
	_, err = w.userA.AckAlarm(ctx, al2.ID, "")
	wantStatus(t, "ack after clear-with-ack", err, http.StatusConflict)

	// Bad queries and ids.
	_, err = w.userA.Alarms(ctx, client.AlarmFilter{State: "open"})
	wantStatus(t, "bad state", err, http.StatusBadRequest)
	_, err = w.userA.Alarm(ctx, 999999)
	wantStatus(t, "no such alarm", err, http.StatusNotFound)
	wantStatus(t, "not a number", w.userA.Do(ctx, http.MethodGet, "/api/v1/alarms/abc", nil, nil, nil), http.StatusNotFound)
	_, err = w.userA.AckAlarm(ctx, al.ID, strings.Repeat("x", api.MaxAlarmComment+1))
	wantStatus(t, "long comment", err, http.StatusBadRequest)

	// Another customer sees none of it.
	if page, err := w.adminB.Alarms(ctx, client.AlarmFilter{}); err != nil || len(page.Alarms) != 0 {
		t.Errorf("B's list: %v %+v", err, page)
	}
	_, err = w.adminB.Alarm(ctx, al.ID)
	wantStatus(t, "B reads A's alarm", err, http.StatusNotFound)
	_, err = w.adminB.AckAlarm(ctx, al2.ID, "")
	wantStatus(t, "B acks A's alarm", err, http.StatusNotFound)

	// A deleted device takes its alarms along.
	if err := w.adminA.DeleteDevice(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	_, err = w.adminA.Alarm(ctx, al.ID)
	wantStatus(t, "alarm of a deleted device", err, http.StatusNotFound)
}

func TestAlarmsOfSupporterAndPaging(t *testing.T) {
	w := newAlarmWorld(t)
	ctx := t.Context()
	now := time.Now()
	on1 := w.raise(t, "A", "rule_x", "a1", "warning", now.Add(-3*time.Hour))
	on2 := w.raise(t, "A", "rule_x", "a2", "critical", now.Add(-2*time.Hour))
	onB := w.raise(t, "B", "rule_y", "b1", "critical", now.Add(-time.Hour))

	// The supporter sees the granted device's alarm only.
	page, err := w.supporter.Alarms(ctx, client.AlarmFilter{})
	if err != nil || len(page.Alarms) != 1 || page.Alarms[0].ID != on1.ID {
		t.Fatalf("supporter's list: %v %+v", err, page)
	}
	if _, err := w.supporter.Alarm(ctx, on1.ID); err != nil {
		t.Errorf("supporter reads the granted device's alarm: %v", err)
	}
	_, err = w.supporter.Alarm(ctx, on2.ID)
	wantStatus(t, "supporter reads another device's alarm", err, http.StatusNotFound)
	_, err = w.supporter.Alarm(ctx, onB.ID)
	wantStatus(t, "supporter reads B's alarm", err, http.StatusNotFound)
	if _, err := w.supporter.AckAlarm(ctx, on1.ID, "seen"); err != nil {
		t.Errorf("supporter acks: %v", err)
	}

	// The operator admin may not read customers' machine data without
	// factory access: A's alarms are hidden from the list.
	if page, err := w.op.Alarms(ctx, client.AlarmFilter{Tenant: "A"}); err != nil || len(page.Alarms) != 0 {
		t.Errorf("operator's list of A: %v %+v", err, page)
	}
	_, err = w.op.Alarm(ctx, on2.ID)
	wantStatus(t, "operator reads A's alarm", err, http.StatusForbidden)

	// Filters and paging.
	page, err = w.adminA.Alarms(ctx, client.AlarmFilter{Limit: 1})
	if err != nil || len(page.Alarms) != 1 || page.Alarms[0].ID != on1.ID || page.Next != on1.ID {
		t.Fatalf("first page: %v %+v", err, page)
	}
	page, err = w.adminA.Alarms(ctx, client.AlarmFilter{Limit: 1, After: page.Next})
	if err != nil || len(page.Alarms) != 1 || page.Alarms[0].ID != on2.ID {
		t.Fatalf("second page: %v %+v", err, page)
	}
	for _, tc := range []struct {
		f    client.AlarmFilter
		want []int64
	}{
		{client.AlarmFilter{Device: "a2"}, []int64{on2.ID}},
		{client.AlarmFilter{Severity: "warning"}, []int64{on1.ID}},
		{client.AlarmFilter{Unacked: true}, []int64{on2.ID}},
		{client.AlarmFilter{Until: now.Add(-150 * time.Minute)}, []int64{on1.ID}},
		{client.AlarmFilter{Device: "b1"}, nil},
	} {
		page, err := w.adminA.Alarms(ctx, tc.f)
		var ids []int64
		for _, a := range page.Alarms {
			ids = append(ids, a.ID)
		}
		if err != nil || len(ids) != len(tc.want) || (len(ids) > 0 && ids[0] != tc.want[0]) {
			t.Errorf("%+v: %v %v, want %v", tc.f, err, ids, tc.want)
		}
	}
}

func TestWebhooksEscalationAndPrefs(t *testing.T) {
	w := newAlarmWorld(t)
	ctx := t.Context()
	h, err := w.adminA.CreateWebhook(ctx, "", "https://hooks.example.com/warden", []string{"critical"})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if len(h.Secret) != 64 || h.TenantID != "A" || !h.Enabled || len(h.Severities) != 1 {
		t.Errorf("created %+v", h)
	}
	var raw json.RawMessage
	if err := w.adminA.Do(ctx, http.MethodGet, "/api/v1/webhooks", nil, nil, &raw); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), h.Secret) || strings.Contains(string(raw), `"secret"`) || !strings.Contains(string(raw), h.ID) {
		t.Errorf("list shows %s", raw)
	}
	if _, err := w.adminA.CreateWebhook(ctx, "", "http://localhost:9000/hook", nil); err != nil {
		t.Errorf("http to localhost: %v", err)
	}
	for _, u := range []string{"http://hooks.example.com/x", "ftp://x/y", "hooks.example.com", "", "https://10.0.0.5/hook", "https://[::1]:8443/x", "http://127.0.0.1:9000/hook", "https://169.254.169.254/latest"} {
		_, err := w.adminA.CreateWebhook(ctx, "", u, nil)
		wantStatus(t, "url "+u, err, http.StatusBadRequest)
	}
	_, err = w.adminA.CreateWebhook(ctx, "", "https://x.example", []string{"fatal"})
	wantStatus(t, "bad severity", err, http.StatusBadRequest)
	_, err = w.userA.CreateWebhook(ctx, "", "https://x.example", nil)
	wantStatus(t, "user creates", err, http.StatusForbidden)
	_, err = w.userA.Webhooks(ctx, "")
	wantStatus(t, "user lists", err, http.StatusForbidden)
	if hs, err := w.adminB.Webhooks(ctx, ""); err != nil || len(hs) != 0 {
		t.Errorf("B's webhooks: %v %+v", err, hs)
	}
	wantStatus(t, "B deletes A's", w.adminB.DeleteWebhook(ctx, h.ID), http.StatusNotFound)
	if err := w.adminA.DeleteWebhook(ctx, h.ID); err != nil {
		t.Errorf("delete: %v", err)
	}
	if hs, _ := w.adminA.Webhooks(ctx, ""); len(hs) != 1 {
		t.Errorf("after delete: %+v", hs)
	}

	// Escalation.
	if e, err := w.adminA.Escalation(ctx, ""); err != nil || e.DelayMinutes != 0 || e.TenantID != "A" {
		t.Errorf("no escalation: %v %+v", err, e)
	}
	if e, err := w.adminA.SetEscalation(ctx, "", 15, "Chief@A.example"); err != nil || e.DelayMinutes != 15 || e.Email != "chief@a.example" {
		t.Errorf("set: %v %+v", err, e)
	}
	if e, err := w.adminA.Escalation(ctx, ""); err != nil || e.DelayMinutes != 15 || e.Email != "chief@a.example" {
		t.Errorf("after set: %v %+v", err, e)
	}
	_, err = w.adminA.SetEscalation(ctx, "", 15, "nobody")
	wantStatus(t, "bad e-mail", err, http.StatusBadRequest)
	_, err = w.userA.SetEscalation(ctx, "", 5, "x@a.example")
	wantStatus(t, "user sets", err, http.StatusForbidden)
	_, err = w.adminB.Escalation(ctx, "A")
	wantStatus(t, "B reads A's", err, http.StatusNotFound)
	if e, err := w.adminA.SetEscalation(ctx, "", 0, ""); err != nil || e.DelayMinutes != 0 {
		t.Errorf("remove: %v %+v", err, e)
	}

	// Deliveries.
	if _, err := w.adminA.Deliveries(ctx, client.DeliveryFilter{State: "failed"}); err != nil {
		t.Errorf("deliveries: %v", err)
	}
	_, err = w.adminA.Deliveries(ctx, client.DeliveryFilter{State: "lost"})
	wantStatus(t, "bad state", err, http.StatusBadRequest)
	_, err = w.userA.Deliveries(ctx, client.DeliveryFilter{})
	wantStatus(t, "user lists deliveries", err, http.StatusForbidden)

	// Preferences.
	if p, err := w.userA.NotificationPrefs(ctx); err != nil || p.Email || p.Severities == nil {
		t.Errorf("default prefs: %v %+v", err, p)
	}
	p, err := w.userA.SetNotificationPrefs(ctx, apiv1.NotificationPrefs{Email: true, Severities: []string{"critical", "critical"}, SiteIDs: []string{w.siteA}})
	if err != nil || !p.Email || len(p.Severities) != 1 || len(p.SiteIDs) != 1 {
		t.Errorf("set prefs: %v %+v", err, p)
	}
	if p, _ := w.userA.NotificationPrefs(ctx); !p.Email || p.SiteIDs[0] != w.siteA {
		t.Errorf("prefs after set: %+v", p)
	}
	_, err = w.adminB.SetNotificationPrefs(ctx, apiv1.NotificationPrefs{Email: true, SiteIDs: []string{w.siteA}})
	wantStatus(t, "another customer's site", err, http.StatusBadRequest)
	_, err = w.userA.SetNotificationPrefs(ctx, apiv1.NotificationPrefs{Email: true, Severities: []string{"info"}})
	wantStatus(t, "bad severity", err, http.StatusBadRequest)
	_, err = w.op.NotificationPrefs(ctx)
	wantStatus(t, "bootstrap token", err, http.StatusForbidden)
}

func TestKPI(t *testing.T) {
	w := newAlarmWorld(t)
	ctx := t.Context()
	to := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	from := to.Add(-10 * time.Hour)
	h := func(x float64) time.Time { return from.Add(time.Duration(x * float64(time.Hour))) }
	// a1: critical 1..3 (cleared), warning 2..4; critical from 9, still active.
	w.raise(t, "A", "r1", "a1", "critical", h(1))
	w.clear(t, "r1", "a1", h(3))
	w.raise(t, "A", "r2", "a1", "warning", h(2))
	w.clear(t, "r2", "a1", h(4))
	w.raise(t, "A", "r1", "a1", "critical", h(9))
	// a2: critical from before the period, cleared at 1.
	w.raise(t, "A", "r1", "a2", "critical", h(-2))
	w.clear(t, "r1", "a2", h(1))
	// b1: B's.
	w.raise(t, "B", "r1", "b1", "critical", h(5))

	// Utilisation: A's plan for pumps reads an on/off metric; B has none,
	// so the operator's plan (a run-hours counter) applies to b1.
	for _, p := range []alarm.MaintenancePlan{
		{TenantID: "A", Model: "pump", Spec: json.RawMessage(`{"model": "pump", "run": {"metric": "running", "kind": "onoff"}}`)},
		{TenantID: "root", Model: "pump", Spec: json.RawMessage(`{"model": "pump", "run": {"metric": "opHours", "kind": "hours"}}`)},
	} {
		p.UpdatedAt = time.Now()
		if err := w.st.SetMaintenancePlan(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	pts := func(metric string, vs map[float64]float64) []telemetry.Point {
		var out []telemetry.Point
		for x, v := range vs {
			out = append(out, telemetry.Point{Metric: metric, TS: h(x), Value: v})
		}
		return out
	}
	if _, err := w.srv.Engine().Write(ctx, []telemetry.Message{
		{TenantID: "A", DeviceID: "a1", ReceivedAt: h(4), Points: pts("running", map[float64]float64{0.5: 1, 1.5: 0, 2.5: 1, 3.5: 1, 11: 0})},
		{TenantID: "B", DeviceID: "b1", ReceivedAt: h(10), Points: pts("opHours", map[float64]float64{-1: 90, 0.5: 100, 5: 102, 9.5: 105})},
	}); err != nil {
		t.Fatal(err)
	}

	var rep apiv1.KPIReport
	q := url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}
	if err := w.adminA.Do(ctx, http.MethodGet, "/api/v1/kpi", q, nil, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Scope != "tenant" || rep.ScopeID != "A" || rep.Period != 36000 || len(rep.Devices) != 2 {
		t.Fatalf("report: %+v", rep)
	}
	a1, a2, tot := rep.Devices[0].KPIFigures, rep.Devices[1].KPIFigures, rep.Total
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-6 {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	near("a1 downtime", a1.Downtime, 3*3600)
	near("a1 in alarm", a1.TimeInAlarm, 4*3600)
	near("a1 availability", a1.Availability, 0.7)
	if a1.Failures != 2 || a1.Repairs != 1 || a1.Alarms["critical"] != 2 || a1.Alarms["warning"] != 1 {
		t.Errorf("a1 counts: %+v", a1)
	}
	if a1.MTBF == nil || a1.MTTR == nil || *a1.MTBF != 3.5*3600 || *a1.MTTR != 2*3600 {
		t.Errorf("a1 mtbf/mttr: %+v", a1)
	}
	if a1.Utilisation == nil || *a1.Utilisation != 0.75 {
		t.Errorf("a1 utilisation: %v", a1.Utilisation)
	}
	near("a2 downtime", a2.Downtime, 3600)
	if a2.Failures != 0 || a2.MTBF != nil || a2.MTTR == nil || *a2.MTTR != 3600 || a2.Utilisation != nil {
		t.Errorf("a2: %+v", a2)
	}
	if tot.Utilisation == nil || *tot.Utilisation != 0.75 {
		t.Errorf("total utilisation: %v", tot.Utilisation)
	}
	near("total downtime", tot.Downtime, 4*3600)
	near("total availability", tot.Availability, (0.7+0.9)/2)
	if tot.Failures != 2 || tot.MTBF == nil || *tot.MTBF != (20-4)*3600/2.0 || tot.MTTR == nil || *tot.MTTR != 1.5*3600 {
		t.Errorf("total: %+v", tot)
	}

	// A series for charts: two buckets whose downtimes add up to the total.
	var series apiv1.KPIReport
	qs := url.Values{"from": q["from"], "to": q["to"], "bucket": {"5h"}}
	if err := w.adminA.Do(ctx, http.MethodGet, "/api/v1/kpi", qs, nil, &series); err != nil {
		t.Fatal(err)
	}
	if len(series.Series) != 2 || !series.Series[0].From.Equal(from) || !series.Series[1].To.Equal(to) {
		t.Fatalf("series: %+v", series.Series)
	}
	near("series downtime", series.Series[0].Downtime+series.Series[1].Downtime, tot.Downtime)
	if err := w.adminA.Do(ctx, http.MethodGet, "/api/v1/kpi", url.Values{"bucket": {"1s"}}, nil, nil); err == nil {
		t.Error("a one-second bucket was accepted")
	}

	// One device, a site; a supporter's view; errors.
	if err := w.adminA.Do(ctx, http.MethodGet, "/api/v1/kpi", url.Values{"device": {"a2"}, "from": q["from"], "to": q["to"]}, nil, &rep); err != nil ||
		len(rep.Devices) != 1 || rep.Scope != "device" {
		t.Errorf("device report: %v %+v", err, rep)
	}
	if err := w.adminA.Do(ctx, http.MethodGet, "/api/v1/kpi", url.Values{"site": {w.siteA}}, nil, &rep); err != nil ||
		len(rep.Devices) != 1 || rep.Devices[0].DeviceID != "a1" {
		t.Errorf("site report: %v %+v", err, rep)
	}
	if err := w.supporter.Do(ctx, http.MethodGet, "/api/v1/kpi", nil, nil, &rep); err != nil || len(rep.Devices) != 1 || rep.Devices[0].DeviceID != "a1" {
		t.Errorf("supporter's report: %v %+v", err, rep)
	}
	if err := w.adminB.Do(ctx, http.MethodGet, "/api/v1/kpi", q, nil, &rep); err != nil || len(rep.Devices) != 1 ||
		rep.Devices[0].Utilisation == nil || *rep.Devices[0].Utilisation != 0.5 {
		t.Errorf("b1 by run hours: %v %+v", err, rep)
	}
	wantStatus(t, "B's device", w.adminA.Do(ctx, http.MethodGet, "/api/v1/kpi", url.Values{"device": {"b1"}}, nil, nil), http.StatusNotFound)
	wantStatus(t, "two scopes", w.adminA.Do(ctx, http.MethodGet, "/api/v1/kpi", url.Values{"device": {"a1"}, "site": {w.siteA}}, nil, nil), http.StatusBadRequest)
	wantStatus(t, "backwards", w.adminA.Do(ctx, http.MethodGet, "/api/v1/kpi", url.Values{"from": q["to"], "to": q["from"]}, nil, nil), http.StatusBadRequest)
	wantStatus(t, "B's tenant", w.adminA.Do(ctx, http.MethodGet, "/api/v1/kpi", url.Values{"tenant": {"B"}}, nil, nil), http.StatusNotFound)
}
