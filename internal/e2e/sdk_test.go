package e2e

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/client"
)

// TestSDK runs the official Azure IoT Node.js device SDK (the npm packages
// pinned in test/sdk/package-lock.json) against an in-process Warden: each
// subtest starts a small script of test/sdk/ with its parameters in
// environment variables and follows the JSON line the script prints for each
// step (see test/sdk/lib.js), driving the server side through the REST API.
//
// It needs node and test/sdk/node_modules (`cd test/sdk && npm ci`); without
// them it skips, except with CI=true where that is a failure. Set
// DEBUG=azure*,mqttjs* to get the SDK's own traces on the scripts' stderr
// (printed when a subtest fails, or always with WARDEN_TEST_LOG=1, which
// also turns on the server's debug log).
func TestSDK(t *testing.T) {
	t.Parallel()
	node, dir := sdkSetup(t)
	sdk := sdkEnv{node: node, dir: dir}
	for _, c := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"HubTelemetryTwinMethodC2D", func(t *testing.T) { sdkLifecycle(t, sdk, "mqtt", false) }},
		{"ProvisionTelemetryTwinMethodC2D", func(t *testing.T) { sdkLifecycle(t, sdk, "mqtt", true) }},
		{"WrongGroupKeyRefused", func(t *testing.T) { sdkWrongGroupKey(t, sdk) }},
		{"ExpiredTokenDisconnected", func(t *testing.T) { sdkExpiredToken(t, sdk) }},
		{"TokenRenewal", func(t *testing.T) { sdkTokenRenewal(t, sdk) }},
		{"WebSocketHubTelemetryTwinMethodC2D", func(t *testing.T) { sdkLifecycle(t, sdk, "ws", false) }},
		{"WebSocketProvisionTelemetryTwinMethodC2D", func(t *testing.T) { sdkLifecycle(t, sdk, "ws", true) }},
		{"ReconnectKeepsSubscriptions", func(t *testing.T) { sdkReconnect(t, sdk) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel() // each has its own server; most of their time is waiting
			c.run(t)
		})
	}
}

type sdkEnv struct{ node, dir string }

func sdkSetup(t *testing.T) (node, dir string) {
	t.Helper()
	missing := func(msg string) {
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + "; CI requires it")
		}
		t.Skip(msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node not installed (apt-get install nodejs npm), so the Azure IoT SDK tests cannot run")
	}
	dir, err = filepath.Abs(filepath.Join("..", "..", "test", "sdk"))
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range []string{"azure-iot-device", "azure-iot-device-mqtt", "azure-iot-provisioning-device",
		"azure-iot-provisioning-device-mqtt", "azure-iot-security-symmetric-key", "azure-iot-mqtt-base"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
			missing("test/sdk/node_modules/" + pkg + " missing (run: cd test/sdk && npm ci)")
		}
	}
	return node, dir
}

// ---- running a script ----

// sdkLine is one step a script reported.
type sdkLine map[string]any

func (l sdkLine) step() string { s, _ := l["step"].(string); return s }
func (l sdkLine) failed() bool { _, ok := l["error"]; return ok }
func (l sdkLine) String() string {
	b, _ := json.Marshal(map[string]any(l))
	return string(b)
}

// sdkScript is a running node script.
type sdkScript struct {
	t      *testing.T
	name   string
	lines  chan sdkLine // closed when stdout ends
	got    []sdkLine    // received, not yet taken by expect
	stderr *lockedBuffer
	exited chan struct{}
	err    error // exit status, after exited
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// run starts a script of test/sdk with vars (and the CA) in its
// environment. The script ends itself after deadline (a hang becomes a
// failed step); the test kills it at cleanup if it is still running.
func (s sdkEnv) run(t *testing.T, e *env, script string, deadline time.Duration, vars map[string]string) *sdkScript {
	t.Helper()
	cmd := exec.Command(s.node, filepath.Join(s.dir, script))
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(),
		"WARDEN_CA="+e.srv.CAFile(),
		"SDK_DEADLINE_MS="+strconv.FormatInt(deadline.Milliseconds(), 10))
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	r := &sdkScript{t: t, name: script, lines: make(chan sdkLine, 64), stderr: &lockedBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = r.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node %s: %v", script, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			var l sdkLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.step() == "" {
				r.stderr.Write(append([]byte("stdout: "), append(sc.Bytes(), '\n')...))
				continue
			}
			r.lines <- l
		}
		close(r.lines)
		r.err = cmd.Wait()
		close(r.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-r.exited:
		default:
			cmd.Process.Kill()
			<-r.exited
		}
		if t.Failed() || os.Getenv("WARDEN_TEST_LOG") != "" {
			t.Logf("%s stderr:\n%s", script, r.stderr.String())
		}
	})
	return r
}

