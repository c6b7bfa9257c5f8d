package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sync"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/sas"
	"github.com/warden-iot/warden/internal/store/postgres/pgtest"
)

// The device provisioning service, driven with the Paho 3.1.1 client
// exactly as the Azure IoT Node SDK's provisioning transport does it
// (../shared/docs/azure-iot-mqtt.md §2).

// dpsResponseTopic is how the SDK matches answers.
var dpsResponseTopic = regexp.MustCompile(`^\$dps\/registrations\/res\/(.*)\/\?(.*)$`)

// provisioner is one provisioning connection.
type provisioner struct {
	t    *testing.T
	c    pahomqtt.Client
	msgs chan pahomqtt.Message
	lost chan error
}

// dpsUser is the SDK's user name.
func dpsUser(scope, regID string) string {
	return scope + "/registrations/" + regID + "/api-version=2019-03-31&ClientVersion=azure-iot-provisioning-device%2F1.9.1"
}

// dpsToken is the SDK's token: sr unencoded, skn=registration.
func dpsToken(scope, regID string, key []byte, ttl time.Duration) string {
	return sas.SignRaw(key, scope+"/registrations/"+regID, "registration", time.Now().Add(ttl))
}

// dialDPS connects a provisioning client (clean session, as the SDK) and
// returns it and the CONNACK return code.
func (e *env) dialDPS(clientID, username, password string) (*provisioner, byte, error) {
	e.t.Helper()
	return e.dialDPSAt("tls://"+e.srv.MQTTAddr(), clientID, username, password)
}

// dialDPSAt is dialDPS with the broker URL to dial.
func (e *env) dialDPSAt(broker, clientID, username, password string) (*provisioner, byte, error) {
	e.t.Helper()
	p := &provisioner{t: e.t, msgs: make(chan pahomqtt.Message, 16), lost: make(chan error, 1)}
	opts := pahomqtt.NewClientOptions().
		AddBroker(broker).
		SetClientID(clientID).
		SetUsername(username).
		SetPassword(password).
		SetTLSConfig(e.tlsConfig()).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(5 * time.Second).
		SetDefaultPublishHandler(func(_ pahomqtt.Client, m pahomqtt.Message) { p.msgs <- m }).
		SetConnectionLostHandler(func(_ pahomqtt.Client, err error) {
			select {
			case p.lost <- err:
			default:
			}
		})
	p.c = pahomqtt.NewClient(opts)
	tok := p.c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, 0, fmt.Errorf("connect timed out")
	}
	rc := tok.(*pahomqtt.ConnectToken).ReturnCode()
	if err := tok.Error(); err != nil {
		return nil, rc, err
	}
	e.t.Cleanup(func() { p.c.Disconnect(100) })
	return p, rc, nil
}

// provisionConn connects with a key and subscribes to the answers.
func (e *env) provisionConn(scope, regID string, key []byte) *provisioner {
	e.t.Helper()
	p, rc, err := e.dialDPS(regID, dpsUser(scope, regID), dpsToken(scope, regID, key, time.Hour))
	if err != nil {
		e.t.Fatalf("provisioning connection of %s: CONNACK %d, %v", regID, rc, err)
	}
	p.subscribe()
	return p
}

func (p *provisioner) subscribe() {
	p.t.Helper()
	tok := p.c.Subscribe("$dps/registrations/res/#", 1, nil)
	if !tok.WaitTimeout(5 * time.Second) {
		p.t.Fatal("no SUBACK")
	}
	if got := tok.(*pahomqtt.SubscribeToken).Result()["$dps/registrations/res/#"]; got != 1 {
		p.t.Fatalf("SUBACK granted %#x, want 1", got)
	}
}

// dpsAnswer is one response: topic status, query parameters, JSON body.
type dpsAnswer struct {
	status int
	query  map[string]string
	body   map[string]any
}

// newRID is a UUID v4, as the SDK's request ids.
func newRID() string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:]
}

// request publishes at QoS 1 (waiting for the PUBACK) on topic with a new
// $rid, and returns the answer that echoes it.
func (p *provisioner) request(topic, query, body string) dpsAnswer {
	p.t.Helper()
	a, err := p.tryRequest(topic, query, body)
	if err != nil {
		p.t.Fatal(err)
	}
	return a
}

