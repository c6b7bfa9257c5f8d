package maintenance_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/maintenance"
)

func TestParsePlan(t *testing.T) {
	p, err := maintenance.ParsePlan([]byte(`{"model": "vp-40",
		"run": {"metric": "running", "kind": "onoff"},
		"service": {"everyRunHours": 2000, "everyMonths": 12},
		"trends": [{"metric": "temperature", "limit": 95, "window": "30d", "warnDays": 14, "whileRunning": true},
		           {"metric": "outletPressure", "limit": 1.3, "direction": "falling"}],
		"anomalies": [{"metric": "motorCurrent", "alpha": 0.1, "threshold": 5, "warmup": 50},
		              {"metric": "inletPressure", "whileRunning": true}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.Model != "vp-40" || p.Run.Kind != maintenance.RunOnOff || p.Run.MaxGap.D() != time.Hour {
		t.Errorf("run: %+v", p.Run)
	}
	if p.Service.EveryRunHours != 2000 || p.Service.EveryMonths != 12 || p.Service.WarnDays != 7 {
		t.Errorf("service: %+v", p.Service)
	}
	if tr := p.Trends[0]; tr.Window.D() != 30*24*time.Hour || tr.WarnDays != 14 || !tr.WhileRunning || *tr.Limit != 95 || tr.Direction != "rising" {
		t.Errorf("trends[0]: %+v", tr)
	}
	if tr := p.Trends[1]; tr.Window.D() != maintenance.DefaultTrendWindow || tr.WarnDays != 14 || *tr.Limit != 1.3 || tr.Direction != "falling" {
		t.Errorf("trends[1] defaults: %+v", tr)
	}
	if a := p.Anomalies[0]; a.Alpha != 0.1 || a.Threshold != 5 || a.Warmup != 50 {
		t.Errorf("anomalies[0]: %+v", a)
	}
	if a := p.Anomalies[1]; a.Alpha != 0.05 || a.Threshold != 4 || a.Warmup != 100 || !a.WhileRunning {
		t.Errorf("anomalies[1] defaults: %+v", a)
	}

	// It survives JSON: the defaults written out parse back the same.
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"window":"30d"`) {
		t.Errorf("window not written in days: %s", b)
	}
	q, err := maintenance.ParsePlan(b)
	if err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if c, _ := json.Marshal(q); string(c) != string(b) {
		t.Errorf("round trip:\n%s\n%s", b, c)
	}

	// A plan of the hours kind, calendar only, without run.
	for _, ok := range []string{
		`{"model": "m", "run": {"metric": "runHours", "kind": "hours"}, "service": {"everyRunHours": 500}}`,
		`{"model": "m", "run": {"metric": "current", "kind": "threshold", "threshold": 0.5, "maxGap": "10m"}, "service": {"everyRunHours": 500}}`,
		`{"model": "m", "service": {"everyMonths": 24, "warnDays": 30}}`,
		`{"model": "m", "trends": [{"metric": "battery", "limit": 3.3, "window": "1d12h"}]}`,
		`{"model": "m", "anomalies": [{"metric": "x"}]}`,
	} {
		if _, err := maintenance.ParsePlan([]byte(ok)); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

func TestParsePlanErrors(t *testing.T) {
	tests := []struct {
		plan   string
		fields []string // every field an error must name
	}{
		{`{}`, []string{"model", "plan"}},
		{`{"model": "m", "servce": {}}`, []string{"plan"}},
		{`{"model": "m", "service": {"everyMonths": 1}} {}`, []string{"plan"}},
		{`{"model": "m", "service": {"everyMonths": "x"}}`, []string{"plan"}},
		{`{"model": "m", "service": {}}`, []string{"service"}},
		{`{"model": "m", "service": {"everyRunHours": 100}}`, []string{"service.everyRunHours"}},
		{`{"model": "m", "service": {"everyRunHours": -1}, "run": {"metric": "r", "kind": "onoff"}}`, []string{"service.everyRunHours"}},
		{`{"model": "m", "service": {"everyMonths": 1, "warnDays": -2}}`, []string{"service.warnDays"}},
		{`{"model": "m", "service": {"everyMonths": 1}, "run": {"metric": "", "kind": "spin"}}`, []string{"run.metric", "run.kind"}},
		{`{"model": "m", "service": {"everyMonths": 1}, "run": {"metric": "r", "kind": "threshold"}}`, []string{"run.threshold"}},
		{`{"model": "m", "service": {"everyMonths": 1}, "run": {"metric": "r", "kind": "onoff", "threshold": 2}}`, []string{"run.threshold"}},
		{`{"model": "m", "service": {"everyMonths": 1}, "run": {"metric": "r", "kind": "hours", "maxGap": "1h"}}`, []string{"run.maxGap"}},
		{`{"model": "m", "service": {"everyMonths": 1}, "run": {"metric": "r", "kind": "onoff", "maxGap": "-1h"}}`, []string{"run.maxGap"}},
		{`{"model": "m", "trends": [{"metric": "t"}]}`, []string{"trends[0].limit"}},
		{`{"model": "m", "trends": [{"metric": "t", "limit": 1, "window": "30x"}]}`, []string{"plan"}},
		{`{"model": "m", "trends": [{"metric": "t", "limit": 1, "window": "10m"}]}`, []string{"trends[0].window"}},
		{`{"model": "m", "trends": [{"metric": "t", "limit": 1, "window": "400d"}]}`, []string{"trends[0].window"}},
		{`{"model": "m", "trends": [{"metric": "t", "limit": 1}, {"metric": "t", "limit": 2, "warnDays": -1}]}`, []string{"trends[1].metric", "trends[1].warnDays"}},
		{`{"model": "m", "trends": [{"metric": "t", "limit": 1, "whileRunning": true}]}`, []string{"trends[0].whileRunning"}},
		{`{"model": "m", "trends": [{"metric": "t", "limit": 1, "direction": "up"}]}`, []string{"trends[0].direction"}},
		{`{"model": "m", "anomalies": [{"metric": "a", "alpha": 1.5, "threshold": -1, "warmup": 1}]}`, []string{"anomalies[0].alpha", "anomalies[0].threshold", "anomalies[0].warmup"}},
		{`{"model": "m", "anomalies": [{"metric": ""}]}`, []string{"anomalies[0].metric"}},
	}
	for _, tt := range tests {
		_, err := maintenance.ParsePlan([]byte(tt.plan))
		if err == nil {
			t.Errorf("%s: accepted", tt.plan)
			continue
		}
		var fields []string
		for _, e := range unjoin(err) {
			var pe *maintenance.PlanError
			if !errors.As(e, &pe) {
				t.Errorf("%s: %v is not a *PlanError", tt.plan, e)
				continue
			}
			fields = append(fields, pe.Field)
		}
		for _, f := range tt.fields {
			found := false
			for _, g := range fields {
				found = found || g == f
			}
			if !found {
				t.Errorf("%s: no error names %s: %v", tt.plan, f, err)
			}
		}
	}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestParseDuration(t *testing.T) {
	for s, want := range map[string]time.Duration{
		"30d": 30 * 24 * time.Hour, "1.5d": 36 * time.Hour, "2d12h": 60 * time.Hour, "90m": 90 * time.Minute,
		"1h30m": 90 * time.Minute, "0d": 0,
	} {
		if got, err := maintenance.ParseDuration(s); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %s, %v; want %s", s, got, err, want)
		}
	}
	for _, s := range []string{"", "d", "-1d", "1d-2h", "x", "1e3d", "30 d", "3dd", "infd", "1d+1h"} {
		if got, err := maintenance.ParseDuration(s); err == nil {
			t.Errorf("ParseDuration(%q) = %s, want an error", s, got)
		}
	}
	for d, want := range map[time.Duration]string{30 * 24 * time.Hour: "30d", 36 * time.Hour: "1d12h0m0s", 90 * time.Minute: "1h30m0s"} {
		if got := maintenance.Duration(d).String(); got != want {
			t.Errorf("Duration(%s).String() = %q, want %q", d, got, want)
		}
	}
}
