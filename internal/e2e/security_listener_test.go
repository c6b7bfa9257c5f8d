package e2e

// Attacks on the MQTT listener itself, before and around authentication:
// running the process out of file descriptors, more connections than the
// node takes, slow and silent clients, oversized packets, and a client
// that stops reading.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	pahomqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/warden-iot/warden/internal/broker"
	"github.com/warden-iot/warden/internal/cli"
	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/sas"
	"github.com/warden-iot/warden/internal/server"
	"github.com/warden-iot/warden/internal/server/servertest"
)

// logBuffer collects a server's log output.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitLog waits until the log holds s.
func (b *logBuffer) waitLog(t *testing.T, s string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(b.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("log lacks %q after %s:\n%s", s, within, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startLogged is start with the server's log (info and up) captured.
func startLogged(t *testing.T, opts ...option) (*env, *logBuffer) {
	t.Helper()
	cfg := server.Config{
		DataDir:    t.TempDir(),
		MQTTListen: "127.0.0.1:0",
		HTTPListen: "127.0.0.1:0",
		AdminToken: adminToken,
		Out:        io.Discard,
	}
	for _, o := range opts {
		o(&cfg)
	}
	logs := &logBuffer{}
	var out io.Writer = logs
	if os.Getenv("WARDEN_TEST_LOG") != "" {
		out = io.MultiWriter(logs, os.Stderr)
	}
	srv, api := servertest.Start(t, cfg, slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo})))
	roots, err := client.LoadCA(srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, srv: srv, api: api, roots: roots, hubHost: srv.HubHost(), dataDir: cfg.DataDir}, logs
}

func withConnectTimeout(d time.Duration) option {
	return func(c *server.Config) { c.MQTTConnectTimeout = d }
}

// closedWithin reads c until the server closes it or d passes; it returns
// how long that took and whether it was closed.
func closedWithin(c net.Conn, d time.Duration) (time.Duration, bool) {
	start := time.Now()
	c.SetReadDeadline(start.Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return time.Since(start), false
	}
	return time.Since(start), true
}

// rawDevice is a device speaking MQTT 3.1.1 on a bare TLS connection, for
// what a well-behaved client library will not do.
type rawDevice struct {
	conn net.Conn
	r    *bufio.Reader
}

func encode(t *testing.T, pk packets.Packet) []byte {
	t.Helper()
	var buf bytes.Buffer
	var err error
	switch pk.FixedHeader.Type {
	case packets.Connect:
		err = pk.ConnectEncode(&buf)
	case packets.Subscribe:
		err = pk.SubscribeEncode(&buf)
	case packets.Publish:
		err = pk.PublishEncode(&buf)
	default:
		t.Fatalf("encode: packet type %d", pk.FixedHeader.Type)
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func connectBytes(t *testing.T, clientID, username, password string, keepalive uint16) []byte {
	return encode(t, packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 4,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: keepalive,
			ClientIdentifier: clientID, UsernameFlag: true, Username: []byte(username),
			PasswordFlag: true, Password: []byte(password)},
	})
}

// rawConnect connects a registered device with keep-alive 0 and waits for
// its CONNACK.
func (e *env) rawConnect(id string, key []byte) *rawDevice {
	e.t.Helper()
	conn, err := tls.Dial("tcp", e.srv.MQTTAddr(), e.tlsConfig())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	d := &rawDevice{conn: conn, r: bufio.NewReader(conn)}
	d.write(e.t, connectBytes(e.t, id, e.username(id), e.token(id, key, time.Hour), 0))
	if pk := d.read(e.t); pk.FixedHeader.Type != packets.Connack || pk.ReasonCode != 0 {
		e.t.Fatalf("CONNACK: %+v", pk)
	}
	return d
}

