// Package broker is Warden's device endpoint: an embedded MQTT 3.1.1/5 broker
// (mochi-mqtt) whose hooks authenticate devices with Azure IoT Hub SAS
// tokens, confine each device to its own topics, and hand telemetry to the
// ingest pipeline.
package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-iot/warden/internal/clock"
	"github.com/warden-iot/warden/internal/factory"
	"github.com/warden-iot/warden/internal/hub"
	"github.com/warden-iot/warden/internal/ingest"
	"github.com/warden-iot/warden/internal/provision"
	"github.com/warden-iot/warden/internal/registry"
)

// Config says where the broker listens.
type Config struct {
	TLSListen string      // MQTT over TLS, e.g. ":8883"; empty: off
	TCPListen string      // plain MQTT, e.g. ":1883"; empty: off
	TLS       *tls.Config // required with TLSListen
	// TLSListener and TCPListener, if set, are sockets already bound to
	// TLSListen and TCPListen (so that a server finds a taken port before
	// it does anything else); the broker serves on them and closes them.
	TLSListener net.Listener
	TCPListener net.Listener
	// PresenceFlush is how often last-seen times are written to the store.
	PresenceFlush time.Duration
	// MaxConnections caps the open MQTT connections of this node (TLS,
	// TCP and WebSocket), authenticated or not; beyond it a connection is
	// closed at once. 0: DefaultMaxConnections of the open-file limit.
	MaxConnections int
	// ConnectTimeout is the time from accept to a complete CONNECT, TLS
	// handshake included; then the client's keep-alive applies.
	// 0: DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// WriteTimeout bounds each write to a client; a client that does not
	// take its bytes within it is dropped. 0: DefaultWriteTimeout.
	WriteTimeout time.Duration
	// MaxPacketSize is the largest MQTT packet accepted, in bytes; a larger
	// one closes the connection. MQTT 5 clients are told it in the
	// CONNACK. 0: DefaultMaxPacketSize.
	MaxPacketSize int
}

// Devices is what the broker needs of the device registry: a device to
// authenticate a connection, and a place for the devices' last activity.
type Devices interface {
	GetDevice(ctx context.Context, id string) (registry.Device, error)
	TouchDevices(ctx context.Context, seen []registry.DeviceSeen) error
}

// Store is what the broker reads and keeps: devices, their IoT Hub state
// (twins, cloud-to-device messages, model ids, sessions) and the device
// provisioning service's enrollments and registrations.
type Store interface {
	Devices
	hub.Store
	provision.Store
}

// Broker is the running device endpoint.
type Broker struct {
	cfg    Config
	mqtt   *mqtt.Server
	store  Store
	ingest *ingest.Pipeline
	log    *slog.Logger
	clock  clock.Clock

	mu       sync.Mutex
	sessions map[string]*session // by device id: live connections
	seen     map[string]presence // by device id: activity not yet written to the store

	hubHost  string               // set by SetHubHost once the listener is bound
	hubNames []string             // host names (no port) SAS tokens may be for: SetHubHost
	presence func(PresenceEvent)  // set by OnPresence before Start
	ws       *wsListener          // MQTT over WebSocket on the HTTPS server: websocket.go
	limits   *connLimits          // the connection cap and bounds: limits.go
	lns      []*listener          // the TLS and TCP listeners: listener.go
	hub      *hubState            // twins, methods, C2D: hub.go
	dps      *dpsState            // provisioning: dps.go
	staff    *factory.Credentials // set by SetStaffCredentials before Start: staff.go
	// staffMu orders staff connections and RecheckStaff: a connection
	// holds it (read) from its check until its session is attached.
	staffMu sync.RWMutex

	outMu    sync.Mutex
	outboxes map[*mqtt.Client]*outbox // what is being written to each client: outbox.go

	refused     *prometheus.CounterVec
	slowClients prometheus.Counter
	started     bool // Start succeeded; set before any concurrent use
	stop        chan struct{}
	done        chan struct{}
}

