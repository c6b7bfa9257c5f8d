package e2e

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"
)

// TestAPIErrors: every failure is a JSON body with a message and the right
// status.
func TestAPIErrors(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.device("pump-1")
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.roots}}, Timeout: 10 * time.Second}
	base := "https://localhost:" + strings.Split(e.srv.HTTPAddr(), ":")[1]
	cases := []struct {
		method, path, token, body string
		status                    int
		message                   string
	}{
		{"GET", "/api/v1/devices", "", "", 401, "sign in, or send"},
		{"GET", "/api/v1/devices", "nope", "", 401, "invalid token"},
		{"GET", "/api/v1/devices/ghost", adminToken, "", 404, "not found"},
		{"POST", "/api/v1/devices", adminToken, `{"id": "pump-1"}`, 409, "already exists"},
		{"POST", "/api/v1/devices", adminToken, `{"id": "a/b"}`, 400, "not allowed"},
		{"POST", "/api/v1/devices", adminToken, `{"id": `, 400, "invalid JSON"},
		{"POST", "/api/v1/devices", adminToken, `{"id": "x", "color": "red"}`, 400, "unknown field"},
		{"PATCH", "/api/v1/devices/pump-1", adminToken, `{"status": "sleeping"}`, 400, "enabled"},
		{"POST", "/api/v1/devices/pump-1/token", adminToken, `{"ttl": "forever"}`, 400, "ttl"},
		{"GET", "/api/v1/devices/pump-1/telemetry/temperature?from=yesterday", adminToken, "", 400, "RFC 3339"},
		{"GET", "/api/v1/devices/pump-1/telemetry/temperature?bucket=5m&buckets=3", adminToken, "", 400, "not both"},
		{"GET", "/api/v1/devices/pump-1/telemetry/temperature?bucket=1ms", adminToken, "", 400, "more than"},
		{"GET", "/api/v1/devices/pump-1/telemetry/temperature?limit=0", adminToken, "", 400, "limit"},
		{"GET", "/api/v1/nothing-here", adminToken, "", 404, "no such API endpoint"},
		{"DELETE", "/api/v1/devices", adminToken, "", 405, "method not allowed"},
	}
	for _, c := range cases {
		req, _ := http.NewRequestWithContext(e.ctx(), c.method, base+c.path, strings.NewReader(c.body))
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s %s: status %d, want %d (%s)", c.method, c.path, resp.StatusCode, c.status, body)
			continue
		}
		if c.message == "" {
			continue
		}
		var e struct {
			Error  string `json:"error"`
			Status int    `json:"status"`
		}
		if err := json.Unmarshal(body, &e); err != nil || e.Status != c.status || !strings.Contains(e.Error, c.message) {
			t.Errorf("%s %s: body %s, want JSON error containing %q", c.method, c.path, body, c.message)
		}
	}
	resp, err := hc.Get(base + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
}

// TestPlainMQTTListenerIsOptIn: off by default, and when configured it
// takes the same credentials.
func TestPlainMQTTListenerIsOptIn(t *testing.T) {
	t.Parallel()
	if addr := start(t).srv.MQTTTCPAddr(); addr != "" {
		t.Fatalf("plain MQTT listener open by default at %s", addr)
	}
	e := start(t, withPlainMQTT())
	key := e.device("meter-9")
	c := pahomqtt.NewClient(pahomqtt.NewClientOptions().AddBroker("tcp://" + e.srv.MQTTTCPAddr()).
		SetClientID("meter-9").SetUsername(e.username("meter-9")).SetPassword(e.token("meter-9", key, time.Hour)).
		SetProtocolVersion(4).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("plain connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	if tok := c.Publish(events("meter-9", "%24.mid=1"), 1, false, `{"consumption": 5}`); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	if l, err := e.api.Latest(e.ctx(), "meter-9"); err != nil || len(l) != 1 {
		t.Fatalf("latest = %+v, %v", l, err)
	}
}
