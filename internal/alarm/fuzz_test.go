package alarm_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/alarm"
)

// FuzzRule feeds rule JSON through Validate and New, then drives whatever
// compiles. Nothing may panic, and Validate and New must agree.
func FuzzRule(f *testing.F) {
	for _, seed := range []string{
		`{"id":"r","tenantId":"acme","name":"n","severity":"warning","scope":{"model":"m"},"enabled":true,"threshold":{"metric":"t","op":"above","value":90,"hysteresis":2,"minDuration":"5m"}}`,
		`{"id":"r","tenantId":"acme","name":"n","severity":"critical","scope":{"siteId":"s"},"enabled":true,"threshold":{"metric":"t","op":"outside","low":1,"high":5,"hysteresis":1}}`,
		`{"id":"r","tenantId":"acme","name":"n","severity":"warning","scope":{"deviceId":"d"},"enabled":true,"rateOfChange":{"metric":"p","maxRatePerMinute":2,"direction":"down","minDuration":"30s"}}`,
		`{"id":"r","tenantId":"acme","name":"n","severity":"warning","scope":{"model":"m"},"enabled":true,"expression":{"expr":"a - b > 40 && c == 1","minDuration":"1m"}}`,
		`{"id":"r","tenantId":"acme","name":"n","severity":"warning","scope":{"model":"m"},"enabled":true,"expression":{"expr":"motor.current > 3 || $env[\"x-y\"] < 1"}}`,
		`{"id":"r","tenantId":"acme","name":"n","severity":"warning","scope":{"model":"m"},"enabled":true,"expression":{"expr":"let z = a; z > 1 ? true : b in [1, 2]"}}`,
		`{"id":"r","tenantId":"acme","name":"n","severity":"warning","scope":{"model":"m"},"enabled":true,"stale":{"metric":"t","after":"10m"}}`,
		`{"id":"r","tenantId":"acme","name":"n","severity":"warning","scope":{"model":"m"},"enabled":true,"offline":{"after":"1h"}}`,
		`{"id":"r","tenantId":"acme","scope":{},"threshold":{},"offline":{}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		var r alarm.Rule
		if json.Unmarshal(doc, &r) != nil {
			return
		}
		verr := r.Validate()
		r.Enabled = true
		e, err := alarm.New([]alarm.Rule{r})
		if (verr == nil) != (err == nil) {
			t.Fatalf("Validate says %v but New says %v", verr, err)
		}
		if err != nil {
			return
		}
		dev := alarm.DeviceFacts{ID: "d", TenantPath: r.TenantID, SiteID: r.Scope.SiteID, Model: r.Scope.Model}
		if r.Scope.DeviceID != "" {
			dev.ID = r.Scope.DeviceID
		}
		names := []string{"t", "p", "a", "b", "c", "motor.current", "x-y"}
		if r.Threshold != nil {
			names = append(names, r.Threshold.Metric)
		}
		if r.RateOfChange != nil {
			names = append(names, r.RateOfChange.Metric)
		}
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i, x := range []float64{0, 100, -100, 3, 1e300, -1e300, 2, 0} {
			at := t0.Add(time.Duration(i) * time.Minute)
			values := make(map[string]float64)
			for _, n := range names {
				values[n] = x
			}
			e.Observe(dev, at, values)
			if i == 4 {
				e.Disconnected(dev, at)
			}
			e.Tick(at.Add(30 * time.Second))
		}
		b, err := json.Marshal(e.State())
		if err != nil {
			t.Fatalf("state does not encode: %v", err)
		}
		var snap alarm.Snapshot
		if err := json.Unmarshal(b, &snap); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Restore(snap, t0.Add(time.Hour)); err != nil {
			t.Fatalf("own state does not restore: %v", err)
		}
		e.Tick(t0.Add(48 * time.Hour))
	})
}
