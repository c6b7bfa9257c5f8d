package bench

import (
	"bytes"
	"io"
	"log/slog"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/server"
	"github.com/warden-iot/warden/internal/server/servertest"
)

const testAdminToken = "bench-test-token"

func startServer(t *testing.T) (*server.Server, *client.Client) {
	t.Helper()
	return servertest.Start(t, server.Config{AdminToken: testAdminToken}, nil)
}

// startMochi runs a plain, anonymous MQTT broker as a stand-in for Mosquitto.
func startMochi(t *testing.T) string {
	t.Helper()
	b := mochi.New(&mochi.Options{Logger: slog.New(slog.DiscardHandler)})
	if err := b.AddHook(new(allowAll), nil); err != nil {
		t.Fatal(err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0"})
	if err := b.AddListener(l); err != nil {
		t.Fatal(err)
	}
	if err := b.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return "mqtt://" + l.Address()
}

// allowAll lets every client connect and publish.
type allowAll struct{ mochi.HookBase }

func (allowAll) ID() string { return "allow-all" }

func (allowAll) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}

func (allowAll) OnConnectAuthenticate(*mochi.Client, packets.Packet) bool { return true }

func (allowAll) OnACLCheck(*mochi.Client, string, bool) bool { return true }

var lineRE = regexp.MustCompile(`^([a-z][a-z0-9_]*): (-?[0-9]+(?:\.[0-9]+)?) (\S+)$`)

// figures parses "name: value unit" lines, failing on any other line.
func figures(t *testing.T, out string) map[string]float64 {
	t.Helper()
	f := map[string]float64{}
	for line := range strings.Lines(out) {
		line = strings.TrimSuffix(line, "\n")
		m := lineRE.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("line %q is not \"name: value unit\"", line)
			continue
		}
		v, _ := strconv.ParseFloat(m[2], 64)
		f[m[1]] = v
	}
	return f
}

func TestIngestAgainstWarden(t *testing.T) {
	srv, c := startServer(t)
	roots, err := client.LoadCA(srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var res IngestResult
	err = InTenant(t.Context(), TenantOptions{Caller: c}, func(tn *Tenant) error {
		var err error
		res, err = Ingest(t.Context(), IngestOptions{
			Client: c, Tenant: tn, RootCAs: roots, Devices: 20, InFlight: 2,
			Duration: time.Second, Warmup: 200 * time.Millisecond,
		}, &out)
		if err != nil {
			return err
		}
		// The devices are stored, with ten metrics each.
		ms, err := tn.API.Latest(t.Context(), tn.DevicePrefix("bench")+"-0007")
		if err != nil || len(ms) != 10 {
			t.Errorf("latest of bench-0007: %v, %v", ms, err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Ingest: %v\n%s", err, out.String())
	}
	t.Logf("\n%s", out.String())
	f := figures(t, out.String())
	for _, name := range []string{"devices", "messages_per_s", "points_per_s", "puback_p50_ms", "puback_p99_ms",
		"errors", "server_rss_mb", "server_cpu_s", "server_rejected"} {
		if _, ok := f[name]; !ok {
			t.Errorf("no %s line", name)
		}
	}
	if f["devices"] != 20 || f["messages_per_s"] <= 0 || f["errors"] != 0 || f["server_rejected"] != 0 ||
		f["server_duplicates"] != 0 || f["server_rss_mb"] <= 0 {
		t.Errorf("unexpected figures: %v", f)
	}
	if f["points_per_s"] != math.Round(10*res.MessagesPerSec) || res.P99 < res.P50 || res.P50 <= 0 {
		t.Errorf("inconsistent result %+v", res)
	}
}

func TestCompareWithAnotherBroker(t *testing.T) {
	srv, c := startServer(t)
	roots, err := client.LoadCA(srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	ref := startMochi(t)
	base := IngestOptions{Devices: 10, Metrics: 3, Duration: 400 * time.Millisecond, Warmup: 100 * time.Millisecond}
	w, r := base, base
	w.Client, w.RootCAs = c, roots
	r.Broker = ref
	var out bytes.Buffer
	res, err := Compare(t.Context(), CompareOptions{Warden: w, Reference: r, Rounds: 2, Pause: 50 * time.Millisecond}, &out)
	if err != nil {
		t.Fatalf("Compare: %v\n%s", err, out.String())
	}
	t.Logf("\n%s", out.String())
	var plain strings.Builder
	for line := range strings.Lines(out.String()) {
		if strings.HasPrefix(line, "ratio_vs_reference: ") {
			if v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, "ratio_vs_reference: ")), 64); err != nil || v <= 0 {
				t.Errorf("bad ratio line %q", line)
			}
			continue
		}
		if !strings.HasPrefix(line, "# ") {
			plain.WriteString(line)
		}
	}
	f := figures(t, plain.String())
	if f["warden_messages_per_s"] <= 0 || f["reference_messages_per_s"] <= 0 || f["reference_errors"] != 0 || f["warden_errors"] != 0 {
		t.Errorf("unexpected figures %v", f)
	}
	if _, ok := f["reference_server_rss_mb"]; ok {
		t.Errorf("server figures for a plain broker")
	}
	if len(res.Warden) != 2 || len(res.Reference) != 2 || res.RatioVsReference <= 0 {
		t.Errorf("result %+v", res)
	}
	if n := strings.Count(out.String(), "# round"); n != 4 {
		t.Errorf("%d runs printed, want 4", n)
	}
}

func TestIngestReportsConnectFailures(t *testing.T) {
	_, err := Ingest(t.Context(), IngestOptions{Broker: "mqtt://127.0.0.1:1", Devices: 3, Duration: 100 * time.Millisecond}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no device connected") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseMetrics(t *testing.T) {
	m := parseMetrics("# HELP x\n# TYPE x gauge\nprocess_resident_memory_bytes 1.2345e+07\nfoo{a=\"b\"} 3\nprocess_cpu_seconds_total 4.5\n")
	if m["process_resident_memory_bytes"] != 1.2345e7 || m["process_cpu_seconds_total"] != 4.5 || len(m) != 2 {
		t.Errorf("got %v", m)
	}
}

func TestPercentile(t *testing.T) {
	lat := []uint32{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	if p := percentile(lat, 0.5); p != 5*time.Microsecond {
		t.Errorf("p50 = %v", p)
	}
	if p := percentile(lat, 0.99); p != 10*time.Microsecond {
		t.Errorf("p99 = %v", p)
	}
	if p := percentile(nil, 0.5); p != 0 {
		t.Errorf("p50 of nothing = %v", p)
	}
}

func TestHubBenchmark(t *testing.T) {
	srv, c := startServer(t)
	var out bytes.Buffer
	roots, err := client.LoadCA(srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	if err := Hub(t.Context(), HubOptions{Client: c, RootCAs: roots, Devices: 2, Calls: 20, Parallel: 2}, &out); err != nil {
		t.Fatalf("Hub: %v\n%s", err, out.String())
	}
	for _, name := range []string{"method_rtt_p50_ms", "method_rtt_p99_ms", "desired_delivery_p99_ms"} {
		if !strings.Contains(out.String(), name+": ") {
			t.Errorf("output lacks %s:\n%s", name, out.String())
		}
	}
}
