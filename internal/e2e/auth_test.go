package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/warden-iot/warden/internal/sas"
)

// CONNACK return codes of MQTT 3.1.1.
const (
	rcIdentifierRejected = 2
	rcBadCredentials     = 4
	rcNotAuthorized      = 5
)

func TestConnectionsRefused(t *testing.T) {
	t.Parallel()
	e := start(t)
	key := e.device("pump-1")
	otherKey := e.device("pump-2")
	disabledKey := e.device("pump-disabled")
	if _, err := e.api.SetDeviceStatus(e.ctx(), "pump-disabled", "disabled"); err != nil {
		t.Fatal(err)
	}
	deletedKey := e.device("pump-deleted")
	if err := e.api.DeleteDevice(e.ctx(), "pump-deleted"); err != nil {
		t.Fatal(err)
	}
	wrongKey := bytes.Repeat([]byte{0x42}, 32)

	cases := []struct {
		name     string
		clientID string
		username string
		password string
		wantRC   byte
	}{
		{"wrong signature", "pump-1", e.username("pump-1"), e.token("pump-1", wrongKey, time.Hour), rcNotAuthorized},
		{"expired token", "pump-1", e.username("pump-1"),
			sas.Sign(key, sas.DeviceResource(e.hubHost, "pump-1"), time.Now().Add(-time.Second)), rcNotAuthorized},
		{"token of another device", "pump-1", e.username("pump-1"), e.token("pump-2", otherKey, time.Hour), rcNotAuthorized},
		{"token for another hub name", "pump-1", e.username("pump-1"),
			sas.Sign(key, sas.DeviceResource("elsewhere.example.com", "pump-1"), time.Now().Add(time.Hour)), rcNotAuthorized},
		{"disabled device", "pump-disabled", e.username("pump-disabled"), e.token("pump-disabled", disabledKey, time.Hour), rcNotAuthorized},
		{"deleted device", "pump-deleted", e.username("pump-deleted"), e.token("pump-deleted", deletedKey, time.Hour), rcNotAuthorized},
		{"unknown device", "ghost", e.username("ghost"), e.token("ghost", key, time.Hour), rcNotAuthorized},
		{"client id is not the user name's device", "pump-2", e.username("pump-1"), e.token("pump-1", key, time.Hour), rcIdentifierRejected},
		{"password is not a SAS token", "pump-1", e.username("pump-1"), "hunter2", rcBadCredentials},
		{"user name without device", "pump-1", "just-a-name", e.token("pump-1", key, time.Hour), rcBadCredentials},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, rc, err := e.connect311(c.clientID, c.username, c.password)
			if err == nil {
				m.c.Disconnect(0)
				t.Fatalf("connected; want CONNACK %d", c.wantRC)
			}
			if rc != c.wantRC {
				t.Fatalf("CONNACK return code %d (%v), want %d", rc, err, c.wantRC)
			}
		})
	}
	// The secondary key works too.
	d, err := e.api.Device(e.ctx(), "pump-1")
	if err != nil {
		t.Fatal(err)
	}
	sec, _ := base64.StdEncoding.DecodeString(d.SecondaryKey)
	e.deviceConn("pump-1", sec)
	if n := e.metricValue(`warden_connections_refused_total{reason="bad-signature"}`); n != 1 {
		t.Errorf("refused bad-signature = %v, want 1", n)
	}
}

func TestDeviceConfinedToItsOwnTopics(t *testing.T) {
	t.Parallel()
	e := start(t)
	key := e.device("pump-1")
	e.device("pump-2")
	dev := e.deviceConn("pump-1", key)

	// Subscriptions: its own C2D and the $iothub topics are granted,
	// another device's topics and "#" are refused (SUBACK 0x80).
	for filter, want := range map[string]byte{
		"devices/pump-1/messages/devicebound/#": 1,
		"$iothub/twin/res/#":                    0,
		"$iothub/methods/POST/#":                0,
		"devices/pump-2/messages/devicebound/#": 0x80,
		"devices/pump-2/messages/events/#":      0x80,
		"#":                                     0x80,
		"devices/+/messages/events/#":           0x80,
	} {
		qos := byte(1)
		if want == 0 {
			qos = 0
		}
		tok := dev.c.Subscribe(filter, qos, nil)
		if !tok.WaitTimeout(5 * time.Second) {
			t.Fatalf("no SUBACK for %s", filter)
		}
		got := tok.(interface{ Result() map[string]byte }).Result()[filter]
		if got != want {
			t.Errorf("subscribe %q: granted %#x, want %#x", filter, got, want)
		}
	}

	// Publishing to another device's telemetry topic closes the connection
	// (as IoT Hub does for 3.1.1 clients) and stores nothing.
	dev.c.Publish(events("pump-2", "%24.mid=spoof"), 1, false, `{"temperature": 1}`) // no PUBACK comes
	dev.waitLost(t, "publish to another device's topic")
	if l, err := e.api.Latest(e.ctx(), "pump-2"); err != nil || len(l) != 0 {
		t.Fatalf("pump-2 latest = %+v, %v; want nothing", l, err)
	}
	// So does publishing to an arbitrary topic.
	dev = e.deviceConn("pump-1", key)
	dev.c.Publish("factory/all", 1, false, `{"temperature": 1}`)
	dev.waitLost(t, "publish outside the device's topics")
}