// tryRequest is request, for any goroutine.
func (p *provisioner) tryRequest(topic, query, body string) (dpsAnswer, error) {
	rid := newRID()
	full := topic + "?$rid=" + rid + query
	tok := p.c.Publish(full, 1, false, body)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return dpsAnswer{}, fmt.Errorf("publish %s: no PUBACK (%v)", full, tok.Error())
	}
	deadline := time.After(30 * time.Second) // the SDK's limit
	for {
		select {
		case m := <-p.msgs:
			sub := dpsResponseTopic.FindStringSubmatch(m.Topic())
			if sub == nil {
				return dpsAnswer{}, fmt.Errorf("answer on %q: not a DPS response topic", m.Topic())
			}
			a := dpsAnswer{query: map[string]string{}}
			fmt.Sscan(sub[1], &a.status)
			for _, kv := range bytes.Split([]byte(sub[2]), []byte("&")) {
				k, v, _ := bytes.Cut(kv, []byte("="))
				a.query[string(k)] = string(v)
			}
			if a.query["$rid"] != rid {
				continue // an answer to an earlier request
			}
			if err := json.Unmarshal(m.Payload(), &a.body); err != nil {
				return a, fmt.Errorf("answer %s: body %q is not a JSON object: %v", m.Topic(), m.Payload(), err)
			}
			if _, ok := a.body["status"].(string); !ok && a.status < 300 {
				return a, fmt.Errorf("answer %s: body %s has no string status", m.Topic(), m.Payload())
			}
			return a, nil
		case err := <-p.lost:
			return dpsAnswer{}, fmt.Errorf("connection lost waiting for the answer to %s: %v", full, err)
		case <-deadline:
			return dpsAnswer{}, fmt.Errorf("no answer to %s within 30s", full)
		}
	}
}

var operationIDChars = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// register runs the SDK's flow: PUT → 202 assigning → poll → 200. It
// returns the final answer.
func (p *provisioner) register(regID string, payload any) dpsAnswer {
	p.t.Helper()
	a, err := p.tryRegister(regID, payload)
	if err != nil {
		p.t.Fatal(err)
	}
	return a
}

// tryRegister is register, for any goroutine.
func (p *provisioner) tryRegister(regID string, payload any) (dpsAnswer, error) {
	req := map[string]any{"registrationId": regID}
	if payload != nil {
		req["payload"] = payload
	}
	body, _ := json.Marshal(req)
	a, err := p.tryRequest("$dps/registrations/PUT/iotdps-register/", "", string(body))
	if err != nil {
		return a, err
	}
	if a.status != 202 || a.body["status"] != "assigning" || a.query["retry-after"] != "1" {
		return a, fmt.Errorf("register %s: answer %d %v %v; want 202 assigning, retry-after=1", regID, a.status, a.query, a.body)
	}
	op, _ := a.body["operationId"].(string)
	if !operationIDChars.MatchString(op) {
		return a, fmt.Errorf("operation id %q: want [A-Za-z0-9._-]+", op)
	}
	if a, err = p.tryRequest("$dps/registrations/GET/iotdps-get-operationstatus/", "&operationId="+op, " "); err != nil {
		return a, err
	}
	if a.status != 200 || a.body["operationId"] != op {
		return a, fmt.Errorf("operation status of %s: answer %d %v", regID, a.status, a.body)
	}
	return a, nil
}

// finish unsubscribes, which must be acknowledged (the SDK's register()
// returns only then), and disconnects.
func (p *provisioner) finish() {
	p.t.Helper()
	tok := p.c.Unsubscribe("$dps/registrations/res/#")
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		p.t.Fatalf("no UNSUBACK (%v)", tok.Error())
	}
	p.c.Disconnect(100)
}

// enrollGroup creates an enrollment group and returns its primary key.
func (e *env) enrollGroup(id string, initialTwin string) []byte {
	e.t.Helper()
	g, err := e.api.CreateEnrollmentGroup(e.ctx(), apiv1.NewEnrollmentGroup{ID: id, InitialTwin: json.RawMessage(initialTwin)})
	if err != nil {
		e.t.Fatalf("create enrollment group %s: %v", id, err)
	}
	k, err := base64.StdEncoding.DecodeString(g.PrimaryKey)
	if err != nil || len(k) != 32 || !g.Enabled {
		e.t.Fatalf("enrollment group %+v: want an enabled group with a 256-bit primary key", g)
	}
	return k
}