// next takes the first received line of step, waiting up to timeout; ok is
// false if the script ended first or the time ran out. A failed line of
// another step is fatal.
func (r *sdkScript) next(step string, timeout time.Duration) (l sdkLine, ok bool, why string) {
	r.t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		for i, l := range r.got {
			if l.step() == step {
				r.got = append(r.got[:i], r.got[i+1:]...)
				return l, true, ""
			}
			if l.failed() {
				r.t.Fatalf("%s: step %q failed while waiting for %q: %s", r.name, l.step(), step, l)
			}
		}
		select {
		case l, open := <-r.lines:
			if !open {
				<-r.exited
				return nil, false, fmt.Sprintf("script ended (%v) before step %q", r.err, step)
			}
			r.t.Logf("%s: %s", r.name, l)
			r.got = append(r.got, l)
		case <-timer.C:
			return nil, false, fmt.Sprintf("no step %q within %s", step, timeout)
		}
	}
}

// expect waits for a successful step.
func (r *sdkScript) expect(step string, timeout time.Duration) sdkLine {
	r.t.Helper()
	l, ok, why := r.next(step, timeout)
	if !ok {
		r.t.Fatalf("%s: %s", r.name, why)
	}
	if l.failed() {
		r.t.Fatalf("%s: step %q failed: %s", r.name, step, l)
	}
	return l
}

// expectFailure waits for a step that must fail, and returns it.
func (r *sdkScript) expectFailure(step string, timeout time.Duration) sdkLine {
	r.t.Helper()
	l, ok, why := r.next(step, timeout)
	if !ok {
		r.t.Fatalf("%s: %s", r.name, why)
	}
	if !l.failed() {
		r.t.Fatalf("%s: step %q succeeded, want a failure: %s", r.name, step, l)
	}
	return l
}

// finish waits for the script to exit successfully.
func (r *sdkScript) finish(timeout time.Duration) {
	r.t.Helper()
	select {
	case <-r.exited:
	case <-time.After(timeout):
		r.t.Fatalf("%s: still running %s after its last step", r.name, timeout)
	}
	for l := range r.lines { // drained by now; report late failures
		if l.failed() {
			r.t.Fatalf("%s: step %q failed: %s", r.name, l.step(), l)
		}
	}
	for _, l := range r.got {
		if l.failed() {
			r.t.Fatalf("%s: step %q failed: %s", r.name, l.step(), l)
		}
	}
	if r.err != nil {
		r.t.Fatalf("%s: exit: %v", r.name, r.err)
	}
}

// ---- REST helpers ----

func (e *env) rest(t *testing.T, method, path string, body any) map[string]any {
	t.Helper()
	var out map[string]any
	if err := e.api.Do(e.ctx(), method, path, nil, body, &out); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return out
}