// session is one authenticated device connection.
type session struct {
	// registration is set for a provisioning (DPS) client: it is not a
	// device yet, only a registration id in a tenant (dps.go).
	registration string
	client       *mqtt.Client
	tenantID     string
	ip           string
	since        time.Time
	expiry       clock.Timer // closes the connection when its SAS token expires
	// pending holds a token for each telemetry message of this connection
	// in the ingest pipeline: telemetry.go.
	pending chan struct{}
	// staff is the id of the staff credential the device connected with
	// (staff.go), "" for the device's own.
	staff string
}

type presence struct {
	at time.Time
	ip string
}

// New builds a broker on clk (nil: the wall clock); Start opens its
// listeners.
func New(cfg Config, st Store, p *ingest.Pipeline, reg prometheus.Registerer, log *slog.Logger, clk clock.Clock) (*Broker, error) {
	if cfg.TLSListen != "" && cfg.TLS == nil {
		return nil, errors.New("broker: TLS listener configured without a certificate")
	}
	if cfg.PresenceFlush <= 0 {
		cfg.PresenceFlush = 15 * time.Second
	}
	if nofile := openFileLimit(); cfg.MaxConnections <= 0 {
		cfg.MaxConnections = DefaultMaxConnections(nofile)
	} else if uint64(cfg.MaxConnections) >= nofile {
		log.Warn("the MQTT connection cap is not below the open-file limit: the process may run out of file descriptors first",
			"max_connections", cfg.MaxConnections, "open_file_limit", nofile)
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.MaxPacketSize <= 0 {
		cfg.MaxPacketSize = DefaultMaxPacketSize
	}
	if cfg.MaxPacketSize > maxMQTTPacketSize {
		return nil, fmt.Errorf("broker: maximum packet size %d is larger than MQTT allows (%d)", cfg.MaxPacketSize, maxMQTTPacketSize)
	}
	if cfg.MaxPacketSize < minMaxPacketSize {
		return nil, fmt.Errorf("broker: maximum packet size %d is too small for devices (at least %d)", cfg.MaxPacketSize, minMaxPacketSize)
	}
	b := &Broker{
		cfg: cfg, store: st, ingest: p, log: log, clock: clock.OrReal(clk),
		sessions: map[string]*session{},
		seen:     map[string]presence{},
		outboxes: map[*mqtt.Client]*outbox{},
		slowClients: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_clients_dropped_slow_total", Help: "Connections closed because they did not read what was sent to them."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_connections_refused_total", Help: "Device connections refused, by reason."}, []string{"reason"}),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	b.limits = newConnLimits(cfg, b.refused, log)
	b.hub = newHubState(b)
	b.dps = newDPSState(b)
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumQos = 1           // as IoT Hub: no QoS 2
	caps.RetainAvailable = 0      // devices do not retain
	caps.WildcardSubAvailable = 1 // devices subscribe to their own .../# filters
	caps.MaximumPacketSize = uint32(cfg.MaxPacketSize)
	caps.MaximumClientWritesPending = maxPendingWrites
	caps.TopicAliasMaximum = maxTopicAlias
	b.mqtt = mqtt.New(&mqtt.Options{
		Capabilities: caps,
		// mochi logs every hook at info and every client error at warn, with
		// whole packets (payloads included): keep only its errors. Warden's
		// hooks log refusals themselves, without payloads.
		Logger: slog.New(minLevel{log.With("component", "mqtt").Handler(), slog.LevelError}),
	})
	for _, h := range []mqtt.Hook{&protocolHook{b: b, maxPacket: uint32(cfg.MaxPacketSize), byClient: map[*mqtt.Client]*topicAliases{}}, &authHook{b: b}, &aclHook{b: b}, &dpsHook{b: b}, &telemetryHook{b: b}, &presenceHook{b: b}, &hubHook{b: b}, &outboxHook{b: b}} {
		if err := b.mqtt.AddHook(h, nil); err != nil {
			return nil, fmt.Errorf("broker: add hook: %w", err)
		}
	}
	if reg != nil {
		reg.MustRegister(b.refused, b.slowClients, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "warden_devices_connected", Help: "Devices connected now."},
			func() float64 { return float64(b.ConnectedCount()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "warden_mqtt_connections_open",
				Help: "Open MQTT connections (TLS, TCP, WebSocket), authenticated or not; refused beyond warden_mqtt_connections_max."},
				func() float64 { return float64(b.limits.open.Load()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "warden_mqtt_connections_max", Help: "The node's MQTT connection cap."},
				func() float64 { return float64(b.limits.max) }),
			b.limits.writeTimeouts)
	}
	return b, nil
}

