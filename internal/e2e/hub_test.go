package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/warden-iot/warden/internal/api"
	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/server"
	"github.com/warden-iot/warden/internal/store/postgres/pgtest"
)

// The IoT Hub device features (twin, direct methods, cloud-to-device
// messages) as a device sees them through the Eclipse Paho 3.1.1 client,
// with clean session false like the Azure SDK, and as operators see them
// through the API.

const (
	filterTwinRes = "$iothub/twin/res/#"
	filterDesired = "$iothub/twin/PATCH/properties/desired/#"
	filterMethods = "$iothub/methods/POST/#"
)

func filterC2D(id string) string { return "devices/" + id + "/messages/devicebound/#" }

// hubDevice is a device connection whose every incoming message lands in
// msgs, whatever subscription it came through (also subscriptions kept
// by the server from an earlier connection).
type hubDevice struct {
	id   string
	c    pahomqtt.Client
	msgs chan pahomqtt.Message
	lost chan error
}

type hubOption func(*pahomqtt.ClientOptions)

// manualAck: the test acknowledges QoS 1 messages itself (m.Ack()).
func manualAck(o *pahomqtt.ClientOptions) { o.SetAutoAckDisabled(true) }

func (e *env) hubConnect(id string, key []byte, opts ...hubOption) *hubDevice {
	e.t.Helper()
	d := &hubDevice{id: id, msgs: make(chan pahomqtt.Message, 256), lost: make(chan error, 1)}
	o := pahomqtt.NewClientOptions().
		AddBroker("tls://" + e.srv.MQTTAddr()).
		SetClientID(id).
		SetUsername(e.username(id)).
		SetPassword(e.token(id, key, time.Hour)).
		SetTLSConfig(e.tlsConfig()).
		SetProtocolVersion(4).
		SetCleanSession(false).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(5 * time.Second).
		SetDefaultPublishHandler(func(_ pahomqtt.Client, m pahomqtt.Message) { d.msgs <- m }).
		SetConnectionLostHandler(func(_ pahomqtt.Client, err error) {
			select {
			case d.lost <- err:
			default:
			}
		})
	for _, opt := range opts {
		opt(o)
	}
	d.c = pahomqtt.NewClient(o)
	tok := d.c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		e.t.Fatalf("device %s: connect timed out", id)
	}
	if err := tok.Error(); err != nil {
		e.t.Fatalf("device %s: connect: %v", id, err)
	}
	e.t.Cleanup(func() { d.c.Disconnect(50) })
	return d
}

// subscribe subscribes as the Azure SDK does: C2D at QoS 1, the rest at 0.
func (d *hubDevice) subscribe(t *testing.T, filters ...string) {
	t.Helper()
	for _, f := range filters {
		qos := byte(0)
		if strings.HasSuffix(f, "/messages/devicebound/#") {
			qos = 1
		}
		tok := d.c.Subscribe(f, qos, nil)
		if !tok.WaitTimeout(10 * time.Second) {
			t.Fatalf("subscribe %s: no SUBACK", f)
		}
		st := tok.(*pahomqtt.SubscribeToken)
		if err := st.Error(); err != nil {
			t.Fatalf("subscribe %s: %v", f, err)
		}
		if code := st.Result()[f]; code != qos {
			t.Fatalf("subscribe %s: granted %#x, want %d", f, code, qos)
		}
	}
}

// publish0 sends at QoS 0, as the SDK does on $iothub topics.
func (d *hubDevice) publish0(t *testing.T, topic, body string) {
	t.Helper()
	tok := d.c.Publish(topic, 0, false, body)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// next returns the next message whose topic starts with prefix, skipping
// others.
func (d *hubDevice) next(t *testing.T, prefix string) pahomqtt.Message {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-d.msgs:
			if strings.HasPrefix(m.Topic(), prefix) {
				return m
			}
			t.Logf("device %s: skipped a message on %s", d.id, m.Topic())
		case <-deadline:
			t.Fatalf("device %s: nothing on %s… within 10s", d.id, prefix)
		}
	}
}

// none checks that nothing arrives for a while.
func (d *hubDevice) none(t *testing.T, wait time.Duration) {
	t.Helper()
	select {
	case m := <-d.msgs:
		t.Fatalf("device %s: unexpected message on %s: %q", d.id, m.Topic(), m.Payload())
	case <-time.After(wait):
	}
}

