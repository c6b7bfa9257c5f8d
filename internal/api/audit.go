package api

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/warden-iot/warden/internal/access"
	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/audit"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/tenancy"
)

// auditActions names the audited routes. A state-changing route missing
// here is still recorded, as "METHOD pattern".
var auditActions = map[string]string{
	"POST /api/v1/devices":                      "device.create",
	"PATCH /api/v1/devices/{id}":                "device.update", // device.enable / device.disable when only the status changed
	"DELETE /api/v1/devices/{id}":               "device.delete",
	"POST /api/v1/devices/{id}/keys/regenerate": "device.keys.regenerate",
	"POST /api/v1/devices/{id}/token":           "device.token",
	"PATCH /api/v1/devices/{id}/twin":           "twin.update",
	"POST /api/v1/devices/{id}/methods/{name}":  "method.invoke",
	"POST /api/v1/devices/{id}/c2d":             "c2d.send",
	"PATCH /api/v1/tenant":                      "tenant.update",
	"POST /api/v1/dps/enrollment-groups":        "dps.enrollment-group.create",
	"PATCH /api/v1/dps/enrollment-groups/{id}":  "dps.enrollment-group.update",
	"DELETE /api/v1/dps/enrollment-groups/{id}": "dps.enrollment-group.delete",
	"POST /api/v1/dps/enrollments":              "dps.enrollment.create",
	"PATCH /api/v1/dps/enrollments/{id}":        "dps.enrollment.update",
	"DELETE /api/v1/dps/enrollments/{id}":       "dps.enrollment.delete",
	"DELETE /api/v1/dps/registrations/{id}":     "dps.registration.delete",
	"GET /api/v1/audit/export":                  "audit.export",

	"POST /api/v1/auth/login":                  "auth.login",
	"POST /api/v1/auth/activate":               "auth.activate",
	"POST /activate":                           "auth.activate",
	"POST /reset-password":                     "auth.password-reset",
	"POST /api/v1/auth/password-reset":         "auth.password-reset.request",
	"POST /api/v1/auth/password-reset/confirm": "auth.password-reset",
	"DELETE /api/v1/session":                   "auth.logout",
	"PATCH /api/v1/me":                         "user.self.update",
	"PUT /api/v1/me/password":                  "user.password.change",
	"DELETE /api/v1/me/sessions/{session}":     "session.delete",
	"POST /api/v1/me/totp":                     "user.totp.start",
	"POST /api/v1/me/totp/confirm":             "user.totp.enable",
	"DELETE /api/v1/me/totp":                   "user.totp.disable",
	"POST /api/v1/tokens":                      "token.create",
	"DELETE /api/v1/tokens/{token}":            "token.delete",
	"POST /api/v1/tenants":                     "tenant.create",
	"PATCH /api/v1/tenants/{tenant}":           "tenant.update",
	"DELETE /api/v1/tenants/{tenant}":          "tenant.delete",
	"POST /api/v1/sites":                       "site.create",
	"PATCH /api/v1/sites/{site}":               "site.update",
	"DELETE /api/v1/sites/{site}":              "site.delete",
	"PUT /api/v1/sites/{site}/factory-access":  "site.factory-access", // .on / .off from the answer
	"POST /api/v1/users":                       "user.create",
	"PATCH /api/v1/users/{user}":               "user.update",
	"DELETE /api/v1/users/{user}":              "user.delete",
	"POST /api/v1/users/{user}/activation":     "user.activation.send",
	"POST /api/v1/grants":                      "grant.create",
	"DELETE /api/v1/grants/{grant}":            "grant.revoke",
	"POST /api/v1/rules":                       "rule.create",
	"PUT /api/v1/rules/{rule}":                 "rule.update",
	"DELETE /api/v1/rules/{rule}":              "rule.delete",
	"POST /api/v1/alarms/{alarm}/ack":          "alarm.ack",
	"POST /api/v1/alarms/{alarm}/clear":        "alarm.clear",
	"PUT /api/v1/me/notifications":             "user.notifications.update",
	"POST /api/v1/webhooks":                    "webhook.create",
	"DELETE /api/v1/webhooks/{webhook}":        "webhook.delete",
	"PUT /api/v1/escalation":                   "escalation.update",

	"POST /api/v1/devices/{id}/maintenance/service": "maintenance.service",
	"PUT /api/v1/maintenance-plans/{model}":         "maintenance-plan.set",
	"DELETE /api/v1/maintenance-plans/{model}":      "maintenance-plan.delete",
}

