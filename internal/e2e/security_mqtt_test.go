package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	pahomqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/jackc/pgx/v5"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/sas"
	"github.com/warden-iot/warden/internal/server"
	"github.com/warden-iot/warden/internal/store/postgres/pgtest"
)

// Attacks on the MQTT edge by devices with valid credentials: each test
// speaks to a whole server the way a hostile device would, with real
// clients or raw packets.

// tenantDevice creates a device in a tenant and returns its primary key.
func (e *env) tenantDevice(tenant, id string) []byte {
	e.t.Helper()
	var d apiv1.Device
	if err := e.api.Do(e.ctx(), http.MethodPost, "/api/v1/devices", nil, map[string]any{"id": id, "tenantId": tenant}, &d); err != nil {
		e.t.Fatalf("device %s in %s: %v", id, tenant, err)
	}
	return e.ownerKey(tenant, id)
}

func (e *env) tenant(id string) {
	e.t.Helper()
	if _, err := e.api.CreateTenant(e.ctx(), apiv1.NewTenant{ID: id, TenantPatch: apiv1.TenantPatch{Name: apiv1.Ptr("Customer " + id)}}); err != nil {
		e.t.Fatalf("tenant %s: %v", id, err)
	}
}

// rawMQTT is a TLS connection that speaks MQTT byte by byte, to send what
// no well-behaved client library sends.
type rawMQTT struct {
	t       *testing.T
	c       net.Conn
	r       *bufio.Reader
	version byte
}

func (e *env) rawDial(version byte) *rawMQTT {
	e.t.Helper()
	c, err := tls.Dial("tcp", e.srv.MQTTAddr(), e.tlsConfig())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return &rawMQTT{t: e.t, c: c, r: bufio.NewReader(c), version: version}
}

func (m *rawMQTT) write(pk packets.Packet) error {
	pk.ProtocolVersion = m.version
	var buf bytes.Buffer
	var err error
	switch pk.FixedHeader.Type {
	case packets.Connect:
		pk.Connect.ProtocolName = []byte("MQTT")
		err = pk.ConnectEncode(&buf)
	case packets.Publish:
		err = pk.PublishEncode(&buf)
	default:
		err = fmt.Errorf("cannot encode packet type %d", pk.FixedHeader.Type)
	}
	if err != nil {
		m.t.Fatal(err)
	}
	_, err = m.c.Write(buf.Bytes())
	return err
}

// read returns the next packet's type and body; err is io.EOF (or a
// reset) once the server closed the connection.
func (m *rawMQTT) read(timeout time.Duration) (byte, []byte, error) {
	m.c.SetReadDeadline(time.Now().Add(timeout))
	first, err := m.r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, _, err := packets.DecodeLength(m.r)
	if err != nil {
		return 0, nil, err
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(m.r, body); err != nil {
		return 0, nil, err
	}
	return first >> 4, body, nil
}

// connect sends a device's CONNECT and returns the CONNACK code.
func (m *rawMQTT) connect(e *env, id string, key []byte, mod func(*packets.Packet)) byte {
	m.t.Helper()
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, Connect: packets.ConnectParams{
		ClientIdentifier: id, Clean: true, Keepalive: 0,
		UsernameFlag: true, Username: []byte(e.username(id)),
		PasswordFlag: true, Password: []byte(e.token(id, key, time.Hour)),
	}}
	if mod != nil {
		mod(&pk)
	}
	if err := m.write(pk); err != nil {
		m.t.Fatal(err)
	}
	typ, body, err := m.read(10 * time.Second)
	if err != nil || typ != packets.Connack || len(body) < 2 {
		m.t.Fatalf("no CONNACK: type %d %x %v", typ, body, err)
	}
	return body[1]
}

func (m *rawMQTT) publish(topic string, qos byte, id uint16, payload []byte, props packets.Properties) error {
	return m.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos},
		TopicName: topic, PacketID: id, Payload: payload, Properties: props})
}