func (e *env) idScope() string {
	e.t.Helper()
	info, err := e.api.DPSInfo(e.ctx())
	if err != nil {
		e.t.Fatal(err)
	}
	if !regexp.MustCompile(`^0ne[0-9A-F]{8}$`).MatchString(info.IDScope) || info.ProvisioningHost != e.hubHost {
		e.t.Fatalf("GET /api/v1/dps = %+v; want a 0neXXXXXXXX scope and host %s", info, e.hubHost)
	}
	return info.IDScope
}

func state(a dpsAnswer, key string) string {
	s, _ := a.body["registrationState"].(map[string]any)[key].(string)
	return s
}

func TestDPSGroupProvisioningThenHub(t *testing.T) {
	t.Parallel()
	groupProvisioningThenHub(t, start(t))
}

func TestDPSGroupProvisioningThenHubPostgres(t *testing.T) {
	t.Parallel()
	groupProvisioningThenHub(t, start(t, withDatabase(pgtest.URL(t))))
}

// groupProvisioningThenHub: a device of an enrollment group provisions
// itself, connects to the hub it is given and sends telemetry; it
// registers again, and provisions with the secondary key too.
func groupProvisioningThenHub(t *testing.T, e *env) {
	scope := e.idScope()
	groupKey := e.enrollGroup("factory-lyon", `{"tags":{"site":"lyon"},"properties":{"desired":{"interval":30}}}`)
	devKey := sas.DeriveDeviceKey(groupKey, "sensor-001")

	p := e.provisionConn(scope, "sensor-001", devKey)
	a := p.register("sensor-001", map[string]any{"model": "X2"})
	if a.body["status"] != "assigned" || state(a, "status") != "assigned" || state(a, "registrationId") != "sensor-001" ||
		state(a, "deviceId") != "sensor-001" || state(a, "assignedHub") != e.hubHost || state(a, "substatus") != "initialAssignment" ||
		state(a, "etag") == "" {
		t.Fatalf("registration = %v", a.body)
	}
	created, err1 := time.Parse(time.RFC3339Nano, state(a, "createdDateTimeUtc"))
	_, err2 := time.Parse(time.RFC3339Nano, state(a, "lastUpdatedDateTimeUtc"))
	if err1 != nil || err2 != nil || time.Since(created) > time.Minute {
		t.Fatalf("registration times: %v %v (%v)", err1, err2, a.body)
	}
	p.finish()

	// The registration record and the device, with the group's initial twin.
	reg, err := e.api.Registration(e.ctx(), "sensor-001")
	if err != nil || reg.DeviceID != "sensor-001" || reg.EnrollmentType != "group" || reg.EnrollmentID != "factory-lyon" ||
		reg.Status != "assigned" || reg.AssignedHub != e.hubHost || string(reg.Payload) != `{"model":"X2"}` {
		t.Fatalf("registration record = %+v, %v", reg, err)
	}
	d, err := e.api.Device(e.ctx(), "sensor-001")
	if err != nil || d.Status != "enabled" || d.PrimaryKey != base64.StdEncoding.EncodeToString(devKey) {
		t.Fatalf("device = %+v, %v; want enabled, with the derived key", d, err)
	}
	tw, err := e.api.Twin(e.ctx(), "sensor-001")
	if err != nil || !bytes.Contains(tw.Tags, []byte(`"site":"lyon"`)) || !bytes.Contains(tw.Properties.Desired, []byte(`"interval":30`)) {
		t.Fatalf("twin = tags %s desired %s, %v; want the group's initial twin", tw.Tags, tw.Properties.Desired, err)
	}

	// The device connects to the hub named in assignedHub with the
	// derived key, and sends telemetry.
	dev := e.deviceConn("sensor-001", devKey)
	dev.mustPublish(t, events("sensor-001", "%24.mid=1"), `{"temperature": 21.5}`)
	if l, err := e.api.Latest(e.ctx(), "sensor-001"); err != nil || len(l) != 1 || l[0].Value != 21.5 {
		t.Fatalf("latest = %+v, %v", l, err)
	}

	// Registering again, while the device is connected to the hub, gives
	// the same device, and leaves the hub connection alone (the
	// provisioning connection does not take over the device's session).
	p = e.provisionConn(scope, "sensor-001", devKey)
	again := p.register("sensor-001", nil)
	if state(again, "deviceId") != "sensor-001" || state(again, "substatus") != "deviceDataReset" ||
		state(again, "createdDateTimeUtc") != state(a, "createdDateTimeUtc") || state(again, "etag") == state(a, "etag") {
		t.Fatalf("re-registration = %v; first = %v", again.body, a.body)
	}
	p.finish()
	dev.stillUp(t)
	dev.mustPublish(t, events("sensor-001", "%24.mid=2"), `{"temperature": 22}`)
	if ds, err := e.api.Devices(e.ctx()); err != nil || len(ds) != 1 {
		t.Fatalf("devices = %+v, %v; want the one", ds, err)
	}

	// A device that holds the key derived from the secondary group key
	// provisions too.
	g, err := e.api.EnrollmentGroup(e.ctx(), "factory-lyon")
	if err != nil {
		t.Fatal(err)
	}
	sec, _ := base64.StdEncoding.DecodeString(g.SecondaryKey)
	p = e.provisionConn(scope, "sensor-002", sas.DeriveDeviceKey(sec, "sensor-002"))
	if a := p.register("sensor-002", nil); state(a, "deviceId") != "sensor-002" {
		t.Fatalf("registration with the secondary key = %v", a.body)
	}
	p.finish()
	e.deviceConn("sensor-002", sas.DeriveDeviceKey(groupKey, "sensor-002")) // its primary key is derived from the group's primary
}

