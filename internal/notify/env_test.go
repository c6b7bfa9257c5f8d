package notify_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/access"
	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/clock/clocktest"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/mail"
	"github.com/warden-iot/warden/internal/mail/mailtest"
	"github.com/warden-iot/warden/internal/notify"
	"github.com/warden-iot/warden/internal/notify/notifystore"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/enginetest"
	"github.com/warden-iot/warden/internal/tenancy"
)

// t0 is when the tests' world begins.
var t0 = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)

// forEachStore runs fn on a fresh, migrated SQLite store and, if a
// PostgreSQL test server is reachable (see pgtest), on a PostgreSQL one.
func forEachStore(t *testing.T, fn func(t *testing.T, st store.Store)) {
	enginetest.Run(t, func(t *testing.T, open func(t *testing.T) (store.Store, database.DB)) {
		st, _ := open(t)
		enginetest.WithKeyring(t, st)
		fn(t, st)
	})
}

// env is a notifier on a store holding the test world (see world), with
// an SMTP sink and a simulated clock.
type env struct {
	t     *testing.T
	st    store.Store
	clock *clocktest.Fake
	sink  *mailtest.Sink
	n     *notify.Notifier
	cfg   notify.Config
	seen  int // messages of the sink already returned by newMail
}

func newEnv(t *testing.T, st store.Store, cfg notify.Config) *env {
	t.Helper()
	if cfg.PublicURL == "" {
		cfg.PublicURL = "https://warden.example.com/"
	}
	// The receivers of these tests listen on 127.0.0.1.
	cfg.AllowPrivateTargets = true
	e := &env{t: t, st: st, clock: clocktest.New(t0), sink: mailtest.Start(t), cfg: cfg}
	world(t, st)
	e.n = e.notifier()
	return e
}