// expectClosed reads until the server closes the connection and returns
// the reason code of a DISCONNECT it sent first (-1 if none). A PUBACK on
// the way fails the test.
func (m *rawMQTT) expectClosed(what string) int {
	m.t.Helper()
	code := -1
	for {
		typ, body, err := m.read(10 * time.Second)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				m.t.Fatalf("%s: connection still open after 10s", what)
			}
			return code
		}
		switch typ {
		case packets.Disconnect:
			if len(body) > 0 {
				code = int(body[0])
			}
		case packets.Puback:
			m.t.Fatalf("%s: got a PUBACK", what)
		}
	}
}

// TestWillMessageAttackAcrossTenants: a device of tenant A asks for a will
// on topics of a device of tenant B (its C2D topic and the direct-method
// topic every device subscribes to). Every such CONNECT is refused, over
// MQTT 3.1.1 and 5, and a connection killed right after its CONNECT makes
// nothing reach B.
func TestWillMessageAttackAcrossTenants(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.tenant("A")
	e.tenant("B")
	keyA := e.tenantDevice("A", "attacker")
	keyB := e.tenantDevice("B", "victim")
	victim := e.hubConnect("victim", keyB)
	victim.subscribe(t, filterC2D("victim"), filterMethods, filterTwinRes, filterDesired)

	willTopics := []string{"devices/victim/messages/devicebound/#", "$iothub/methods/POST/#",
		"devices/victim/messages/devicebound/%24.mid=evil", "$iothub/methods/POST/reboot/?$rid=1"}
	attempts := 0
	for _, topic := range willTopics {
		// MQTT 3.1.1 (Eclipse Paho): CONNACK return code 5.
		lost := make(chan error, 1)
		o := pahomqtt.NewClientOptions().AddBroker("tls://"+e.srv.MQTTAddr()).SetClientID("attacker").
			SetUsername(e.username("attacker")).SetPassword(e.token("attacker", keyA, time.Hour)).
			SetTLSConfig(e.tlsConfig()).SetProtocolVersion(4).SetAutoReconnect(false).SetConnectRetry(false).
			SetWill(topic, `{"pwned":true}`, 1, false).
			SetConnectionLostHandler(func(_ pahomqtt.Client, err error) { lost <- err })
		c := pahomqtt.NewClient(o)
		tok := c.Connect()
		if !tok.WaitTimeout(10 * time.Second) {
			t.Fatal("connect timed out")
		}
		attempts++
		if rc := tok.(*pahomqtt.ConnectToken).ReturnCode(); tok.Error() == nil || rc != rcNotAuthorized {
			c.Disconnect(0)
			t.Fatalf("3.1.1 will on %s: rc %d, %v; want refused with 5", topic, rc, tok.Error())
		}

		// MQTT 5 (paho.golang): CONNACK reason code 0x83.
		conn, err := tls.Dial("tcp", e.srv.MQTTAddr(), e.tlsConfig())
		if err != nil {
			t.Fatal(err)
		}
		c5 := paho.NewClient(paho.ClientConfig{Conn: conn})
		ack, err := c5.Connect(e.ctx(), &paho.Connect{
			ClientID: "attacker", KeepAlive: 30, CleanStart: true,
			Username: e.username("attacker"), UsernameFlag: true,
			Password: []byte(e.token("attacker", keyA, time.Hour)), PasswordFlag: true,
			WillMessage: &paho.WillMessage{Topic: topic, QoS: 1, Payload: []byte(`{"pwned":true}`)},
		})
		attempts++
		if err == nil || ack == nil || ack.ReasonCode != 0x83 {
			t.Fatalf("MQTT 5 will on %s: %+v, %v; want CONNACK 0x83", topic, ack, err)
		}
		conn.Close()

		// Raw: the CONNECT with a will (retained, QoS 2 or empty, which
		// mochi alone would refuse with other codes), then the TCP
		// connection killed at once, without reading or DISCONNECT.
		for _, w := range []struct {
			retain  bool
			qos     byte
			payload string
		}{{true, 1, "x"}, {false, 2, "x"}, {false, 0, ""}} {
			for _, v := range []byte{4, 5} {
				m := e.rawDial(v)
				rc := m.connect(e, "attacker", keyA, func(pk *packets.Packet) {
					pk.Connect.WillFlag, pk.Connect.WillTopic, pk.Connect.WillPayload = true, topic, []byte(w.payload)
					pk.Connect.WillRetain, pk.Connect.WillQos = w.retain, w.qos
				})
				attempts++
				if want := map[byte]byte{4: rcNotAuthorized, 5: 0x83}[v]; rc != want {
					t.Fatalf("will %+v over MQTT %d: CONNACK %#x, want %#x", w, v, rc, want)
				}
				m.c.Close()
			}
		}
		for _, v := range []byte{4, 5} {
			m := e.rawDial(v)
			pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, Connect: packets.ConnectParams{
				ClientIdentifier: "attacker", Clean: false, Keepalive: 60,
				UsernameFlag: true, Username: []byte(e.username("attacker")),
				PasswordFlag: true, Password: []byte(e.token("attacker", keyA, time.Hour)),
				WillFlag: true, WillTopic: topic, WillPayload: []byte(`{"pwned":true}`), WillQos: 1,
			}}
			if err := m.write(pk); err != nil {
				t.Fatal(err)
			}
			attempts++
			if tc, ok := m.c.(*tls.Conn); ok {
				tc.NetConn().(*net.TCPConn).SetLinger(0) // RST, not FIN
			}
			m.c.Close()
		}
	}
	// A provisioning client cannot have a will either.
	scope := e.idScope()
	groupKey := e.enrollGroup("g1", "")
	for _, v := range []byte{4, 5} {
		m := e.rawDial(v)
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, Connect: packets.ConnectParams{
			ClientIdentifier: "box-1", Clean: true, Keepalive: 60,
			UsernameFlag: true, Username: []byte(dpsUser(scope, "box-1")),
			PasswordFlag: true, Password: []byte(dpsToken(scope, "box-1", sas.DeriveDeviceKey(groupKey, "box-1"), time.Hour)),
			WillFlag: true, WillTopic: "devices/victim/messages/devicebound/#", WillPayload: []byte(`{"pwned":true}`), WillQos: 1,
		}}
		if err := m.write(pk); err != nil {
			t.Fatal(err)
		}
		attempts++
		typ, body, err := m.read(10 * time.Second)
		want := byte(rcNotAuthorized)
		if v == 5 {
			want = 0x83
		}
		if err != nil || typ != packets.Connack || len(body) < 2 || body[1] != want {
			t.Fatalf("provisioning client with a will (MQTT %d): type %d %x %v; want CONNACK %#x", v, typ, body, err, want)
		}
		m.c.Close()
	}

	victim.none(t, 2*time.Second)
	if err := victim.c.Publish(events("victim", ""), 1, false, `{"alive":1}`); !err.WaitTimeout(10*time.Second) || err.Error() != nil {
		t.Fatalf("victim cannot publish: %v", err.Error())
	}
	waitFor(t, "refusal count", 10*time.Second, func() bool {
		return e.metricValue(`warden_connections_refused_total{reason="will-not-supported"}`) == float64(attempts)
	})
}

