package simulate

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/client"
)

// eventually retries check until it returns "" or the time is up.
func eventually(t *testing.T, limit time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func reported(t *testing.T, c *client.Client, id string) map[string]any {
	t.Helper()
	tw, err := c.Twin(t.Context(), id)
	if err != nil {
		return map[string]any{"error": err.Error()} // not registered yet
	}
	var r map[string]any
	if err := json.Unmarshal(tw.Properties.Reported, &r); err != nil {
		t.Fatalf("reported of %s: %v", id, err)
	}
	return r
}

// runOne runs one simulated pump until the test ends.
func runOne(t *testing.T, opts RunOptions) *syncBuffer {
	t.Helper()
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, opts, log) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v\n%s", err, logs.String())
		}
	})
	return &logs
}

func TestSimulatedDeviceTwinMethodsAndC2D(t *testing.T) {
	srv, c := startServer(t)
	roots, err := client.LoadCA(srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	logs := runOne(t, RunOptions{Client: c, RootCAs: roots, Devices: 1, Kinds: []Kind{VacuumPump},
		Interval: 200 * time.Millisecond, Prefix: "agent", Machine: Options{FaultRatePerDay: -1}})
	const id = "agent-pump-0001"
	ctx := t.Context()

	// On connect it reports its kind, firmware and interval.
	eventually(t, 15*time.Second, func() string {
		r := reported(t, c, id)
		if r["kind"] != "vacuum-pump" || r["firmware"] != VacuumPump.Firmware() || r["interval"] != 0.2 {
			return "reported properties after connecting: " + string(mustJSON(r))
		}
		return ""
	})

	eventually(t, 10*time.Second, func() string {
		if countMessages(t, c, id) < 3 {
			return "the device does not publish"
		}
		return ""
	})

	// A desired interval is applied and reported back.
	if _, err := c.UpdateTwin(ctx, id, client.TwinPatch{Desired: json.RawMessage(`{"interval":2}`)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() string {
		if r := reported(t, c, id); r["interval"] != 2.0 {
			return "reported interval after the desired 2: " + string(mustJSON(r))
		}
		return ""
	})
	// And it changes how often the device publishes.
	h0 := countMessages(t, c, id)
	time.Sleep(1500 * time.Millisecond)
	if n := countMessages(t, c, id) - h0; n > 2 {
		t.Errorf("%d messages in 1.5 s at a 2 s interval", n)
	}

	// Direct methods.
	res, err := c.InvokeMethod(ctx, id, "getStatus", nil, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var status struct {
		Kind     string             `json:"kind"`
		Interval float64            `json:"interval"`
		Values   map[string]float64 `json:"values"`
	}
	if err := json.Unmarshal(res.Payload, &status); err != nil || res.Status != 200 || status.Kind != "vacuum-pump" ||
		status.Interval != 2 || len(status.Values) != len(VacuumPump.Metrics()) {
		t.Errorf("getStatus answered %d %s\n%s", res.Status, res.Payload, logs.String())
	}
	res, err = c.InvokeMethod(ctx, id, "reboot", json.RawMessage(`{"delay":1}`), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var reboot map[string]any
	if err := json.Unmarshal(res.Payload, &reboot); err != nil || res.Status != 200 || reboot["rebooting"] != true || reboot["delay"] != 1.0 {
		t.Errorf("reboot answered %d %s", res.Status, res.Payload)
	}
	res, err = c.InvokeMethod(ctx, id, "selfDestruct", nil, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var unknown map[string]string
	if err := json.Unmarshal(res.Payload, &unknown); err != nil || res.Status != 404 || unknown["error"] == "" {
		t.Errorf("an unknown method answered %d %s", res.Status, res.Payload)
	}

	// Cloud-to-device messages are delivered and logged with their
	// properties.
	if _, err := c.SendC2D(ctx, id, client.C2DSend{Payload: "open valve 3", Properties: map[string]string{"priority": "high"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() string {
		l := logs.String()
		if !strings.Contains(l, `msg="cloud-to-device message"`) || !strings.Contains(l, `body="open valve 3"`) ||
			!strings.Contains(l, "priority:high") {
			return "no cloud-to-device message in the log:\n" + l
		}
		return ""
	})
	eventually(t, 10*time.Second, func() string {
		ms, err := c.C2DMessages(ctx, id, 10)
		if err != nil || len(ms) != 1 || ms[0].State != "completed" {
			return "C2D message not completed: " + string(mustJSON(ms))
		}
		return ""
	})
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func countMessages(t *testing.T, c *client.Client, id string) int {
	t.Helper()
	h, err := c.History(t.Context(), id, MetricTemperature, nil)
	if err != nil {
		t.Fatal(err)
	}
	return len(h.Points)
}

func TestSimulateProvisionsThroughAnEnrollmentGroup(t *testing.T) {
	srv, c := startServer(t)
	roots, err := client.LoadCA(srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	g, err := c.CreateEnrollmentGroup(ctx, apiv1.NewEnrollmentGroup{ID: "factory-line-1"})
	if err != nil {
		t.Fatal(err)
	}
	// With the API: the group key, the ID scope and the host are read
	// through it.
	logs := runOne(t, RunOptions{Client: c, RootCAs: roots, IDs: []string{"pump-0042", "line1-box-7"},
		Kinds: []Kind{Meter}, Interval: 100 * time.Millisecond, Machine: Options{FaultRatePerDay: -1},
		Provisioning: &Provisioning{Group: "factory-line-1"}})
	// Without: everything given.
	info, err := c.DPSInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	key, err := base64.StdEncoding.DecodeString(g.PrimaryKey)
	if err != nil {
		t.Fatal(err)
	}
	runOne(t, RunOptions{RootCAs: roots, IDs: []string{"coffee-9"}, Interval: 100 * time.Millisecond,
		Machine: Options{FaultRatePerDay: -1}, Provisioning: &Provisioning{GroupKey: key, IDScope: info.IDScope, Host: info.ProvisioningHost}})

	for id, kind := range map[string]Kind{"pump-0042": VacuumPump, "line1-box-7": Meter, "coffee-9": CoffeeMachine} {
		eventually(t, 20*time.Second, func() string {
			r := reported(t, c, id)
			if r["kind"] != string(kind) {
				return id + ": reported " + string(mustJSON(r)) + "\n" + logs.String()
			}
			ms, err := c.Latest(ctx, id)
			if err != nil || len(ms) != len(kind.Metrics()) {
				return id + ": no telemetry"
			}
			return ""
		})
		regs, _, err := c.Registrations(ctx, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, r := range regs {
			found = found || (r.RegistrationID == id && r.EnrollmentType == "group" && r.EnrollmentID == "factory-line-1")
		}
		if !found {
			t.Errorf("%s: no registration through factory-line-1 in %+v", id, regs)
		}
	}
	if d, err := c.Device(ctx, "pump-0042"); err != nil || d.Model != string(VacuumPump) {
		t.Errorf("pump-0042: model %q, %v", d.Model, err)
	}
}

// The README's walkthrough: the rule below raises an alarm within about
// half a minute of a forced overheat's start.
func TestForcedOverheatRaisesTheWalkthroughAlarm(t *testing.T) {
	srv, c := startServer(t)
	roots, err := client.LoadCA(srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	var rule map[string]any
	if err := json.Unmarshal([]byte(`{"name": "pump overheating", "severity": "critical", "scope": {"model": "vacuum-pump"},
	 "threshold": {"metric": "temperature", "op": "above", "value": 95, "hysteresis": 5}}`), &rule); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "POST", "/api/v1/rules", nil, rule, nil); err != nil {
		t.Fatal(err)
	}
	faultAt := time.Now().Add(5 * time.Second)
	runOne(t, RunOptions{Client: c, RootCAs: roots, Devices: 1, Kinds: []Kind{VacuumPump}, Interval: 2 * time.Second,
		Prefix: "walk", Machine: Options{Faults: []FaultWindow{{Fault: FaultOverheat, From: faultAt, To: faultAt.Add(10 * time.Minute), Demo: true}}}})
	eventually(t, 45*time.Second, func() string {
		var page struct {
			Alarms []struct {
				Severity string `json:"severity"`
			} `json:"alarms"`
		}
		if err := c.Do(ctx, "GET", "/api/v1/alarms", url.Values{"device": {"walk-pump-0001"}, "state": {"active"}}, nil, &page); err != nil {
			return err.Error()
		}
		if len(page.Alarms) == 0 {
			return "no alarm 40 s after the fault started"
		}
		return ""
	})
	took := time.Since(faultAt)
	t.Logf("alarm %v after the fault started", took.Round(time.Second))
	if took > 35*time.Second {
		t.Errorf("alarm %v after the fault started, want within about 30 s", took)
	}
}