// auditedReads are the GET routes that are always recorded too. Reads of
// a customer's machine by a supporter or operator staff are recorded as
// well (see noteOutsideRead).
var auditedReads = map[string]bool{"GET /api/v1/audit/export": true}

// ActionAuthFailed is the action of a request refused for a missing or
// invalid bearer token.
const ActionAuthFailed = "auth.failed"

// auditCall carries what the audit entry needs from inside the handlers
// out to audited.
type auditCall struct {
	caller caller
	ok     bool
	// Set by the sign-in and link handlers, which have no caller.
	actorID, actorName, tenantID string
	// owner is the tenant whose data the request touched.
	owner string
	// target overrides the target taken from the path; action the action
	// of the route, where the handler knows better what the request did.
	target, action string
	// outsideRead is set when a supporter or operator staff read a
	// customer's machine: the action read.
	outsideRead string
	// denied says the policy refused the request (whatever the status).
	denied bool
	// listed is, for a list of machine data shown to an outsider, the
	// customers' devices it showed by owner tenant: each owner gets an
	// entry listAction naming them (noteOutsideList).
	listed     map[string][]string
	listAction string
}

type auditCallKey struct{}

// actAs names u as the actor of a request made without credentials (a
// sign-in, a link's form): its entry is about u, in u's tenant.
func (c *auditCall) actAs(u identity.User) {
	c.actorID, c.actorName, c.tenantID, c.owner = u.ID, u.Email, u.TenantID, u.TenantID
}

// auditPrincipal runs after authenticate and hands the principal to the
// audited wrapper outside it.
func auditPrincipal(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := r.Context().Value(auditCallKey{}).(*auditCall); ok {
			c.caller, c.ok = principal(r.Context()), true
		}
		next.ServeHTTP(w, r)
	})
}

// auditWriter records the status and, for creations, the start of the
// answer (only its "id" and "status" fields are ever read from it).
type auditWriter struct {
	http.ResponseWriter
	status int
	tee    *bytes.Buffer
}

func (w *auditWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *auditWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.tee != nil && w.tee.Len() < 64<<10 {
		w.tee.Write(p[:min(len(p), 64<<10-w.tee.Len())])
	}
	return w.ResponseWriter.Write(p)
}

func (w *auditWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func stateChanging(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// audited records state-changing requests, failed authentications and
// the reads in auditedReads. It never records the Authorization header,
// request bodies or answers; from an answer it takes at most the created
// object's id and a device's new status.
func (a *API) audited(mux *http.ServeMux, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := mux.Handler(r)
		route := pattern
		if route == "" {
			route = r.Method + " " + r.URL.Path
		}
		call := &auditCall{}
		aw := &auditWriter{ResponseWriter: w}
		changing := stateChanging(r.Method)
		if changing {
			aw.tee = &bytes.Buffer{}
		}
		next.ServeHTTP(aw, r.WithContext(context.WithValue(r.Context(), auditCallKey{}, call)))
		status := aw.status
		if status == 0 {
			status = http.StatusOK
		}
		authFailed := !call.ok && call.actorID == "" && status == http.StatusUnauthorized && !strings.HasPrefix(route, "POST /api/v1/auth/")
		outsideRead := call.outsideRead != "" && (status < 300 || call.denied)
		if status < 300 && len(call.listed) > 0 {
			a.recordOutsideList(r, call, status)
		}
		if !changing && !authFailed && !auditedReads[route] && !outsideRead {
			return
		}
		ev := audit.Event{
			ActorID:   audit.Anonymous,
			Action:    auditActions[route],
			Target:    routeTarget(pattern, r.URL.EscapedPath()),
			Status:    status,
			IP:        a.clientIP(r),
			UserAgent: r.UserAgent(),
		}
		if ev.Action == "" {
			ev.Action = truncate(route, 200)
		}
		if outsideRead && !changing {
			ev.Action = call.outsideRead + ".read"
			if call.outsideRead == "device.read" {
				ev.Action = "device.read"
			}
		}
		ev.OwnerTenantID = call.owner
		if call.denied {
			ev.Outcome = audit.Denied
		}
		if call.ok {
			ev.TenantID, ev.ActorID, ev.ActorName = call.caller.TenantID, call.caller.ActorID, call.caller.Name
		} else if call.actorID != "" {
			ev.TenantID, ev.ActorID, ev.ActorName = call.tenantID, call.actorID, call.actorName
		}
		if call.target != "" {
			ev.Target = call.target
		}
		if call.action != "" {
			ev.Action = call.action
		}
		if authFailed {
			ev.Action, ev.Target = ActionAuthFailed, truncate(r.Method+" "+r.URL.Path, 200)
		}
		if aw.tee != nil && status < 300 {
			var ans struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			}
			_ = json.Unmarshal(aw.tee.Bytes(), &ans) // a non-JSON answer leaves both empty
			if ev.Target == "" {
				ev.Target = ans.ID
			}
			if ev.Action == "site.factory-access" {
				var sw struct {
					FactoryAccess bool `json:"factoryAccess"`
				}
				_ = json.Unmarshal(aw.tee.Bytes(), &sw)
				ev.Action += map[bool]string{true: ".on", false: ".off"}[sw.FactoryAccess]
			}
		}
		if ev.Action == "tenant.update" && ev.Target == "" {
			ev.Target = call.owner
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
		defer cancel()
		_, _ = a.audit.Record(ctx, ev) // Record logs its own failure
	})
}

