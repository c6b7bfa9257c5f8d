package api

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
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
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/notify"
	"github.com/warden-iot/warden/internal/notify/notifystore"
	"github.com/warden-iot/warden/internal/tenancy"
)

// noMailServer is the warning for e-mail settings while the server has no
// mail server: they are kept, and take effect once one is configured.
func noMailServer(what string) string {
	return "no mail server is configured (--smtp-url): " + what + " are not sent until the operator configures one; the setting is kept"
}

// mailWarnings warns about a setting that needs e-mail when the server
// cannot send any.
func (a *API) mailWarnings(needsMail bool, what string) []string {
	if !needsMail || a.cfg.Mailer != nil {
		return nil
	}
	return []string{noMailServer(what)}
}

func (a *API) prefsView(p notifystore.NotificationPrefs) apiv1.NotificationPrefs {
	v := apiv1.NotificationPrefs{Email: p.Email, Severities: p.Severities, SiteIDs: p.SiteIDs,
		Warnings: a.mailWarnings(p.Email, "alarm e-mails")}
	if v.Severities == nil {
		v.Severities = []string{}
	}
	if v.SiteIDs == nil {
		v.SiteIDs = []string{}
	}
	return v
}

// maxListItems bounds the severities, sites and such a setting lists.
const maxListItems = 100