// TestWildcardTopicNamesCloseTheConnection: a PUBLISH whose topic name has
// a wildcard, sent directly or bound to an MQTT 5 topic alias, closes the
// connection (DISCONNECT 0x90 on MQTT 5); nothing is stored or delivered.
// A PUBLISH by an alias that was never bound is a protocol error (0x82); a
// properly bound alias works and is confined to the device's topics.
func TestWildcardTopicNamesCloseTheConnection(t *testing.T) {
	t.Parallel()
	e := start(t)
	key := e.device("dev-1")
	otherKey := e.device("dev-2")
	other := e.hubConnect("dev-2", otherKey)
	other.subscribe(t, filterC2D("dev-2"), filterMethods)

	evil := []byte(`{"evil": 1}`)
	wildcards := []string{
		"devices/dev-1/messages/events/#",
		"devices/dev-1/messages/events/+",
		"devices/+/messages/events/",
		"devices/dev-2/messages/devicebound/#",
		"$iothub/methods/POST/#",
		"#",
	}
	for _, topic := range wildcards {
		for _, qos := range []byte{0, 1} {
			m := e.rawDial(4)
			if rc := m.connect(e, "dev-1", key, nil); rc != 0 {
				t.Fatalf("connect: %d", rc)
			}
			if err := m.publish(topic, qos, uint16(qos), evil, packets.Properties{}); err != nil {
				t.Fatal(err)
			}
			m.expectClosed("3.1.1 " + topic)

			m = e.rawDial(5)
			if rc := m.connect(e, "dev-1", key, nil); rc != 0 {
				t.Fatalf("connect: %#x", rc)
			}
			if err := m.publish(topic, qos, uint16(qos), evil, packets.Properties{}); err != nil {
				t.Fatal(err)
			}
			if code := m.expectClosed("5 " + topic); code != 0x90 {
				t.Errorf("MQTT 5 %s: DISCONNECT %#x, want 0x90", topic, code)
			}
		}
	}

	// Topic aliases.
	m := e.rawDial(5)
	if rc := m.connect(e, "dev-1", key, nil); rc != 0 {
		t.Fatalf("connect: %#x", rc)
	}
	alias := func(n uint16) packets.Properties { return packets.Properties{TopicAlias: n, TopicAliasFlag: true} }
	// Bound with its name, then used alone: stored, acknowledged.
	if err := m.publish(events("dev-1", ""), 1, 1, []byte(`{"good": 1}`), alias(1)); err != nil {
		t.Fatal(err)
	}
	if err := m.publish("", 1, 2, []byte(`{"good": 2}`), alias(1)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		typ, body, err := m.read(10 * time.Second)
		if err != nil || typ != packets.Puback || len(body) > 2 && body[2] != 0 {
			t.Fatalf("alias publish: type %d %x %v; want PUBACK success", typ, body, err)
		}
	}
	// A wildcard name bound to an alias.
	if err := m.publish("devices/dev-2/messages/devicebound/#", 1, 3, evil, alias(2)); err != nil {
		t.Fatal(err)
	}
	if code := m.expectClosed("alias bound to a wildcard"); code != 0x90 {
		t.Errorf("alias bound to a wildcard: DISCONNECT %#x, want 0x90", code)
	}
	// An alias never bound.
	m = e.rawDial(5)
	if rc := m.connect(e, "dev-1", key, nil); rc != 0 {
		t.Fatalf("connect: %#x", rc)
	}
	if err := m.publish("", 1, 1, evil, alias(3)); err != nil {
		t.Fatal(err)
	}
	if code := m.expectClosed("unbound alias"); code != 0x82 {
		t.Errorf("unbound alias: DISCONNECT %#x, want 0x82", code)
	}
	// An alias bound on one connection means nothing on the next, and an
	// alias bound to another device's topic is refused like the name.
	m = e.rawDial(5)
	if rc := m.connect(e, "dev-1", key, nil); rc != 0 {
		t.Fatalf("connect: %#x", rc)
	}
	if err := m.publish(events("dev-2", ""), 1, 1, evil, alias(1)); err != nil {
		t.Fatal(err)
	}
	if typ, body, err := m.read(10 * time.Second); err != nil || typ != packets.Puback || len(body) < 3 || body[2] != 0x87 {
		t.Fatalf("alias bound to another device's topic: type %d %x %v; want PUBACK 0x87", typ, body, err)
	}

	other.none(t, time.Second)
	waitFor(t, "the good messages", 10*time.Second, func() bool {
		l, err := e.api.Latest(e.ctx(), "dev-1")
		return err == nil && len(l) == 1
	})
	for _, id := range []string{"dev-1", "dev-2"} {
		l, err := e.api.Latest(e.ctx(), id)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range l {
			if p.Name == "evil" {
				t.Errorf("%s: the wildcard publish was stored: %+v", id, l)
			}
		}
		if r, err := e.api.Rejected(e.ctx(), id, 10); err != nil || len(r) != 0 {
			t.Errorf("%s: rejected %+v, %v", id, r, err)
		}
	}
}