// recordOutsideList writes one entry per owner tenant whose devices a list
// showed an outsider (noteOutsideList), naming the devices.
func (a *API) recordOutsideList(r *http.Request, call *auditCall, status int) {
	owners := make([]string, 0, len(call.listed))
	for o := range call.listed {
		owners = append(owners, o)
	}
	slices.Sort(owners)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	for _, o := range owners {
		ids := call.listed[o]
		slices.Sort(ids)
		_, _ = a.audit.Record(ctx, audit.Event{TenantID: call.caller.TenantID, ActorID: call.caller.ActorID,
			ActorName: call.caller.Name, Action: call.listAction, Target: truncate(strings.Join(ids, ","), 200),
			OwnerTenantID: o, Status: status, IP: a.clientIP(r), UserAgent: r.UserAgent()}) // Record logs its own failure
	}
}

// routeTarget is the pattern's wildcard values joined by "/", e.g.
// "pump-1" or "pump-1/reboot".
func routeTarget(pattern, escapedPath string) string {
	_, pat, ok := strings.Cut(pattern, " ")
	if !ok {
		return ""
	}
	ps, us := strings.Split(pat, "/"), strings.Split(escapedPath, "/")
	var out []string
	for i, p := range ps {
		if i >= len(us) || !strings.HasPrefix(p, "{") {
			continue
		}
		v, err := url.PathUnescape(us[i])
		if err != nil {
			v = us[i]
		}
		out = append(out, v)
	}
	return truncate(strings.Join(out, "/"), 200)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// clientIP is the client's address: the peer, or — when the peer is one of
// the trusted reverse proxies — the last address in X-Forwarded-For that is
// not a trusted proxy. Forwarding headers from anyone else are ignored, so
// a client cannot choose the address recorded for it.
func (a *API) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if len(a.cfg.TrustedProxies) == 0 || !a.trusted(host) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		if _, err := netip.ParseAddr(hop); err != nil {
			return host // malformed: keep the proxy's own address
		}
		if !a.trusted(hop) {
			return hop
		}
	}
	return host
}

func (a *API) trusted(addr string) bool {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range a.cfg.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func auditView(e audit.Entry) apiv1.AuditEntry {
	return apiv1.AuditEntry{Seq: e.Seq, At: e.At, TenantID: e.TenantID, ActorID: e.ActorID, ActorName: e.ActorName,
		Action: e.Action, Target: e.Target, OwnerTenantID: e.OwnerTenantID, Outcome: e.Outcome, Status: e.Status, IP: e.IP, UserAgent: e.UserAgent,
		Browser: e.Browser, BrowserVersion: e.BrowserVersion, OS: e.OS,
		PrevHash: hex.EncodeToString(e.PrevHash), Hash: hex.EncodeToString(e.Hash)}
}

// pageQuery reads ?after= (a numeric id, what names it in the error) and
// ?limit= (1 to 1000, default def) of a paged list.
func pageQuery(w http.ResponseWriter, q url.Values, what string, def int) (after int64, limit int, ok bool) {
	limit = def
	if s := q.Get("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "after: want %s", what)
			return 0, 0, false
		}
		after = n
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "limit: want 1 to 1000")
			return 0, 0, false
		}
		limit = n
	}
	return after, limit, true
}