func TestDPSConnectionsRefused(t *testing.T) {
	t.Parallel()
	e := start(t)
	scope := e.idScope()
	groupKey := e.enrollGroup("g1", "")
	devKey := sas.DeriveDeviceKey(groupKey, "box-1")
	wrongKey := sas.DeriveDeviceKey(bytes.Repeat([]byte{7}, 32), "box-1")
	res := scope + "/registrations/box-1"
	hour := time.Now().Add(time.Hour)

	cases := []struct {
		name     string
		clientID string
		username string
		password string
		wantRC   byte
	}{
		{"wrong group key", "box-1", dpsUser(scope, "box-1"), dpsToken(scope, "box-1", wrongKey, time.Hour), rcNotAuthorized},
		{"group key itself", "box-1", dpsUser(scope, "box-1"), dpsToken(scope, "box-1", groupKey, time.Hour), rcNotAuthorized},
		{"expired token", "box-1", dpsUser(scope, "box-1"), sas.SignRaw(devKey, res, "registration", time.Now().Add(-time.Second)), rcNotAuthorized},
		{"unknown scope", "box-1", dpsUser("0ne00000000", "box-1"), dpsToken("0ne00000000", "box-1", devKey, time.Hour), rcNotAuthorized},
		{"token of another registration", "box-1", dpsUser(scope, "box-1"), dpsToken(scope, "box-2", sas.DeriveDeviceKey(groupKey, "box-2"), time.Hour), rcNotAuthorized},
		{"no skn", "box-1", dpsUser(scope, "box-1"), sas.SignRaw(devKey, res, "", hour), rcNotAuthorized},
		{"hub token", "box-1", dpsUser(scope, "box-1"), sas.Sign(devKey, res, hour), rcNotAuthorized},
		{"client id is not the registration id", "box-2", dpsUser(scope, "box-1"), dpsToken(scope, "box-1", devKey, time.Hour), rcIdentifierRejected},
		{"no registration id", "box-1", scope + "/registrations//api-version=2019-03-31", dpsToken(scope, "box-1", devKey, time.Hour), rcBadCredentials},
		{"no api-version", "box-1", scope + "/registrations/box-1/", dpsToken(scope, "box-1", devKey, time.Hour), rcBadCredentials},
		{"password is not a SAS token", "box-1", dpsUser(scope, "box-1"), "hunter2", rcBadCredentials},
		{"token for another scope", "box-1", dpsUser(scope, "box-1"), dpsToken("0ne0000FFFF", "box-1", devKey, time.Hour), rcNotAuthorized},
		{"token with a host name", "box-1", dpsUser(scope, "box-1"),
			sas.SignRaw(devKey, "evil.azure-devices-provisioning.net/"+res, "registration", hour), rcNotAuthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, rc, err := e.dialDPS(c.clientID, c.username, c.password)
			if err == nil {
				p.c.Disconnect(0)
				t.Fatalf("connected; want CONNACK %d", c.wantRC)
			}
			if rc != c.wantRC {
				t.Fatalf("CONNACK return code %d (%v), want %d", rc, err, c.wantRC)
			}
		})
	}

	// The percent-encoded resource (Python SDK, docs) and a lower-case
	// scope are accepted, and the minimal user name of the docs.
	p, rc, err := e.dialDPS("box-1", scope+"/registrations/box-1/api-version=2019-03-31",
		sas.SignRaw(devKey, sas.Escape(res), "registration", hour))
	if err != nil {
		t.Fatalf("encoded sr: CONNACK %d, %v", rc, err)
	}
	p.c.Disconnect(0)

	// A disabled group refuses its devices; enabled again, it admits them.
	off, on := false, true
	if _, err := e.api.UpdateEnrollmentGroup(e.ctx(), "g1", apiv1.EnrollmentPatch{Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	if _, rc, err := e.dialDPS("box-1", dpsUser(scope, "box-1"), dpsToken(scope, "box-1", devKey, time.Hour)); err == nil || rc != rcNotAuthorized {
		t.Fatalf("disabled group: CONNACK %d, %v; want %d", rc, err, rcNotAuthorized)
	}
	if n := e.metricValue(`warden_connections_refused_total{reason="enrollment-disabled"}`); n != 1 {
		t.Fatalf("refusals for a disabled enrollment = %v, want 1", n)
	}
	if _, err := e.api.UpdateEnrollmentGroup(e.ctx(), "g1", apiv1.EnrollmentPatch{Enabled: &on}); err != nil {
		t.Fatal(err)
	}
	p = e.provisionConn(scope, "box-1", devKey)
	if a := p.register("box-1", nil); a.body["status"] != "assigned" {
		t.Fatalf("after enabling: %v", a.body)
	}
	p.finish()

	// New keys: devices with keys derived from the old ones are refused.
	if _, err := e.api.UpdateEnrollmentGroup(e.ctx(), "g1", apiv1.EnrollmentPatch{RegenerateKey: "both"}); err != nil {
		t.Fatal(err)
	}
	if _, rc, err := e.dialDPS("box-1", dpsUser(scope, "box-1"), dpsToken(scope, "box-1", devKey, time.Hour)); err == nil || rc != rcNotAuthorized {
		t.Fatalf("old group key: CONNACK %d, %v; want %d", rc, err, rcNotAuthorized)
	}
}

func TestDPSIndividualEnrollment(t *testing.T) {
	t.Parallel()
	e := start(t)
	scope := e.idScope()
	groupKey := e.enrollGroup("g1", "")
	en, err := e.api.CreateEnrollment(e.ctx(), apiv1.NewEnrollment{RegistrationID: "boiler-7", DeviceID: "boiler-7-dev",
		InitialTwin: json.RawMessage(`{"properties":{"desired":{"setpoint":65}}}`)})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := base64.StdEncoding.DecodeString(en.PrimaryKey)

	// The individual enrollment takes precedence: a key derived from a
	// group does not admit its registration id.
	if _, rc, err := e.dialDPS("boiler-7", dpsUser(scope, "boiler-7"), dpsToken(scope, "boiler-7", sas.DeriveDeviceKey(groupKey, "boiler-7"), time.Hour)); err == nil || rc != rcNotAuthorized {
		t.Fatalf("group key for an individually enrolled id: CONNACK %d, %v; want %d", rc, err, rcNotAuthorized)
	}

	p := e.provisionConn(scope, "boiler-7", key)
	a := p.register("boiler-7", nil)
	if state(a, "deviceId") != "boiler-7-dev" || state(a, "registrationId") != "boiler-7" || state(a, "substatus") != "initialAssignment" {
		t.Fatalf("registration = %v", a.body)
	}
	p.finish()
	if reg, err := e.api.Registration(e.ctx(), "boiler-7"); err != nil || reg.EnrollmentType != "individual" || reg.DeviceID != "boiler-7-dev" {
		t.Fatalf("registration record = %+v, %v", reg, err)
	}
	if tw, err := e.api.Twin(e.ctx(), "boiler-7-dev"); err != nil || !bytes.Contains(tw.Properties.Desired, []byte(`"setpoint":65`)) {
		t.Fatalf("twin desired = %s, %v", tw.Properties.Desired, err)
	}
	e.deviceConn("boiler-7-dev", key).mustPublish(t, events("boiler-7-dev", ""), `{"temperature": 64}`)

	off := false
	if _, err := e.api.UpdateEnrollment(e.ctx(), "boiler-7", apiv1.EnrollmentPatch{Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	if _, rc, err := e.dialDPS("boiler-7", dpsUser(scope, "boiler-7"), dpsToken(scope, "boiler-7", key, time.Hour)); err == nil || rc != rcNotAuthorized {
		t.Fatalf("disabled enrollment: CONNACK %d, %v; want %d", rc, err, rcNotAuthorized)
	}
}

func TestDPSRequestErrors(t *testing.T) {
	t.Parallel()
	e := start(t)
	scope := e.idScope()
	groupKey := e.enrollGroup("g1", "")
	p := e.provisionConn(scope, "box-1", sas.DeriveDeviceKey(groupKey, "box-1"))

	checkError := func(a dpsAnswer, status int, code float64) {
		t.Helper()
		if a.status != status || a.body["errorCode"] != code || a.body["trackingId"] == "" || a.body["message"] == "" {
			t.Fatalf("answer %d %v; want %d with errorCode %v", a.status, a.body, status, code)
		}
		if _, err := time.Parse(time.RFC3339Nano, a.body["timestampUtc"].(string)); err != nil {
			t.Fatalf("timestampUtc: %v", err)
		}
	}
	checkError(p.request("$dps/registrations/PUT/iotdps-register/", "", `{"registrationId":"box-2"}`), 401, 401002)
	checkError(p.request("$dps/registrations/PUT/iotdps-register/", "", `{"registrationId":`), 400, 400004)
	checkError(p.request("$dps/registrations/PUT/iotdps-register/", "", `[]`), 400, 400004)
	checkError(p.request("$dps/registrations/GET/iotdps-get-operationstatus/", "&operationId=4.nope", " "), 404, 404002)
	// The connection is still good for a proper request.
	if a := p.register("box-1", nil); a.body["status"] != "assigned" {
		t.Fatalf("after errors: %v", a.body)
	}
	p.finish()
	if _, err := e.api.Device(e.ctx(), "box-2"); !client.IsNotFound(err) {
		t.Fatalf("device box-2: %v; want none", err)
	}
}

func TestDPSRegistrationIDTaken(t *testing.T) {
	t.Parallel()
	e := start(t)
	scope := e.idScope()
	groupKey := e.enrollGroup("g1", "")
	handKey := e.device("taken-1") // registered by hand through the API

	p := e.provisionConn(scope, "taken-1", sas.DeriveDeviceKey(groupKey, "taken-1"))
	a := p.register("taken-1", nil)
	rs, _ := a.body["registrationState"].(map[string]any)
	if a.body["status"] != "failed" || rs["status"] != "failed" || rs["errorCode"] != float64(409001) || rs["errorMessage"] == "" {
		t.Fatalf("registration of a taken id = %v; want failed with an error code", a.body)
	}
	p.finish()
	// The device is untouched.
	e.deviceConn("taken-1", handKey)
	if _, err := e.api.Registration(e.ctx(), "taken-1"); !client.IsNotFound(err) {
		t.Fatalf("registration record of a refused registration: %v", err)
	}
}

func TestDPSTopicsConfined(t *testing.T) {
	t.Parallel()
	e := start(t)
	scope := e.idScope()
	groupKey := e.enrollGroup("g1", "")

	// A provisioning client may subscribe to the DPS answers only, and
	// publish DPS requests only.
	p := e.provisionConn(scope, "box-1", sas.DeriveDeviceKey(groupKey, "box-1"))
	for _, filter := range []string{"$iothub/twin/res/#", "$iothub/methods/POST/#", "devices/box-1/messages/devicebound/#", "#"} {
		tok := p.c.Subscribe(filter, 1, nil)
		if !tok.WaitTimeout(5 * time.Second) {
			t.Fatalf("no SUBACK for %s", filter)
		}
		if got := tok.(*pahomqtt.SubscribeToken).Result()[filter]; got != 0x80 {
			t.Errorf("provisioning client subscribes %q: granted %#x, want 0x80", filter, got)
		}
	}
	p.c.Publish(events("box-1", ""), 1, false, `{"temperature": 1}`)
	select {
	case <-p.lost:
	case <-time.After(10 * time.Second):
		t.Fatal("provisioning client published telemetry: connection still open")
	}
	if _, err := e.api.Device(e.ctx(), "box-1"); !client.IsNotFound(err) {
		t.Fatalf("device box-1 exists: %v", err)
	}

	// A device may not use the $dps topics.
	key := e.device("pump-1")
	dev := e.deviceConn("pump-1", key)
	tok := dev.c.Subscribe("$dps/registrations/res/#", 1, nil)
	if !tok.WaitTimeout(5*time.Second) || tok.(*pahomqtt.SubscribeToken).Result()["$dps/registrations/res/#"] != 0x80 {
		t.Fatal("a device subscribed to the DPS answers")
	}
	dev.c.Publish("$dps/registrations/PUT/iotdps-register/?$rid=1", 1, false, `{"registrationId":"pump-1"}`)
	dev.waitLost(t, "device publishes a DPS request")
	if _, err := e.api.Registration(e.ctx(), "pump-1"); !client.IsNotFound(err) {
		t.Fatalf("registration by a device: %v", err)
	}
}

func TestDPSPollFromANewConnection(t *testing.T) {
	t.Parallel()
	e := start(t)
	scope := e.idScope()
	devKey := sas.DeriveDeviceKey(e.enrollGroup("g1", ""), "box-1")
	p := e.provisionConn(scope, "box-1", devKey)
	op := p.request("$dps/registrations/PUT/iotdps-register/", "", `{"registrationId":"box-1"}`).body["operationId"].(string)
	p.c.Disconnect(100)
	// (The assignment is being written as the connection closes.)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if r, err := e.api.Registration(e.ctx(), "box-1"); err == nil && r.OperationID == op {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the registration record never showed the operation")
		}
	}

	// Another connection polls the operation: the registration record
	// answers.
	p = e.provisionConn(scope, "box-1", devKey)
	a := p.request("$dps/registrations/GET/iotdps-get-operationstatus/", "&operationId="+op, " ")
	if a.status != 200 || a.body["status"] != "assigned" || state(a, "deviceId") != "box-1" {
		t.Fatalf("poll from a new connection = %d %v", a.status, a.body)
	}
	p.finish()
}

func TestDPSAPIErrors(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.enrollGroup("g1", "")
	for _, c := range []struct {
		method, path string
		body         any
		status       int
	}{
		{http.MethodPost, "/api/v1/dps/enrollment-groups", map[string]any{"id": "g1"}, http.StatusConflict},
		{http.MethodPost, "/api/v1/dps/enrollment-groups", map[string]any{"id": "bad/id"}, http.StatusBadRequest},
		{http.MethodPost, "/api/v1/dps/enrollment-groups", map[string]any{"id": "g2", "initialTwin": map[string]any{"foo": 1}}, http.StatusBadRequest},
		{http.MethodPost, "/api/v1/dps/enrollment-groups", map[string]any{"id": "g2", "initialTwin": map[string]any{"tags": 1}}, http.StatusBadRequest},
		{http.MethodPost, "/api/v1/dps/enrollment-groups", map[string]any{"id": "g2", "primaryKey": "c2hvcnQ="}, http.StatusBadRequest},
		{http.MethodPatch, "/api/v1/dps/enrollment-groups/g1", map[string]any{"regenerateKey": "all"}, http.StatusBadRequest},
		{http.MethodPatch, "/api/v1/dps/enrollment-groups/ghost", map[string]any{"enabled": false}, http.StatusNotFound},
		{http.MethodGet, "/api/v1/dps/enrollment-groups/ghost", nil, http.StatusNotFound},
		{http.MethodDelete, "/api/v1/dps/enrollment-groups/ghost", nil, http.StatusNotFound},
		{http.MethodPost, "/api/v1/dps/enrollments", map[string]any{"registrationId": "a@b"}, http.StatusBadRequest},
		{http.MethodGet, "/api/v1/dps/enrollments/ghost", nil, http.StatusNotFound},
		{http.MethodGet, "/api/v1/dps/registrations/ghost", nil, http.StatusNotFound},
		{http.MethodGet, "/api/v1/dps/registrations", url.Values{"limit": {"0"}}, http.StatusBadRequest},
		{http.MethodDelete, "/api/v1/dps/registrations/ghost", nil, http.StatusNotFound},
	} {
		var query url.Values
		if q, ok := c.body.(url.Values); ok {
			query, c.body = q, nil
		}
		err := e.api.Do(e.ctx(), c.method, c.path, query, c.body, nil)
		var apiErr *client.Error
		if !errors.As(err, &apiErr) || apiErr.Status != c.status || apiErr.Message == "" {
			t.Errorf("%s %s: %v; want HTTP %d with a JSON error", c.method, c.path, err, c.status)
		}
	}
	// Lists leave the keys out; imported keys are kept.
	imported := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 64))
	if _, err := e.api.CreateEnrollmentGroup(e.ctx(), apiv1.NewEnrollmentGroup{ID: "from-azure", PrimaryKey: imported}); err != nil {
		t.Fatal(err)
	}
	gs, err := e.api.EnrollmentGroups(e.ctx())
	if err != nil || len(gs) != 2 || gs[0].ID != "from-azure" || gs[0].PrimaryKey != "" {
		t.Fatalf("groups = %+v, %v", gs, err)
	}
	if g, err := e.api.EnrollmentGroup(e.ctx(), "from-azure"); err != nil || g.PrimaryKey != imported {
		t.Fatalf("imported group = %+v, %v", g, err)
	}
	// Removing the initial twin.
	if g, err := e.api.UpdateEnrollmentGroup(e.ctx(), "g1", apiv1.EnrollmentPatch{InitialTwin: json.RawMessage(`{"tags":{"a":1}}`)}); err != nil || string(g.InitialTwin) != `{"tags":{"a":1}}` {
		t.Fatalf("set initial twin = %+v, %v", g, err)
	}
	if g, err := e.api.UpdateEnrollmentGroup(e.ctx(), "g1", apiv1.EnrollmentPatch{InitialTwin: json.RawMessage(`null`)}); err != nil || g.InitialTwin != nil {
		t.Fatalf("remove initial twin = %+v, %v", g, err)
	}
	if err := e.api.DeleteEnrollmentGroup(e.ctx(), "g1"); err != nil {
		t.Fatal(err)
	}
}

