package notifysql_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/notify/notifysql"
	"github.com/warden-iot/warden/internal/notify/notifystore"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/enginetest"
	"github.com/warden-iot/warden/internal/tenancy"
)

// The conformance suite of notifystore.Store on both engines. (What
// deleting a tenant or a device takes of it is checked with the alarms,
// in package alarmsql's suite.)
var notifyTests = []struct {
	name string
	fn   func(t *testing.T, s *env)
}{
	{"NotificationPrefs", testNotificationPrefs},
	{"Webhooks", testWebhooks},
	{"Escalation", testEscalation},
	{"Deliveries", testDeliveries},
}

func TestStore(t *testing.T) {
	enginetest.Run(t, func(t *testing.T, open func(t *testing.T) (store.Store, database.DB)) {
		for _, tc := range notifyTests {
			t.Run(tc.name, func(t *testing.T) { tc.fn(t, newEnv(t, open)) })
		}
	})
}

// engine is the engine under the store, one level further down in env.
type engine struct{ store.Store }

// env is what a test runs on: the store under test and below it the
// engine it shares a database with, for prerequisites (tenants, users).
// The store's methods are promoted from a shallower depth than the
// engine's, so that s.ListWebhooks is notifysql's, not the engine's copy.
type env struct {
	*notifysql.Store
	*engine
}