func (d *rawDevice) write(t *testing.T, b []byte) {
	t.Helper()
	d.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := d.conn.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func (d *rawDevice) read(t *testing.T) packets.Packet {
	t.Helper()
	d.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var fh packets.FixedHeader
	b, err := d.r.ReadByte()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := fh.Decode(b); err != nil {
		t.Fatal(err)
	}
	if fh.Remaining, _, err = packets.DecodeLength(d.r); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, fh.Remaining)
	if _, err := io.ReadFull(d.r, body); err != nil {
		t.Fatalf("read: %v", err)
	}
	pk := packets.Packet{FixedHeader: fh, ProtocolVersion: 4}
	switch fh.Type {
	case packets.Connack:
		err = pk.ConnackDecode(body)
	case packets.Suback:
		err = pk.SubackDecode(body)
	}
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

// TestMQTTListenerSurvivesFileLimit runs a server in a child process (this
// test binary running `warden serve`) whose open-file limit is then
// lowered, exhausts its descriptors with idle TCP connections, and checks
// that the failing accepts are logged, that /healthz reports them, and that
// once the connections go a device connects and publishes again.
func TestMQTTListenerSurvivesFileLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a server in a child process")
	}
	dataDir := t.TempDir()
	mqttPort, httpPort := freePort(t), freePort(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestMQTTListenerFileLimitChild$")
	cmd.Env = append(os.Environ(), "E2E_FDLIMIT_CHILD="+dataDir+","+mqttPort+","+httpPort, "WARDEN_ADMIN_TOKEN="+adminToken)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		stdin.Close() // the child shuts the server down
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("child log:\n%s", logs.String())
		}
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				ready <- line
			}
		}
	}()
	var limit int
	select {
	case line := <-ready:
		var open int
		fmt.Sscan(line, &open, &limit)
		t.Logf("child: %d descriptors open, limit lowered to %d", open, limit)
	case <-exited:
		t.Fatalf("child exited before it was ready:\n%s", logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("child not ready after 60s:\n%s", logs.String())
	}

	caFile := filepath.Join(dataDir, "ca.pem")
	api, err := client.New("https://localhost:"+httpPort, adminToken, caFile)
	if err != nil {
		t.Fatal(err)
	}
	d, err := api.CreateDevice(t.Context(), "fd-1")
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := sas.ParseConnectionString(d.ConnectionString)
	roots, err := client.LoadCA(caFile)
	if err != nil {
		t.Fatal(err)
	}
	// One HTTPS connection opened now and kept: at the limit the server
	// cannot accept a new one, but answers on this.
	health := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: tlsFor(roots), MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1}}
	healthz := func() (int, string) {
		t.Helper()
		resp, err := health.Get("https://localhost:" + httpPort + "/healthz")
		if err != nil {
			t.Fatalf("healthz: %v", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := healthz(); code != http.StatusOK {
		t.Fatalf("healthz before: %d %s", code, body)
	}

	// Exhaust the child's descriptors: far more idle connections than it
	// has left. Those it cannot accept wait in the kernel's backlog.
	var idle []net.Conn
	for range limit + 100 {
		c, err := net.Dial("tcp", "127.0.0.1:"+mqttPort)
		if err != nil {
			t.Fatalf("dial %d: %v", len(idle), err)
		}
		idle = append(idle, c)
	}
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	logs.waitLog(t, "MQTT listener cannot accept connections", 30*time.Second)
	if !strings.Contains(logs.String(), "too many open files") {
		t.Errorf("the accept error is not in the log:\n%s", logs.String())
	}
	code, body := healthz()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "cannot accept connections") || !strings.Contains(body, "too many open files") {
		t.Fatalf("healthz at the file limit: %d %s; want 503 with the reason", code, body)
	}

	// Let go: the listener recovers on its own.
	for _, c := range idle {
		c.Close()
	}
	idle = nil
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body = healthz()
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthz after the connections went: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	logs.waitLog(t, "MQTT listener accepting connections again", 10*time.Second)

	lost := make(chan error, 1)
	c := pahomqtt.NewClient(pahomqtt.NewClientOptions().
		AddBroker("tls://127.0.0.1:" + mqttPort).SetClientID("fd-1").
		SetUsername(cs.HostName + "/fd-1/?api-version=2021-04-12").
		SetPassword(sas.Sign(cs.SharedAccessKey, sas.DeviceResource(cs.HostName, "fd-1"), time.Now().Add(time.Hour))).
		SetTLSConfig(tlsFor(roots)).SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(10 * time.Second).
		SetConnectionLostHandler(func(_ pahomqtt.Client, err error) { lost <- err }))
	if tok := c.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		t.Fatalf("device connect after the file limit: %v", tok.Error())
	}
	defer c.Disconnect(100)
	if tok := c.Publish(events("fd-1", "%24.mid=after-limit"), 1, false, `{"temperature": 20.5}`); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		t.Fatalf("publish after the file limit: %v", tok.Error())
	}
	if l, err := api.Latest(t.Context(), "fd-1"); err != nil || len(l) != 1 {
		t.Fatalf("latest after the file limit = %+v, %v", l, err)
	}
}