// notifier makes a notifier on e's store, as after a restart.
func (e *env) notifier() *notify.Notifier {
	log := slog.New(slog.NewTextHandler(e.t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	return notify.New(e.st, mail.New(e.sink.Config(), log), e.cfg, log, e.clock)
}

// runOnce runs a round and fails the test on error.
func (e *env) runOnce() {
	e.t.Helper()
	if err := e.n.RunOnce(e.t.Context()); err != nil {
		e.t.Fatalf("RunOnce: %v", err)
	}
}

// newMail returns the messages the sink received since the last call.
func (e *env) newMail() []mailtest.Received {
	msgs := e.sink.Messages()
	out := msgs[e.seen:]
	e.seen = len(msgs)
	return out
}

// newRecipients is the sorted recipients of newMail.
func (e *env) newRecipients() []string {
	var to []string
	for _, m := range e.newMail() {
		to = append(to, m.To...)
	}
	slices.Sort(to)
	return to
}

// raise stores a raised alarm at the clock's time.
func (e *env) raise(device, site, rule, severity string) alarm.Record {
	e.t.Helper()
	d, err := e.st.GetDevice(e.t.Context(), device)
	if err != nil {
		e.t.Fatal(err)
	}
	as, err := e.st.ApplyAlarmChanges(e.t.Context(), []alarm.Change{{
		Kind: "raised", TenantID: d.TenantID, RuleID: rule, DeviceID: device, SiteID: site,
		Alarm: alarm.KindRule, Severity: severity, Message: "Pressure high", Value: 12.5, At: e.clock.Now(),
	}})
	if err != nil || len(as) != 1 || as[0].ID == 0 {
		e.t.Fatalf("raise %s on %s: %+v, %v", rule, device, as, err)
	}
	return as[0]
}

// notify tells the notifier of an alarm event and fails the test on error.
func (e *env) notify(a alarm.Record, event string) {
	e.t.Helper()
	if err := e.n.Alarm(e.t.Context(), a, event); err != nil {
		e.t.Fatalf("Alarm(%d, %s): %v", a.ID, event, err)
	}
}

// deliveries lists an alarm's deliveries in id order.
func (e *env) deliveries(alarmID int64) []notifystore.Delivery {
	e.t.Helper()
	ds, err := e.st.ListDeliveries(e.t.Context(), notifystore.DeliveryFilter{AlarmID: alarmID, Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	slices.SortFunc(ds, func(a, b notifystore.Delivery) int { return int(a.ID - b.ID) })
	return ds
}

// world creates the tenants, sites, devices, users, settings and grants
// the tests share:
//
//	root ─┬─ acme ── acme-north   sites north-1 (pump), north-2 (fan)
//	      ├─ beta                 site beta-1 (beta-dev)
//	      └─ installer            supporters
//	root's own site root-1 (root-dev)
func world(t *testing.T, st store.Store) {
	t.Helper()
	ctx := t.Context()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	for _, tn := range [][2]string{{"acme", "root"}, {"acme-north", "acme"}, {"beta", "root"}, {"installer", "root"}} {
		must("tenant "+tn[0], st.CreateTenant(ctx, tenancy.Tenant{ID: tn[0], ParentID: tn[1], Name: "Tenant " + tn[0], CreatedAt: t0}))
	}
	for _, s := range [][2]string{{"north-1", "acme-north"}, {"north-2", "acme-north"}, {"beta-1", "beta"}, {"root-1", "root"}} {
		must("site "+s[0], st.CreateSite(ctx, tenancy.Site{ID: s[0], TenantID: s[1], Name: "Site " + s[0], CreatedAt: t0}))
	}
	for _, d := range [][3]string{{"pump", "acme-north", "north-1"}, {"fan", "acme-north", "north-2"},
		{"beta-dev", "beta", "beta-1"}, {"root-dev", "root", "root-1"}} {
		must("device "+d[0], st.CreateDevice(ctx, registry.Device{ID: d[0], TenantID: d[1], Status: registry.DeviceEnabled,
			PrimaryKey: make([]byte, 32), SecondaryKey: make([]byte, 32), CreatedAt: t0,
			Info: registry.DeviceInfo{SiteID: d[2], Name: "The " + d[0]}}))
	}
	type person struct {
		id, tenant string
		role       identity.Role
		status     identity.UserStatus
		prefs      *notifystore.NotificationPrefs
	}
	on := &notifystore.NotificationPrefs{Email: true}
	people := []person{
		{"acme-admin", "acme", identity.RoleCustomerAdmin, identity.UserActive, on},
		{"north-admin", "acme-north", identity.RoleCustomerAdmin, identity.UserActive, on},
		{"north-quiet", "acme-north", identity.RoleCustomerAdmin, identity.UserActive, &notifystore.NotificationPrefs{Email: false}},
		{"north-unset", "acme-north", identity.RoleCustomerUser, identity.UserActive, nil},
		{"north-critical", "acme-north", identity.RoleCustomerUser, identity.UserActive,
			&notifystore.NotificationPrefs{Email: true, Severities: []string{"critical"}}},
		{"north-site2", "acme-north", identity.RoleCustomerUser, identity.UserActive,
			&notifystore.NotificationPrefs{Email: true, SiteIDs: []string{"north-2"}}},
		{"north-pending", "acme-north", identity.RoleCustomerUser, identity.UserPending, on},
		{"north-disabled", "acme-north", identity.RoleCustomerUser, identity.UserDisabled, on},
		{"beta-admin", "beta", identity.RoleCustomerAdmin, identity.UserActive, on},
		{"op-admin", "root", identity.RoleOperatorAdmin, identity.UserActive, on},
		{"op-service", "root", identity.RoleOperatorService, identity.UserActive, on},
		{"sup-site", "installer", identity.RoleSupporter, identity.UserActive, on},
		{"sup-device", "installer", identity.RoleSupporter, identity.UserActive, on},
		{"sup-revoked", "installer", identity.RoleSupporter, identity.UserActive, on},
		{"sup-expired", "installer", identity.RoleSupporter, identity.UserActive, on},
		{"sup-fan", "installer", identity.RoleSupporter, identity.UserActive, on},
		{"sup-none", "acme-north", identity.RoleSupporter, identity.UserActive, on}, // in the tenant, without a grant
	}
	for _, p := range people {
		u := identity.User{ID: p.id, TenantID: p.tenant, Email: p.id + "@example.com", FirstName: p.id, LastName: "Test",
			Role: p.role, Status: p.status, CreatedBy: "test", CreatedAt: t0}
		if p.role == identity.RoleSupporter {
			u.SupporterID = "S-" + p.id
		}
		must("user "+p.id, st.CreateUser(ctx, u))
		if p.prefs != nil {
			pr := *p.prefs
			pr.UserID = p.id
			must("prefs of "+p.id, st.SetNotificationPrefs(ctx, pr))
		}
	}
	grants := []access.Grant{
		{ID: "g-site", SupporterUserID: "sup-site", SiteID: "north-1"},
		{ID: "g-device", SupporterUserID: "sup-device", DeviceID: "pump"},
		{ID: "g-revoked", SupporterUserID: "sup-revoked", SiteID: "north-1"},
		{ID: "g-expired", SupporterUserID: "sup-expired", SiteID: "north-1", ExpiresAt: t0.Add(-time.Hour)},
		{ID: "g-fan", SupporterUserID: "sup-fan", SiteID: "north-2"},
	}
	for _, g := range grants {
		g.TenantID, g.CreatedBy, g.CreatedAt = "acme-north", "north-admin", t0.Add(-2*time.Hour)
		must("grant "+g.ID, st.CreateGrant(ctx, g))
	}
	must("revoke", st.RevokeGrant(ctx, "g-revoked", "north-admin", t0.Add(-time.Hour)))
	for _, r := range []string{"r-pressure", "r-temp", "r-flow"} {
		must("rule "+r, st.CreateAlarmRule(ctx, alarm.StoredRule{ID: r, TenantID: "acme-north", Name: "Rule " + r,
			Enabled: true, Spec: json.RawMessage(`{}`), CreatedBy: "north-admin", CreatedAt: t0, UpdatedAt: t0}))
	}
}

// emails is the test world's addresses of the given users, sorted.
func emails(ids ...string) []string {
	var out []string
	for _, id := range ids {
		out = append(out, id+"@example.com")
	}
	slices.Sort(out)
	return out
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }

// webhookDeliveries lists an alarm's webhook deliveries in id order.
func (e *env) webhookDeliveries(alarmID int64) []notifystore.Delivery {
	e.t.Helper()
	var ds []notifystore.Delivery
	for _, d := range e.deliveries(alarmID) {
		if d.Channel == notify.ChannelWebhook {
			ds = append(ds, d)
		}
	}
	return ds
}

// show formats deliveries for messages, without their payloads.
func show(ds ...notifystore.Delivery) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "{id %d tenant %s %s %s %s state %s attempts %d next %s error %q sent %s} ", d.ID, d.TenantID,
			d.Channel, d.Target, d.Event, d.State, d.Attempts, d.NextAt.Format(time.RFC3339), d.LastError, d.SentAt.Format(time.RFC3339))
	}
	return b.String()
}
