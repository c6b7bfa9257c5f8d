package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warden-iot/warden/internal/access"
	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/audit"
	"github.com/warden-iot/warden/internal/clock"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/mail"
	"github.com/warden-iot/warden/internal/notify/notifystore"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/tenancy"
)

// Alarm events. EventEscalated is made by the notifier itself.
const (
	EventRaised       = "raised"
	EventRetriggered  = "retriggered"
	EventAcknowledged = "acknowledged"
	EventCleared      = "cleared"
	EventEscalated    = "escalated"
)

// Delivery channels (notifystore.Delivery.Channel).
const (
	ChannelEmail   = "email"
	ChannelWebhook = "webhook"
)

// Defaults of Config.
const (
	DefaultMaxAttempts = 8
	DefaultBaseBackoff = 30 * time.Second
	DefaultPollEvery   = 2 * time.Second
	DefaultHTTPTimeout = 10 * time.Second

	// maxBackoff caps the wait between two tries.
	maxBackoff = 6 * time.Hour
)

// Config tunes a Notifier; zero values take the defaults.
type Config struct {
	PublicURL string // links in mails: <PublicURL>/api/v1/alarms/<id>; empty: no link
	// AllowPrivateTargets lets webhooks reach loopback and private
	// addresses; off, only public addresses are dialled.
	AllowPrivateTargets bool
	MaxAttempts         int           // default 8, then the delivery is "failed"
	BaseBackoff         time.Duration // default 30s; attempt n waits BaseBackoff·2^(n-1), capped at 6h
	PollEvery           time.Duration // default 2s: how often the worker looks for due deliveries and escalations
	HTTPTimeout         time.Duration // default 10s per webhook call
	// Audit, if set, records every notification about a customer's
	// machine sent to the operator (under the owner's switch), for the
	// owner's access log.
	Audit *audit.Recorder
}