// checkSeverities validates and de-duplicates a list of severities.
func checkSeverities(field string, in []string) ([]string, error) {
	out := []string{}
	for _, s := range in {
		if !validSeverity(s) {
			return nil, fmt.Errorf("%s: %q is not warning or critical", field, s)
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

func (a *API) getNotificationPrefs(w http.ResponseWriter, r *http.Request) {
	u := loaded[identity.User](r.Context())
	p, err := a.stores.Notify.GetNotificationPrefs(r.Context(), u.ID)
	if err != nil {
		a.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a.prefsView(p))
}

// setNotificationPrefs replaces the caller's preferences. Sites must be
// sites the caller may see.
func (a *API) setNotificationPrefs(w http.ResponseWriter, r *http.Request) {
	var req apiv1.NotificationPrefsSetting
	if !decode(w, r, &req) {
		return
	}
	ctx := r.Context()
	if req.Email == nil {
		writeError(w, http.StatusBadRequest, "email: true or false is required")
		return
	}
	sev, err := checkSeverities("severities", req.Severities)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if len(req.SiteIDs) > maxListItems {
		writeError(w, http.StatusBadRequest, "siteIds: at most %d sites", maxListItems)
		return
	}
	cache := a.newResolverCache()
	sites := []string{}
	for _, id := range req.SiteIDs {
		if slices.Contains(sites, id) {
			continue
		}
		s, err := cache.site(ctx, id)
		var t tenancy.Tenant
		if err == nil {
			t, err = cache.tenant(ctx, s.TenantID)
		}
		if errors.Is(err, database.ErrNotFound) || (err == nil && !a.allowed(ctx, access.SiteRead, siteResource(s, t))) {
			writeError(w, http.StatusBadRequest, "siteIds: no site %q", id)
			return
		}
		if err != nil {
			a.storeError(w, err)
			return
		}
		sites = append(sites, id)
	}
	u := loaded[identity.User](ctx)
	p := notifystore.NotificationPrefs{UserID: u.ID, Email: *req.Email, Severities: sev, SiteIDs: sites}
	if err := a.stores.Notify.SetNotificationPrefs(ctx, p); err != nil {
		a.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a.prefsView(p))
}

func webhookView(h notifystore.Webhook) apiv1.Webhook {
	v := apiv1.Webhook{ID: h.ID, TenantID: h.TenantID, URL: h.URL, Severities: h.Severities, Enabled: h.Enabled, CreatedAt: h.CreatedAt}
	if v.Severities == nil {
		v.Severities = []string{}
	}
	return v
}

// MaxWebhookURL bounds a webhook's URL.
const MaxWebhookURL = 2048

// checkWebhookURL allows https URLs, and plain http only to this machine
// (localhost, 127.0.0.1, ::1), for a receiver next to the server.
func checkWebhookURL(s string, allowPrivate bool) error {
	if len(s) > MaxWebhookURL {
		return fmt.Errorf("url: at most %d characters", MaxWebhookURL)
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("url: %q is not an absolute URL like https://hooks.example.com/warden", s)
	}
	if ip, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil && !allowPrivate && !notify.PublicAddr(ip) {
		return fmt.Errorf("url: %s is not a public address (the operator can allow inside addresses with --webhook-allow-private)", ip)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		switch host := u.Hostname(); {
		case host == "localhost":
			return nil
		case net.ParseIP(host) != nil && net.ParseIP(host).IsLoopback():
			return nil
		}
		return fmt.Errorf("url: plain http only to localhost or 127.0.0.1; use https")
	}
	return fmt.Errorf("url: scheme %q: want https", u.Scheme)
}

// tenantsBelow is the ids of the tenant and its sub-tenants.
func (a *API) tenantsBelow(r *http.Request, id string) ([]string, error) {
	ts, err := a.stores.Tenancy.TenantsUnder(r.Context(), id)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(ts))
	for i, t := range ts {
		ids[i] = t.ID
	}
	return ids, nil
}

// notifyTenantsBelow is the ids of the tenant and its sub-tenants whose
// webhooks and deliveries the caller may read: the operator's admins see
// the operator's own, not those of the customers below it.
func (a *API) notifyTenantsBelow(r *http.Request, id string) ([]string, error) {
	ts, err := a.stores.Tenancy.TenantsUnder(r.Context(), id)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(ts))
	for _, t := range ts {
		if a.allowed(r.Context(), access.NotifyReadLogs, access.Resource{Kind: access.KindTenant, ID: t.ID, TenantID: t.ID, TenantPath: t.Path}) {
			ids = append(ids, t.ID)
		}
	}
	return ids, nil
}

// listWebhooks lists the webhooks of the tenant (scopeTenant) and its
// sub-tenants, without secrets.
func (a *API) listWebhooks(w http.ResponseWriter, r *http.Request) {
	ids, err := a.notifyTenantsBelow(r, scopeTenantID(r.Context()))
	if err != nil {
		a.storeError(w, err)
		return
	}
	hs, err := a.stores.Notify.ListWebhooks(r.Context(), ids)
	if err != nil {
		a.storeError(w, err)
		return
	}
	out := make([]apiv1.Webhook, len(hs))
	for i, h := range hs {
		out[i] = webhookView(h)
	}
	writeJSON(w, http.StatusOK, apiv1.WebhookList{Webhooks: out})
}

// createWebhook makes a webhook and answers with its signing secret, the
// only time it is shown.
func (a *API) createWebhook(w http.ResponseWriter, r *http.Request) {
	var req apiv1.NewWebhook
	if !decode(w, r, &req) {
		return
	}
	ctx := r.Context()
	tenantID, _, ok := a.inTenant(w, r, req.TenantID, access.KindTenant, access.NotifyManage)
	if !ok {
		return
	}
	req.TenantID = tenantID
	req.URL = strings.TrimSpace(req.URL)
	if err := checkWebhookURL(req.URL, a.cfg.WebhookAllowPrivate); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	sev, err := checkSeverities("severities", req.Severities)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	id, err := identity.NewID("whk")
	if err != nil {
		a.storeError(w, err)
		return
	}
	// 32 random bytes, written in hex; the HMAC key is that text.
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		a.storeError(w, err)
		return
	}
	secret := hex.EncodeToString(raw)
	h := notifystore.Webhook{ID: id, TenantID: req.TenantID, URL: req.URL, Secret: []byte(secret), Severities: sev,
		Enabled: true, CreatedAt: a.now().UTC().Truncate(time.Millisecond)}
	if err := a.stores.Notify.CreateWebhook(ctx, h); err != nil {
		a.storeError(w, err)
		return
	}
	a.log.Info("webhook created", "webhook", h.ID, "tenant", h.TenantID)
	v := webhookView(h)
	v.Secret = secret
	writeJSON(w, http.StatusCreated, v)
}

// byWebhook resolves the webhook named by the "webhook" path value among
// those of the caller's tenant tree; its resource is its tenant.
func byWebhook(a *API, r *http.Request) (access.Resource, any, error) {
	id := r.PathValue("webhook")
	ids, err := a.tenantsBelow(r, principal(r.Context()).TenantID)
	if err != nil {
		return access.Resource{}, nil, err
	}
	hs, err := a.stores.Notify.ListWebhooks(r.Context(), ids)
	if err != nil {
		return access.Resource{}, nil, err
	}
	for _, h := range hs {
		if h.ID == id {
			res, _, err := a.tenantResource(r.Context(), h.TenantID)
			return res, h, err
		}
	}
	return access.Resource{}, nil, fmt.Errorf("webhook %q: %w", id, database.ErrNotFound)
}