// dig follows a path of object keys.
func dig(v any, path ...string) any {
	if l, ok := v.(sdkLine); ok {
		v = map[string]any(l)
	}
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func str(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

type sdkDPS struct {
	idScope, host, groupKey string
}

// dpsGroup sets up provisioning: the tenant's ID scope and provisioning
// host (GET /api/v1/dps), and an enrollment group with a symmetric key.
func (e *env) dpsGroup(t *testing.T, groupID string) sdkDPS {
	t.Helper()
	info := e.rest(t, http.MethodGet, "/api/v1/dps", nil)
	d := sdkDPS{idScope: str(info["idScope"]), host: str(info["provisioningHost"])}
	if d.idScope == "" || d.host == "" {
		t.Fatalf("GET /api/v1/dps = %v: want idScope and provisioningHost", info)
	}
	g := e.rest(t, http.MethodPost, "/api/v1/dps/enrollment-groups", map[string]any{"id": groupID})
	d.groupKey = str(g["primaryKey"])
	if _, err := base64.StdEncoding.DecodeString(d.groupKey); err != nil || d.groupKey == "" {
		t.Fatalf("enrollment group %v: no base64 primaryKey", g)
	}
	return d
}

func deriveKey(groupKey, registrationID string) string {
	k, _ := base64.StdEncoding.DecodeString(groupKey)
	m := hmac.New(sha256.New, k)
	m.Write([]byte(registrationID))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func (e *env) waitConnected(t *testing.T, id string, want bool, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		d, err := e.api.Device(e.ctx(), id)
		if err != nil {
			t.Fatal(err)
		}
		if d.Connected == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("device %s connected = %v after %s, want %v", id, d.Connected, within, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// invokeMethod calls a direct method through the REST API. A device whose
// method subscription is not in place yet answers 404, so that is retried
// for a few seconds.
func (e *env) invokeMethod(t *testing.T, id, name string, payload any) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var out map[string]any
		err := e.api.Do(e.ctx(), http.MethodPost, "/api/v1/devices/"+id+"/methods/"+name, nil,
			map[string]any{"payload": payload, "timeoutSeconds": 30}, &out)
		if err == nil {
			return out
		}
		if !client.IsNotFound(err) || time.Now().After(deadline) {
			t.Fatalf("POST /api/v1/devices/%s/methods/%s: %v", id, name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitC2DState waits until the API lists C2D message id of device in state.
func (e *env) waitC2DState(t *testing.T, device, id, state string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		list := e.rest(t, http.MethodGet, "/api/v1/devices/"+device+"/c2d", nil)
		var got any
		if ms, ok := list["messages"].([]any); ok {
			for _, m := range ms {
				if str(dig(m, "id")) == id {
					got = dig(m, "state")
				}
			}
		}
		if got == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("C2D message %s: state %v, want %s (list: %v)", id, got, state, list)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ---- scenarios ----

// sdkLifecycle: (provisioned: provision with a group key; else a device made
// through the REST API) → connect → telemetry with a message id and
// properties (stored once, properties kept) → desired patch → reported
// properties → direct method → C2D. With transport "ws" all of it runs over
// the SDK's MqttWs transports (provisioning and hub).
//
// How the WebSocket transports reach the test server: they always dial
// wss://{host}:443/$iothub/websocket. The hub's MqttWs takes {host} from
// GatewayHostName if the connection string has one (only the dialled address:
// user name and SAS keep HostName, here localhost:<mqtt port>), so the device
// uses GatewayHostName=localhost. The port is the HTTPS listener's
// ephemeral one, not 443: the scripts give the SDK's public `mqtt.webSocketAgent`
// option an HTTPS agent that opens its TLS connection to that port (lib.js
// portAgent). Everything above TCP — path, SNI, certificate check, WebSocket
// handshake with subprotocol mqtt, MQTT — is the SDK's own. (Binding :443
// would also work as root, but not in parallel and not for everyone.)
func sdkLifecycle(t *testing.T, sdk sdkEnv, transport string, provisioned bool) {
	e := start(t)
	regID := "sdk-" + transport + "-1"
	mid := "sdk-msg-" + transport
	_, httpsPort, _ := net.SplitHostPort(e.srv.HTTPAddr())
	vars := map[string]string{"TRANSPORT": transport, "WS_HOST": "localhost", "WS_PORT": httpsPort, "MESSAGE_ID": mid}
	var dps sdkDPS
	if provisioned {
		dps = e.dpsGroup(t, "sdk-group")
		vars["DPS_HOST"], vars["ID_SCOPE"], vars["REGISTRATION_ID"], vars["GROUP_KEY"] = dps.host, dps.idScope, regID, dps.groupKey
	} else {
		key := e.device(regID)
		vars["HUB_HOST"], vars["DEVICE_ID"], vars["DEVICE_KEY"] = e.hubHost, regID, base64.StdEncoding.EncodeToString(key)
	}
	s := sdk.run(t, e, "device.js", 90*time.Second, vars)

	if provisioned {
		reg := s.expect("registered", 45*time.Second)
		if got := str(reg["assignedHub"]); got != e.hubHost {
			t.Errorf("assignedHub = %q, want %q (the host[:port] devices dial)", got, e.hubHost)
		}
		if got := str(reg["deviceId"]); got != regID {
			t.Fatalf("deviceId = %q, want %q", got, regID)
		}
		if got := str(reg["deviceKey"]); got != deriveKey(dps.groupKey, regID) {
			t.Fatalf("the script derived key %q, Go derives %q", got, deriveKey(dps.groupKey, regID))
		}
		if _, err := e.api.Device(e.ctx(), regID); err != nil {
			t.Fatalf("provisioned device %s: %v", regID, err)
		}
	}

	// Hub connection with the derived key, telemetry sent twice with the
	// same message id.
	s.expect("connected", 25*time.Second)
	s.expect("telemetry", 25*time.Second)
	h, err := e.api.History(e.ctx(), regID, "temperature", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Points) != 1 || h.Points[0].Value != 21.5 {
		t.Errorf("temperature points = %+v, want one 21.5 (the message id was sent twice)", h.Points)
	}
	msgs := e.rest(t, http.MethodGet, "/api/v1/devices/"+regID+"/messages", nil)
	list, _ := msgs["messages"].([]any)
	if len(list) != 1 {
		t.Errorf("messages = %v, want exactly one", msgs)
	} else {
		m := list[0]
		sys := dig(m, "systemProperties")
		for k, want := range map[string]string{"mid": mid, "ct": "application/json", "ce": "utf-8"} {
			if got := str(dig(sys, k)); got != want {
				t.Errorf("system property %s = %q, want %q (message %v)", k, got, want, m)
			}
		}
		if got := str(dig(m, "messageId")); got != mid {
			t.Errorf("messageId = %q, want %q", got, mid)
		}
		for k, want := range map[string]string{"alert": "false", "site name": "hall 3/B"} {
			if got := str(dig(m, "properties", k)); got != want {
				t.Errorf("application property %q = %q, want %q (message %v)", k, got, want, m)
			}
		}
	}

	// Twin: desired patch through the API → device → reported properties.
	s.expect("ready", 25*time.Second)
	e.rest(t, http.MethodPatch, "/api/v1/devices/"+regID+"/twin", map[string]any{"properties": map[string]any{"desired": map[string]any{"interval": 10}}})
	d := s.expect("desired", 10*time.Second)
	if got := dig(d, "patch", "interval"); got != float64(10) {
		t.Errorf("desired patch = %v, want interval 10", d["patch"])
	}
	if _, ok := dig(d, "patch", "$version").(float64); !ok {
		t.Errorf("desired patch %v has no numeric $version", d["patch"])
	}
	s.expect("reported", 10*time.Second)
	twin := e.rest(t, http.MethodGet, "/api/v1/devices/"+regID+"/twin", nil)
	rep := dig(twin, "properties", "reported")
	if dig(rep, "interval") != float64(10) || dig(rep, "firmware") != "1.0.0" || dig(rep, "site", "hall") != float64(3) {
		t.Errorf("twin reported = %v, want interval 10, firmware 1.0.0, site.hall 3", rep)
	}
	if dig(twin, "properties", "desired", "interval") != float64(10) {
		t.Errorf("twin desired = %v, want interval 10", dig(twin, "properties", "desired"))
	}

	// Direct method through the API.
	res := e.invokeMethod(t, regID, "reboot", map[string]any{"delay": 1})
	if res["status"] != float64(200) || !reflect.DeepEqual(res["payload"], map[string]any{"rebooting": true, "delay": float64(1)}) {
		t.Errorf("method answer = %v, want status 200 and payload {rebooting: true, delay: 1}", res)
	}
	if m := s.expect("method", 5*time.Second); dig(m, "payload", "delay") != float64(1) {
		t.Errorf("the device got method payload %v, want {delay: 1}", m["payload"])
	}
	s.expect("methodAnswered", 5*time.Second)

	// Cloud-to-device message through the API.
	e.rest(t, http.MethodPost, "/api/v1/devices/"+regID+"/c2d", map[string]any{"payload": "hello", "properties": map[string]any{"k": "v"}, "ttlSeconds": 600})
	c := s.expect("c2d", 15*time.Second)
	if c["data"] != "hello" || dig(c, "properties", "k") != "v" {
		t.Errorf("C2D message = %v, want data hello and property k=v", c)
	}
	s.expect("c2dCompleted", 10*time.Second)
	// Completed on the device's PUBACK, and visible so in the API.
	e.waitC2DState(t, regID, str(c["messageId"]), "completed")
	s.expect("closed", 10*time.Second)
	s.finish(10 * time.Second)
}

// sdkWrongGroupKey: a device key derived from another group key is refused
// by DPS, promptly and as an authorisation failure, and no device is made.
func sdkWrongGroupKey(t *testing.T, sdk sdkEnv) {
	e := start(t)
	dps := e.dpsGroup(t, "sdk-group")
	wrong := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	s := sdk.run(t, e, "provision.js", 60*time.Second, map[string]string{
		"DPS_HOST": dps.host, "ID_SCOPE": dps.idScope, "REGISTRATION_ID": "sdk-intruder", "GROUP_KEY": wrong,
	})
	f := s.expectFailure("registered", 45*time.Second)
	// CONNACK 5 gives Error("… Not authorized"), a 401 answer UnauthorizedError.
	if all := strings.ToLower(str(f["name"]) + " " + str(f["error"])); !strings.Contains(all, "authori") {
		t.Errorf("register() failed with %s, want an authorisation failure", f)
	}
	if _, err := e.api.Device(e.ctx(), "sdk-intruder"); !client.IsNotFound(err) {
		t.Errorf("device of the refused registration: %v, want 404", err)
	}
}

// sdkExpiredToken: a connection string with a fixed SAS token. The server
// closes the connection when the token expires; a send with the expired
// token is refused; updateSharedAccessSignature with a new token lets the
// SDK reconnect and send again.
func sdkExpiredToken(t *testing.T, sdk sdkEnv) {
	e := start(t)
	id := "sdk-expiring"
	e.device(id)
	var short, long struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expiresAt"`
	}
	if err := e.api.Do(e.ctx(), http.MethodPost, "/api/v1/devices/"+id+"/token", nil, map[string]any{"ttl": "8s"}, &short); err != nil {
		t.Fatal(err)
	}
	if err := e.api.Do(e.ctx(), http.MethodPost, "/api/v1/devices/"+id+"/token", nil, map[string]any{"ttl": "1h"}, &long); err != nil {
		t.Fatal(err)
	}
	s := sdk.run(t, e, "expiry.js", 45*time.Second, map[string]string{
		"MODE": "fixed", "HUB_HOST": e.hubHost, "DEVICE_ID": id,
		"TOKEN": short.Token, "NEW_TOKEN": long.Token, "TOKEN_EXPIRY": strconv.FormatInt(short.ExpiresAt.Unix(), 10),
	})
	s.expect("connected", 15*time.Second)
	s.expect("sent", 10*time.Second)
	e.waitConnected(t, id, true, 2*time.Second)
	d := s.expect("disconnected", time.Until(short.ExpiresAt)+10*time.Second)
	if after, _ := d["secondsAfterExpiry"].(float64); after < -1 || after > 5 {
		t.Errorf("the server closed the connection %.1f s after the token's expiry, want at expiry", after)
	}
	s.expect("refused", 15*time.Second)
	s.expect("renewed", 15*time.Second)
	s.expect("closed", 10*time.Second)
	s.finish(10 * time.Second)
	h, err := e.api.History(e.ctx(), id, "counter", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []float64
	for _, p := range h.Points {
		got = append(got, p.Value)
	}
	if !reflect.DeepEqual(got, []float64{1, 3}) {
		t.Errorf("counter points = %v, want [1 3] (2 was sent with the expired token)", got)
	}
}

// sdkTokenRenewal: the SDK's own renewal (SharedAccessKey connection string
// with tokens valid 5 s, renewed 2 s before expiry, i.e. every 3 s) keeps the device working
// over several token lifetimes: every message is acknowledged, and a desired
// patch sent after renewals still arrives although the SDK subscribes nothing
// after a renewal reconnect (protocol notes §3.2, §4.3).
func sdkTokenRenewal(t *testing.T, sdk sdkEnv) {
	e := start(t)
	id := "sdk-renewing"
	key := e.device(id)
	const valid, margin, run = 5, 2, 10
	s := sdk.run(t, e, "expiry.js", 60*time.Second, map[string]string{
		"MODE": "renew", "HUB_HOST": e.hubHost, "DEVICE_ID": id, "DEVICE_KEY": base64.StdEncoding.EncodeToString(key),
		"TOKEN_VALID_S": strconv.Itoa(valid), "TOKEN_MARGIN_S": strconv.Itoa(margin), "RUN_S": strconv.Itoa(run),
	})
	s.expect("ready", 20*time.Second)
	// Two renewals: the connection now runs on its third token, and the
	// first has expired.
	s.expect("renewal", 2*valid*time.Second)
	s.expect("renewal", 2*valid*time.Second)
	// A renewal is a DISCONNECT and a new CONNECT a few milliseconds later;
	// a desired patch in that gap is not delivered (IoT Hub does not replay
	// them either), so send it halfway to the next renewal.
	time.Sleep(time.Duration(valid-margin) * time.Second / 2)
	e.rest(t, http.MethodPatch, "/api/v1/devices/"+id+"/twin", map[string]any{"properties": map[string]any{"desired": map[string]any{"afterRenewal": true}}})
	s.expect("desired", 10*time.Second)
	sent := s.expect("sent", run*time.Second+15*time.Second)
	s.expect("twin", 10*time.Second)
	s.expect("closed", 10*time.Second)
	s.finish(10 * time.Second)
	n, _ := sent["count"].(float64)
	h, err := e.api.History(e.ctx(), id, "counter", nil)
	if err != nil {
		t.Fatal(err)
	}
	if n < run-1 || len(h.Points) != int(n) {
		t.Errorf("%v messages sent, %d stored; want all of at least %d", n, len(h.Points), run-1)
	}
}

// sdkReconnect: the server drops the device (disabled through the API); the
// SDK retries by itself and gets in again once the device is enabled. After
// that, desired patches still arrive and twin GET / reported PATCH are still
// answered although the SDK re-subscribed only C2D and methods: the server
// kept the clean-session-0 client's subscriptions. A C2D message sent while
// the device was away is delivered after the reconnection.
func sdkReconnect(t *testing.T, sdk sdkEnv) {
	e := start(t)
	id := "sdk-reconnect"
	key := e.device(id)
	s := sdk.run(t, e, "reconnect.js", 60*time.Second, map[string]string{
		"HUB_HOST": e.hubHost, "DEVICE_ID": id, "DEVICE_KEY": base64.StdEncoding.EncodeToString(key),
	})
	s.expect("ready", 20*time.Second)
	s.expect("connect", time.Second)
	patch := func(phase int) {
		e.rest(t, http.MethodPatch, "/api/v1/devices/"+id+"/twin", map[string]any{"properties": map[string]any{"desired": map[string]any{"phase": phase}}})
	}
	patch(1)
	if d := s.expect("desired", 10*time.Second); dig(d, "patch", "phase") != float64(1) {
		t.Fatalf("desired = %v, want phase 1", d)
	}

	if _, err := e.api.SetDeviceStatus(e.ctx(), id, "disabled"); err != nil {
		t.Fatal(err)
	}
	e.waitConnected(t, id, false, 10*time.Second)
	e.rest(t, http.MethodPost, "/api/v1/devices/"+id+"/c2d", map[string]any{"payload": "while-away", "ttlSeconds": 600})
	time.Sleep(time.Second) // the SDK's first reconnection attempts are refused
	if _, err := e.api.SetDeviceStatus(e.ctx(), id, "enabled"); err != nil {
		t.Fatal(err)
	}
	// The SDK's back-off stays under 10 s per step.
	s.expect("connect", 20*time.Second)
	e.waitConnected(t, id, true, 5*time.Second)

	patch(2)
	if d := s.expect("desired", 10*time.Second); dig(d, "patch", "phase") != float64(2) {
		t.Fatalf("desired = %v, want phase 2", d)
	}
	if tw := s.expect("twin", 15*time.Second); dig(tw, "desired", "phase") != float64(2) {
		t.Errorf("twin GET after the reconnection: desired = %v, want phase 2", tw["desired"])
	}
	s.expect("reported", 15*time.Second)
	if rep := dig(e.rest(t, http.MethodGet, "/api/v1/devices/"+id+"/twin", nil), "properties", "reported"); dig(rep, "phase") != float64(2) || dig(rep, "reconnected") != true {
		t.Errorf("twin reported = %v, want phase 2 and reconnected", rep)
	}
	if res := e.invokeMethod(t, id, "ping", nil); res["status"] != float64(200) {
		t.Errorf("method after the reconnection = %v, want status 200", res)
	}
	if c := s.expect("c2d", 15*time.Second); c["data"] != "while-away" {
		t.Errorf("C2D = %v, want the message sent while the device was away", c)
	}
	s.expect("closed", 10*time.Second)
	s.finish(10 * time.Second)
}