// SetHubHost tells the broker the host name devices use (host[:port]), for
// what it hands out, such as the assigned hub of a provisioned device, and
// the names a device's SAS token may be signed for: that host and the
// aliases (other names devices dial). The port of a token's host is not
// compared: a server behind a port mapping is dialled on another port than
// the one it binds. Call it before devices connect.
func (b *Broker) SetHubHost(host string, aliases ...string) {
	b.hubHost = host
	b.hubNames = nil
	for _, h := range append([]string{host}, aliases...) {
		if h = hostOnly(h); h != "" {
			b.hubNames = append(b.hubNames, h)
		}
	}
}

// isHubName reports whether host (host[:port]) names this hub.
func (b *Broker) isHubName(host string) bool {
	host = hostOnly(host)
	for _, n := range b.hubNames {
		if strings.EqualFold(n, host) {
			return true
		}
	}
	return false
}

// hostOnly drops the port of "host:port" or "[v6]:port", and the brackets
// of "[v6]".
func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
}

// Start opens the listeners and begins serving.
func (b *Broker) Start() error {
	if b.cfg.TLSListen != "" {
		l := newListener("tls", b.cfg.TLSListen, b.cfg.TLS, b.limits, b.log)
		l.ln = b.cfg.TLSListener
		if err := b.mqtt.AddListener(l); err != nil {
			return fmt.Errorf("broker: listen on %s (TLS): %w", b.cfg.TLSListen, err)
		}
		b.lns = append(b.lns, l)
	}
	if b.cfg.TCPListen != "" {
		l := newListener("tcp", b.cfg.TCPListen, nil, b.limits, b.log)
		l.ln = b.cfg.TCPListener
		if err := b.mqtt.AddListener(l); err != nil {
			return fmt.Errorf("broker: listen on %s: %w", b.cfg.TCPListen, err)
		}
		b.lns = append(b.lns, l)
	}
	b.ws = newWSListener(b.log, b.limits)
	if err := b.mqtt.AddListener(b.ws); err != nil {
		return fmt.Errorf("broker: websocket endpoint: %w", err)
	}
	if err := b.mqtt.Serve(); err != nil {
		return fmt.Errorf("broker: serve: %w", err)
	}
	b.started = true
	go b.flushPresenceLoop()
	b.log.Info("MQTT limits", "max_connections", b.cfg.MaxConnections, "connect_timeout", b.cfg.ConnectTimeout,
		"write_timeout", b.cfg.WriteTimeout, "max_packet_size", b.cfg.MaxPacketSize)
	return nil
}

// Health is nil while every MQTT listener accepts connections, or says
// which does not and why.
func (b *Broker) Health() error {
	var errs []error
	for _, l := range b.lns {
		if err := l.Health(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// WebSocketHandler serves MQTT over WebSocket; mount it at WebSocketPath on
// the HTTPS server. It answers 503 until Start.
func (b *Broker) WebSocketHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b.ws == nil {
			http.Error(w, "MQTT over WebSocket is not available", http.StatusServiceUnavailable)
			return
		}
		b.ws.ServeHTTP(w, r)
	})
}

// Addr returns the bound address of a listener ("tls" or "tcp"), or "" if it
// is not open. Useful with port 0.
func (b *Broker) Addr(listener string) string {
	l, ok := b.mqtt.Listeners.Get(listener)
	if !ok {
		return ""
	}
	return l.Address()
}

// Close disconnects every device, stops listening and writes out presence.
func (b *Broker) Close() error {
	close(b.stop)
	err := b.mqtt.Close()
	if b.started { // the presence loop runs only after a successful Start
		<-b.done
	}
	return err
}

// Connected reports whether a device has a live connection.
func (b *Broker) Connected(deviceID string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.sessions[deviceID]
	return ok
}

// ConnectedCount is the number of live device connections.
func (b *Broker) ConnectedCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.sessions)
}