func (d *hubDevice) disconnect() { d.c.Disconnect(50) }

// apiStatus is the HTTP status of an API error (0 for none).
func apiStatus(err error) int {
	var ce *client.Error
	if errors.As(err, &ce) {
		return ce.Status
	}
	return 0
}

func jsonEqual(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %q is not JSON: %v", what, got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: bad expectation: %v", what, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s = %s, want %s", what, got, want)
	}
}

func TestTwinDeviceSide(t *testing.T) {
	t.Parallel()
	e := start(t)
	key := e.device("pump-1")
	d := e.hubConnect("pump-1", key)
	d.subscribe(t, filterTwinRes)

	// A new twin: empty, both sections at $version 1. The GET body is the
	// single space the SDK sends.
	d.publish0(t, "$iothub/twin/GET/?$rid=e8a92094-c963-4b3d-8120-7bb10d35f7ad", " ")
	m := d.next(t, "$iothub/twin/res/")
	if m.Topic() != "$iothub/twin/res/200/?$rid=e8a92094-c963-4b3d-8120-7bb10d35f7ad" || m.Qos() != 0 {
		t.Fatalf("GET answer on %s QoS %d", m.Topic(), m.Qos())
	}
	jsonEqual(t, "new twin", m.Payload(), `{"desired":{"$version":1},"reported":{"$version":1}}`)

	// Reported properties: 204, empty body, the new $version in the topic.
	d.publish0(t, "$iothub/twin/PATCH/properties/reported/?$rid=r1", `{"firmware":"1.0.0","interval":5,"net":{"ip":"192.0.2.1","rssi":-60}}`)
	m = d.next(t, "$iothub/twin/res/")
	if m.Topic() != "$iothub/twin/res/204/?$rid=r1&$version=2" || len(m.Payload()) != 0 {
		t.Fatalf("reported answer %s %q, want 204 with $version=2 and no body", m.Topic(), m.Payload())
	}
	d.publish0(t, "$iothub/twin/PATCH/properties/reported/?$rid=r2", `{"interval":null,"net":{"rssi":null}}`)
	if m = d.next(t, "$iothub/twin/res/"); m.Topic() != "$iothub/twin/res/204/?$rid=r2&$version=3" {
		t.Fatalf("second reported answer %s, want $version=3", m.Topic())
	}
	d.publish0(t, "$iothub/twin/GET/?$rid=r3", " ")
	m = d.next(t, "$iothub/twin/res/")
	if m.Topic() != "$iothub/twin/res/200/?$rid=r3" {
		t.Fatalf("GET answer on %s", m.Topic())
	}
	jsonEqual(t, "twin after patches", m.Payload(),
		`{"desired":{"$version":1},"reported":{"firmware":"1.0.0","net":{"ip":"192.0.2.1"},"$version":3}}`)

	// Malformed patches: 400 with the error body the SDK raises, twin unchanged.
	for i, bad := range []string{`{"firmware":`, `[1,2]`, `{"a.b":1}`, `{"$version":9}`, ``} {
		rid := fmt.Sprint("bad-", i)
		d.publish0(t, "$iothub/twin/PATCH/properties/reported/?$rid="+rid, bad)
		m = d.next(t, "$iothub/twin/res/")
		if m.Topic() != "$iothub/twin/res/400/?$rid="+rid {
			t.Fatalf("patch %q answered on %s, want 400", bad, m.Topic())
		}
		var body struct {
			ErrorCode int    `json:"errorCode"`
			Message   string `json:"message"`
		}
		if err := json.Unmarshal(m.Payload(), &body); err != nil || body.ErrorCode != 400004 || body.Message == "" {
			t.Fatalf("patch %q: error body %q, want errorCode 400004 and a message", bad, m.Payload())
		}
	}

	// The operator sees the reported properties with their metadata.
	tw, err := e.api.Twin(e.ctx(), "pump-1")
	if err != nil {
		t.Fatal(err)
	}
	if tw.DeviceID != "pump-1" || tw.ConnectionState != "Connected" || tw.Version != 3 || tw.ETag != "AAAAAAAAAAM=" ||
		tw.AuthenticationType != "sas" || tw.Status != "enabled" {
		t.Fatalf("twin = %+v", tw)
	}
	var rep map[string]any
	if err := json.Unmarshal(tw.Properties.Reported, &rep); err != nil {
		t.Fatal(err)
	}
	meta, _ := rep["$metadata"].(map[string]any)
	fw, _ := meta["firmware"].(map[string]any)
	if rep["firmware"] != "1.0.0" || rep["$version"] != float64(3) || fw["$lastUpdated"] == nil {
		t.Fatalf("reported = %s, want firmware with $metadata and $version 3", tw.Properties.Reported)
	}
}