// TestMQTTListenerFileLimitChild is the server of
// TestMQTTListenerSurvivesFileLimit; it runs only in its child process.
func TestMQTTListenerFileLimitChild(t *testing.T) {
	arg := os.Getenv("E2E_FDLIMIT_CHILD")
	if arg == "" {
		t.Skip("the child process of TestMQTTListenerSurvivesFileLimit")
	}
	parts := strings.Split(arg, ",")
	dataDir, mqttPort, httpPort := parts[0], parts[1], parts[2]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // the parent closes stdin to stop the server
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	done := make(chan int, 1)
	go func() {
		done <- cli.Main(ctx, []string{"serve", "--data-dir", dataDir,
			"--mqtt-listen", "127.0.0.1:" + mqttPort, "--http-listen", "127.0.0.1:" + httpPort,
			// Neither the cap nor the CONNECT deadline may save the
			// listener here: the descriptors must run out.
			"--mqtt-max-connections", "1000000", "--mqtt-connect-timeout", "10m",
			"--log-format", "json", "--log-level", "info"}, strings.NewReader(""), io.Discard, os.Stderr)
	}()
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: insecureTLS(), DisableKeepAlives: true}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc.Get("https://127.0.0.1:" + httpPort + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("server not healthy after 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	hc.CloseIdleConnections()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	rl.Cur = uint64(len(entries) + 40)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("READY %d %d\n", len(entries), rl.Cur)
	if code := <-done; code != 0 {
		t.Fatalf("serve exited with %d", code)
	}
}

// TestMQTTConnectionCap: beyond the node's cap every connection (TLS, plain
// TCP, WebSocket) is closed at once, counted and logged with the cap and how
// to raise it; authenticated devices under the cap keep working, and a
// place frees when a connection goes.
func TestMQTTConnectionCap(t *testing.T) {
	t.Parallel()
	e, logs := startLogged(t, withPlainMQTT(), func(c *server.Config) { c.MQTTMaxConnections = 4 })
	keyA, keyB, keyC := e.device("cap-a"), e.device("cap-b"), e.device("cap-c")
	a := e.deviceConn("cap-a", keyA)
	b := e.deviceConn("cap-b", keyB)
	var idle []net.Conn
	for range 2 { // unauthenticated, idle: they count too
		c, err := net.Dial("tcp", e.srv.MQTTAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	waitMetric(t, e, "warden_mqtt_connections_open", 4)

	for i, addr := range []string{e.srv.MQTTAddr(), e.srv.MQTTTCPAddr(), e.srv.MQTTAddr()} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if took, closed := closedWithin(c, 5*time.Second); !closed || took > 2*time.Second {
			t.Fatalf("connection %d beyond the cap: closed %v after %s; want closed at once", i, closed, took)
		}
	}
	if _, rc, err := e.connect311("cap-c", e.username("cap-c"), e.token("cap-c", keyC, time.Hour)); err == nil {
		t.Fatalf("a device beyond the cap connected (rc %d)", rc)
	}
	// MQTT over WebSocket counts against the same cap.
	req, _ := http.NewRequest(http.MethodGet, "https://localhost:"+portOf(e.srv.HTTPAddr())+broker.WebSocketPath, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	req.Header.Set("Sec-WebSocket-Protocol", "mqtt")
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: e.tlsConfig()}, Timeout: 5 * time.Second}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("WebSocket beyond the cap: %d, want 503", resp.StatusCode)
	}

	if got := e.metricValue(`warden_connections_refused_total{reason="connection_cap"}`); got != 5 {
		t.Errorf("refused for the cap = %v, want 5", got)
	}
	text := logs.String()
	if n := strings.Count(text, "connection cap is reached"); n != 1 {
		t.Errorf("%d log lines for 5 refusals within seconds, want 1:\n%s", n, text)
	}
	if !strings.Contains(text, "cap=4") || !strings.Contains(text, "--mqtt-max-connections") {
		t.Errorf("the log line lacks the cap or how to raise it:\n%s", text)
	}

	// The devices under the cap were not disturbed.
	a.mustPublish(t, events("cap-a", "%24.mid=a1"), `{"temperature": 1}`)
	b.mustPublish(t, events("cap-b", "%24.mid=b1"), `{"temperature": 2}`)
	a.stillUp(t)
	b.stillUp(t)

	// An idle connection goes: a device takes its place.
	idle[0].Close()
	waitMetric(t, e, "warden_mqtt_connections_open", 3)
	c := e.deviceConn("cap-c", keyC)
	c.mustPublish(t, events("cap-c", "%24.mid=c1"), `{"temperature": 3}`)
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

func waitMetric(t *testing.T, e *env, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := e.metricValue(name)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", name, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// clientHello returns the first bytes a TLS client sends: its ClientHello
// record.
func clientHello(t *testing.T) []byte {
	t.Helper()
	a, b := net.Pipe()
	go func() {
		tls.Client(a, &tls.Config{ServerName: "localhost", InsecureSkipVerify: true}).Handshake() //nolint:gosec // only the hello is used
	}()
	defer a.Close()
	defer b.Close()
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(b, hdr); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(b, body); err != nil {
		t.Fatal(err)
	}
	return append(hdr, body...)
}

// drip writes b one byte a second until it is written or the connection
// fails.
func drip(c net.Conn, b []byte) {
	for i := range b {
		if _, err := c.Write(b[i : i+1]); err != nil {
			return
		}
		time.Sleep(time.Second)
	}
}

// TestMQTTSlowHandshakes: a ClientHello at 1 byte a second, and a CONNECT
// at 1 byte a second after a quick TLS handshake, are both cut at the
// CONNECT deadline, counted from accept.
func TestMQTTSlowHandshakes(t *testing.T) {
	t.Parallel()
	const timeout = time.Second
	e := start(t, withConnectTimeout(timeout))
	hello := clientHello(t)

	var wg sync.WaitGroup
	check := func(what string, c net.Conn, dialled time.Time) {
		defer wg.Done()
		defer c.Close()
		_, closed := closedWithin(c, 15*time.Second)
		took := time.Since(dialled)
		if !closed || took < timeout-100*time.Millisecond || took > timeout+3*time.Second {
			t.Errorf("%s: closed %v after %s; want closed at the %s deadline", what, closed, took.Round(time.Millisecond), timeout)
		}
	}
	for i := range 3 {
		dialled := time.Now()
		c, err := net.Dial("tcp", e.srv.MQTTAddr())
		if err != nil {
			t.Fatal(err)
		}
		go drip(c, hello)
		wg.Add(1)
		go check(fmt.Sprintf("ClientHello at 1 byte/s (%d)", i), c, dialled)
	}
	for i := range 3 {
		dialled := time.Now()
		c, err := tls.Dial("tcp", e.srv.MQTTAddr(), e.tlsConfig())
		if err != nil {
			t.Fatal(err)
		}
		go drip(c, connectBytes(t, "slow", "x", "y", 60))
		wg.Add(1)
		go check(fmt.Sprintf("CONNECT at 1 byte/s over TLS (%d)", i), c, dialled)
	}
	wg.Wait()
}

// TestMQTTSilentConnectionClosed: a connection that sends nothing (plain
// TCP, or TLS with the handshake done) is closed at the CONNECT deadline;
// devices that connected in time stay connected past it, with keep-alive 0
// too (the deadline is replaced by the keep-alive one).
func TestMQTTSilentConnectionClosed(t *testing.T) {
	t.Parallel()
	const timeout = time.Second
	e := start(t, withPlainMQTT(), withConnectTimeout(timeout))
	keyA, keyB := e.device("quiet-a"), e.device("quiet-b")
	withKeepalive := e.deviceConn("quiet-a", keyA) // paho's keep-alive: 30 s
	noKeepalive := e.rawConnect("quiet-b", keyB)   // keep-alive 0

	dial := func(tlsToo bool) (net.Conn, time.Time) {
		t.Helper()
		dialled := time.Now()
		if tlsToo {
			c, err := tls.Dial("tcp", e.srv.MQTTAddr(), e.tlsConfig())
			if err != nil {
				t.Fatal(err)
			}
			return c, dialled
		}
		c, err := net.Dial("tcp", e.srv.MQTTTCPAddr())
		if err != nil {
			t.Fatal(err)
		}
		return c, dialled
	}
	for _, name := range []string{"plain TCP", "TLS, handshake done", "TCP to the TLS port"} {
		var c net.Conn
		var dialled time.Time
		switch name {
		case "plain TCP":
			c, dialled = dial(false)
		case "TLS, handshake done":
			c, dialled = dial(true)
		default:
			dialled = time.Now()
			var err error
			if c, err = net.Dial("tcp", e.srv.MQTTAddr()); err != nil {
				t.Fatal(err)
			}
		}
		_, closed := closedWithin(c, 15*time.Second)
		took := time.Since(dialled)
		c.Close()
		if !closed || took < timeout-100*time.Millisecond || took > timeout+3*time.Second {
			t.Errorf("silent %s: closed %v after %s; want closed at the %s deadline", name, closed, took.Round(time.Millisecond), timeout)
		}
	}
	// MQTT over WebSocket: upgraded, then silent.
	ws := websocket.Dialer{TLSClientConfig: e.tlsConfig(), Subprotocols: []string{"mqtt"}}
	dialled := time.Now()
	wc, _, err := ws.Dial("wss://localhost:"+portOf(e.srv.HTTPAddr())+broker.WebSocketPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	wc.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, _, err = wc.ReadMessage()
	took := time.Since(dialled)
	wc.Close()
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) || took < timeout-100*time.Millisecond || took > timeout+3*time.Second {
		t.Errorf("silent WebSocket: %v after %s; want closed at the %s deadline", err, took.Round(time.Millisecond), timeout)
	}

	// Well past the deadline, both devices are still there.
	withKeepalive.stillUp(t)
	withKeepalive.mustPublish(t, events("quiet-a", "%24.mid=1"), `{"temperature": 1}`)
	noKeepalive.write(t, encode(t, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1},
		TopicName: events("quiet-b", "%24.mid=1"), PacketID: 7, Payload: []byte(`{"temperature": 2}`)}))
	if pk := noKeepalive.read(t); pk.FixedHeader.Type != packets.Puback {
		t.Fatalf("keep-alive 0 device after the deadline: got packet type %d, want PUBACK", pk.FixedHeader.Type)
	}
}

