package simulate

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/server"
	"github.com/warden-iot/warden/internal/server/servertest"
)

const testAdminToken = "simulate-test-token"

// startServer runs a Warden server in-process on ephemeral ports.
func startServer(t *testing.T) (*server.Server, *client.Client) {
	t.Helper()
	return servertest.Start(t, server.Config{AdminToken: testAdminToken}, nil)
}

// syncBuffer is a bytes.Buffer safe for a logger and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunPublishesEveryKindsMetrics(t *testing.T) {
	srv, c := startServer(t)
	roots, err := client.LoadCA(srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	opts := RunOptions{
		Client:   c,
		RootCAs:  roots, // MQTTAddr derived from the connection strings' host name
		Devices:  4,
		Interval: 50 * time.Millisecond,
		Prefix:   "simtest",
		Seed:     1,
		Duration: 1500 * time.Millisecond,
		// No random "offline" fault to skip messages; a forced overheat,
		// which only the pump has, must not upset the other kinds.
		Machine: Options{FaultRatePerDay: -1, Faults: []FaultWindow{{Fault: FaultOverheat,
			From: time.Now().Add(time.Hour), To: time.Now().Add(2 * time.Hour)}}},
		SummaryEvery: 500 * time.Millisecond,
	}
	start := time.Now()
	if err := Run(t.Context(), opts, log); err != nil {
		t.Fatalf("Run: %v\n%s", err, logs.String())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run took %v for a 1.5 s duration", d)
	}
	t.Log(logs.String())
	if !strings.Contains(logs.String(), "simulation running") {
		t.Errorf("no periodic summary in the log")
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("warnings in the log")
	}

	want := map[string]Kind{
		"simtest-pump-0001":   VacuumPump,
		"simtest-coffee-0002": CoffeeMachine,
		"simtest-heater-0003": PelletHeater,
		"simtest-meter-0004":  Meter,
	}
	for id, kind := range want {
		if d, err := c.Device(t.Context(), id); err != nil || d.Model != string(kind) {
			t.Errorf("%s: model %q, %v; want the kind %s (for model-scoped rules)", id, d.Model, err, kind)
		}
		ms, err := c.Latest(t.Context(), id)
		if err != nil {
			t.Fatalf("latest %s: %v", id, err)
		}
		got := map[string]bool{}
		for _, m := range ms {
			got[m.Name] = true
			if time.Since(m.TS) > time.Minute {
				t.Errorf("%s %s: stale timestamp %v", id, m.Name, m.TS)
			}
		}
		for _, name := range kind.Metrics() {
			if !got[name] {
				t.Errorf("%s (%s): no latest value for %s; have %v", id, kind, name, ms)
			}
		}
		if len(ms) != len(kind.Metrics()) {
			t.Errorf("%s: %d metrics, want %d", id, len(ms), len(kind.Metrics()))
		}
		rej, err := c.Rejected(t.Context(), id, 10)
		if err != nil {
			t.Fatalf("rejected %s: %v", id, err)
		}
		if len(rej) > 0 {
			t.Errorf("%s: %d rejected messages, first: %+v", id, len(rej), rej[0])
		}
		h, err := c.History(t.Context(), id, kind.Metrics()[0], nil)
		if err != nil {
			t.Fatalf("history %s: %v", id, err)
		}
		// 1.5 s at 50 ms, less the setup time.
		if n := len(h.Points); n < 10 {
			t.Errorf("%s: %d points of %s, want about 30", id, n, kind.Metrics()[0])
		}
	}

	// A second run reuses the registered devices.
	opts.Duration = 300 * time.Millisecond
	if err := Run(t.Context(), opts, log); err != nil {
		t.Fatalf("second Run: %v", err)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	srv, c := startServer(t)
	roots, err := client.LoadCA(srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, RunOptions{Client: c, RootCAs: roots, MQTTAddr: srv.MQTTAddr(), Devices: 3,
			Kinds: []Kind{Meter}, Interval: 20 * time.Millisecond}, nil)
	}()
	// Cancel once every device is registered (and so running).
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := c.Device(t.Context(), "sim-meter-0003"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("sim-meter-0003 not registered after 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop after cancel")
	}
}

func TestRunFailsWithoutServer(t *testing.T) {
	_, c := startServer(t)
	err := Run(t.Context(), RunOptions{Client: c, MQTTAddr: "127.0.0.1:1", Devices: 1, Duration: 5 * time.Second}, nil)
	if err == nil {
		t.Fatal("Run with an unreachable MQTT address succeeded")
	}
}

func TestAppendSampleIsJSON(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 500_000_000, time.FixedZone("x", 3600))
	b := appendSample(nil, at, []string{"a", "b", "missing"}, map[string]float64{"a": 1.5, "b": -1013.25})
	var v struct {
		TS     time.Time          `json:"ts"`
		Values map[string]float64 `json:"values"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if !v.TS.Equal(at) || len(v.Values) != 2 || v.Values["a"] != 1.5 || v.Values["b"] != -1013.25 {
		t.Errorf("got %s", b)
	}
	if want := `{"ts":"2026-03-01T11:00:00.5Z","values":{"a":1.5,"b":-1013.25}}`; string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
}

func TestHubAddr(t *testing.T) {
	for in, want := range map[string]string{
		"localhost:28883":  "localhost:28883",
		"hub.example.com":  "hub.example.com:8883",
		"[::1]:8884":       "[::1]:8884",
		"hub.example:8883": "hub.example:8883",
	} {
		if got := HubAddr(in); got != want {
			t.Errorf("HubAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
