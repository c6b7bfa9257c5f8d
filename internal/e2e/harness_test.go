// Package e2e tests a whole Warden server in-process, on ephemeral ports,
// with real MQTT clients over TLS and the HTTP API.
package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/clock/clocktest"
	"github.com/warden-iot/warden/internal/sas"
	"github.com/warden-iot/warden/internal/server"
	"github.com/warden-iot/warden/internal/server/servertest"
)

const adminToken = "e2e-operator-token"

// env is one running server and a client of it.
type env struct {
	t       *testing.T
	srv     *server.Server
	api     *client.Client
	roots   *x509.CertPool
	hubHost string
	dataDir string
	owners  map[string]*client.Client // by tenant: ownerKey's customer admins
	// clock is the server's clock if the test gave it a fake one
	// (withFakeClock), nil on the wall clock.
	clock *clocktest.Fake
}

type option func(*server.Config)

func withDatabase(url string) option { return func(c *server.Config) { c.Database = url } }

// withWebhooksInside lets webhooks reach test receivers on 127.0.0.1.
func withWebhooksInside() option { return func(c *server.Config) { c.WebhookAllowPrivate = true } }

// withFakeClock runs the server on a fake clock that starts at the wall
// clock's time and moves only when the test advances it (env.clock), so a
// test makes tokens, grants and messages expire without waiting. The
// server's tickers (alarm ticks, notifier polls, presence flushes) stand
// still with it.
func withFakeClock() option {
	return func(c *server.Config) { c.Clock = clocktest.New(time.Now()) }
}

func withPlainMQTT() option { return func(c *server.Config) { c.MQTTTCPListen = "127.0.0.1:0" } }

func start(t *testing.T, opts ...option) *env {
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
	return startWith(t, cfg)
}

func startWith(t *testing.T, cfg server.Config) *env {
	t.Helper()
	level := slog.LevelWarn
	if os.Getenv("WARDEN_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	srv, api := servertest.Start(t, cfg, log)
	roots, err := client.LoadCA(srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	// The MQTT port is ephemeral, so the hub host name carries it.
	_, port, _ := net.SplitHostPort(srv.MQTTAddr())
	if want := "localhost:" + port; srv.HubHost() != want {
		t.Fatalf("hub host = %q, want %q", srv.HubHost(), want)
	}
	fake, _ := cfg.Clock.(*clocktest.Fake)
	return &env{t: t, srv: srv, api: api, roots: roots, hubHost: srv.HubHost(), dataDir: cfg.DataDir, clock: fake}
}

func (e *env) ctx() context.Context { return e.t.Context() }

// customerAdmin is an administrator of a customer's tenant, made by the
// operator (the tenant's onboarding) the first time it is asked for. Once
// it exists the tenant's accounts are the customer's: make further ones
// through it.
func (e *env) customerAdmin(tenantID string) *client.Client {
	e.t.Helper()
	if e.owners == nil {
		e.owners = map[string]*client.Client{}
	}
	owner, ok := e.owners[tenantID]
	if !ok {
		owner = signUp(e.t, e, e.api, tenantID, "customer-admin", "keys@"+strings.ToLower(tenantID)+".example").bearer
		e.owners[tenantID] = owner
	}
	return owner
}

// ownerKey returns the primary key of a device in a customer's tenant, read
// by a customer admin of that tenant: operator staff never see the keys
// of a customer's machine.
func (e *env) ownerKey(tenantID, deviceID string) []byte {
	e.t.Helper()
	if tenantID == "root" {
		d, err := e.api.Device(e.ctx(), deviceID)
		if err != nil {
			e.t.Fatalf("device %s: %v", deviceID, err)
		}
		key, _ := base64.StdEncoding.DecodeString(d.PrimaryKey)
		return key
	}
	d, err := e.customerAdmin(tenantID).Device(e.ctx(), deviceID)
	if err != nil {
		e.t.Fatalf("device %s read by its owner: %v", deviceID, err)
	}
	key, err := base64.StdEncoding.DecodeString(d.PrimaryKey)
	if err != nil || len(key) != 32 {
		e.t.Fatalf("device %s: the owner's view has no primary key (%q)", deviceID, d.PrimaryKey)
	}
	return key
}

// device registers a device and returns its primary key.
func (e *env) device(id string) []byte {
	e.t.Helper()
	d, err := e.api.CreateDevice(e.ctx(), id)
	if err != nil {
		e.t.Fatalf("create device %s: %v", id, err)
	}
	cs, err := sas.ParseConnectionString(d.ConnectionString)
	if err != nil {
		e.t.Fatalf("connection string %q: %v", d.ConnectionString, err)
	}
	if cs.HostName != e.hubHost || cs.DeviceID != id {
		e.t.Fatalf("connection string %q: want host %s and device %s", d.ConnectionString, e.hubHost, id)
	}
	key, _ := base64.StdEncoding.DecodeString(d.PrimaryKey)
	if string(key) != string(cs.SharedAccessKey) || len(key) != 32 {
		e.t.Fatalf("connection string key is not the 256-bit primary key")
	}
	return key
}

func (e *env) token(id string, key []byte, ttl time.Duration) string {
	return sas.Sign(key, sas.DeviceResource(e.hubHost, id), e.now().Add(ttl))
}

// now is the server's time: its fake clock's, or the wall clock's.
func (e *env) now() time.Time {
	if e.clock != nil {
		return e.clock.Now()
	}
	return time.Now()
}

func (e *env) username(id string) string {
	return e.hubHost + "/" + id + "/?api-version=2021-04-12&DeviceClientType=e2e"
}

func (e *env) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: e.roots, ServerName: "localhost", MinVersion: tls.VersionTLS12}
}