// TestMQTTOversizedConnect: unauthenticated clients announcing a 256 MiB
// CONNECT (or one just over the CONNECT limit) are closed as soon as the
// header is read, and the server does not reserve the memory announced.
func TestMQTTOversizedConnect(t *testing.T) {
	e := start(t, withPlainMQTT()) // the default CONNECT deadline: 10 s
	huge := []byte{0x10, 0xff, 0xff, 0xff, 0x7f}
	overLimit := append([]byte{0x10}, varintBytes(broker.MaxConnectPacketSize+1)...)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	type attempt struct {
		name   string
		conn   net.Conn
		header []byte
	}
	var attempts []attempt
	for i := range 5 {
		c, err := tls.Dial("tcp", e.srv.MQTTAddr(), e.tlsConfig())
		if err != nil {
			t.Fatal(err)
		}
		attempts = append(attempts, attempt{fmt.Sprintf("TLS, 256 MiB (%d)", i), c, huge})
	}
	for i := range 2 {
		c, err := net.Dial("tcp", e.srv.MQTTTCPAddr())
		if err != nil {
			t.Fatal(err)
		}
		attempts = append(attempts, attempt{fmt.Sprintf("TCP, 256 MiB (%d)", i), c, huge})
	}
	c, err := tls.Dial("tcp", e.srv.MQTTAddr(), e.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	attempts = append(attempts, attempt{"TLS, CONNECT limit + 1", c, overLimit})
	// All at once: the header and the start of a body that never ends.
	sent := time.Now()
	for _, a := range attempts {
		a.conn.Write(append(a.header, make([]byte, 1024)...))
	}
	var wg sync.WaitGroup
	for _, a := range attempts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, closed := closedWithin(a.conn, 8*time.Second); !closed || time.Since(sent) > 3*time.Second {
				t.Errorf("%s: closed %v after %s; want closed at once", a.name, closed, time.Since(sent))
			}
		}()
	}
	// The heap while the attackers still hold their connections open
	// (without a GC, so an allocation made and dropped would show).
	time.Sleep(time.Second)
	var during runtime.MemStats
	runtime.ReadMemStats(&during)
	wg.Wait()
	for _, a := range attempts {
		a.conn.Close()
	}
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	grown := int64(during.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d oversized CONNECTs: heap grown by %.1f MB while they were open, %.1f MB allocated in all",
		len(attempts), float64(grown)/1e6, float64(allocated)/1e6)
	if grown > 10<<20 {
		t.Errorf("heap grew by %d MB while refusing %d oversized CONNECTs; want far less than the %d MB announced",
			grown>>20, len(attempts), len(attempts)*256)
	}
	if allocated > 32<<20 {
		t.Errorf("%d MB allocated while refusing %d oversized CONNECTs", allocated>>20, len(attempts))
	}
	if got := e.metricValue(`warden_connections_refused_total{reason="connect_too_large"}`); got != float64(len(attempts)) {
		t.Errorf("refused for a large CONNECT = %v, want %d", got, len(attempts))
	}
	// A device still connects.
	key := e.device("after-huge")
	e.deviceConn("after-huge", key).mustPublish(t, events("after-huge", "%24.mid=1"), `{"temperature": 1}`)
}