func TestDisablingADeviceClosesItsConnection(t *testing.T) {
	t.Parallel()
	e := start(t)
	key := e.device("pump-1")
	dev := e.deviceConn("pump-1", key)
	if _, err := e.api.SetDeviceStatus(e.ctx(), "pump-1", "disabled"); err != nil {
		t.Fatal(err)
	}
	dev.waitLost(t, "disabled device")
	if _, rc, err := e.connect311("pump-1", e.username("pump-1"), e.token("pump-1", key, time.Hour)); err == nil || rc != rcNotAuthorized {
		t.Fatalf("reconnect of disabled device: rc %d, %v; want refused", rc, err)
	}
	if _, err := e.api.SetDeviceStatus(e.ctx(), "pump-1", "enabled"); err != nil {
		t.Fatal(err)
	}
	e.deviceConn("pump-1", key)

	// New keys: the old token no longer works.
	d, err := e.api.RegenerateKeys(e.ctx(), "pump-1", "both")
	if err != nil {
		t.Fatal(err)
	}
	if _, rc, err := e.connect311("pump-1", e.username("pump-1"), e.token("pump-1", key, time.Hour)); err == nil || rc != rcNotAuthorized {
		t.Fatalf("old key after regeneration: rc %d, %v; want refused", rc, err)
	}
	newKey, _ := base64.StdEncoding.DecodeString(d.PrimaryKey)
	e.deviceConn("pump-1", newKey)
}

func TestTokenExpiryClosesConnection(t *testing.T) {
	t.Parallel()
	e := start(t, withFakeClock())
	key := e.device("pump-1")
	m, rc, err := e.connect311("pump-1", e.username("pump-1"), e.token("pump-1", key, 2*time.Second))
	if err != nil {
		t.Fatalf("connect: rc %d, %v", rc, err)
	}
	e.clock.Advance(3 * time.Second) // the token's life, and its rounding to whole seconds
	m.waitLost(t, "token expiry")
}

func TestMQTT5ClientSameCredentialsAndTopics(t *testing.T) {
	t.Parallel()
	e := start(t)
	key := e.device("meter-1")
	connect := func(password string) (*paho.Client, *paho.Connack, error) {
		// The context must outlive the connection: paho.golang ties its
		// goroutines to it.
		ctx := e.ctx()
		conn, err := tls.Dial("tcp", e.srv.MQTTAddr(), e.tlsConfig())
		if err != nil {
			t.Fatal(err)
		}
		c := paho.NewClient(paho.ClientConfig{Conn: conn})
		ack, err := c.Connect(ctx, &paho.Connect{
			ClientID: "meter-1", KeepAlive: 30, CleanStart: true,
			Username: e.username("meter-1"), UsernameFlag: true,
			Password: []byte(password), PasswordFlag: true,
		})
		return c, ack, err
	}
	c, ack, err := connect(e.token("meter-1", key, time.Hour))
	if err != nil {
		t.Fatalf("MQTT 5 connect: %v (%+v)", err, ack)
	}
	defer c.Disconnect(&paho.Disconnect{})
	resp, err := c.Publish(e.ctx(), &paho.Publish{
		Topic: events("meter-1", "%24.mid=v5-1"), QoS: 1,
		Payload: []byte(`{"consumption": 1234.5, "battery": 3.6}`),
	})
	if err != nil || resp.ReasonCode != 0 {
		t.Fatalf("MQTT 5 publish: %+v, %v", resp, err)
	}
	if l, err := e.api.Latest(e.ctx(), "meter-1"); err != nil || len(l) != 2 {
		t.Fatalf("latest = %+v, %v", l, err)
	}
	// Refusals carry MQTT 5 reason codes.
	_, ack, err = connect(e.token("meter-1", bytes.Repeat([]byte{1}, 32), time.Hour))
	if err == nil || ack == nil || ack.ReasonCode != 0x87 {
		t.Fatalf("bad signature over MQTT 5: %+v, %v; want reason code 0x87 (not authorized)", ack, err)
	}
}

// TestMosquittoPub publishes with Debian's mosquitto_pub, exactly as the
// README tells a new user to.
func TestMosquittoPub(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("mosquitto_pub")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("mosquitto_pub not installed; CI requires it (apt-get install mosquitto-clients)")
		}
		t.Skip("mosquitto_pub not installed (apt-get install mosquitto-clients)")
	}
	e := start(t)
	key := e.device("pump-7")
	_, port, _ := net.SplitHostPort(e.srv.MQTTAddr())
	ctx, cancel := context.WithTimeout(e.ctx(), 20*time.Second)
	defer cancel()
	for _, version := range []string{"mqttv311", "mqttv5"} {
		cmd := exec.CommandContext(ctx, bin,
			"-h", "localhost", "-p", port, "--cafile", filepath.Join(e.dataDir, "ca.pem"),
			"-V", version, "-q", "1",
			"-i", "pump-7", "-u", e.username("pump-7"), "-P", e.token("pump-7", key, time.Hour),
			"-t", events("pump-7", "%24.mid=mosq-"+version),
			"-m", `{"temperature": 66.6, "run": `+map[string]string{"mqttv311": "1", "mqttv5": "2"}[version]+`}`)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_pub -V %s: %v\n%s", version, err, out)
		}
	}
	l, err := e.api.Latest(e.ctx(), "pump-7")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, m := range l {
		got[m.Name] = m.Value
	}
	if got["temperature"] != 66.6 || got["run"] != 2 {
		t.Fatalf("latest = %v, want temperature 66.6 and run 2", got)
	}
}
