package e2e

import (
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"
)

// TestMQTTOverWebSocket: a device behind a firewall that passes only HTTPS
// connects to /$iothub/websocket on the HTTPS listener, with the same
// credentials and topics.
func TestMQTTOverWebSocket(t *testing.T) {
	t.Parallel()
	e := start(t)
	key := e.device("pump-ws")
	_, port, _ := net.SplitHostPort(e.srv.HTTPAddr())
	lost := make(chan error, 1)
	c := pahomqtt.NewClient(pahomqtt.NewClientOptions().
		AddBroker("wss://localhost:" + port + "/$iothub/websocket").
		SetClientID("pump-ws").SetUsername(e.username("pump-ws")).SetPassword(e.token("pump-ws", key, time.Hour)).
		SetTLSConfig(e.tlsConfig()).SetProtocolVersion(4).SetAutoReconnect(false).
		SetConnectionLostHandler(func(_ pahomqtt.Client, err error) { lost <- err }))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect over WebSocket: %v", tok.Error())
	}
	// A big message spans many WebSocket frames' worth of bytes.
	big := `{"ts":"` + time.Now().UTC().Add(-time.Minute).Format(time.RFC3339) + `","values":{`
	for i := range 2000 {
		if i > 0 {
			big += ","
		}
		big += `"m` + string(rune('a'+i%26)) + strconv.Itoa(i) + `":` + strconv.Itoa(i)
	}
	big += "}}"
	for i, body := range []string{`{"temperature": 70.5}`, big} {
		if tok := c.Publish(events("pump-ws", "%24.mid=ws-"+strconv.Itoa(i)), 1, false, body); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish over WebSocket: %v", tok.Error())
		}
	}
	l, err := e.api.Latest(e.ctx(), "pump-ws")
	if err != nil || len(l) != 2001 {
		t.Fatalf("latest = %d metrics, %v; want 2001", len(l), err)
	}
	// Disabling the device closes the WebSocket connection too.
	if _, err := e.api.SetDeviceStatus(e.ctx(), "pump-ws", "disabled"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lost:
	case <-time.After(10 * time.Second):
		t.Fatal("WebSocket connection of a disabled device still open")
	}
	// A plain GET gets a clear answer, not a hang.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: e.tlsConfig()}, Timeout: 5 * time.Second}
	resp, err := hc.Get("https://localhost:" + port + "/$iothub/websocket")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("plain GET: %d, want 426", resp.StatusCode)
	}
}