func varintBytes(n int) []byte {
	var b []byte
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

// TestMQTTMaximumPacketSize: MQTT 5 clients are told the maximum packet
// size in the CONNACK; a packet under it is taken, one over it closes the
// connection (MQTT 3.1.1 and 5).
func TestMQTTMaximumPacketSize(t *testing.T) {
	t.Parallel()
	const maxPacket = 64 << 10
	e := start(t, func(c *server.Config) { c.MQTTMaxPacketSize = maxPacket })
	key := e.device("big-1")

	conn, err := tls.Dial("tcp", e.srv.MQTTAddr(), e.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	v5 := paho.NewClient(paho.ClientConfig{Conn: conn})
	ack, err := v5.Connect(e.ctx(), &paho.Connect{ClientID: "big-1", KeepAlive: 30, CleanStart: true,
		Username: e.username("big-1"), UsernameFlag: true, Password: []byte(e.token("big-1", key, time.Hour)), PasswordFlag: true})
	if err != nil {
		t.Fatalf("MQTT 5 connect: %v", err)
	}
	if ack.Properties == nil || ack.Properties.MaximumPacketSize == nil || *ack.Properties.MaximumPacketSize != maxPacket {
		t.Fatalf("CONNACK maximum packet size = %+v, want %d", ack.Properties, maxPacket)
	}
	v5.Disconnect(&paho.Disconnect{})

	// 3.1.1: under the maximum is fine; over it, the connection goes.
	m := e.deviceConn("big-1", key)
	under, _ := json.Marshal(map[string]any{"temperature": 1, "note": strings.Repeat("a", maxPacket-1024)})
	if err := m.publish(t, events("big-1", "%24.mid=under"), string(under)); err != nil {
		t.Fatalf("publish under the maximum: %v", err)
	}
	over := `{"temperature": 2, "note": "` + strings.Repeat("a", maxPacket) + `"}`
	m.c.Publish(events("big-1", "%24.mid=over"), 1, false, over)
	m.waitLost(t, "a packet over the maximum")

	// 5, on a raw connection (paho.golang itself refuses to send it).
	d := e.rawConnect("big-1", key)
	// The server may close before it has all of it: the write may fail.
	d.conn.Write(encode(t, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1},
		TopicName: events("big-1", "%24.mid=over2"), PacketID: 1, Payload: []byte(over)}))
	if took, closed := closedWithin(d.conn, 10*time.Second); !closed {
		t.Fatalf("raw publish over the maximum: still open after %s", took)
	}
}

