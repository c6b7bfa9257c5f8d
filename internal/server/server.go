// Package server assembles a running Warden from its parts: storage, the
// certificate authority, the ingest pipeline, the MQTT device endpoint and
// the HTTPS API. cmd/warden's serve command and the end-to-end tests both
// use it.
package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/api"
	"github.com/warden-iot/warden/internal/audit"
	"github.com/warden-iot/warden/internal/broker"
	"github.com/warden-iot/warden/internal/clock"
	"github.com/warden-iot/warden/internal/commitlog"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/event"
	"github.com/warden-iot/warden/internal/factory"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/ingest"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/mail"
	"github.com/warden-iot/warden/internal/monitor"
	"github.com/warden-iot/warden/internal/msglog"
	"github.com/warden-iot/warden/internal/notify"
	"github.com/warden-iot/warden/internal/pki"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/postgres"
	"github.com/warden-iot/warden/internal/store/sqlite"
	"github.com/warden-iot/warden/internal/tenancy"
	"github.com/warden-iot/warden/internal/tsdb"
)

// Config is everything `warden serve` can be told.
type Config struct {
	DataDir       string   // certificates, master key, SQLite file
	MQTTListen    string   // MQTT over TLS; "" turns it off
	MQTTTCPListen string   // plain MQTT; "" (the default) turns it off
	HTTPListen    string   // HTTPS API
	Hostnames     []string // names devices dial; the first is the hub host name
	// Database is "" or "sqlite" for <DataDir>/warden.db, "sqlite:<path>",
	// or a postgres:// URL.
	Database string
	// AdminToken, if set when the server starts for the first time,
	// becomes the operator API token instead of a generated one.
	AdminToken string
	// DedupWindow is how long message ids are remembered.
	DedupWindow time.Duration
	// MasterKey (base64) wraps the tenants' data keys; if empty, the key
	// is read from MasterKeyFile. A MasterKeyFile that is set must exist;
	// the default, <DataDir>/master.key, is created on first start (while
	// the database has no data keys wrapped with another master key).
	MasterKey     string
	MasterKeyFile string
	// MaxMessageSize is the largest telemetry payload stored, in bytes; a
	// larger one is kept as rejected, with its size, hash and first KiB
	// (0: ingest.DefaultMaxPayload, 256 KiB as IoT Hub).
	MaxMessageSize int
	// Engine tunes the telemetry engine (zero values: defaults).
	Engine tsdb.Config
	// DebugListen, if set, serves Go's profiles at /debug/pprof/ (plain
	// HTTP: bind it to loopback).
	DebugListen string
	// PublicURL is where people reach the HTTPS API and pages (links in
	// account e-mails point there); default https://<first hostname>:<port>.
	PublicURL string
	// SMTP sends account e-mails; without a host, activation links are
	// handed to the admin who creates an account.
	SMTP mail.Config
	// WebhookAllowPrivate lets alarm webhooks reach loopback and private
	// addresses; off (the default), a tenant's webhook reaches only public
	// addresses, never the operator's own network.
	WebhookAllowPrivate bool
	// TrustedProxies are reverse proxies in front of the HTTPS API whose
	// X-Forwarded-For header names the client.
	TrustedProxies []netip.Prefix

	// MQTT connection limits (zero values: the broker's defaults): a
	// per-node cap on open connections, authenticated or not (default from
	// the open-file limit), the time from accept to CONNECT (TLS handshake
	// included), the bound on each write to a client, and the largest
	// packet accepted.
	MQTTMaxConnections int
	MQTTConnectTimeout time.Duration
	MQTTWriteTimeout   time.Duration
	MQTTMaxPacketSize  int

	// Out receives the one-time operator token banner.
	Out io.Writer
	// Clock is the time every part of the server reads and runs its timers
	// and tickers on; nil is the wall clock (clock.Real). Tests pass a
	// clocktest.Fake to make time pass without waiting.
	Clock clock.Clock
}

// DefaultDedupWindow keeps message ids a little longer than the 7 days
// devices are promised.
const DefaultDedupWindow = 8 * 24 * time.Hour