// backoff is the wait after the given number of failed tries.
func (c Config) backoff(attempts int) time.Duration {
	d := c.BaseBackoff
	for i := 1; i < attempts && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// Store is what the notifier keeps and looks up: its settings and outbox
// (notifystore.Store), the alarms and rules it tells about, and the
// tenants, devices, sites, users and grants that decide who is told.
// store.Store is one.
type Store interface {
	notifystore.Store
	GetAlarm(ctx context.Context, id int64) (alarm.Record, error)
	GetAlarmRule(ctx context.Context, id string) (alarm.StoredRule, error)
	ListAlarms(ctx context.Context, f alarm.Filter) ([]alarm.Record, error)
	GetTenant(ctx context.Context, id string) (tenancy.Tenant, error)
	GetDevice(ctx context.Context, id string) (registry.Device, error)
	GetSite(ctx context.Context, id string) (tenancy.Site, error)
	GetUser(ctx context.Context, id string) (identity.User, error)
	ListUsers(ctx context.Context, tenantIDs []string) ([]identity.User, error)
	ListGrants(ctx context.Context, f access.GrantFilter) ([]access.Grant, error)
}

// Notifier turns alarm events into deliveries and delivers them. It is safe
// for concurrent use.
type Notifier struct {
	st     Store
	mailer *mail.Sender
	cfg    Config
	log    *slog.Logger
	clock  clock.Clock
	client *http.Client

	// mu makes rounds (RunOnce) of this process one at a time, so that no
	// delivery is claimed twice here; escalated is the round's memory of
	// escalations known to be in the outbox, keyed by alarm and tenant.
	mu        sync.Mutex
	escalated map[escalationKey]bool

	// posted carries alarm events from Post to Run, which fans them out:
	// finding recipients takes queries that must not slow the evaluator.
	posted chan postedEvent

	// sweep asks the next round to give up the operator's deliveries
	// about machines whose factory service access closed (factory.go).
	sweep atomic.Bool
}

type postedEvent struct {
	alarm alarm.Record
	event string
}

// postQueue is how many alarm events may wait for Run before Post blocks.
const postQueue = 4096

// New makes a Notifier. mailer nil means no e-mail channel: no e-mail
// deliveries are made. log nil discards; clk nil is the wall clock.
func New(st Store, mailer *mail.Sender, cfg Config, log *slog.Logger, clk clock.Clock) *Notifier {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.BaseBackoff <= 0 {
		cfg.BaseBackoff = DefaultBaseBackoff
	}
	if cfg.PollEvery <= 0 {
		cfg.PollEvery = DefaultPollEvery
	}
	if cfg.HTTPTimeout <= 0 {
		cfg.HTTPTimeout = DefaultHTTPTimeout
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if mailer == nil {
		log.Info("notify: no mail server configured; alarm e-mails and escalation e-mails are off")
	}
	return &Notifier{
		st: st, mailer: mailer, cfg: cfg, log: log, clock: clock.OrReal(clk),
		client:    newHTTPClient(cfg.HTTPTimeout, cfg.AllowPrivateTargets),
		posted:    make(chan postedEvent, postQueue),
		escalated: map[escalationKey]bool{},
	}
}

// Alarm enqueues the deliveries for one alarm event ("raised",
// "retriggered", "acknowledged", "cleared"); it only writes the outbox. Call
// it after the alarm change is stored, with the alarm as stored.
// Post hands an alarm event to Run, which calls Alarm for it; it blocks
// only while postQueue events wait (or until ctx ends). The alarm monitor
// posts, so that its evaluation never waits for recipients to be found.
func (n *Notifier) Post(ctx context.Context, a alarm.Record, event string) {
	select {
	case n.posted <- postedEvent{alarm: a, event: event}:
	case <-ctx.Done():
	}
}

func (n *Notifier) Alarm(ctx context.Context, a alarm.Record, event string) error {
	switch event {
	case EventRaised, EventRetriggered, EventAcknowledged, EventCleared:
	default:
		return fmt.Errorf("notify: alarm %d: unknown event %q", a.ID, event)
	}
	if a.ID == 0 {
		return fmt.Errorf("notify: %s alarm without id", event)
	}
	now := n.clock.Now()
	f, err := n.facts(ctx, a)
	if err != nil {
		return fmt.Errorf("notify: alarm %d: %w", a.ID, err)
	}
	var ds []notifystore.Delivery
	if n.mailer != nil && event == EventRaised {
		rs, err := n.mailRecipients(ctx, f, now)
		if err != nil {
			return fmt.Errorf("notify: alarm %d: e-mail recipients: %w", a.ID, err)
		}
		if len(rs) > 0 {
			msg, err := n.mailPayload(ctx, f, event, nil)
			if err != nil {
				return fmt.Errorf("notify: alarm %d: %w", a.ID, err)
			}
			for _, r := range rs {
				ds = append(ds, newDelivery(r.tenantID, a, ChannelEmail, r.email, event, msg, now))
			}
		}
	}
	hooks, err := n.webhooks(ctx, f, f.path)
	if err != nil {
		return fmt.Errorf("notify: alarm %d: %w", a.ID, err)
	}
	if len(hooks) > 0 {
		body, err := webhookPayload(a, event, now)
		if err != nil {
			return fmt.Errorf("notify: alarm %d: %w", a.ID, err)
		}
		for _, h := range hooks {
			ds = append(ds, newDelivery(h.TenantID, a, ChannelWebhook, h.ID, event, body, now))
		}
	}
	if len(ds) == 0 {
		return nil
	}
	if err := n.st.EnqueueDeliveries(ctx, ds); err != nil {
		return fmt.Errorf("notify: alarm %d: enqueue %d deliveries: %w", a.ID, len(ds), err)
	}
	n.log.Debug("notify: deliveries enqueued", "alarm", a.ID, "event", event, "count", len(ds))
	return nil
}

func newDelivery(tenantID string, a alarm.Record, channel, target, event string, payload []byte, now time.Time) notifystore.Delivery {
	return notifystore.Delivery{
		TenantID: tenantID, AlarmID: a.ID, Channel: channel, Target: target, Event: event,
		Payload: payload, State: notifystore.DeliveryPending, NextAt: now, CreatedAt: now,
	}
}

// alarmFacts is what deciding about an alarm needs to know: its device's
// tenant, site and the resource access.Decide sees.
type alarmFacts struct {
	alarm  alarm.Record
	tenant tenancy.Tenant  // the device's
	path   []string        // tenant ids from the root down to the device's
	device registry.Device // zero if the device is gone
	site   tenancy.Site    // zero if the device has no site (or it is gone)
	res    access.Resource
}

// operatorMay says whether the operator's tenant may hear of the alarm:
// its own devices, or a site with factory service access on.
func (f *alarmFacts) operatorMay() bool {
	return f.tenant.ID == tenancy.RootTenantID || f.site.FactoryAccess
}

// onPath says whether the tenant is on the device's tenant path.
func (f *alarmFacts) onPath(tenantID string) bool { return slices.Contains(f.path, tenantID) }

// pathOf is the path of a tenant on the device's tenant path.
func (f *alarmFacts) pathOf(tenantID string) string {
	i := slices.Index(f.path, tenantID)
	return strings.Join(f.path[:i+1], "/")
}

// facts loads the alarm's device, tenant and site as they are now; a
// deleted device falls back to the site the alarm was raised at.
func (n *Notifier) facts(ctx context.Context, a alarm.Record) (*alarmFacts, error) {
	f := &alarmFacts{alarm: a}
	t, err := n.st.GetTenant(ctx, a.TenantID)
	if err != nil {
		return nil, fmt.Errorf("tenant %s: %w", a.TenantID, err)
	}
	f.tenant, f.path = t, strings.Split(t.Path, "/")
	siteID := a.SiteID
	switch d, err := n.st.GetDevice(ctx, a.DeviceID); {
	case err == nil:
		f.device, siteID = d, d.Info.SiteID
	case !errors.Is(err, database.ErrNotFound):
		return nil, fmt.Errorf("device %s: %w", a.DeviceID, err)
	}
	if siteID != "" {
		switch s, err := n.st.GetSite(ctx, siteID); {
		case err == nil:
			f.site = s
		case errors.Is(err, database.ErrNotFound):
			f.site = tenancy.Site{ID: siteID, TenantID: a.TenantID} // gone: no factory access
		default:
			return nil, fmt.Errorf("site %s: %w", siteID, err)
		}
	}
	f.res = access.Resource{Kind: access.KindDevice, ID: a.DeviceID, TenantID: t.ID, TenantPath: t.Path,
		SiteID: f.site.ID, FactoryAccess: f.site.FactoryAccess}
	return f, nil
}

// mailRecipient is one address to e-mail, with the tenant the delivery is
// recorded under.
type mailRecipient struct {
	email    string
	tenantID string
}

// mailRecipients lists who is e-mailed about the alarm: see the package
// documentation.
func (n *Notifier) mailRecipients(ctx context.Context, f *alarmFacts, now time.Time) ([]mailRecipient, error) {
	type candidate struct {
		user   identity.User
		path   string // the user's tenant path
		grants []access.Grant
	}
	var order []string
	cands := map[string]*candidate{}
	users, err := n.st.ListUsers(ctx, f.path)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	for _, u := range users {
		if _, ok := cands[u.ID]; !ok && f.onPath(u.TenantID) {
			cands[u.ID] = &candidate{user: u, path: f.pathOf(u.TenantID)}
			order = append(order, u.ID)
		}
	}

	grants, err := n.st.ListGrants(ctx, access.GrantFilter{DeviceID: f.alarm.DeviceID, ActiveAt: now})
	if err != nil {
		return nil, fmt.Errorf("device grants: %w", err)
	}
	if f.site.ID != "" {
		gs, err := n.st.ListGrants(ctx, access.GrantFilter{SiteID: f.site.ID, ActiveAt: now})
		if err != nil {
			return nil, fmt.Errorf("site grants: %w", err)
		}
		grants = append(grants, gs...)
	}
	paths := map[string]string{} // tenant id → path, for supporters' tenants
	for _, g := range grants {
		// Only the owner (or a tenant above it) grants a device.
		if !g.Active(now) || !f.onPath(g.TenantID) {
			continue
		}
		c := cands[g.SupporterUserID]
		if c == nil {
			u, err := n.st.GetUser(ctx, g.SupporterUserID)
			if errors.Is(err, database.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("user %s: %w", g.SupporterUserID, err)
			}
			p, ok := paths[u.TenantID]
			if !ok {
				t, err := n.st.GetTenant(ctx, u.TenantID)
				if err != nil {
					return nil, fmt.Errorf("tenant %s of user %s: %w", u.TenantID, u.ID, err)
				}
				p = t.Path
				paths[u.TenantID] = p
			}
			c = &candidate{user: u, path: p}
			cands[u.ID] = c
			order = append(order, u.ID)
		}
		c.grants = append(c.grants, g)
	}

	var rs []mailRecipient
	seen := map[string]bool{}
	for _, id := range order {
		c := cands[id]
		u := c.user
		if u.Status != identity.UserActive || u.Email == "" || seen[strings.ToLower(u.Email)] {
			continue
		}
		sub := access.Subject{UserID: u.ID, Name: u.Email, TenantID: u.TenantID, TenantPath: c.path,
			Role: u.Role, Grants: c.grants}
		if access.Decide(sub, access.DeviceData, f.res, now) != nil {
			continue
		}
		p, err := n.st.GetNotificationPrefs(ctx, u.ID)
		if errors.Is(err, database.ErrNotFound) {
			continue // never chose: no e-mail
		}
		if err != nil {
			return nil, fmt.Errorf("notification settings of %s: %w", u.ID, err)
		}
		if !p.Email || !matches(p.Severities, f.alarm.Severity) || !matches(p.SiteIDs, f.site.ID) {
			continue
		}
		seen[strings.ToLower(u.Email)] = true
		tenantID := f.alarm.TenantID // supporters: the owner's record
		if f.onPath(u.TenantID) {
			tenantID = u.TenantID
		}
		rs = append(rs, mailRecipient{email: u.Email, tenantID: tenantID})
	}
	return rs, nil
}

// webhooks lists the enabled webhooks of the given tenants (on the alarm's
// tenant path) that want the alarm.
func (n *Notifier) webhooks(ctx context.Context, f *alarmFacts, tenantIDs []string) ([]notifystore.Webhook, error) {
	all, err := n.st.ListWebhooks(ctx, tenantIDs)
	if err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	var hs []notifystore.Webhook
	for _, h := range all {
		switch {
		case !h.Enabled, !slices.Contains(tenantIDs, h.TenantID), !f.onPath(h.TenantID):
		case !matches(h.Severities, f.alarm.Severity):
		case h.TenantID == tenancy.RootTenantID && !f.operatorMay():
		default:
			hs = append(hs, h)
		}
	}
	return hs, nil
}

// matches says whether a filter (empty: everything) holds v.
func matches(filter []string, v string) bool {
	return len(filter) == 0 || slices.Contains(filter, v)
}