func newEnv(t *testing.T, open func(t *testing.T) (store.Store, database.DB)) *env {
	t.Helper()
	st, db := open(t)
	kr := enginetest.WithKeyring(t, st)
	e := &env{Store: notifysql.New(db), engine: &engine{st}}
	e.Store.SetSealer(kr)
	return e
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ctx(t *testing.T) context.Context { return t.Context() }

func testNotificationPrefs(t *testing.T, s *env) {
	enginetest.User(t, s, enginetest.NewUser("u1", tenancy.RootTenantID, identity.RoleOperatorAdmin))
	for _, id := range []string{"u1", "nobody"} {
		p, err := s.GetNotificationPrefs(ctx(t), id)
		if err != nil || p.UserID != id || p.Email || len(p.Severities) != 0 || len(p.SiteIDs) != 0 {
			t.Errorf("GetNotificationPrefs(%s) without prefs = %+v, %v; want defaults", id, p, err)
		}
	}
	want := notifystore.NotificationPrefs{UserID: "u1", Email: true, Severities: []string{"critical"}, SiteIDs: []string{"s1", "s2"}}
	if err := s.SetNotificationPrefs(ctx(t), want); err != nil {
		t.Fatal(err)
	}
	p, err := s.GetNotificationPrefs(ctx(t), "u1")
	if err != nil || p.UserID != "u1" || !p.Email || !slices.Equal(p.Severities, want.Severities) || !slices.Equal(p.SiteIDs, want.SiteIDs) {
		t.Fatalf("GetNotificationPrefs = %+v, %v; want %+v", p, err, want)
	}
	want = notifystore.NotificationPrefs{UserID: "u1", Email: false, Severities: nil, SiteIDs: []string{"s3"}}
	if err := s.SetNotificationPrefs(ctx(t), want); err != nil {
		t.Fatal(err)
	}
	p, err = s.GetNotificationPrefs(ctx(t), "u1")
	if err != nil || p.Email || len(p.Severities) != 0 || !slices.Equal(p.SiteIDs, want.SiteIDs) {
		t.Fatalf("GetNotificationPrefs after update = %+v, %v; want %+v", p, err, want)
	}
	enginetest.WantErr(t, "SetNotificationPrefs of an unknown user", s.SetNotificationPrefs(ctx(t), notifystore.NotificationPrefs{UserID: "nobody", Email: true}),
		database.ErrNotFound)

	// The prefs go with the user.
	if err := s.DeleteUser(ctx(t), "u1"); err != nil {
		t.Fatal(err)
	}
	enginetest.User(t, s, enginetest.NewUser("u1", tenancy.RootTenantID, identity.RoleOperatorAdmin))
	if p, err := s.GetNotificationPrefs(ctx(t), "u1"); err != nil || p.Email || len(p.SiteIDs) != 0 {
		t.Errorf("prefs of a user created again = %+v, %v; want defaults", p, err)
	}
}

func testWebhooks(t *testing.T, s *env) {
	enginetest.Tenant(t, s, "acme", tenancy.RootTenantID)
	enginetest.Tenant(t, s, "beta", tenancy.RootTenantID)
	w1 := notifystore.Webhook{ID: "w1", TenantID: "acme", URL: "https://acme.example/hook", Secret: []byte{0, 1, 2, 0xff},
		Severities: []string{"critical"}, Enabled: true, CreatedAt: t0}
	for _, w := range []notifystore.Webhook{w1,
		{ID: "w0", TenantID: "beta", URL: "https://beta.example/hook", Secret: []byte("s"), CreatedAt: t0},
		{ID: "w2", TenantID: "acme", URL: "https://acme.example/other", Secret: []byte("t"), Enabled: true, CreatedAt: t0.Add(time.Hour)},
	} {
		if err := s.CreateWebhook(ctx(t), w); err != nil {
			t.Fatalf("CreateWebhook(%s): %v", w.ID, err)
		}
	}
	enginetest.WantErr(t, "CreateWebhook twice", s.CreateWebhook(ctx(t), w1), database.ErrConflict)
	enginetest.WantErr(t, "CreateWebhook of an unknown tenant",
		s.CreateWebhook(ctx(t), notifystore.Webhook{ID: "wx", TenantID: "ghost", URL: "https://x", Secret: []byte("x")}), database.ErrNotFound)

	hookIDs := func(ws []notifystore.Webhook) []string {
		out := []string{}
		for _, w := range ws {
			out = append(out, w.ID)
		}
		return out
	}
	for _, tc := range []struct {
		tenants []string
		want    []string
	}{
		{nil, []string{"w0", "w1", "w2"}},
		{[]string{"acme"}, []string{"w1", "w2"}},
		{[]string{}, []string{}},
	} {
		ws, err := s.ListWebhooks(ctx(t), tc.tenants)
		if err != nil || !slices.Equal(hookIDs(ws), tc.want) {
			t.Errorf("ListWebhooks(%v) = %v, %v; want %v", tc.tenants, hookIDs(ws), err, tc.want)
		}
	}
	ws, _ := s.ListWebhooks(ctx(t), []string{"acme"})
	if got := ws[0]; got.ID != "w1" || got.TenantID != "acme" || got.URL != w1.URL || !bytes.Equal(got.Secret, w1.Secret) ||
		!slices.Equal(got.Severities, w1.Severities) || !got.Enabled || !got.CreatedAt.Equal(t0) {
		t.Errorf("webhook w1 = %+v, want %+v", got, w1)
	}
	if got := ws[1]; len(got.Severities) != 0 || !got.Enabled {
		t.Errorf("webhook w2 = %+v", got)
	}
	if err := s.DeleteWebhook(ctx(t), "w1"); err != nil {
		t.Fatal(err)
	}
	enginetest.WantErr(t, "DeleteWebhook twice", s.DeleteWebhook(ctx(t), "w1"), database.ErrNotFound)
	if ws, err := s.ListWebhooks(ctx(t), nil); err != nil || !slices.Equal(hookIDs(ws), []string{"w0", "w2"}) {
		t.Errorf("after delete ListWebhooks = %v, %v", hookIDs(ws), err)
	}
}

func testEscalation(t *testing.T, s *env) {
	enginetest.Tenant(t, s, "acme", tenancy.RootTenantID)
	_, err := s.GetEscalation(ctx(t), "acme")
	enginetest.WantErr(t, "GetEscalation without one", err, database.ErrNotFound)
	want := notifystore.Escalation{TenantID: "acme", Delay: 15 * time.Minute, Email: "oncall@acme.example"}
	if err := s.SetEscalation(ctx(t), want); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetEscalation(ctx(t), "acme"); err != nil || got != want {
		t.Fatalf("GetEscalation = %+v, %v; want %+v", got, err, want)
	}
	want = notifystore.Escalation{TenantID: "acme", Delay: 90 * time.Second, Email: "boss@acme.example"}
	if err := s.SetEscalation(ctx(t), want); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetEscalation(ctx(t), "acme"); err != nil || got != want {
		t.Fatalf("GetEscalation after update = %+v, %v; want %+v", got, err, want)
	}
	if err := s.SetEscalation(ctx(t), notifystore.Escalation{TenantID: "acme"}); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetEscalation(ctx(t), "acme")
	enginetest.WantErr(t, "GetEscalation after delay 0", err, database.ErrNotFound)
	if err := s.SetEscalation(ctx(t), notifystore.Escalation{TenantID: "acme"}); err != nil {
		t.Errorf("removing a missing escalation: %v", err)
	}
	enginetest.WantErr(t, "SetEscalation of an unknown tenant",
		s.SetEscalation(ctx(t), notifystore.Escalation{TenantID: "ghost", Delay: time.Minute, Email: "x@example.com"}), database.ErrNotFound)
}

func testDeliveries(t *testing.T, s *env) {
	enginetest.Tenant(t, s, "acme", tenancy.RootTenantID)
	enginetest.Tenant(t, s, "beta", tenancy.RootTenantID)
	d := func(tenant string, alarm int64, target string, next time.Time) notifystore.Delivery {
		return notifystore.Delivery{TenantID: tenant, AlarmID: alarm, Channel: "email", Target: target, Event: "raised",
			Payload: json.RawMessage(`{"alarm":` + fmt.Sprint(alarm) + `}`), NextAt: next, CreatedAt: t0}
	}
	if err := s.EnqueueDeliveries(ctx(t), nil); err != nil {
		t.Fatalf("EnqueueDeliveries(nil): %v", err)
	}
	if err := s.EnqueueDeliveries(ctx(t), []notifystore.Delivery{
		d("acme", 1, "a@example.com", t0.Add(2*time.Minute)), // 1
		d("acme", 1, "b@example.com", t0),                    // 2
		d("beta", 2, "c@example.com", t0.Add(2*time.Minute)), // 3
		d("acme", 3, "d@example.com", t0.Add(time.Hour)),     // 4
	}); err != nil {
		t.Fatal(err)
	}
	all, err := s.ListDeliveries(ctx(t), notifystore.DeliveryFilter{})
	if err != nil || len(all) != 4 {
		t.Fatalf("ListDeliveries = %+v, %v", all, err)
	}
	// Newest first.
	ids := make([]int64, 4)
	for i, x := range all {
		ids[3-i] = x.ID
	}
	if !(ids[0] < ids[1] && ids[1] < ids[2] && ids[2] < ids[3]) {
		t.Fatalf("delivery ids, newest first = %v", deliveryIDs(all))
	}
	first := all[3]
	if first.TenantID != "acme" || first.AlarmID != 1 || first.Channel != "email" || first.Target != "a@example.com" ||
		first.Event != "raised" || string(first.Payload) != `{"alarm":1}` || first.State != notifystore.DeliveryPending ||
		first.Attempts != 0 || !first.NextAt.Equal(t0.Add(2*time.Minute)) || first.LastError != "" ||
		!first.CreatedAt.Equal(t0) || !first.SentAt.IsZero() {
		t.Errorf("first delivery = %+v", first)
	}

	// Due: pending with next_at <= now, by next_at then id.
	due, err := s.DueDeliveries(ctx(t), t0.Add(2*time.Minute), 10)
	if err != nil || !slices.Equal(deliveryIDs(due), []int64{ids[1], ids[0], ids[2]}) {
		t.Fatalf("DueDeliveries = %v, %v; want %v", deliveryIDs(due), err, []int64{ids[1], ids[0], ids[2]})
	}
	if due, err := s.DueDeliveries(ctx(t), t0.Add(2*time.Minute), 2); err != nil || !slices.Equal(deliveryIDs(due), []int64{ids[1], ids[0]}) {
		t.Fatalf("DueDeliveries limit 2 = %v, %v", deliveryIDs(due), err)
	}

	// One is sent, one fails and is retried later, one gives up.
	sent := due[0]
	sent.State, sent.Attempts, sent.SentAt = notifystore.DeliverySent, 1, t0.Add(2*time.Minute)
	retry := due[1]
	retry.Attempts, retry.NextAt, retry.LastError = 1, t0.Add(10*time.Minute), "connection refused"
	failed := due[2]
	failed.State, failed.Attempts, failed.LastError = notifystore.DeliveryFailed, 5, "gave up"
	for _, x := range []notifystore.Delivery{sent, retry, failed} {
		if err := s.UpdateDelivery(ctx(t), x); err != nil {
			t.Fatal(err)
		}
	}
	enginetest.WantErr(t, "UpdateDelivery(unknown)", s.UpdateDelivery(ctx(t), notifystore.Delivery{ID: 999999, State: notifystore.DeliverySent}), database.ErrNotFound)
	if due, err := s.DueDeliveries(ctx(t), t0.Add(5*time.Minute), 10); err != nil || len(due) != 0 {
		t.Fatalf("DueDeliveries after updates = %v, %v; want none", deliveryIDs(due), err)
	}
	due, err = s.DueDeliveries(ctx(t), t0.Add(time.Hour), 10)
	if err != nil || !slices.Equal(deliveryIDs(due), []int64{ids[0], ids[3]}) {
		t.Fatalf("DueDeliveries an hour later = %v, %v; want %v", deliveryIDs(due), err, []int64{ids[0], ids[3]})
	}
	if got := due[0]; got.Attempts != 1 || got.LastError != "connection refused" || !got.NextAt.Equal(t0.Add(10*time.Minute)) ||
		got.State != notifystore.DeliveryPending {
		t.Errorf("retried delivery = %+v", got)
	}
	list, _ := s.ListDeliveries(ctx(t), notifystore.DeliveryFilter{State: notifystore.DeliverySent})
	if len(list) != 1 || list[0].ID != ids[1] || !list[0].SentAt.Equal(t0.Add(2*time.Minute)) || list[0].Attempts != 1 {
		t.Errorf("sent deliveries = %+v", list)
	}

	for _, tc := range []struct {
		name string
		f    notifystore.DeliveryFilter
		want []int64
	}{
		{"tenant", notifystore.DeliveryFilter{TenantIDs: []string{"acme"}}, []int64{ids[3], ids[1], ids[0]}},
		{"no tenants", notifystore.DeliveryFilter{TenantIDs: []string{}}, []int64{}},
		{"alarm", notifystore.DeliveryFilter{AlarmID: 1}, []int64{ids[1], ids[0]}},
		{"failed", notifystore.DeliveryFilter{State: notifystore.DeliveryFailed}, []int64{ids[2]}},
		{"pending of acme", notifystore.DeliveryFilter{TenantIDs: []string{"acme"}, State: notifystore.DeliveryPending}, []int64{ids[3], ids[0]}},
		{"limit", notifystore.DeliveryFilter{Limit: 2}, []int64{ids[3], ids[2]}},
	} {
		got, err := s.ListDeliveries(ctx(t), tc.f)
		if err != nil || !slices.Equal(deliveryIDs(got), tc.want) {
			t.Errorf("%s: ListDeliveries = %v, %v; want %v", tc.name, deliveryIDs(got), err, tc.want)
		}
	}

	// The default limit is 100.
	var many []notifystore.Delivery
	for range 105 {
		many = append(many, d("beta", 7, "bulk@example.com", t0))
	}
	if err := s.EnqueueDeliveries(ctx(t), many); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ListDeliveries(ctx(t), notifystore.DeliveryFilter{AlarmID: 7}); err != nil || len(got) != 100 {
		t.Errorf("ListDeliveries without a limit = %d, %v; want 100", len(got), err)
	}
	if err := s.EnqueueDeliveries(ctx(t), []notifystore.Delivery{d("beta", 8, "x", t0), d("ghost", 8, "x", t0)}); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("EnqueueDeliveries of an unknown tenant: %v, want ErrNotFound", err)
	}
	if got, _ := s.ListDeliveries(ctx(t), notifystore.DeliveryFilter{AlarmID: 8}); len(got) != 0 {
		t.Errorf("a failed EnqueueDeliveries stored %d deliveries", len(got))
	}
}

// deliveryIDs lists the ids of deliveries.
func deliveryIDs(ds []notifystore.Delivery) []int64 {
	out := []int64{}
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}
