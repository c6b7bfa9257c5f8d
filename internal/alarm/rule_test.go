package alarm_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/alarm"
)

func TestRuleJSON(t *testing.T) {
	const doc = `{
		"id": "r1", "tenantId": "acme", "name": "Outlet too hot", "severity": "critical",
		"scope": {"model": "VP-200"}, "enabled": true,
		"threshold": {"metric": "outlet_temp", "op": "above", "value": 90, "hysteresis": 2, "minDuration": "5m"}
	}`
	var r alarm.Rule
	if err := json.Unmarshal([]byte(doc), &r); err != nil {
		t.Fatal(err)
	}
	want := alarm.Rule{
		ID: "r1", TenantID: "acme", Name: "Outlet too hot", Severity: alarm.Critical,
		Scope: alarm.Scope{Model: "VP-200"}, Enabled: true,
		Threshold: &alarm.Threshold{Metric: "outlet_temp", Op: alarm.Above, Value: new(90.0), Hysteresis: 2,
			MinDuration: alarm.Duration(5 * time.Minute)},
	}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("decoded %+v, want %+v", r, want)
	}
	if err := r.Validate(); err != nil {
		t.Error(err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	const enc = `{"id":"r1","tenantId":"acme","name":"Outlet too hot","severity":"critical","scope":{"model":"VP-200"},"enabled":true,` +
		`"threshold":{"metric":"outlet_temp","op":"above","value":90,"hysteresis":2,"minDuration":"5m0s"}}`
	if string(b) != enc {
		t.Errorf("encoded\n%s\nwant\n%s", b, enc)
	}

	for _, bad := range []string{`{"stale":{"after":300}}`, `{"stale":{"after":"5 minutes"}}`} {
		if err := json.Unmarshal([]byte(bad), &r); err == nil || !strings.Contains(err.Error(), "duration") {
			t.Errorf("%s: error %v, want one about the duration", bad, err)
		}
	}
}

func TestValidate(t *testing.T) {
	base := func(set func(r *alarm.Rule)) alarm.Rule {
		r := alarm.Rule{ID: "r1", TenantID: "acme", Name: "n", Severity: alarm.Warning,
			Scope: alarm.Scope{Model: "VP-200"}, Enabled: true,
			Threshold: &alarm.Threshold{Metric: "t", Op: alarm.Above, Value: new(1.0)}}
		set(&r)
		return r
	}
	th := func(t alarm.Threshold) func(r *alarm.Rule) {
		return func(r *alarm.Rule) { r.Threshold = &t }
	}
	tests := []struct {
		name string
		rule alarm.Rule
		want []string // "field: problem" substrings, one per error; none: valid
	}{
		{"valid threshold", base(func(*alarm.Rule) {}), nil},
		{"missing basics", base(func(r *alarm.Rule) { r.ID, r.TenantID, r.Name, r.Severity = "", "", "", "" }),
			[]string{"id: required", "tenantId: required", "name: required", "severity: required"}},
		{"bad severity", base(func(r *alarm.Rule) { r.Severity = "fatal" }), []string{`severity: "fatal" is not`}},
		{"no scope", base(func(r *alarm.Rule) { r.Scope = alarm.Scope{} }), []string{"scope: exactly one of deviceId, siteId and model must be set, got none"}},
		{"two scopes", base(func(r *alarm.Rule) { r.Scope.SiteID = "s" }), []string{"scope: exactly one of deviceId, siteId and model must be set, got siteId, model"}},
		{"no condition", base(func(r *alarm.Rule) { r.Threshold = nil }), []string{"condition: exactly one of threshold, rateOfChange, expression, stale and offline must be set, got none"}},
		{"two conditions", base(func(r *alarm.Rule) { r.Offline = &alarm.Offline{After: alarm.Duration(time.Minute)} }),
			[]string{"condition: exactly one of threshold, rateOfChange, expression, stale and offline must be set, got threshold, offline"}},
		{"metric name", base(th(alarm.Threshold{Metric: "a\nb", Op: alarm.Above, Value: new(1.0)})), []string{"threshold.metric: metric name \"a\\nb\" has a control character"}},
		{"empty metric", base(th(alarm.Threshold{Op: alarm.Above, Value: new(1.0)})), []string{"threshold.metric: metric name required"}},
		{"long metric", base(th(alarm.Threshold{Metric: strings.Repeat("m", 129), Op: alarm.Above, Value: new(1.0)})), []string{`threshold.metric: metric name "` + strings.Repeat("m", 32) + `"… longer than 128 bytes`}},
		{"unknown op", base(th(alarm.Threshold{Metric: "t", Op: "over", Value: new(1.0)})), []string{`threshold.op: "over" is not one of above, below, outside, inside`}},
		{"missing value", base(th(alarm.Threshold{Metric: "t", Op: alarm.Below})), []string{`threshold.value: required for op "below"`}},
		{"band without high", base(th(alarm.Threshold{Metric: "t", Op: alarm.Outside, Low: new(1.0)})), []string{`threshold.low: low and high are required for op "outside"`}},
		{"low above high", base(th(alarm.Threshold{Metric: "t", Op: alarm.Inside, Low: new(5.0), High: new(1.0)})), []string{"threshold.low: low 5 is above high 1"}},
		{"value with band", base(th(alarm.Threshold{Metric: "t", Op: alarm.Inside, Value: new(3.0), Low: new(1.0), High: new(5.0)})), []string{"threshold.value: only for ops"}},
		{"hysteresis wider than band", base(th(alarm.Threshold{Metric: "t", Op: alarm.Outside, Low: new(1.0), High: new(5.0), Hysteresis: 3})), []string{"threshold.hysteresis: 3 is more than half the band"}},
		{"negative hysteresis and duration", base(th(alarm.Threshold{Metric: "t", Op: alarm.Above, Value: new(1.0), Hysteresis: -1, MinDuration: alarm.Duration(-time.Second)})),
			[]string{"threshold.hysteresis: must not be negative, got -1", "threshold.minDuration: must not be negative, got -1s"}},
		{"rate", base(func(r *alarm.Rule) {
			r.Threshold = nil
			r.RateOfChange = &alarm.RateOfChange{Metric: "p", MaxRatePerMinute: 0, Direction: "sideways"}
		}), []string{"rateOfChange.maxRatePerMinute: must be positive, got 0", `rateOfChange.direction: "sideways" is not one of up, down, either`}},
		{"rate hysteresis", base(func(r *alarm.Rule) {
			r.Threshold = nil
			r.RateOfChange = &alarm.RateOfChange{Metric: "p", MaxRatePerMinute: 1, Hysteresis: 1}
		}), []string{"rateOfChange.hysteresis: 1 must be below maxRatePerMinute 1"}},
		{"empty expression", expr(""), []string{"expression.expr: required"}},
		{"expression syntax", expr("a >"), []string{"expression.expr: unexpected token EOF"}},
		{"expression not bool", expr("a + b"), []string{"expression.expr: expected bool, but got float64"}},
		{"expression type error", expr(`a > "x"`), []string{"expression.expr: invalid operation: > (mismatched types float64 and string) (column 3)"}},
		{"expression clock", expr("now() > 0"), []string{"expression.expr: unknown name now (column 1)"}},
		{"expression dynamic env", expr("$env[a] > 1"), []string{"expression.expr: $env must be indexed with a constant string"}},
		{"expression range", expr("a in 1..1000000"), []string{"expression.expr: ranges (..) are not supported"}},
		{"expression predicate", expr("all([a, b], {# > 1})"), []string{"expression.expr: predicates ({…}) are not supported"}},
		{"expression string builtin", expr(`len(repeat("x", 1000000)) > a`), []string{"expression.expr: unknown name"}},
		{"expression unknown metrics are fine", expr("never_seen_yet > 1 && abs(x.y) < max(z, 2) && round(q) in [1, 2] && (let m = mean(a, b); m > 3 ? true : false)"), nil},
		{"stale", base(func(r *alarm.Rule) { r.Threshold = nil; r.Stale = &alarm.Stale{Metric: "t"} }),
			[]string{`stale.after: must be a positive duration such as "10m", got "0s"`}},
		{"offline", base(func(r *alarm.Rule) {
			r.Threshold = nil
			r.Offline = &alarm.Offline{After: alarm.Duration(-time.Minute)}
		}), []string{`offline.after: must be a positive duration such as "10m", got "-1m0s"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.rule.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if _, err := alarm.New([]alarm.Rule{tt.rule}); err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted the rule")
			}
			var fields []string
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var fe *alarm.FieldError
				if !errors.As(e, &fe) {
					t.Errorf("%v is not a *FieldError", e)
				}
				fields = append(fields, e.Error())
			}
			if len(fields) != len(tt.want) {
				t.Errorf("got %d errors %q, want %d", len(fields), fields, len(tt.want))
			}
			for _, w := range tt.want {
				if !slices.ContainsFunc(fields, func(f string) bool { return strings.Contains(f, w) }) {
					t.Errorf("no error contains %q; got %q", w, fields)
				}
			}
			if _, err := alarm.New([]alarm.Rule{tt.rule}); err == nil || !strings.Contains(err.Error(), `rule 0 ("`+tt.rule.ID+`")`) {
				t.Errorf("New: error %v, want it to name the rule", err)
			}
		})
	}
}

func expr(src string) alarm.Rule {
	return alarm.Rule{ID: "e", TenantID: "acme", Name: "n", Severity: alarm.Warning,
		Scope: alarm.Scope{DeviceID: "d"}, Enabled: true, Expression: &alarm.Expression{Expr: src}}
}