// LastSeen returns activity of a device newer than what the store holds, if
// any.
func (b *Broker) LastSeen(deviceID string) (time.Time, string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p, ok := b.seen[deviceID]; ok {
		return p.at, p.ip, true
	}
	if s, ok := b.sessions[deviceID]; ok {
		return s.since, s.ip, true
	}
	return time.Time{}, "", false
}

// Disconnect closes a device's connection, if it has one: used when a device
// is disabled, deleted or gets new keys.
func (b *Broker) Disconnect(deviceID string) {
	b.mu.Lock()
	s, ok := b.sessions[deviceID]
	b.mu.Unlock()
	if ok {
		s.client.Stop(errDeviceRevoked)
	}
}

var (
	errDeviceRevoked = errors.New("device disabled, deleted or re-keyed")
	errTokenExpired  = errors.New("SAS token expired")
)

// PresenceEvent says a device connected or disconnected.
type PresenceEvent struct {
	TenantID  string
	DeviceID  string
	Connected bool
	At        time.Time
}

// OnPresence registers f to be told of every device connection and
// disconnection (the alarm monitor's offline rules). Call it before
// Start; f must not block.
func (b *Broker) OnPresence(f func(PresenceEvent)) { b.presence = f }

func (b *Broker) attach(cl *mqtt.Client, d registry.Device, expiry time.Time, staff string) {
	s := &session{client: cl, tenantID: d.TenantID, ip: remoteIP(cl.Net.Remote), since: b.now(), staff: staff,
		pending: make(chan struct{}, maxPendingPerConn)}
	s.expiry = b.clock.AfterFunc(expiry.Sub(b.now()), func() {
		b.log.Info("closing connection: SAS token expired", "device", d.ID)
		cl.Stop(errTokenExpired)
	})
	b.mu.Lock()
	if old, ok := b.sessions[d.ID]; ok {
		old.expiry.Stop()
	}
	b.sessions[d.ID] = s
	b.seen[d.ID] = presence{at: s.since, ip: s.ip}
	b.mu.Unlock()
	if b.presence != nil {
		b.presence(PresenceEvent{TenantID: d.TenantID, DeviceID: d.ID, Connected: true, At: s.since})
	}
}

func (b *Broker) detach(cl *mqtt.Client) {
	b.mu.Lock()
	s, ok := b.sessions[cl.ID]
	if !ok || s.client != cl { // taken over by a newer connection
		b.mu.Unlock()
		return
	}
	s.expiry.Stop()
	delete(b.sessions, cl.ID)
	at := b.now()
	b.seen[cl.ID] = presence{at: at, ip: s.ip}
	b.mu.Unlock()
	if b.presence != nil && s.registration == "" {
		b.presence(PresenceEvent{TenantID: s.tenantID, DeviceID: cl.ID, Connected: false, At: at})
	}
}

func (b *Broker) session(cl *mqtt.Client) (*session, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.sessions[cl.ID]
	if !ok || s.client != cl {
		return nil, false
	}
	return s, true
}

// now is the broker's clock's time.
func (b *Broker) now() time.Time { return b.clock.Now() }

func (b *Broker) touch(deviceID, ip string) {
	b.mu.Lock()
	b.seen[deviceID] = presence{at: b.now(), ip: ip}
	b.mu.Unlock()
}

func (b *Broker) flushPresenceLoop() {
	defer close(b.done)
	t := b.clock.NewTicker(b.cfg.PresenceFlush)
	defer t.Stop()
	for {
		select {
		case <-t.C():
			b.flushPresence()
		case <-b.stop:
			b.flushPresence()
			return
		}
	}
}

func (b *Broker) flushPresence() {
	b.mu.Lock()
	seen := b.seen
	b.seen = map[string]presence{}
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	batch := make([]registry.DeviceSeen, 0, len(seen))
	for id, p := range seen {
		batch = append(batch, registry.DeviceSeen{ID: id, At: p.at, IP: p.ip})
	}
	if err := b.store.TouchDevices(ctx, batch); err != nil {
		b.log.Warn("record last seen", "devices", len(batch), "err", err)
	}
}

func remoteIP(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

// minLevel drops records below a level.
type minLevel struct {
	slog.Handler
	level slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.level}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.level}
}