// TestForeignHubToken: a token signed with the device's real key for
// another hub's name is refused, even with a user name for that hub.
func TestForeignHubToken(t *testing.T) {
	t.Parallel()
	e := start(t)
	key := e.device("dev-1")
	const evil = "evilhub.azure-devices.net"
	user := evil + "/dev-1/?api-version=2021-04-12"
	tok := sas.Sign(key, sas.DeviceResource(evil, "dev-1"), time.Now().Add(time.Hour))
	if m, rc, err := e.connect311("dev-1", user, tok); err == nil || rc != rcNotAuthorized {
		if m != nil {
			m.c.Disconnect(0)
		}
		t.Fatalf("foreign hub token: rc %d, %v; want 5", rc, err)
	}
	// The same with the port of this hub, and over MQTT 5.
	_, port, _ := net.SplitHostPort(e.hubHost)
	user = evil + ":" + port + "/dev-1/?api-version=2021-04-12"
	tok = sas.Sign(key, sas.DeviceResource(evil+":"+port, "dev-1"), time.Now().Add(time.Hour))
	conn, err := tls.Dial("tcp", e.srv.MQTTAddr(), e.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ack, err := paho.NewClient(paho.ClientConfig{Conn: conn}).Connect(e.ctx(), &paho.Connect{
		ClientID: "dev-1", KeepAlive: 30, CleanStart: true,
		Username: user, UsernameFlag: true, Password: []byte(tok), PasswordFlag: true,
	})
	if err == nil || ack == nil || ack.ReasonCode != 0x87 {
		t.Fatalf("foreign hub token over MQTT 5: %+v, %v; want 0x87", ack, err)
	}
	if n := e.metricValue(`warden_connections_refused_total{reason="foreign-hub"}`); n != 2 {
		t.Errorf("refused foreign-hub = %v, want 2", n)
	}
	// This hub's name, in any case, still works.
	e.deviceConn("dev-1", key)
}

// TestReceiveMaximumZero: an MQTT 5 CONNECT with Receive Maximum 0 is a
// protocol error, whatever the credentials; without the property, or with
// another value, the device connects.
func TestReceiveMaximumZero(t *testing.T) {
	t.Parallel()
	e := start(t)
	key := e.device("dev-1")
	connect := func(rm *uint16) (*paho.Connack, error) {
		conn, err := tls.Dial("tcp", e.srv.MQTTAddr(), e.tlsConfig())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		c := paho.NewClient(paho.ClientConfig{Conn: conn})
		return c.Connect(e.ctx(), &paho.Connect{
			ClientID: "dev-1", KeepAlive: 30, CleanStart: true,
			Username: e.username("dev-1"), UsernameFlag: true,
			Password: []byte(e.token("dev-1", key, time.Hour)), PasswordFlag: true,
			Properties: &paho.ConnectProperties{ReceiveMaximum: rm,
				User: paho.UserProperties{{Key: "padding", Value: string(bytes.Repeat([]byte("x"), 500))}}},
		})
	}
	zero, ten := uint16(0), uint16(10)
	if ack, err := connect(&zero); err == nil || ack == nil || ack.ReasonCode != 0x82 {
		t.Fatalf("Receive Maximum 0: %+v, %v; want CONNACK 0x82", ack, err)
	}
	if ack, err := connect(&ten); err != nil || ack.ReasonCode != 0 {
		t.Fatalf("Receive Maximum 10: %+v, %v", ack, err)
	}
	if ack, err := connect(nil); err != nil || ack.ReasonCode != 0 {
		t.Fatalf("no Receive Maximum: %+v, %v", ack, err)
	}
	if n := e.metricValue(`warden_connections_refused_total{reason="receive-maximum-zero"}`); n != 1 {
		t.Errorf("refused receive-maximum-zero = %v, want 1", n)
	}
}

// TestNonReadingClientDoesNotStallOthers: one device publishes QoS 1
// messages as fast as it can and never reads its socket, so its PUBACKs
// pile up; beside it 50 devices publish QoS 1 steadily. Their PUBACKs keep
// coming (p99 under 100 ms), and the device that does not read is
// disconnected.
func TestNonReadingClientDoesNotStallOthers(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test")
	}
	if raceEnabled {
		// Under the race detector the server is several times slower: the
		// flooding device is then throttled by the server's pace instead of
		// filling its outbox, and latencies say nothing. The README's test
		// command runs this test again without -race.
		t.Skip("timing test: run without -race")
	}
	e := start(t)
	const devices = 50
	keys := make([][]byte, devices)
	for i := range keys {
		keys[i] = e.device(fmt.Sprintf("steady-%02d", i))
	}
	mute := e.device("mute")

	// The steady devices: one message every 20 ms each, the PUBACK
	// latency of each recorded once the mute device floods.
	var (
		mu        sync.Mutex
		latencies []time.Duration
		failures  []error
	)
	measuring := make(chan struct{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range devices {
		id := fmt.Sprintf("steady-%02d", i)
		d := e.deviceConn(id, keys[i])
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				t0 := time.Now()
				tok := d.c.Publish(events(id, fmt.Sprintf("%%24.mid=%d", n)), 1, false, `{"temperature": 21.5}`)
				ok := tok.WaitTimeout(5 * time.Second)
				lat := time.Since(t0)
				select {
				case <-measuring:
				default:
					continue
				}
				mu.Lock()
				switch {
				case !ok:
					failures = append(failures, fmt.Errorf("%s: no PUBACK within 5s", id))
				case tok.Error() != nil:
					failures = append(failures, fmt.Errorf("%s: %w", id, tok.Error()))
				default:
					latencies = append(latencies, lat)
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(time.Second) // warm up

	// The mute device: a raw TLS connection, CONNECT (keep-alive 0: no deadline) and PUBLISHes, never a read.
	raw, err := net.Dial("tcp", e.srv.MQTTAddr())
	if err != nil {
		t.Fatal(err)
	}
	conn := tls.Client(raw, e.tlsConfig())
	if err := conn.Handshake(); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	m := &rawMQTT{t: t, c: conn, version: 4}
	connect := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, Connect: packets.ConnectParams{
		ClientIdentifier: "mute", Clean: true, Keepalive: 0,
		UsernameFlag: true, Username: []byte(e.username("mute")),
		PasswordFlag: true, Password: []byte(e.token("mute", mute, time.Hour)),
	}}
	if err := m.write(connect); err != nil {
		t.Fatal(err)
	}
	close(measuring)
	floodStart := time.Now()
	dropped := make(chan error, 1)
	sent := 0
	go func() {
		var buf bytes.Buffer
		for id := uint16(1); ; id++ {
			if id == 0 {
				id = 1
			}
			buf.Reset()
			pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, ProtocolVersion: 4,
				TopicName: events("mute", ""), PacketID: id, Payload: []byte(`{"flood": 1}`)}
			pk.PublishEncode(&buf)
			conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if _, err := conn.Write(buf.Bytes()); err != nil {
				dropped <- err
				return
			}
			sent++
		}
	}()
	var dropErr error
	select {
	case dropErr = <-dropped:
	case <-time.After(60 * time.Second):
	}
	dropAfter := time.Since(floodStart)
	time.Sleep(2 * time.Second) // and the steady devices go on after it
	close(stop)
	wg.Wait()

	if dropErr == nil {
		t.Fatalf("the non-reading device was not disconnected within 60s")
	}
	if n := e.metricValue("warden_clients_dropped_slow_total"); n != 1 {
		t.Errorf("warden_clients_dropped_slow_total = %v, want 1", n)
	}
	for _, err := range failures {
		t.Error(err)
	}
	if len(latencies) < devices*50 {
		t.Fatalf("only %d PUBACKs measured", len(latencies))
	}
	slices.Sort(latencies)
	p50, p99 := latencies[len(latencies)/2], latencies[len(latencies)*99/100]
	t.Logf("non-reading device dropped after %v (%d messages sent, %v); %d PUBACKs of the steady devices: p50 %v, p99 %v, max %v",
		dropAfter.Round(time.Millisecond), sent, dropErr, len(latencies), p50, p99, latencies[len(latencies)-1])
	if p99 >= 100*time.Millisecond {
		t.Errorf("PUBACK p99 %v, want under 100ms", p99)
	}
}

// TestOversizedPayloadKeptAsRejected: a payload just over the
// per-message limit (over MQTT/TLS), a 10 MiB one (over WebSocket) and an
// unreadable one are acknowledged and kept as rejected with their size,
// SHA-256 and first KiB only: a marker placed beyond the first KiB is not
// in the database files, nor are the topics and reasons in clear.
func TestOversizedPayloadKeptAsRejected(t *testing.T) {
	t.Parallel()
	e := start(t, withLargePackets())
	oversizedPayloads(t, e, func(markers ...string) {
		t.Helper()
		var files []string
		for _, f := range []string{"warden.db", "warden.db-wal"} {
			files = append(files, filepath.Join(e.dataDir, f))
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range markers {
				if bytes.Contains(b, []byte(m)) {
					t.Errorf("%s contains %q", filepath.Base(f), m)
				}
			}
		}
	})
}

func TestOversizedPayloadKeptAsRejectedPostgres(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	e := start(t, withDatabase(url), withLargePackets())
	oversizedPayloads(t, e, func(markers ...string) {
		t.Helper()
		conn, err := pgx.Connect(e.ctx(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(e.ctx())
		rows, err := conn.Query(e.ctx(), `SELECT topic, reason, payload, COALESCE(sealed, ''::bytea) FROM rejected`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var topic, reason string
			var payload, sealed []byte
			if err := rows.Scan(&topic, &reason, &payload, &sealed); err != nil {
				t.Fatal(err)
			}
			row := topic + reason + string(payload) + string(sealed)
			for _, m := range markers {
				if bytes.Contains([]byte(row), []byte(m)) {
					t.Errorf("a rejected row contains %q", m)
				}
			}
		}
	})
}

func oversizedPayloads(t *testing.T, e *env, rawCheck func(markers ...string)) {
	key := e.device("big")
	dev := e.deviceConn("big", key)
	tail := func(name string) string { return "TAIL-" + name + "-" + strconv.FormatInt(time.Now().UnixNano(), 36) }

	// body builds a payload of n bytes: '{"x":"aaa…' with a marker at the
	// end, well beyond the first KiB.
	body := func(n int, marker string, valid bool) []byte {
		b := bytes.Repeat([]byte("a"), n)
		copy(b, `{"x":"`)
		end := `"}`
		if !valid {
			end = `!}`
		}
		copy(b[n-len(marker)-len(end):], marker+end)
		return b
	}
	type sent struct {
		payload []byte
		reason  string
	}
	var all []sent
	const limit = 256 << 10
	justOver := tail("justover")
	p := body(limit+1, justOver, true)
	dev.mustPublish(t, events("big", "%24.mid=big-1&secret=TOPIC-MARKER-1"), string(p))
	all = append(all, sent{p, "over the limit"})
	unreadable := tail("unreadable")
	p = body(8<<10, unreadable, false)
	dev.mustPublish(t, events("big", "%24.mid=big-2&secret=TOPIC-MARKER-2"), string(p))
	all = append(all, sent{p, "JSON"})
	// Exactly at the limit: stored (JSON padded with spaces).
	atLimit := bytes.Repeat([]byte(" "), limit)
	copy(atLimit, `{"v": 1`)
	atLimit[limit-1] = '}'
	dev.mustPublish(t, events("big", "%24.mid=big-3"), string(atLimit))

	// 10 MiB over WebSocket.
	_, port, _ := net.SplitHostPort(e.srv.HTTPAddr())
	ws := pahomqtt.NewClient(pahomqtt.NewClientOptions().
		AddBroker("wss://localhost:" + port + "/$iothub/websocket").
		SetClientID("big").SetUsername(e.username("big")).SetPassword(e.token("big", key, time.Hour)).
		SetTLSConfig(e.tlsConfig()).SetProtocolVersion(4).SetAutoReconnect(false).SetCleanSession(true))
	if tok := ws.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect over WebSocket: %v", tok.Error())
	}
	defer ws.Disconnect(50)
	huge := tail("huge")
	p = body(10<<20, huge, true)
	if tok := ws.Publish(events("big", "%24.mid=big-4&secret=TOPIC-MARKER-3"), 1, false, p); !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
		t.Fatalf("publish 10 MiB over WebSocket: %v", tok.Error())
	}
	all = append(all, sent{p, "over the limit"})

	rs, err := e.api.Rejected(e.ctx(), "big", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != len(all) {
		for _, r := range rs {
			t.Logf("rejected: %s (%d bytes): %s", r.MessageID, r.Size, r.Reason)
		}
		t.Fatalf("%d rejected messages, want %d", len(rs), len(all))
	}
	for i, s := range all {
		r := rs[len(rs)-1-i] // newest first
		sum := sha256.Sum256(s.payload)
		if r.Size != int64(len(s.payload)) || r.SHA256 != hex.EncodeToString(sum[:]) || !r.Truncated ||
			r.Payload != string(s.payload[:1024]) || !strings.Contains(r.Reason, s.reason) ||
			!strings.Contains(r.Topic, "TOPIC-MARKER-") {
			t.Errorf("rejected %d: size %d, sha256 %s, truncated %v, payload %d bytes, reason %q, topic %q; want size %d, sha256 %x",
				i, r.Size, r.SHA256, r.Truncated, len(r.Payload), r.Reason, r.Topic, len(s.payload), sum)
		}
	}
	if l, err := e.api.Latest(e.ctx(), "big"); err != nil || len(l) != 1 || l[0].Name != "v" {
		t.Errorf("latest = %+v, %v; want the message at the limit", l, err)
	}
	rawCheck(justOver, unreadable, huge, "TOPIC-MARKER-", "over the limit")
}

// TestModelIDInTwin: the model id an IoT Plug and Play device announces in
// its user name is the twin's modelId; a later connection with another
// one replaces it; one that is not a DTMI is refused.
func TestModelIDInTwin(t *testing.T) {
	t.Parallel()
	e := start(t)
	key := e.device("thermo")
	if tw, err := e.api.Twin(e.ctx(), "thermo"); err != nil || tw.ModelID != "" {
		t.Fatalf("twin before connecting: modelId %q, %v", tw.ModelID, err)
	}
	for _, c := range []struct{ param, want string }{
		{"dtmi:com:example:Thermostat;1", "dtmi:com:example:Thermostat;1"},
		{"dtmi%3Acom%3Aexample%3AThermostat%3B2", "dtmi:com:example:Thermostat;2"}, // as the Node SDK encodes it
	} {
		m, rc, err := e.connect311("thermo", e.username("thermo")+"&model-id="+c.param, e.token("thermo", key, time.Hour))
		if err != nil {
			t.Fatalf("connect with model-id %s: rc %d, %v", c.param, rc, err)
		}
		m.c.Disconnect(50)
		tw, err := e.api.Twin(e.ctx(), "thermo")
		if err != nil || tw.ModelID != c.want {
			t.Fatalf("twin modelId = %q, %v; want %q", tw.ModelID, err, c.want)
		}
	}
	if _, rc, err := e.connect311("thermo", e.username("thermo")+"&model-id=not-a-dtmi", e.token("thermo", key, time.Hour)); err == nil || rc != rcBadCredentials {
		t.Fatalf("connect with an invalid model-id: rc %d, %v; want 4", rc, err)
	}
	// A connection without a model id leaves the last one.
	e.deviceConn("thermo", key).c.Disconnect(50)
	if tw, err := e.api.Twin(e.ctx(), "thermo"); err != nil || tw.ModelID != "dtmi:com:example:Thermostat;2" {
		t.Fatalf("twin modelId after a connection without one = %q, %v", tw.ModelID, err)
	}
}

// withLargePackets lets packets of up to 11 MiB through the broker, so that
// a 10 MiB message reaches the per-message limit of the ingest path.
func withLargePackets() option {
	return func(c *server.Config) { c.MQTTMaxPacketSize = 11 << 20 }
}