// TestDPSOverWebSocket: the SDK's MqttWs provisioning transport uses the
// same path as the hub's, /$iothub/websocket on the HTTPS listener.
func TestDPSOverWebSocket(t *testing.T) {
	t.Parallel()
	e := start(t)
	scope := e.idScope()
	devKey := sas.DeriveDeviceKey(e.enrollGroup("g1", ""), "ws-box")
	_, port, _ := net.SplitHostPort(e.srv.HTTPAddr())
	p, rc, err := e.dialDPSAt("wss://localhost:"+port+"/$iothub/websocket", "ws-box", dpsUser(scope, "ws-box"), dpsToken(scope, "ws-box", devKey, time.Hour))
	if err != nil {
		t.Fatalf("provisioning over WebSocket: CONNACK %d, %v", rc, err)
	}
	p.subscribe()
	if a := p.register("ws-box", nil); state(a, "deviceId") != "ws-box" || state(a, "assignedHub") != e.hubHost {
		t.Fatalf("registration over WebSocket = %v", a.body)
	}
	p.finish()
}

// TestDPSConcurrentRegistrations: many devices register at once (their
// assignments are committed together), some of them on two connections at
// the same time.
func TestDPSConcurrentRegistrations(t *testing.T) {
	t.Parallel()
	e := start(t)
	scope := e.idScope()
	groupKey := e.enrollGroup("g1", `{"tags":{"batch":"b1"}}`)
	const devices, conns = 20, 24
	var ps []*provisioner
	var ids []string
	for i := range conns {
		id := fmt.Sprintf("box-%02d", i%devices)
		ps = append(ps, e.provisionConn(scope, id, sas.DeriveDeviceKey(groupKey, id)))
		ids = append(ids, id)
	}
	var wg sync.WaitGroup
	errs := make([]error, conns)
	for i, p := range ps {
		wg.Go(func() {
			a, err := p.tryRegister(ids[i], nil)
			if err == nil && (a.body["status"] != "assigned" || state(a, "deviceId") != ids[i]) {
				err = fmt.Errorf("answer %v", a.body)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("registration %d (%s): %v", i, ids[i], err)
		}
	}
	if ds, err := e.api.Devices(e.ctx()); err != nil || len(ds) != devices {
		t.Fatalf("devices = %d, %v; want %d", len(ds), err, devices)
	}
	if tw, err := e.api.Twin(e.ctx(), "box-07"); err != nil || !bytes.Contains(tw.Tags, []byte(`"batch":"b1"`)) {
		t.Fatalf("twin tags of box-07 = %s, %v", tw.Tags, err)
	}
}