func TestTwinDesiredFromAPI(t *testing.T) {
	t.Parallel()
	e := start(t)
	key := e.device("pump-1")
	d := e.hubConnect("pump-1", key)
	d.subscribe(t, filterTwinRes, filterDesired)

	tw, err := e.api.UpdateTwin(e.ctx(), "pump-1", client.TwinPatch{Desired: json.RawMessage(`{"interval":10,"modes":{"eco":true}}`)})
	if err != nil {
		t.Fatal(err)
	}
	if tw.Version != 2 {
		t.Fatalf("twin version after desired patch = %d, want 2", tw.Version)
	}
	m := d.next(t, "$iothub/twin/PATCH/properties/desired/")
	if m.Topic() != "$iothub/twin/PATCH/properties/desired/?$version=2" || m.Qos() != 0 {
		t.Fatalf("desired update on %s QoS %d", m.Topic(), m.Qos())
	}
	jsonEqual(t, "desired update", m.Payload(), `{"interval":10,"modes":{"eco":true},"$version":2}`)

	// Only the patch goes out, with the next version.
	if _, err := e.api.UpdateTwin(e.ctx(), "pump-1", client.TwinPatch{Desired: json.RawMessage(`{"modes":{"eco":null}}`)}); err != nil {
		t.Fatal(err)
	}
	m = d.next(t, "$iothub/twin/PATCH/properties/desired/")
	if m.Topic() != "$iothub/twin/PATCH/properties/desired/?$version=3" {
		t.Fatalf("second desired update on %s", m.Topic())
	}
	jsonEqual(t, "second desired update", m.Payload(), `{"modes":{"eco":null},"$version":3}`)

	// Tags are not the device's business.
	tw, err = e.api.UpdateTwin(e.ctx(), "pump-1", client.TwinPatch{Tags: json.RawMessage(`{"site":"berlin"}`)})
	if err != nil {
		t.Fatal(err)
	}
	d.none(t, 300*time.Millisecond)

	// An etag that is no longer current: 412, nothing changes.
	_, err = e.api.UpdateTwin(e.ctx(), "pump-1", client.TwinPatch{Desired: json.RawMessage(`{"interval":1}`), IfMatch: "AAAAAAAAAAI="})
	if apiStatus(err) != 412 {
		t.Fatalf("update with a stale etag: %v, want HTTP 412", err)
	}
	tw, err = e.api.UpdateTwin(e.ctx(), "pump-1", client.TwinPatch{Desired: json.RawMessage(`{"interval":20}`), IfMatch: tw.ETag})
	if err != nil {
		t.Fatalf("update with the current etag: %v", err)
	}
	if m = d.next(t, "$iothub/twin/PATCH/properties/desired/"); m.Topic() != "$iothub/twin/PATCH/properties/desired/?$version=4" {
		t.Fatalf("desired update on %s, want $version=4", m.Topic())
	}

	// The device reads it all back.
	d.publish0(t, "$iothub/twin/GET/?$rid=g", " ")
	jsonEqual(t, "twin seen by the device", d.next(t, "$iothub/twin/res/200/").Payload(),
		`{"desired":{"interval":20,"modes":{},"$version":4},"reported":{"$version":1}}`)
	got, err := e.api.Twin(e.ctx(), "pump-1")
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, "tags", got.Tags, `{"site":"berlin"}`)

	// Bad patches are refused with a reason.
	for _, c := range []struct {
		patch client.TwinPatch
		want  string
	}{
		{client.TwinPatch{Desired: json.RawMessage(`{"a b":1}`)}, "not allowed"},
		{client.TwinPatch{Desired: json.RawMessage(`"x"`)}, "JSON object"},
		{client.TwinPatch{Tags: json.RawMessage(`{"t":"` + strings.Repeat("x", 9000) + `"}`)}, "limit"},
	} {
		_, err := e.api.UpdateTwin(e.ctx(), "pump-1", c.patch)
		if apiStatus(err) != 400 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("patch %s: %v, want HTTP 400 with %q", c.patch.Desired, err, c.want)
		}
	}
	if _, err := e.api.Twin(e.ctx(), "ghost"); apiStatus(err) != 404 {
		t.Errorf("twin of an unknown device: %v, want 404", err)
	}
}

