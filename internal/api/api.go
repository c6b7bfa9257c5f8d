// Package api is Warden's HTTP API under /api/v1/, plus /healthz, /metrics,
// the OpenAPI document and the account-link pages. Requests carry
// "Authorization: Bearer <token>" or the session cookie (with the CSRF
// header on changes), except sign-in and the link routes; errors are JSON
// objects {"error": "...", "status": N}.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/warden-iot/warden/internal/access"
	"github.com/warden-iot/warden/internal/alarm/alarmsvc"
	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/audit"
	"github.com/warden-iot/warden/internal/broker"
	"github.com/warden-iot/warden/internal/clock"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/event"
	"github.com/warden-iot/warden/internal/hub"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/mail"
	"github.com/warden-iot/warden/internal/monitor"
	"github.com/warden-iot/warden/internal/provision"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/tenancy"
	"github.com/warden-iot/warden/internal/tsdb"
)

// Endpoint is what the API needs from the device endpoint (the MQTT broker):
// presence, and reaching connected devices. What the endpoint must do when
// devices, keys, enrollments or queued messages change it learns from the
// events the API publishes (Config.Events).
type Endpoint interface {
	Connected(deviceID string) bool
	LastSeen(deviceID string) (at time.Time, ip string, ok bool)

	// UpdateTwin changes a twin and pushes the desired-properties patch
	// to the device if it is connected (hub.go).
	UpdateTwin(ctx context.Context, tenantID, deviceID string, u hub.TwinUpdate) (hub.Twin, error)
	// InvokeMethod calls a direct method on a connected device and waits
	// for its answer (errors: broker.ErrDeviceOffline, ErrMethodTimeout).
	InvokeMethod(ctx context.Context, deviceID, name string, payload json.RawMessage, timeout time.Duration) (broker.MethodResult, error)
}

// Config is what the API needs to know about the deployment.
type Config struct {
	// HubHost is the host name devices use in their connection strings and
	// SAS tokens, with ":port" when the MQTT TLS port is not 8883.
	HubHost string
	// Audit records the audit trail; nil makes a recorder on the store.
	Audit *audit.Recorder
	// PublicURL is where people reach this server (activation and reset
	// links point there), e.g. "https://warden.example.com:8443".
	PublicURL string
	// Mailer sends account e-mails; nil: links are handed to the admin
	// who created the account instead.
	Mailer *mail.Sender
	// Keys seal the users' TOTP secrets with their tenant's key.
	Keys *keyring.Keyring
	// Monitor runs the maintenance plans: the API asks it for a device's
	// maintenance status and records services. Nil: not asked (tests).
	Monitor *monitor.Monitor
	// Events takes the facts the API commits (a tenant or device deleted,
	// a device changed or re-keyed, rules, plans, enrollments or grants
	// changed, alarms acknowledged or cleared by hand, a cloud-to-device
	// message queued, factory service access closed); the reactions (the
	// device endpoint, the alarm runtime, the keyring, the notifier)
	// subscribe.
	// Nil: an in-process bus nobody subscribed to (tests).
	Events event.Publisher
	// WebhookAllowPrivate accepts webhooks to loopback and private
	// addresses (the notifier must be told the same).
	WebhookAllowPrivate bool
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client (for the audit trail and the sign-in limit).
	TrustedProxies []netip.Prefix
	// Devices registers and manages devices and publishes their facts;
	// nil: a service on the store publishing on Events.
	Devices *registry.Service
	// CaughtUp waits until the telemetry acknowledged so far is in the
	// database (the ingest pipeline's CaughtUp): telemetry reads call it,
	// so that what a device was told is stored is there to read. Nil:
	// reads do not wait.
	CaughtUp func(context.Context) error
}

// caughtUpWait bounds how long a telemetry read waits for acknowledged
// messages to reach the database; after it (an overloaded database), it
// reads what is there.
const caughtUpWait = 3 * time.Second

// caughtUp waits, within caughtUpWait, until the telemetry acknowledged
// before the request is readable.
func (a *API) caughtUp(ctx context.Context) {
	if a.cfg.CaughtUp == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, caughtUpWait)
	defer cancel()
	if err := a.cfg.CaughtUp(ctx); err != nil && ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		a.log.Debug("telemetry read without waiting longer for acknowledged messages to reach the database", "waited", caughtUpWait)
	}
}

// API serves the HTTP API.
type API struct {
	cfg      Config
	stores   Stores
	tsdb     *tsdb.Engine
	endpoint Endpoint
	gatherer prometheus.Gatherer
	log      *slog.Logger
	clock    clock.Clock
	audit    *audit.Recorder
	// signins limits failed sign-ins and reset requests per client IP.
	signins *windowLimiter
	tenancy *tenancy.Service
	grants  *access.Grants
	// alarms manages rules, maintenance plans and alarms by hand.
	alarms *alarmsvc.Service
	// users invites, changes and deletes accounts.
	users *identity.Users
	// enrollments manages DPS enrollment groups and individual enrollments.
	enrollments *provision.Enrollments
	// c2d queues cloud-to-device messages.
	c2d *hub.Messages
}

// now is the API's clock's time.
func (a *API) now() time.Time { return a.clock.Now() }