// Server is a running Warden.
type Server struct {
	cfg       Config
	log       *slog.Logger
	store     store.Store
	pki       *pki.Result
	keys      *keyring.Keyring
	engine    *tsdb.Engine
	pipeline  *ingest.Pipeline
	commitLog *commitlog.Log
	started   atomic.Bool // Start is done: /healthz answers OK from then on
	monitor   *monitor.Monitor
	notifier  *notify.Notifier
	mailer    *mail.Sender // nil without --smtp-url
	publicURL string
	broker    *broker.Broker
	http      *http.Server
	httpLn    net.Listener
	hubHost   string
	reg       *prometheus.Registry
	debug     *http.Server
	debugLn   net.Listener
	// The MQTT sockets, bound in New and served by the broker from Start.
	mqttTLSLn net.Listener
	mqttTCPLn net.Listener
	lock      *dirLock // the data directory's, from New to Shutdown
	// operator is the operator token to make once the server runs, when
	// none was made on an earlier start.
	operator *operatorToken

	// What Start got to, for Shutdown.
	serving         bool // the HTTPS server runs
	pipelineRunning bool
	cancel          context.CancelFunc
	wg              sync.WaitGroup
}

// operatorToken is the first start's operator token, made in New and
// stored and shown by Start once the server runs.
type operatorToken struct {
	secret    string
	generated bool // shown to the operator; otherwise it is Config.AdminToken
}