// The Azure SDK never subscribes to the twin topics again after a
// reconnection: a clean-session-0 device keeps its subscriptions.
func TestSubscriptionsKeptAcrossReconnects(t *testing.T) {
	t.Parallel()
	e := start(t)
	key := e.device("pump-1")
	d := e.hubConnect("pump-1", key)
	d.subscribe(t, filterTwinRes, filterDesired, filterMethods, filterC2D("pump-1"))
	d.disconnect() // as the SDK does when it renews its token

	d = e.hubConnect("pump-1", key) // no SUBSCRIBE
	if _, err := e.api.UpdateTwin(e.ctx(), "pump-1", client.TwinPatch{Desired: json.RawMessage(`{"interval":10}`)}); err != nil {
		t.Fatal(err)
	}
	if m := d.next(t, "$iothub/twin/PATCH/properties/desired/"); m.Topic() != "$iothub/twin/PATCH/properties/desired/?$version=2" {
		t.Fatalf("desired update on %s", m.Topic())
	}
	d.publish0(t, "$iothub/twin/GET/?$rid=after-reconnect", " ")
	if m := d.next(t, "$iothub/twin/res/"); m.Topic() != "$iothub/twin/res/200/?$rid=after-reconnect" {
		t.Fatalf("twin answer on %s", m.Topic())
	}

	// A second connection with the same id takes over (the server closes
	// the first, as after a network drop), and still has everything.
	d2 := e.hubConnect("pump-1", key)
	select {
	case <-d.lost:
	case <-time.After(10 * time.Second):
		t.Fatal("the first connection was not closed by the second")
	}
	if _, err := e.api.UpdateTwin(e.ctx(), "pump-1", client.TwinPatch{Desired: json.RawMessage(`{"interval":11}`)}); err != nil {
		t.Fatal(err)
	}
	if m := d2.next(t, "$iothub/twin/PATCH/properties/desired/"); m.Topic() != "$iothub/twin/PATCH/properties/desired/?$version=3" {
		t.Fatalf("desired update after take-over on %s", m.Topic())
	}
	if _, err := e.api.SendC2D(e.ctx(), "pump-1", client.C2DSend{Payload: "hi", MessageID: "kept"}); err != nil {
		t.Fatal(err)
	}
	if m := d2.next(t, "devices/pump-1/messages/devicebound/"); !strings.Contains(m.Topic(), "%24.mid=kept") {
		t.Fatalf("C2D after take-over on %s", m.Topic())
	}
	go answerMethods(d2, nil) // takes every message from here on
	res, err := e.api.InvokeMethod(e.ctx(), "pump-1", "ping", json.RawMessage(`{}`), 5*time.Second)
	if err != nil || res.Status != 200 {
		t.Fatalf("method after take-over: %+v, %v", res, err)
	}
}

// methodCall is a request a device saw.
type methodCall struct {
	topic, name, rid string
	body             []byte
}

// answerMethods answers every direct method until the device's messages
// stop: status 200 and {"method": name, "request": body}, except that
// "fail" answers 500 {"error":"boom"}, "silent" is not answered and
// "slow" answers after a second. Each request is passed to seen.
func answerMethods(d *hubDevice, seen func(methodCall)) {
	for m := range d.msgs {
		topic := m.Topic()
		rest, ok := strings.CutPrefix(topic, "$iothub/methods/POST/")
		if !ok {
			continue
		}
		name, query, _ := strings.Cut(rest, "/?")
		rid, _ := strings.CutPrefix(query, "$rid=")
		c := methodCall{topic: topic, name: name, rid: rid, body: append([]byte(nil), m.Payload()...)}
		if seen != nil {
			seen(c)
		}
		go func() {
			status, body := 200, fmt.Sprintf(`{"method":%q,"request":%s}`, c.name, c.body)
			switch c.name {
			case "silent":
				return
			case "fail":
				status, body = 500, `{"error":"boom"}`
			case "slow":
				time.Sleep(time.Second)
			}
			d.c.Publish(fmt.Sprintf("$iothub/methods/res/%d/?$rid=%s", status, c.rid), 0, false, body)
		}()
	}
}

