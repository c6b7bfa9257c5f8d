package broker

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/warden-iot/warden/internal/clock/clocktest"
)

// TestRefusedPublishIsLogged: a publish to a topic the device may not use
// is logged with the device, its tenant, the topic (cut short) and why,
// never the payload, and at most once per limitLogEvery per connection.
func TestRefusedPublishIsLogged(t *testing.T) {
	var logs bytes.Buffer
	clk := clocktest.New(time.Date(2026, 12, 7, 17, 0, 0, 0, time.UTC))
	b := &Broker{log: slog.New(slog.NewTextHandler(&logs, nil)), clock: clk,
		sessions: map[string]*session{"pump-1": {tenantID: "acme"}}}
	h := &aclHook{b: b}
	srv := mqtt.New(&mqtt.Options{InlineClient: false})
	pump := srv.NewClient(nil, "tls", "pump-1", false)
	other := srv.NewClient(nil, "tls", "valve-7", false)

	if !h.OnACLCheck(pump, "devices/pump-1/messages/events/", true) {
		t.Fatal("own telemetry refused")
	}
	if logs.Len() != 0 {
		t.Fatalf("an allowed publish was logged: %s", logs.String())
	}

	line := func(topic string, cl *mqtt.Client) string {
		t.Helper()
		logs.Reset()
		if h.OnACLCheck(cl, topic, true) {
			t.Fatalf("%s may publish to %q", cl.ID, topic)
		}
		return logs.String()
	}
	got := line("devices/valve-7/messages/events/", pump)
	for _, want := range []string{"level=WARN", "publish refused", "device=pump-1", "tenant=acme",
		"topic=devices/valve-7/messages/events/", `reason="topic belongs to device valve-7"`} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q:\n%s", want, got)
		}
	}

	// The same connection again within limitLogEvery: held back; another
	// connection is logged.
	if got := line("devices/valve-7/messages/events/", pump); got != "" {
		t.Errorf("second refusal within %v logged: %s", limitLogEvery, got)
	}
	if got := line("telemetry", other); !strings.Contains(got, "device=valve-7") || !strings.Contains(got, `reason="not a device topic"`) {
		t.Errorf("another connection's refusal: %s", got)
	}

	// Later: logged again, with how many were held back, and a long topic
	// cut short.
	clk.Advance(limitLogEvery)
	long := "$SYS/" + strings.Repeat("x", 10000)
	got = line(long, pump)
	if !strings.Contains(got, `reason="reserved for the service"`) || !strings.Contains(got, "not_logged=1") {
		t.Errorf("refusal after %v: %s", limitLogEvery, got)
	}
	if len(got) > 1000 || !strings.Contains(got, "xxx…") {
		t.Errorf("long topic not cut short (%d bytes logged)", len(got))
	}

	// A disconnect forgets the connection's limit.
	h.OnDisconnect(pump, nil, false)
	if got := line("$iothub/twin/PATCH/properties/desired/", pump); !strings.Contains(got, "not a topic devices publish to") {
		t.Errorf("after reconnect: %s", got)
	}
}

func TestPublishRefusal(t *testing.T) {
	for topic, want := range map[string]string{
		"devices/other/messages/events/":                 "topic belongs to device other",
		"devices/pump-1/messages/devicebound/":           "cloud-to-device topic: devices receive on it, they do not publish",
		"devices/pump-1/twin":                            "not a telemetry topic: devices publish to devices/pump-1/messages/events/",
		"$iothub/methods/POST/reboot":                    "not a topic devices publish to: $iothub/twin/GET/, $iothub/twin/PATCH/properties/reported/ and $iothub/methods/res/ are",
		"$dps/registrations/PUT/iotdps-register/?$rid=1": "provisioning topic: only for provisioning connections",
		"$SYS/broker":                                    "reserved for the service",
		"factory/line":                                   "not a device topic",
	} {
		if got := publishRefusal("pump-1", topic); got != want {
			t.Errorf("publishRefusal(%q) = %q, want %q", topic, got, want)
		}
	}
}