// New locks the data directory and binds every listener before anything
// else, so that a directory in use or a port taken is reported before
// anything is made; then it makes or loads certificates, opens storage and
// wires the parts. Start serves. If New fails, it leaves nothing open;
// if it succeeds, Shutdown releases what it holds, whether Start ran or not.
func New(ctx context.Context, cfg Config, log *slog.Logger) (_ *Server, err error) {
	if cfg.DataDir == "" {
		return nil, errors.New("data directory not set")
	}
	if cfg.DedupWindow <= 0 {
		cfg.DedupWindow = DefaultDedupWindow
	}
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	cfg.Clock = clock.OrReal(cfg.Clock)
	if cfg.SMTP.Enabled() {
		if err := cfg.SMTP.Validate(); err != nil {
			return nil, fmt.Errorf("smtp: %w", err)
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	s := &Server{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			s.release()
		}
	}()
	if s.lock, err = lockDataDir(cfg.DataDir, time.Now()); err != nil {
		return nil, err
	}
	if !lockSupported {
		log.Warn("this system has no file lock Warden uses: make sure no other server uses this data directory", "data_dir", cfg.DataDir)
	}
	if err := s.listen(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start-up interrupted: %w", err)
	}

	if s.pki, err = pki.Ensure(cfg.DataDir, cfg.Hostnames, time.Now()); err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	if s.pki.CreatedCA {
		log.Info("created a certificate authority; give devices its certificate", "ca", s.pki.Files.CA)
	}
	if s.pki.IssuedServerCert {
		log.Info("issued a server certificate", "cert", s.pki.Files.Cert, "reason", s.pki.Reason)
	}

	if s.store, err = openStore(ctx, cfg); err != nil {
		return nil, err
	}
	if err := s.store.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("migrate database: %w", err)
	}
	if s.operator, err = s.pendingOperatorToken(ctx); err != nil {
		return nil, err
	}
	master, err := loadMaster(ctx, cfg, s.store, log)
	if err != nil {
		return nil, err
	}
	if s.keys, err = keyring.New(ctx, master, s.store, cfg.Clock.Now); err != nil {
		return nil, err
	}
	// Machine data is stored sealed with its tenant's key; rows written
	// before that are sealed now, before anything reads them.
	s.store.SetSealer(s.keys)
	if n, err := s.store.SealPlaintext(ctx); err != nil {
		return nil, fmt.Errorf("seal stored machine data: %w", err)
	} else if n > 0 {
		log.Info("sealed machine data stored before encryption", "rows", n)
	}
	s.engine = tsdb.New(cfg.Engine, s.store, s.keys, log.With("component", "tsdb"), cfg.Clock)
	// Rejected messages kept before their payload was cut to a prefix and
	// their topic and reason sealed are rewritten too; the compaction in
	// Start removes the old bytes.
	if n, err := s.engine.UpgradeRejected(ctx); err != nil {
		return nil, fmt.Errorf("upgrade stored rejected messages: %w", err)
	} else if n > 0 {
		log.Info("rewrote rejected messages stored whole or with topic and reason in clear", "rows", n)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	if cfg.SMTP.Enabled() {
		s.mailer = mail.New(cfg.SMTP, log.With("component", "mail"))
	}
	// What the group commit made durable, and connection changes, go to
	// the message log after the devices were acknowledged; the alarm
	// runtime reads it partitioned by device.
	msgs := msglog.NewMemory(msglog.MemoryConfig{Consumers: []string{monitor.Consumer}})
	s.monitor = monitor.New(s.store, monitor.Config{Log: msgs}, s.onAlarm, log.With("component", "monitor"), cfg.Clock)
	// Accepted messages are acknowledged once they are in the commit log
	// on this node's disk; the pipeline applies the log to the database
	// behind the acknowledgements (and replays it after a crash).
	if s.commitLog, err = openCommitLog(filepath.Join(cfg.DataDir, "log"), log.With("component", "commitlog")); err != nil {
		return nil, err
	}
	s.pipeline = ingest.New(s.engine, ingest.Config{
		CommitLog: s.commitLog, LogID: s.commitLog.ID(), Keys: s.keys, MaxPayload: cfg.MaxMessageSize, Log: msgs,
	}, ingest.NewMetrics(reg), log.With("component", "ingest"), cfg.Clock)
	s.broker, err = broker.New(broker.Config{
		TLSListen:      cfg.MQTTListen,
		TCPListen:      cfg.MQTTTCPListen,
		TLSListener:    s.mqttTLSLn,
		TCPListener:    s.mqttTCPLn,
		TLS:            s.pki.TLSConfig(),
		MaxConnections: cfg.MQTTMaxConnections,
		ConnectTimeout: cfg.MQTTConnectTimeout,
		WriteTimeout:   cfg.MQTTWriteTimeout,
		MaxPacketSize:  cfg.MQTTMaxPacketSize,
	}, s.store, s.pipeline, reg, log.With("component", "broker"), cfg.Clock)
	if err != nil {
		return nil, err
	}
	s.broker.OnPresence(func(ev broker.PresenceEvent) {
		// Through the pipeline, behind the device's messages.
		if err := s.pipeline.Presence(context.Background(), ev.TenantID, ev.DeviceID, ev.Connected, ev.At); err != nil {
			log.Warn("connection change not evaluated", "device", ev.DeviceID, "connected", ev.Connected, "err", err)
		}
	})
	s.reg = reg
	s.http = &http.Server{
		TLSConfig:         s.pki.TLSConfig(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.With("component", "http").Handler(), slog.LevelDebug),
	}
	return s, nil
}

// openCommitLog opens the commit log in dir and reports what its recovery
// found.
func openCommitLog(dir string, log *slog.Logger) (*commitlog.Log, error) {
	l, err := commitlog.Open(dir, commitlog.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	if rec := l.Recovery(); rec.TornBytes > 0 || rec.Lost > 0 {
		log.Warn("commit log recovered", "records", rec.Records, "torn_bytes", rec.TornBytes, "lost_records", rec.Lost, "damaged_files", rec.Damaged)
	}
	return l, nil
}

// loadMaster finds the master key (see Config.MasterKey). It makes a new
// key only at the default place and only for a database without data keys:
// a key file that is configured but missing (a secret not mounted, a typo)
// or a lost default file is refused, since a new key would leave everything
// sealed unreadable.
func loadMaster(ctx context.Context, cfg Config, st store.Store, log *slog.Logger) ([]byte, error) {
	file, create := cfg.MasterKeyFile, false
	if file == "" {
		file = filepath.Join(cfg.DataDir, "master.key")
		inUse, err := keyring.InUse(ctx, st)
		if err != nil {
			return nil, err
		}
		create = !inUse
	}
	master, created, err := keyring.LoadMaster(cfg.MasterKey, file, create)
	switch {
	case errors.Is(err, os.ErrNotExist) && cfg.MasterKeyFile != "":
		return nil, fmt.Errorf("the master key file %s (--master-key-file) does not exist: Warden does not make one there; "+
			"mount or restore it, or make a new key for a new installation: (umask 077; openssl rand -base64 32 > %s)", file, file)
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("the master key file %s does not exist, but the database's data keys were made with a master key: "+
			"restore the file, or point --master-key-file or WARDEN_MASTER_KEY at the key; a new key would leave all encrypted data unreadable", file)
	case err != nil:
		return nil, err
	}
	if created {
		log.Info("created the master key; keep it apart from the database and its backups", "file", file)
	}
	if cfg.MasterKey == "" && inDir(file, cfg.DataDir) {
		log.Warn("the master key is in the data directory, next to the database: in production keep it apart from the database "+
			"and its backups (--master-key-file or WARDEN_MASTER_KEY; see docs/storage.md)", "file", file)
	}
	return master, nil
}

// inDir says whether file lies in dir or below it.
func inDir(file, dir string) bool {
	f, err1 := filepath.Abs(file)
	d, err2 := filepath.Abs(dir)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(d, f)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func openStore(ctx context.Context, cfg Config) (store.Store, error) {
	switch db := cfg.Database; {
	case strings.HasPrefix(db, "postgres://"), strings.HasPrefix(db, "postgresql://"):
		st, err := postgres.Open(ctx, db)
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL: %w", err)
		}
		return st, nil
	case db == "" || db == "sqlite" || strings.HasPrefix(db, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(db, "sqlite"), ":")
		if path == "" {
			path = filepath.Join(cfg.DataDir, "warden.db")
		}
		st, err := sqlite.Open(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("open SQLite: %w", err)
		}
		return st, nil
	default:
		return nil, fmt.Errorf("database %q: want a postgres:// URL, sqlite or sqlite:<path>", redact(db))
	}
}

// redact hides what may be a password in a database URL.
func redact(db string) string {
	if i := strings.Index(db, "@"); i >= 0 {
		return "…" + db[i:]
	}
	return db
}

// hubHost is the host name devices put in user names and SAS tokens: the
// first configured host name, with the bound MQTT TLS port when it is not
// MQTT's 8883.
func hubHost(hostnames []string, mqttAddr string) string {
	host := "localhost"
	if len(hostnames) > 0 && hostnames[0] != "" {
		host = hostnames[0]
	}
	if _, port, err := net.SplitHostPort(mqttAddr); err == nil && port != "8883" {
		return net.JoinHostPort(host, port)
	}
	return host
}

// ListenError is a listener that could not be opened: the flag that sets
// its address, the address, and why.
type ListenError struct {
	Flag string // e.g. "--http-listen"
	Addr string
	Err  error
}

func (e *ListenError) Error() string {
	cause := e.Err
	var op *net.OpError
	if errors.As(cause, &op) {
		cause = op.Err
		var sys *os.SyscallError
		if errors.As(cause, &sys) {
			cause = sys.Err
		}
	}
	return fmt.Sprintf("%s %s: %v", e.Flag, e.Addr, cause)
}

func (e *ListenError) Unwrap() error { return e.Err }

// listen binds every configured listener (HTTPS, MQTT over TLS, plain
// MQTT, debug) and records them in the lock file.
func (s *Server) listen() error {
	bind := func(flag, addr string) (net.Listener, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, &ListenError{Flag: flag, Addr: addr, Err: err}
		}
		return ln, nil
	}
	var err error
	if s.httpLn, err = bind("--http-listen", s.cfg.HTTPListen); err != nil {
		return err
	}
	listen := map[string]string{"https": s.httpLn.Addr().String()}
	if s.cfg.MQTTListen != "" {
		if s.mqttTLSLn, err = bind("--mqtt-listen", s.cfg.MQTTListen); err != nil {
			return err
		}
		listen["mqtts"] = s.mqttTLSLn.Addr().String()
	}
	if s.cfg.MQTTTCPListen != "" {
		if s.mqttTCPLn, err = bind("--mqtt-tcp-listen", s.cfg.MQTTTCPListen); err != nil {
			return err
		}
		listen["mqtt"] = s.mqttTCPLn.Addr().String()
	}
	if s.cfg.DebugListen != "" {
		if s.debugLn, err = bind("--debug-listen", s.cfg.DebugListen); err != nil {
			return err
		}
		listen["debug"] = s.debugLn.Addr().String()
	}
	return s.lock.setListen(listen)
}

// release closes what New opened, after a failed New or at the end of
// Shutdown: sockets not served, storage, and the data directory lock.
func (s *Server) release() error {
	for _, ln := range []net.Listener{s.httpLn, s.mqttTLSLn, s.mqttTCPLn, s.debugLn} {
		if ln != nil {
			ln.Close() // already closed if it was served
		}
	}
	var errs []error
	if s.commitLog != nil {
		errs = append(errs, s.commitLog.Close())
	}
	if s.store != nil {
		errs = append(errs, s.store.Close())
	}
	errs = append(errs, s.lock.release())
	return errors.Join(errs...)
}

const metaOperatorToken = "operator_token_created"

// pendingOperatorToken makes the operator API token of the first start:
// one the database has not been given yet. It is stored and shown by
// Start, once the server runs; a start that fails before that leaves the
// next start to make a new one.
func (s *Server) pendingOperatorToken(ctx context.Context) (*operatorToken, error) {
	if _, err := s.store.GetMeta(ctx, metaOperatorToken); err == nil {
		return nil, nil
	} else if !errors.Is(err, database.ErrNotFound) {
		return nil, fmt.Errorf("first start: %w", err)
	}
	if s.cfg.AdminToken != "" {
		return &operatorToken{secret: s.cfg.AdminToken}, nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("first start: %w", err)
	}
	return &operatorToken{secret: "wdn_" + base64.RawURLEncoding.EncodeToString(b), generated: true}, nil
}

// storeOperatorToken stores the first start's operator token, replacing
// one an earlier start stored but never showed, marks it made, and shows
// it.
func (s *Server) storeOperatorToken(ctx context.Context) error {
	op := s.operator
	if op == nil {
		return nil
	}
	// Another node sharing the database may have made it meanwhile.
	if _, err := s.store.GetMeta(ctx, metaOperatorToken); err == nil {
		return nil
	} else if !errors.Is(err, database.ErrNotFound) {
		return fmt.Errorf("first start: %w", err)
	}
	tok := identity.APIToken{ID: "operator", TenantID: tenancy.RootTenantID, Name: "operator (first start)",
		Role: identity.RoleOperatorAdmin, Hash: api.HashToken(op.secret), CreatedAt: s.cfg.Clock.Now().UTC().Truncate(time.Millisecond)}
	err := s.store.CreateAPIToken(ctx, tok)
	if errors.Is(err, database.ErrConflict) { // left by a start that stopped before showing it
		if err = s.store.DeleteAPIToken(ctx, tok.ID); err == nil || errors.Is(err, database.ErrNotFound) {
			err = s.store.CreateAPIToken(ctx, tok)
		}
	}
	if err != nil {
		return fmt.Errorf("first start: create operator token: %w", err)
	}
	if err := s.store.SetMeta(ctx, metaOperatorToken, s.cfg.Clock.Now().UTC().Format(time.RFC3339)); err != nil {
		return fmt.Errorf("first start: %w", err)
	}
	s.operator = nil
	if op.generated {
		fmt.Fprintf(s.cfg.Out, "\nOperator API token (shown only this once; Warden keeps only its hash):\n\n    %s\n\n"+
			"Make your own account with it (export WARDEN_TOKEN=<the token>), then sign in with that:\n\n"+
			"    warden user create --role operator-admin --email you@example.com --first-name … --last-name …\n\n", op.secret)
	} else {
		s.log.Info("operator API token set from WARDEN_ADMIN_TOKEN")
	}
	return nil
}

// Start serves on the listeners New bound and starts the background jobs;
// on the first start it then stores and shows the operator token. If Start
// fails or ctx ends first, it returns an error and Shutdown releases
// whatever it got to.
func (s *Server) Start(ctx context.Context) error {
	ln := s.httpLn
	if s.publicURL = s.cfg.PublicURL; s.publicURL == "" {
		s.publicURL = publicURL(s.cfg.Hostnames, ln.Addr())
	}
	rec := audit.NewRecorder(s.store, s.log.With("component", "audit"), s.cfg.Clock.Now)
	s.notifier = notify.New(s.store, s.mailer, notify.Config{PublicURL: s.publicURL, AllowPrivateTargets: s.cfg.WebhookAllowPrivate,
		Audit: rec}, s.log.With("component", "notify"), s.cfg.Clock)
	// Connections with credentials the operator's staff made for customers'
	// devices are decided by the owner's switch and recorded in the trail;
	// when the switch closes, the broker and the notifier react.
	s.broker.SetStaffCredentials(factory.NewCredentials(s.store, rec, s.cfg.Clock.Now))
	// The facts the API commits reach the parts that react to them.
	events := event.NewLocal(s.log.With("component", "events"))
	s.subscribe(events)
	if err := s.monitor.Start(ctx); err != nil {
		return err
	}
	// The monitor has sealed a state saved before sealing, if there was
	// one: rewrite the database so that no replaced plaintext remains. If
	// that fails the data is still sealed; the next start tries again.
	if err := s.store.CompactSealed(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("could not compact the database after sealing: copies of replaced plaintext may remain in free space until the next start", "err", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("start-up interrupted: %w", err)
	}
	runCtx := ctx
	ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.wg.Add(1)
	s.pipelineRunning = true
	go func() {
		defer s.wg.Done()
		s.pipeline.Run(ctx)
	}()
	if err := s.broker.Start(); err != nil {
		return err
	}
	if s.debugLn != nil {
		s.serveDebug()
	}
	// Devices must be told the port actually bound (it may have been 0).
	s.hubHost = hubHost(s.cfg.Hostnames, s.broker.Addr("tls"))
	s.broker.SetHubHost(s.hubHost, s.cfg.Hostnames...)
	acfg := api.Config{HubHost: s.hubHost, Audit: rec, Keys: s.keys, PublicURL: s.publicURL, Events: events}
	acfg.Mailer, acfg.Monitor = s.mailer, s.monitor
	acfg.WebhookAllowPrivate, acfg.TrustedProxies = s.cfg.WebhookAllowPrivate, s.cfg.TrustedProxies
	acfg.CaughtUp = s.pipeline.CaughtUp
	acfg.Devices = registry.NewService(s.store, s.store, events, s.cfg.Clock, s.log.With("component", "registry"))
	a := api.New(acfg, api.StoresOf(s.store), s.engine, s.broker, s.reg, s.log.With("component", "api"), s.cfg.Clock)
	root := http.NewServeMux()
	root.Handle(broker.WebSocketPath, s.broker.WebSocketHandler())
	apiHandler := a.Handler()
	root.Handle("GET /healthz", s.healthz(apiHandler))
	root.Handle("/", apiHandler)
	s.http.Handler = root
	s.engine.Start(ctx)
	s.serving = true
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.http.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("https server stopped", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		s.forgetLoop(ctx)
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.notifier.Run(ctx)
	}()
	if err := runCtx.Err(); err != nil {
		return fmt.Errorf("start-up interrupted: %w", err)
	}
	// The token is stored and shown only now that the server runs; the
	// line that says so comes last, when the token works.
	if err := s.storeOperatorToken(runCtx); err != nil {
		return err
	}
	s.started.Store(true)
	s.log.Info("warden is running",
		"mqtts", s.broker.Addr("tls"), "mqtt", s.broker.Addr("tcp"), "https", ln.Addr().String(),
		"hub_host", s.hubHost, "ca", s.pki.Files.CA, "data_dir", s.cfg.DataDir)
	return nil
}

// healthz answers 503 with the reason while an MQTT listener cannot accept
// connections (stopped, or out of file descriptors); otherwise the API's
// own check (the database) answers.
func (s *Server) healthz(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := s.broker.Health()
		if err == nil && !s.started.Load() {
			// Until Start is done: the first start's operator token may
			// not be stored yet.
			err = errors.New("starting")
		}
		if err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusServiceUnavailable)
			json.NewEncoder(w).Encode(map[string]any{"error": err.Error(), "status": http.StatusServiceUnavailable})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// serveDebug serves pprof on its own listener, never on the API's.
func (s *Server) serveDebug() {
	ln := s.debugLn
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.debug = srv
	go srv.Serve(ln)
	s.log.Warn("serving Go profiles; do not expose this address", "debug", ln.Addr().String())
}

// forgetLoop drops message ids older than the dedup window, hourly.
func (s *Server) forgetLoop(ctx context.Context) {
	t := s.cfg.Clock.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := s.store.ForgetMessageIDs(ctx, s.cfg.Clock.Now().Add(-s.cfg.DedupWindow))
		if err != nil && ctx.Err() == nil {
			s.log.Warn("forget old message ids", "err", err)
		} else if n > 0 {
			s.log.Debug("forgot old message ids", "count", n)
		}
		if n, err := s.store.PurgeExpired(ctx, s.cfg.Clock.Now()); err != nil && ctx.Err() == nil {
			s.log.Warn("purge expired sessions and links", "err", err)
		} else if n > 0 {
			s.log.Debug("purged expired sessions and links", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

// Shutdown stops taking connections, lets queued telemetry commit, closes
// storage and releases the data directory. It may follow a New or a Start
// that failed part way: it stops only what was started.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	if s.serving {
		errs = append(errs, s.http.Shutdown(ctx))
	}
	if s.debug != nil {
		s.debug.Close()
	}
	if s.broker != nil {
		errs = append(errs, s.broker.Close())
	}
	if s.pipelineRunning {
		s.pipeline.Close() // commits what devices already sent
	}
	if s.cancel != nil {
		// After the broker and the pipeline: nothing feeds it any more.
		errs = append(errs, s.monitor.Close(ctx))
		s.engine.Close()
		s.cancel()
	} else if s.monitor != nil {
		errs = append(errs, s.monitor.Close(ctx)) // Start may have started it
	}
	s.wg.Wait()
	errs = append(errs, s.release())
	return errors.Join(errs...)
}

// MQTTAddr is the bound MQTT-over-TLS address.
func (s *Server) MQTTAddr() string { return s.broker.Addr("tls") }

// MQTTTCPAddr is the bound plain MQTT address, or "".
func (s *Server) MQTTTCPAddr() string { return s.broker.Addr("tcp") }

// HTTPAddr is the bound HTTPS address.
func (s *Server) HTTPAddr() string { return s.httpLn.Addr().String() }

// publicURL is https://<first hostname>:<port of addr>.
func publicURL(hostnames []string, addr net.Addr) string {
	host := "localhost"
	if len(hostnames) > 0 {
		host = hostnames[0]
	}
	_, port, err := net.SplitHostPort(addr.String())
	if err != nil || port == "443" {
		return "https://" + host
	}
	return "https://" + net.JoinHostPort(host, port)
}

// onAlarm hands a stored alarm change on to the notifier (its own goroutine
// finds the recipients).
func (s *Server) onAlarm(ctx context.Context, a alarm.Record, event string) {
	s.log.Debug("alarm", "event", event, "alarm", a.ID, "device", a.DeviceID, "rule", a.RuleID, "severity", a.Severity)
	s.notifier.Post(ctx, a, event)
}

// HubHost is the host name devices use.
func (s *Server) HubHost() string { return s.hubHost }

// CAFile is the certificate devices must trust.
func (s *Server) CAFile() string { return s.pki.Files.CA }

// Store exposes storage to tests and tools in the same process.
func (s *Server) Store() store.Store { return s.store }

// Engine exposes the telemetry engine to tests and tools in the same process.
func (s *Server) Engine() *tsdb.Engine { return s.engine }

// CaughtUp waits until the messages acknowledged so far are written to the
// database (they are durable in the commit log from their acknowledgement
// on; see ingest.Pipeline.CaughtUp).
func (s *Server) CaughtUp(ctx context.Context) error { return s.pipeline.CaughtUp(ctx) }