func TestDirectMethods(t *testing.T) {
	t.Parallel()
	e := start(t, withFakeClock())
	key := e.device("pump-1")
	e.device("pump-2")

	// Not connected: 404 at once.
	_, err := e.api.InvokeMethod(e.ctx(), "pump-2", "reboot", nil, 5*time.Second)
	if apiStatus(err) != 404 || !strings.Contains(err.Error(), "not online") {
		t.Fatalf("method to an offline device: %v, want 404 device not online", err)
	}
	// Connected but not subscribed to methods: 404 too.
	d := e.hubConnect("pump-1", key)
	if _, err := e.api.InvokeMethod(e.ctx(), "pump-1", "reboot", nil, 5*time.Second); apiStatus(err) != 404 {
		t.Fatalf("method to a device not subscribed: %v, want 404", err)
	}
	d.subscribe(t, filterMethods)
	var mu sync.Mutex
	var calls []methodCall
	go answerMethods(d, func(c methodCall) {
		mu.Lock()
		calls = append(calls, c)
		mu.Unlock()
	})

	res, err := e.api.InvokeMethod(e.ctx(), "pump-1", "reboot", json.RawMessage(`{"delay": 3}`), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != 200 {
		t.Fatalf("status %d, want 200", res.Status)
	}
	jsonEqual(t, "method answer", res.Payload, `{"method":"reboot","request":{"delay":3}}`)

	// No payload: the device gets null (an empty body would make the SDK
	// refuse the request).
	res, err = e.api.InvokeMethod(e.ctx(), "pump-1", "status", nil, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, "answer to a request without payload", res.Payload, `{"method":"status","request":null}`)

	// The device's status passes through.
	res, err = e.api.InvokeMethod(e.ctx(), "pump-1", "fail", nil, 10*time.Second)
	if err != nil || res.Status != 500 {
		t.Fatalf("failing method: %+v, %v; want status 500", res, err)
	}
	jsonEqual(t, "failing method payload", res.Payload, `{"error":"boom"}`)

	// Several at once, slow ones among them, each gets its own answer.
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() {
			name := "slow"
			if i%2 == 0 {
				name = "quick"
			}
			res, err := e.api.InvokeMethod(e.ctx(), "pump-1", name, json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)), 10*time.Second)
			if err == nil {
				var p struct {
					Method  string         `json:"method"`
					Request map[string]int `json:"request"`
				}
				if json.Unmarshal(res.Payload, &p) != nil || p.Method != name || p.Request["n"] != i {
					err = fmt.Errorf("call %d (%s) got %s", i, name, res.Payload)
				}
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}

	// No answer: 504 after the timeout, on the server's clock.
	armed := e.clock.Waiters()
	silent := make(chan error, 1)
	go func() {
		_, err := e.api.InvokeMethod(e.ctx(), "pump-1", "silent", nil, 5*time.Second)
		silent <- err
	}()
	ctx, cancel := context.WithTimeout(e.ctx(), 10*time.Second)
	defer cancel()
	if err := e.clock.BlockUntil(ctx, armed+1); err != nil { // the call's timer
		t.Fatalf("the unanswered call never waited: %v", err)
	}
	e.clock.Advance(5*time.Second - time.Millisecond)
	select {
	case err := <-silent:
		t.Fatalf("unanswered method ended before its timeout: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	e.clock.Advance(time.Millisecond)
	select {
	case err := <-silent:
		if apiStatus(err) != 504 {
			t.Fatalf("unanswered method: %v, want HTTP 504", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("unanswered method still waiting 10s after its timeout")
	}

	// Every request carried a $rid, and no two the same.
	mu.Lock()
	defer mu.Unlock()
	rids := map[string]bool{}
	for _, c := range calls {
		if c.rid == "" || !strings.Contains(c.topic, "/?$rid=") {
			t.Errorf("method request without $rid: %s", c.topic)
		}
		if rids[c.rid] {
			t.Errorf("$rid %s used twice", c.rid)
		}
		rids[c.rid] = true
	}
	if len(calls) != 10 {
		t.Errorf("device saw %d requests, want 10", len(calls))
	}

	// Bad requests.
	for _, c := range []struct {
		name    string
		timeout time.Duration
		want    string
	}{
		{"reboot", 2 * time.Second, "timeoutSeconds"},
		{"reboot", 10 * time.Minute, "timeoutSeconds"},
		{"re boot", 10 * time.Second, "not allowed"},
	} {
		_, err := e.api.InvokeMethod(e.ctx(), "pump-1", c.name, nil, c.timeout)
		if apiStatus(err) != 400 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("method %q timeout %s: %v, want 400 with %q", c.name, c.timeout, err, c.want)
		}
	}
}

// A device that goes away while a method waits for it fails the call at
// once rather than at the timeout.
func TestDirectMethodDeviceGoesAway(t *testing.T) {
	t.Parallel()
	e := start(t)
	key := e.device("pump-1")
	d := e.hubConnect("pump-1", key)
	d.subscribe(t, filterMethods)
	go func() {
		<-d.msgs // the request
		d.disconnect()
	}()
	start := time.Now()
	_, err := e.api.InvokeMethod(e.ctx(), "pump-1", "reboot", nil, 60*time.Second)
	if apiStatus(err) != 404 || !strings.Contains(err.Error(), "disconnected") {
		t.Fatalf("method to a device that left: %v, want 404", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("took %s", time.Since(start))
	}
}

func c2dByID(t *testing.T, e *env, device string) map[string]apiv1.C2DMessage {
	t.Helper()
	ms, err := e.api.C2DMessages(e.ctx(), device, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]apiv1.C2DMessage{}
	for _, m := range ms {
		out[m.ID] = m
	}
	return out
}

// waitC2DState polls the API until a message reaches a state.
func waitC2DState(t *testing.T, e *env, device, id, state string) apiv1.C2DMessage {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := c2dByID(t, e, device)[id]
		if m.State == state {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s is %q, want %q", id, m.State, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestC2DSQLite(t *testing.T) {
	t.Parallel()
	c2dLifecycle(t, start(t))
}

func TestC2DPostgres(t *testing.T) {
	t.Parallel()
	c2dLifecycle(t, start(t, withDatabase(pgtest.URL(t))))
}

func c2dLifecycle(t *testing.T, e *env) {
	key := e.device("pump-1")

	// Queued while the device has never connected.
	first, err := e.api.SendC2D(e.ctx(), "pump-1", client.C2DSend{Payload: `{"cmd":"open"}`, MessageID: "m-1",
		Properties: map[string]string{"alert": "true", "unit name": "C/°"}})
	if err != nil {
		t.Fatal(err)
	}
	if first.ID != "m-1" || first.State != "queued" || first.ExpiresAt.Sub(first.CreatedAt) != time.Hour {
		t.Fatalf("queued message = %+v, want m-1 queued with 1h to live", first)
	}
	second, err := e.api.SendC2D(e.ctx(), "pump-1", client.C2DSend{Payload: "plain text", TTL: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(second.ID) != 36 {
		t.Fatalf("server-made message id %q, want a UUID", second.ID)
	}

	// Connect, subscribe: both come, in order, at QoS 1, with IoT Hub's
	// property bag; each is completed by the device's PUBACK.
	d := e.hubConnect("pump-1", key)
	d.subscribe(t, filterC2D("pump-1"))
	m := d.next(t, "devices/pump-1/messages/devicebound/")
	wantTopic := "devices/pump-1/messages/devicebound/%24.mid=m-1&%24.to=%2Fdevices%2Fpump-1%2Fmessages%2FdeviceBound&alert=true&unit%20name=C%2F%C2%B0"
	if m.Topic() != wantTopic || m.Qos() != 1 || string(m.Payload()) != `{"cmd":"open"}` {
		t.Fatalf("C2D message on %s QoS %d %q,\nwant %s QoS 1", m.Topic(), m.Qos(), m.Payload(), wantTopic)
	}
	m = d.next(t, "devices/pump-1/messages/devicebound/")
	if m.Topic() != "devices/pump-1/messages/devicebound/%24.mid="+second.ID+"&%24.to=%2Fdevices%2Fpump-1%2Fmessages%2FdeviceBound" ||
		string(m.Payload()) != "plain text" {
		t.Fatalf("second C2D message on %s %q", m.Topic(), m.Payload())
	}
	done := waitC2DState(t, e, "pump-1", "m-1", "completed")
	if done.DeliveredAt == nil || done.CompletedAt == nil || done.DeliveryCount != 1 {
		t.Fatalf("completed message = %+v", done)
	}
	waitC2DState(t, e, "pump-1", second.ID, "completed")

	// Connected and subscribed: delivered at once.
	if _, err := e.api.SendC2D(e.ctx(), "pump-1", client.C2DSend{Payload: "now", MessageID: "m-now"}); err != nil {
		t.Fatal(err)
	}
	if m := d.next(t, "devices/pump-1/messages/devicebound/"); string(m.Payload()) != "now" {
		t.Fatalf("got %q", m.Payload())
	}
	waitC2DState(t, e, "pump-1", "m-now", "completed")

	// Queued while the device is away; it comes back without subscribing
	// again (its session is kept) and gets it.
	d.disconnect()
	if _, err := e.api.SendC2D(e.ctx(), "pump-1", client.C2DSend{Payload: "while away", MessageID: "m-away"}); err != nil {
		t.Fatal(err)
	}
	if m := c2dByID(t, e, "pump-1")["m-away"]; m.State != "queued" {
		t.Fatalf("message for an absent device is %q, want queued", m.State)
	}
	d = e.hubConnect("pump-1", key, manualAck)
	m = d.next(t, "devices/pump-1/messages/devicebound/")
	if string(m.Payload()) != "while away" {
		t.Fatalf("got %q, want the message sent while away", m.Payload())
	}
	// Not acknowledged yet: delivered, not completed.
	if st := waitC2DState(t, e, "pump-1", "m-away", "delivered"); st.CompletedAt != nil {
		t.Fatalf("completed without a PUBACK: %+v", st)
	}
	// The device drops without acknowledging: the message comes again, as
	// a duplicate, on its next connection.
	d.disconnect()
	d = e.hubConnect("pump-1", key, manualAck)
	m = d.next(t, "devices/pump-1/messages/devicebound/")
	if string(m.Payload()) != "while away" || !m.Duplicate() {
		t.Fatalf("redelivery %q dup=%v, want the unacknowledged message with DUP", m.Payload(), m.Duplicate())
	}
	m.Ack()
	if st := waitC2DState(t, e, "pump-1", "m-away", "completed"); st.DeliveryCount != 2 {
		t.Fatalf("delivery count %d, want 2", st.DeliveryCount)
	}
	d.none(t, 300*time.Millisecond)
}

func TestC2DExpiredNeverDelivered(t *testing.T) {
	t.Parallel()
	e := start(t, withFakeClock())
	key := e.device("pump-1")
	d := e.hubConnect("pump-1", key)
	d.subscribe(t, filterC2D("pump-1"))
	d.disconnect()
	if _, err := e.api.SendC2D(e.ctx(), "pump-1", client.C2DSend{Payload: "too late", MessageID: "short", TTL: time.Second}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.api.SendC2D(e.ctx(), "pump-1", client.C2DSend{Payload: "in time", MessageID: "long"}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(1500 * time.Millisecond)
	d = e.hubConnect("pump-1", key)
	if m := d.next(t, "devices/pump-1/messages/devicebound/"); string(m.Payload()) != "in time" {
		t.Fatalf("got %q, want only the unexpired message", m.Payload())
	}
	d.none(t, 500*time.Millisecond)
	m := c2dByID(t, e, "pump-1")["short"]
	if m.State != "expired" || m.ExpiredAt == nil || m.DeliveryCount != 0 {
		t.Fatalf("expired message = %+v", m)
	}
}

func TestC2DAPIErrors(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.device("pump-1")
	for i := range api.MaxC2DQueued {
		if _, err := e.api.SendC2D(e.ctx(), "pump-1", client.C2DSend{Payload: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := e.api.SendC2D(e.ctx(), "pump-1", client.C2DSend{Payload: "one too many"})
	if apiStatus(err) != 429 || !strings.Contains(err.Error(), "at most 50") {
		t.Fatalf("51st queued message: %v, want 429 explaining the limit", err)
	}
	e.device("pump-2")
	if _, err := e.api.SendC2D(e.ctx(), "pump-2", client.C2DSend{Payload: "a", MessageID: "dup"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		m      client.C2DSend
		status int
		want   string
	}{
		{client.C2DSend{Payload: "a", MessageID: "dup"}, 409, "already exists"},
		{client.C2DSend{Payload: "a", TTL: 72 * time.Hour}, 400, "ttlSeconds"},
		{client.C2DSend{Payload: strings.Repeat("x", 70000)}, 413, "limit"},
		{client.C2DSend{Payload: "a", Properties: map[string]string{"$.mid": "x"}}, 400, "'$'"},
		{client.C2DSend{Payload: "a", MessageID: "has space"}, 400, "messageId"},
	} {
		_, err := e.api.SendC2D(e.ctx(), "pump-2", c.m)
		if apiStatus(err) != c.status || !strings.Contains(err.Error(), c.want) {
			t.Errorf("send %+v: %v, want %d with %q", c.m.MessageID, err, c.status, c.want)
		}
	}
	if _, err := e.api.SendC2D(e.ctx(), "ghost", client.C2DSend{Payload: "a"}); apiStatus(err) != 404 {
		t.Errorf("send to an unknown device: %v, want 404", err)
	}
	if _, err := e.api.C2DMessages(e.ctx(), "ghost", 0); apiStatus(err) != 404 {
		t.Errorf("list of an unknown device: %v, want 404", err)
	}
	// A JSON payload is sent as JSON, a JSON string as its text.
	ms, err := e.api.C2DMessages(e.ctx(), "pump-2", 1)
	if err != nil || len(ms) != 1 || ms[0].Payload != "a" {
		t.Fatalf("list with limit 1 = %+v, %v", ms, err)
	}
}

// What a device needs survives a server restart: the C2D queue (in the
// store), and the subscriptions of its clean-session-0 session (saved in
// the store too, since the SDK never subscribes to its twin topics again).
func TestHubSurvivesRestart(t *testing.T) {
	t.Parallel()
	cfg := server.Config{DataDir: t.TempDir(), MQTTListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", AdminToken: adminToken, Out: io.Discard}
	srv, err := server.New(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(stop)
	c, err := client.New("https://"+srv.HTTPAddr(), adminToken, srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	roots, err := client.LoadCA(srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	first := &env{t: t, srv: srv, api: c, roots: roots, hubHost: srv.HubHost(), dataDir: cfg.DataDir}
	key := first.device("pump-1")
	d := first.hubConnect("pump-1", key)
	d.subscribe(t, filterTwinRes, filterDesired, filterMethods, filterC2D("pump-1"))
	d.disconnect()
	if _, err := c.SendC2D(t.Context(), "pump-1", client.C2DSend{Payload: "from before", MessageID: "old"}); err != nil {
		t.Fatal(err)
	}
	stop()

	e := startWith(t, cfg)
	d = e.hubConnect("pump-1", key) // no SUBSCRIBE, as the SDK after a reconnect
	if m := d.next(t, "devices/pump-1/messages/devicebound/"); string(m.Payload()) != "from before" {
		t.Fatalf("got %q", m.Payload())
	}
	waitC2DState(t, e, "pump-1", "old", "completed")
	if _, err := e.api.UpdateTwin(e.ctx(), "pump-1", client.TwinPatch{Desired: json.RawMessage(`{"interval":10}`)}); err != nil {
		t.Fatal(err)
	}
	if m := d.next(t, "$iothub/twin/PATCH/properties/desired/"); m.Topic() != "$iothub/twin/PATCH/properties/desired/?$version=2" {
		t.Fatalf("desired update after restart on %s", m.Topic())
	}
	d.publish0(t, "$iothub/twin/GET/?$rid=after-restart", " ")
	if m := d.next(t, "$iothub/twin/res/"); m.Topic() != "$iothub/twin/res/200/?$rid=after-restart" {
		t.Fatalf("twin answer after restart on %s", m.Topic())
	}
	go answerMethods(d, nil)
	if res, err := e.api.InvokeMethod(e.ctx(), "pump-1", "ping", nil, 5*time.Second); err != nil || res.Status != 200 {
		t.Fatalf("method after restart: %+v, %v", res, err)
	}

	// A clean-session connection starts with nothing and forgets the saved
	// session.
	d.disconnect()
	clean := e.hubConnect("pump-1", key, func(o *pahomqtt.ClientOptions) { o.SetCleanSession(true) })
	if _, err := e.api.InvokeMethod(e.ctx(), "pump-1", "ping", nil, 5*time.Second); apiStatus(err) != 404 {
		t.Fatalf("method to a clean session without subscriptions: %v, want 404", err)
	}
	clean.disconnect()
	// (The server forgets them right after its CONNACK.)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		subs, err := e.srv.Store().SessionSubscriptions(e.ctx(), "pump-1")
		if err == nil && len(subs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("saved subscriptions after a clean session: %v, %v; want none", subs, err)
		}
	}
}