func auditFilter(w http.ResponseWriter, r *http.Request) (audit.Filter, bool) {
	q := r.URL.Query()
	f := audit.Filter{TenantID: q.Get("tenant"), Action: q.Get("action"), Target: q.Get("target"), Limit: 100}
	var ok bool
	if f.After, f.Limit, ok = pageQuery(w, q, "a sequence number", f.Limit); !ok {
		return f, false
	}
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			writeError(w, http.StatusBadRequest, "since: want an RFC 3339 time")
			return f, false
		}
		f.Since = t
	}
	return f, true
}

func (a *API) listAudit(w http.ResponseWriter, r *http.Request) {
	f, ok := auditFilter(w, r)
	if !ok {
		return
	}
	// One more than asked tells whether another page follows.
	limit := f.Limit
	f.Limit++
	es, err := a.stores.Audit.ListAudit(r.Context(), f)
	if err != nil {
		a.storeError(w, err)
		return
	}
	more := len(es) > limit
	es = es[:min(len(es), limit)]
	page := apiv1.AuditPage{Entries: make([]apiv1.AuditEntry, 0, len(es))}
	for _, e := range es {
		page.Entries = append(page.Entries, auditView(e))
	}
	if more {
		page.Next = es[len(es)-1].Seq
	}
	writeJSON(w, http.StatusOK, page)
}

// exportAudit streams every matching entry as JSON lines.
func (a *API) exportAudit(w http.ResponseWriter, r *http.Request) {
	f, ok := auditFilter(w, r)
	if !ok {
		return
	}
	f.Limit = 1000
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Content-Disposition", `attachment; filename="warden-audit.jsonl"`)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	wrote := false
	for {
		es, err := a.stores.Audit.ListAudit(r.Context(), f)
		if err != nil {
			if !wrote {
				a.storeError(w, err)
				return
			}
			a.log.Error("export audit", "err", err)
			return // the client sees a truncated stream
		}
		for _, e := range es {
			if err := enc.Encode(auditView(e)); err != nil {
				return
			}
			wrote = true
		}
		if len(es) < f.Limit {
			return
		}
		f.After = es[len(es)-1].Seq
	}
}

// accessLog is the owner's view of the trail: every entry that touched
// the tenant or its sub-tenants — reads of their machines by supporters
// and operator staff, grants, revocations, the factory-access switch,
// sign-ins and changes. ?outside=true keeps only actors from outside.
func (a *API) accessLog(w http.ResponseWriter, r *http.Request) {
	f, ok := auditFilter(w, r)
	if !ok {
		return
	}
	scope := loaded[tenancy.Tenant](r.Context())
	f.TenantID, f.OwnerUnder = "", scope.ID
	// inside says whether an actor's tenant is the scope or below it (a
	// tenant gone since is not).
	cache := a.newResolverCache()
	inside := func(id string) (bool, error) {
		if id == "" {
			return false, nil
		}
		t, err := cache.tenant(r.Context(), id)
		if errors.Is(err, database.ErrNotFound) {
			return false, nil
		}
		return err == nil && access.Within(t.Path, scope.Path), err
	}
	outside := r.URL.Query().Get("outside") == "true"
	page := apiv1.AuditPage{Entries: []apiv1.AuditEntry{}}
	scanned := 0
	for {
		es, err := a.stores.Audit.ListAudit(r.Context(), f)
		if err != nil {
			a.storeError(w, err)
			return
		}
		for _, e := range es {
			if outside {
				in, err := inside(e.TenantID)
				if err != nil {
					a.storeError(w, err)
					return
				}
				if in {
					continue
				}
			}
			page.Entries = append(page.Entries, auditView(e))
			if len(page.Entries) == f.Limit {
				page.Next = e.Seq
				writeJSON(w, http.StatusOK, page)
				return
			}
		}
		if len(es) < f.Limit {
			break
		}
		f.After = es[len(es)-1].Seq
		if scanned += len(es); scanned >= maxListScan {
			page.Next = f.After // read as far as allowed: go on from there
			break
		}
	}
	writeJSON(w, http.StatusOK, page)
}