// TestMQTTNonReadingClientDropped: a device that stops reading its socket
// while the server writes to it (direct-method requests here) is dropped
// within the write bound or when its outbox is full, with keep-alive 0,
// instead of blocking its writers for ever.
func TestMQTTNonReadingClientDropped(t *testing.T) {
	t.Parallel()
	const writeTimeout = time.Second
	e := start(t, func(c *server.Config) { c.MQTTWriteTimeout = writeTimeout })
	key := e.device("deaf-1")
	d := e.rawConnect("deaf-1", key)
	d.write(t, encode(t, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: 1,
		Filters: packets.Subscriptions{{Filter: "$iothub/methods/POST/#"}}}))
	if pk := d.read(t); pk.FixedHeader.Type != packets.Suback {
		t.Fatalf("want SUBACK, got type %d", pk.FixedHeader.Type)
	}
	// From now on the device reads nothing. The server writes method
	// requests of 120 KiB until the socket buffers are full.
	payload, _ := json.Marshal(strings.Repeat("x", 120<<10))
	began := time.Now()
	ctx, cancel := context.WithTimeout(e.ctx(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range 80 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.api.InvokeMethod(ctx, "deaf-1", "m"+strconv.Itoa(i), payload, 5*time.Second)
		}()
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		dev, err := e.api.Device(e.ctx(), "deaf-1")
		if err != nil {
			t.Fatal(err)
		}
		if !dev.Connected {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a device that does not read is still connected after 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(began)
	t.Logf("dropped %s after the first write", took.Round(time.Millisecond))
	// Whichever bound is reached first drops it: the write deadline, or the
	// connection's outbox filling up behind the blocked writer.
	timeouts, full := e.metricValue("warden_mqtt_write_timeouts_total"), e.metricValue("warden_clients_dropped_slow_total")
	if timeouts+full < 1 {
		t.Errorf("write timeouts = %v, outbox drops = %v, want at least one drop", timeouts, full)
	}
	wg.Wait()
	// The server closed the socket: after what was buffered, the end.
	if _, closed := closedWithin(d.conn, 10*time.Second); !closed {
		t.Error("the dropped device's socket is still open")
	}
}