// mqtt311 is a device connection with the Eclipse Paho 3.1.1 client.
type mqtt311 struct {
	c    pahomqtt.Client
	lost chan error
}

// connect311 connects as clientID with the given user name and password and
// returns the connection and the CONNACK return code.
func (e *env) connect311(clientID, username, password string) (*mqtt311, byte, error) {
	e.t.Helper()
	lost := make(chan error, 1)
	opts := pahomqtt.NewClientOptions().
		AddBroker("tls://" + e.srv.MQTTAddr()).
		SetClientID(clientID).
		SetUsername(username).
		SetPassword(password).
		SetTLSConfig(e.tlsConfig()).
		SetProtocolVersion(4).
		SetCleanSession(false).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(5 * time.Second).
		SetConnectionLostHandler(func(_ pahomqtt.Client, err error) {
			select {
			case lost <- err:
			default:
			}
		})
	c := pahomqtt.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, 0, fmt.Errorf("connect timed out")
	}
	rc := tok.(*pahomqtt.ConnectToken).ReturnCode()
	if err := tok.Error(); err != nil {
		return nil, rc, err
	}
	m := &mqtt311{c: c, lost: lost}
	e.t.Cleanup(func() { c.Disconnect(100) })
	return m, rc, nil
}

// deviceConn connects a registered device properly.
func (e *env) deviceConn(id string, key []byte) *mqtt311 {
	e.t.Helper()
	m, rc, err := e.connect311(id, e.username(id), e.token(id, key, time.Hour))
	if err != nil {
		e.t.Fatalf("device %s connect: rc %d, %v", id, rc, err)
	}
	return m
}

// publish sends at QoS 1 and waits for the PUBACK.
func (m *mqtt311) publish(t *testing.T, topic string, body string) error {
	t.Helper()
	tok := m.c.Publish(topic, 1, false, body)
	if !tok.WaitTimeout(10 * time.Second) {
		return fmt.Errorf("no PUBACK for %s within 10s", topic)
	}
	return tok.Error()
}

func (m *mqtt311) mustPublish(t *testing.T, topic, body string) {
	t.Helper()
	if err := m.publish(t, topic, body); err != nil {
		t.Fatalf("publish %s: %v", topic, err)
	}
}

// waitLost waits for the server to close the connection.
func (m *mqtt311) waitLost(t *testing.T, what string) {
	t.Helper()
	select {
	case <-m.lost:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: connection still open after 10s", what)
	}
}

func (m *mqtt311) stillUp(t *testing.T) {
	t.Helper()
	select {
	case err := <-m.lost:
		t.Fatalf("connection lost: %v", err)
	default:
	}
	if !m.c.IsConnectionOpen() {
		t.Fatal("connection closed")
	}
}

func events(id, bag string) string { return "devices/" + id + "/messages/events/" + bag }

// metricValue reads one sample of the server's Prometheus text.
func (e *env) metricValue(name string) float64 {
	e.t.Helper()
	text, err := e.api.Metrics(e.ctx())
	if err != nil {
		e.t.Fatal(err)
	}
	for line := range strings.SplitSeq(text, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	e.t.Fatalf("metric %s not in /metrics", name)
	return 0
}

func tlsFor(roots *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: roots, ServerName: "localhost", MinVersion: tls.VersionTLS12}
}

// insecureTLS is for health polling only, before the CA file is read.
func insecureTLS() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true} //nolint:gosec // health probe of a local child process
}