// New makes the API on clk (nil: the wall clock).
func New(cfg Config, st Stores, engine *tsdb.Engine, p Endpoint, g prometheus.Gatherer, log *slog.Logger, clk clock.Clock) *API {
	clk = clock.OrReal(clk)
	rec := cfg.Audit
	if rec == nil {
		rec = audit.NewRecorder(st.Audit, log, clk.Now)
	}
	if cfg.Events == nil {
		cfg.Events = event.NewLocal(log)
	}
	if cfg.Devices == nil {
		cfg.Devices = registry.NewService(st.Registry, st.Tenancy, cfg.Events, clk, log)
	}
	links := identity.LinkConfig{PublicURL: cfg.PublicURL}
	if cfg.Mailer != nil {
		links.Mailer = cfg.Mailer
	}
	return &API{cfg: cfg, stores: st, tsdb: engine, endpoint: p, gatherer: g, log: log, clock: clk, audit: rec,
		signins: newWindowLimiter(MaxSignInFailuresPerIP, SignInWindow),
		tenancy: tenancy.NewService(tenancy.ServiceDeps{Store: st.Tenancy, Devices: tenantDevices{st.Registry}, Events: cfg.Events, Clock: clk,
			Log: log, NewID: identity.NewID, NormalizeEmail: identity.NormalizeEmail}),
		grants:      access.NewGrants(st.Grants, st.Users, cfg.Events, clk, log),
		alarms:      alarmsvc.New(st.Alarms, cfg.Events, clk, log),
		users:       identity.NewUsers(st.Users, st.SignIns, cfg.Events, links, clk, log),
		enrollments: provision.NewEnrollments(st.Provision, cfg.Events, clk, log),
		c2d:         hub.NewMessages(st.Hub, cfg.Events, clk, log)}
}

// Handler returns the HTTP handler with every route.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", a.healthz)
	metrics := promhttp.HandlerFor(a.gatherer, promhttp.HandlerOpts{})
	mux.Handle("GET /metrics", a.noStore(a.authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := access.Decide(principal(r.Context()).Subject, access.MetricsRead, access.MetricsResource(), a.now()); err != nil {
			writeError(w, http.StatusForbidden, "%v", err)
			return
		}
		metrics.ServeHTTP(w, r)
	}))))

	api := http.NewServeMux()
	for _, rt := range a.routes() {
		api.Handle(rt.pattern, a.guard(rt))
	}
	public := http.NewServeMux()
	for _, rt := range a.publicRoutes() {
		public.HandleFunc(rt.pattern, rt.handler)
	}
	a.pageRoutes(mux)
	mux.HandleFunc("GET "+OpenAPIPath, a.openAPIDoc)
	mux.Handle("/api/v1/auth/", a.audited(public, a.noStore(jsonOnly(jsonMuxErrors(public)))))
	mux.Handle("/api/", a.audited(api, a.noStore(a.authenticate(auditPrincipal(jsonMuxErrors(api))))))
	return a.logRequests(mux)
}

func (a *API) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := a.stores.Meta.GetMeta(ctx, "health"); err != nil && !errors.Is(err, database.ErrNotFound) {
		writeError(w, http.StatusServiceUnavailable, "store unavailable")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// HashToken is how API tokens are stored: their SHA-256. Tokens are 256-bit
// random strings, so a fast hash is enough.
func HashToken(secret string) []byte { return identity.HashSecret(secret) }

// jsonOnly refuses POSTs whose body is not declared JSON. A page on another
// site can post a form (urlencoded or text/plain) without a preflight, but
// not application/json, so this keeps cross-site forms off the sign-in
// routes (login CSRF), which have no session to carry a CSRF token.
func jsonOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
			if !strings.EqualFold(strings.TrimSpace(ct), "application/json") {
				writeError(w, http.StatusUnsupportedMediaType, "send the body as Content-Type: application/json")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// jsonMuxErrors turns the mux's own plain-text answers (404 for an unknown
// path, 405 with an Allow header for a wrong method) into JSON errors.
func jsonMuxErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(&muxErrorWriter{ResponseWriter: w, r: r}, r)
	})
}

type muxErrorWriter struct {
	http.ResponseWriter
	r      *http.Request
	status int
}

func (w *muxErrorWriter) WriteHeader(code int) { w.status = code }

func (w *muxErrorWriter) Write([]byte) (int, error) {
	msg := "no such API endpoint"
	if w.status == http.StatusMethodNotAllowed {
		msg = "method not allowed"
	}
	writeError(w.ResponseWriter, w.status, "%s: %s %s", msg, w.r.Method, w.r.URL.Path)
	return 0, nil
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (a *API) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		a.log.Debug("http", "method", r.Method, "path", r.URL.Path, "status", sw.status,
			"duration", time.Since(start), "remote", r.RemoteAddr)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away; nothing to do
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, apiv1.ErrorBody{Error: fmt.Sprintf(format, args...), Status: status})
}

// storeError answers a store failure: not found, conflict or internal.
func (a *API) storeError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, database.ErrNotFound):
		writeError(w, http.StatusNotFound, "%s", err.Error())
	case errors.Is(err, database.ErrConflict):
		writeError(w, http.StatusConflict, "%s", err.Error())
	default:
		a.log.Error("store", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
	}
}

const maxBody = 1 << 20

// decode reads a JSON request body strictly: unknown fields, trailing
// data and an empty body are errors.
func decode(w http.ResponseWriter, r *http.Request, v any) bool { return decodeBody(w, r, v, false) }

// decodeOptional is decode, except that an empty body leaves v as it is.
func decodeOptional(w http.ResponseWriter, r *http.Request, v any) bool {
	return decodeBody(w, r, v, true)
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any, optional bool) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "request body: %v", err)
		return false
	}
	if optional && len(bytes.TrimSpace(body)) == 0 {
		return true
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "invalid JSON body: %v", err)
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		writeError(w, http.StatusBadRequest, "invalid JSON body: data after the object")
		return false
	}
	return true
}