func (a *API) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	h := loaded[notifystore.Webhook](r.Context())
	if err := a.stores.Notify.DeleteWebhook(r.Context(), h.ID); err != nil {
		a.storeError(w, err)
		return
	}
	a.log.Info("webhook deleted", "webhook", h.ID, "tenant", h.TenantID)
	w.WriteHeader(http.StatusNoContent)
}

// MaxEscalationMinutes is a week.
const MaxEscalationMinutes = 7 * 24 * 60

func (a *API) getEscalation(w http.ResponseWriter, r *http.Request) {
	tid := scopeTenantID(r.Context())
	e, err := a.stores.Notify.GetEscalation(r.Context(), tid)
	if errors.Is(err, database.ErrNotFound) {
		writeJSON(w, http.StatusOK, apiv1.Escalation{TenantID: tid})
		return
	}
	if err != nil {
		a.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, apiv1.Escalation{TenantID: tid, DelayMinutes: int(e.Delay / time.Minute), Email: e.Email,
		Warnings: a.mailWarnings(e.Delay > 0 && e.Email != "", "escalation e-mails")})
}

// setEscalation sets or (delayMinutes 0) removes the tenant's escalation.
func (a *API) setEscalation(w http.ResponseWriter, r *http.Request) {
	var req apiv1.EscalationSetting
	if !decode(w, r, &req) {
		return
	}
	ctx := r.Context()
	tid := scopeTenantID(ctx)
	if call, ok := ctx.Value(auditCallKey{}).(*auditCall); ok {
		call.target = tid
	}
	switch {
	case req.DelayMinutes == nil:
		writeError(w, http.StatusBadRequest, "delayMinutes: required (0 removes the escalation)")
		return
	case *req.DelayMinutes < 0 || *req.DelayMinutes > MaxEscalationMinutes:
		writeError(w, http.StatusBadRequest, "delayMinutes: 0 to %d", MaxEscalationMinutes)
		return
	}
	e := notifystore.Escalation{TenantID: tid, Delay: time.Duration(*req.DelayMinutes) * time.Minute}
	if e.Delay > 0 {
		email, err := normalizeEmail(req.Email)
		if err != nil {
			writeError(w, http.StatusBadRequest, "email: %v", err)
			return
		}
		e.Email = email
	}
	if err := a.stores.Notify.SetEscalation(ctx, e); err != nil {
		a.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, apiv1.Escalation{TenantID: tid, DelayMinutes: *req.DelayMinutes, Email: e.Email,
		Warnings: a.mailWarnings(e.Delay > 0 && e.Email != "", "escalation e-mails")})
}

func deliveryView(d notifystore.Delivery) apiv1.Delivery {
	v := apiv1.Delivery{ID: d.ID, TenantID: d.TenantID, AlarmID: d.AlarmID, Channel: d.Channel, Target: d.Target,
		Event: d.Event, State: d.State, Attempts: d.Attempts, LastError: d.LastError, Unreadable: d.Unreadable,
		CreatedAt: d.CreatedAt, SentAt: timePtr(d.SentAt)}
	if d.State == notifystore.DeliveryPending {
		v.NextAt = timePtr(d.NextAt)
	}
	return v
}

// listDeliveries lists the newest deliveries of the tenant (scopeTenant)
// and its sub-tenants, failures included.
func (a *API) listDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := notifystore.DeliveryFilter{Limit: 100}
	switch s := q.Get("state"); s {
	case "", notifystore.DeliveryPending, notifystore.DeliverySent, notifystore.DeliveryFailed:
		f.State = s
	default:
		writeError(w, http.StatusBadRequest, "state: want pending, sent or failed")
		return
	}
	if s := q.Get("alarm"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			writeError(w, http.StatusBadRequest, "alarm: want an alarm id")
			return
		}
		f.AlarmID = n
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "limit: want 1 to 1000")
			return
		}
		f.Limit = n
	}
	ids, err := a.notifyTenantsBelow(r, scopeTenantID(r.Context()))
	if err != nil {
		a.storeError(w, err)
		return
	}
	f.TenantIDs = ids
	ds, err := a.stores.Notify.ListDeliveries(r.Context(), f)
	if err != nil {
		a.storeError(w, err)
		return
	}
	out := make([]apiv1.Delivery, len(ds))
	for i, d := range ds {
		out[i] = deliveryView(d)
	}
	writeJSON(w, http.StatusOK, apiv1.DeliveryList{Deliveries: out})
}
