package api

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/maintenance"
	"github.com/warden-iot/warden/internal/tenancy"
)

// sameJSON fails unless a and b marshal to the same bytes.
func sameJSON(t *testing.T, what string, a, b any) {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if string(ja) != string(jb) {
		t.Errorf("%s:\nserver %s\nwire   %s", what, ja, jb)
	}
}

// TestWireShapes: the wire shapes of apiv1 give the JSON of the server's
// own types, field for field, so that the API's answers stay the same.
func TestWireShapes(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	for _, r := range []alarm.Rule{
		{ID: "r1", TenantID: "A", Name: "hot", Severity: alarm.Critical, Scope: alarm.Scope{DeviceID: "d"}, Enabled: true,
			Threshold: &alarm.Threshold{Metric: "t", Op: alarm.Outside, Value: f(1), Low: f(-2), High: f(3.5), Hysteresis: 0.5,
				MinDuration: alarm.Duration(90 * time.Second)}},
		{ID: "r2", TenantID: "A", Name: "jump", Severity: alarm.Warning, Scope: alarm.Scope{SiteID: "s"},
			RateOfChange: &alarm.RateOfChange{Metric: "p", MaxRatePerMinute: 2, Direction: alarm.Up, Hysteresis: 0.1,
				MinDuration: alarm.Duration(time.Minute)}},
		{ID: "r3", Scope: alarm.Scope{Model: "m"}, Expression: &alarm.Expression{Expr: "a > b", MinDuration: alarm.Duration(time.Hour)}},
		{ID: "r4", Stale: &alarm.Stale{Metric: "t", After: alarm.Duration(5 * time.Minute)}},
		{ID: "r5", Offline: &alarm.Offline{After: alarm.Duration(10 * time.Minute)}},
		{ID: "r6", Threshold: &alarm.Threshold{Metric: "t", Op: alarm.Above, Value: f(0)}},
		{},
	} {
		sameJSON(t, "rule "+r.ID, r, ruleSpecView(r))
		// What a client sends back decodes to the same rule.
		b, _ := json.Marshal(ruleSpecView(r))
		var back alarm.Rule
		if err := json.Unmarshal(b, &back); err != nil {
			t.Errorf("rule %s: the wire shape does not decode as a rule: %v", r.ID, err)
		}
		sameJSON(t, "rule "+r.ID+" sent back", r, back)
	}

	full, err := maintenance.ParsePlan([]byte(`{"model":"vp-40",
		"run":{"metric":"on","kind":"threshold","threshold":0.5,"maxGap":"2h"},
		"service":{"everyRunHours":500,"everyMonths":12,"warnDays":10},
		"trends":[{"metric":"temp","limit":90,"direction":"rising","window":"1.5d","warnDays":3,"whileRunning":true}],
		"anomalies":[{"metric":"vib","alpha":0.1,"threshold":3,"warmup":50,"whileRunning":true}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []maintenance.Plan{full, {Model: "bare"}, {}} {
		sameJSON(t, "plan "+p.Model, p, planSpecView(p))
		b, _ := json.Marshal(planSpecView(p))
		var back maintenance.Plan
		if err := json.Unmarshal(b, &back); err != nil {
			t.Errorf("plan %s: the wire shape does not decode as a plan: %v", p.Model, err)
		}
		sameJSON(t, "plan "+p.Model+" sent back", p, back)
	}

	addr := tenancy.Address{Street: "Hauptstraße 1", PostalCode: "1010", City: "Wien", Country: "AT"}
	sameJSON(t, "address", addr, addressView(addr))
	contact := tenancy.Contact{Name: "Eva", Email: "eva@example.com", Phone: "+43 1"}
	sameJSON(t, "contact", contact, contactView(contact))
	contract := tenancy.Contract{Number: "K-1", Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
		NoticeDays: 90, BillingReference: "B", Notes: "n"}
	sameJSON(t, "contract", contract, contractView(contract))
	sameJSON(t, "empty contract", tenancy.Contract{}, contractView(tenancy.Contract{}))

	wire := []string{apiv1.RoleOperatorAdmin, apiv1.RoleOperatorService, apiv1.RoleCustomerAdmin, apiv1.RoleCustomerUser, apiv1.RoleSupporter}
	if len(wire) != len(identity.Roles) {
		t.Fatalf("apiv1 names %d roles, the store %d", len(wire), len(identity.Roles))
	}
	for i, r := range identity.Roles {
		if string(r) != wire[i] {
			t.Errorf("role %d: store %q, apiv1 %q", i, r, wire[i])
		}
	}
}
