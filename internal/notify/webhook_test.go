package notify_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/clock/clocktest"
	"github.com/warden-iot/warden/internal/notify"
	"github.com/warden-iot/warden/internal/notify/notifystore"
	"github.com/warden-iot/warden/internal/store"
)

// hookCall is one request a receiver got.
type hookCall struct {
	hook   string // the path: the webhook's id
	header http.Header
	body   []byte
	verify error // Verify's verdict, with the hook's secret and the clock
}

// receiver is a webhook endpoint serving every test webhook at /<id>.
type receiver struct {
	srv    *httptest.Server
	clock  *clocktest.Fake
	status func(hook string, call int) int // call counts from 1 per hook

	mu      sync.Mutex
	secrets map[string][]byte
	calls   []hookCall
	counts  map[string]int
	seen    int
}

func newReceiver(t *testing.T, clk *clocktest.Fake, status func(hook string, call int) int) *receiver {
	r := &receiver{clock: clk, status: status, secrets: map[string][]byte{}, counts: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	hook := strings.TrimPrefix(req.URL.Path, "/")
	r.mu.Lock()
	secret := r.secrets[hook]
	r.counts[hook]++
	n := r.counts[hook]
	r.mu.Unlock()
	verr := notify.Verify(secret, req.Header.Get(notify.HeaderTimestamp), body, req.Header.Get(notify.HeaderSignature),
		r.clock.Now(), 5*time.Minute)
	if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "want a JSON POST", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.calls = append(r.calls, hookCall{hook: hook, header: req.Header.Clone(), body: body, verify: verr})
	r.mu.Unlock()
	status := http.StatusNoContent
	if r.status != nil {
		status = r.status(hook, n)
	}
	if status == http.StatusTemporaryRedirect {
		http.Redirect(w, req, "/elsewhere", status)
		return
	}
	w.WriteHeader(status)
}

// webhook registers a webhook at the receiver.
func (r *receiver) webhook(t *testing.T, st store.Store, id, tenant string, severities []string, enabled bool) notifystore.Webhook {
	t.Helper()
	h := notifystore.Webhook{ID: id, TenantID: tenant, URL: r.srv.URL + "/" + id, Secret: []byte("secret of " + id),
		Severities: severities, Enabled: enabled, CreatedAt: t0}
	if err := st.CreateWebhook(t.Context(), h); err != nil {
		t.Fatalf("CreateWebhook(%s): %v", id, err)
	}
	r.mu.Lock()
	r.secrets[id] = h.Secret
	r.mu.Unlock()
	return h
}

// take returns the calls since the last take, checking each signature.
func (r *receiver) take(t *testing.T) []hookCall {
	t.Helper()
	r.mu.Lock()
	calls := slices.Clone(r.calls[r.seen:])
	r.seen = len(r.calls)
	r.mu.Unlock()
	for _, c := range calls {
		if c.verify != nil {
			t.Errorf("call to %s: %v", c.hook, c.verify)
		}
	}
	return calls
}

// hooks is the sorted "hook event" pairs of calls.
func hooks(calls []hookCall) []string {
	var out []string
	for _, c := range calls {
		out = append(out, c.hook+" "+c.header.Get(notify.HeaderEvent))
	}
	slices.Sort(out)
	return out
}

// Webhooks of the tenants on the machine's tenant path hear of every event
// whose severity they want; the operator's only with factory access.
func TestWebhookRecipients(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, notify.Config{})
		r := newReceiver(t, e.clock, nil)
		r.webhook(t, st, "h-north", "acme-north", nil, true)
		r.webhook(t, st, "h-acme", "acme", []string{"critical"}, true)
		r.webhook(t, st, "h-beta", "beta", nil, true)
		r.webhook(t, st, "h-root", "root", nil, true)
		r.webhook(t, st, "h-off", "acme-north", nil, false)

		check := func(what string, want ...string) {
			t.Helper()
			e.runOnce()
			slices.Sort(want)
			if got := hooks(r.take(t)); !slices.Equal(got, want) {
				t.Errorf("%s: calls %q, want %q", what, got, want)
			}
		}

		w := e.raise("pump", "north-1", "r-temp", "warning")
		e.notify(w, notify.EventRaised)
		check("warning on pump", "h-north raised")

		c := e.raise("pump", "north-1", "r-pressure", "critical")
		for _, ev := range []string{notify.EventRaised, notify.EventRetriggered, notify.EventAcknowledged, notify.EventCleared} {
			e.notify(c, ev)
		}
		check("critical on pump",
			"h-north raised", "h-north retriggered", "h-north acknowledged", "h-north cleared",
			"h-acme raised", "h-acme retriggered", "h-acme acknowledged", "h-acme cleared")

		if err := st.SetFactoryAccess(t.Context(), "north-1", true, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		e.notify(w, notify.EventCleared)
		check("warning on pump with factory access", "h-north cleared", "h-root cleared")

		e.notify(e.raise("root-dev", "root-1", "r-root", "warning"), notify.EventRaised)
		check("warning on root-dev", "h-root raised")

		e.notify(e.raise("beta-dev", "beta-1", "r-beta", "warning"), notify.EventRaised)
		check("warning on beta-dev", "h-beta raised")
	})
}

// The body is the stable payload, signed over timestamp and body.
func TestWebhookPayload(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, notify.Config{})
		r := newReceiver(t, e.clock, nil)
		h := r.webhook(t, st, "h-north", "acme-north", nil, true)

		a := e.raise("pump", "north-1", "r-pressure", "critical")
		e.clock.Advance(time.Minute)
		acked, err := st.AckAlarm(t.Context(), a.ID, "north-admin", "on it", e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		e.notify(acked, notify.EventAcknowledged)
		e.runOnce()
		calls := r.take(t)
		if len(calls) != 1 {
			t.Fatalf("%d calls, want 1", len(calls))
		}
		c := calls[0]
		ds := e.deliveries(a.ID)
		if len(ds) != 1 {
			t.Fatalf("deliveries %s, want 1", show(ds...))
		}
		d := ds[0]
		if d.Channel != notify.ChannelWebhook || d.Target != "h-north" || d.TenantID != "acme-north" ||
			d.Event != notify.EventAcknowledged || d.State != notifystore.DeliverySent || d.Attempts != 1 {
			t.Errorf("delivery %s", show(d))
		}

		ts := c.header.Get(notify.HeaderTimestamp)
		if want := strconv.FormatInt(e.clock.Now().Unix(), 10); ts != want {
			t.Errorf("timestamp %s, want %s", ts, want)
		}
		if got := c.header.Get(notify.HeaderDelivery); got != itoa(d.ID) {
			t.Errorf("delivery header %s, want %d", got, d.ID)
		}
		// The signature, computed as the package documentation tells a
		// receiver to.
		mac := hmac.New(sha256.New, h.Secret)
		mac.Write([]byte(ts + "." + string(c.body)))
		if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); c.header.Get(notify.HeaderSignature) != want {
			t.Errorf("signature %s, want %s", c.header.Get(notify.HeaderSignature), want)
		}

		var body map[string]any
		if err := json.Unmarshal(c.body, &body); err != nil {
			t.Fatal(err)
		}
		alarm, _ := body["alarm"].(map[string]any)
		want := map[string]any{
			"id": float64(d.ID), "event": "acknowledged", "sentAt": "2026-03-02T08:01:00Z",
		}
		for k, v := range want {
			if body[k] != v {
				t.Errorf("body %s = %v, want %v", k, body[k], v)
			}
		}
		wantAlarm := map[string]any{
			"id": float64(a.ID), "tenantId": "acme-north", "ruleId": "r-pressure", "deviceId": "pump", "siteId": "north-1",
			"kind": "rule", "severity": "critical", "message": "Pressure high", "value": 12.5, "state": "active",
			"raisedAt": "2026-03-02T08:00:00Z", "lastAt": "2026-03-02T08:00:00Z", "retriggers": float64(0),
			"ackedAt": "2026-03-02T08:01:00Z", "ackedBy": "north-admin",
		}
		for k, v := range wantAlarm {
			if alarm[k] != v {
				t.Errorf("body alarm.%s = %v, want %v", k, alarm[k], v)
			}
		}
		for k := range alarm {
			if _, ok := wantAlarm[k]; !ok {
				t.Errorf("body alarm has unexpected %s = %v", k, alarm[k])
			}
		}
		if len(body) != 4 {
			t.Errorf("body has %d fields, want id, event, alarm, sentAt: %s", len(body), c.body)
		}
	})
}

// A webhook that fails twice and then answers is retried with backoff and
// ends sent after 3 attempts; the body stays the same.
func TestWebhookRetry(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, notify.Config{})
		r := newReceiver(t, e.clock, func(_ string, call int) int {
			if call <= 2 {
				return http.StatusInternalServerError
			}
			return http.StatusOK
		})
		r.webhook(t, st, "h-north", "acme-north", nil, true)
		a := e.raise("pump", "north-1", "r-temp", "warning")
		e.notify(a, notify.EventRaised)

		delivery := func() notifystore.Delivery {
			t.Helper()
			ds := e.webhookDeliveries(a.ID)
			if len(ds) != 1 {
				t.Fatalf("webhook deliveries %s, want 1", show(ds...))
			}
			return ds[0]
		}
		step := func(advance time.Duration, wantCalls int) {
			t.Helper()
			e.clock.Advance(advance)
			e.runOnce()
			if got := len(r.take(t)); got != wantCalls {
				t.Fatalf("at %s: %d calls, want %d", e.clock.Now().Sub(t0), got, wantCalls)
			}
		}

		step(0, 1)
		d := delivery()
		if d.State != notifystore.DeliveryPending || d.Attempts != 1 || d.LastError != "HTTP 500" || !d.NextAt.Equal(t0.Add(30*time.Second)) {
			t.Fatalf("after the 1st try: %s, want pending, 1 attempt, HTTP 500, next at +30s", show(d))
		}
		step(29*time.Second, 0)
		step(time.Second, 1) // t0+30s
		d = delivery()
		if d.State != notifystore.DeliveryPending || d.Attempts != 2 || d.LastError != "HTTP 500" || !d.NextAt.Equal(t0.Add(90*time.Second)) {
			t.Fatalf("after the 2nd try: %s, want pending, 2 attempts, next at +90s", show(d))
		}
		step(59*time.Second, 0)
		step(time.Second, 1) // t0+90s
		d = delivery()
		if d.State != notifystore.DeliverySent || d.Attempts != 3 || !d.SentAt.Equal(t0.Add(90*time.Second)) {
			t.Fatalf("after the 3rd try: %s, want sent after 3 attempts at +90s", show(d))
		}
		step(time.Hour, 0)

		var bodies [][]byte
		r.mu.Lock()
		for _, c := range r.calls {
			bodies = append(bodies, c.body)
		}
		r.mu.Unlock()
		if len(bodies) != 3 || !slices.Equal(bodies[0], bodies[1]) || !slices.Equal(bodies[1], bodies[2]) {
			t.Errorf("the tries sent different bodies:\n%s", bodies)
		}
	})
}

// A webhook that always fails is given up after MaxAttempts, with the last
// error.
func TestWebhookGivesUp(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, notify.Config{MaxAttempts: 3, BaseBackoff: time.Minute})
		r := newReceiver(t, e.clock, func(string, int) int { return http.StatusServiceUnavailable })
		r.webhook(t, st, "h-north", "acme-north", nil, true)
		a := e.raise("pump", "north-1", "r-temp", "warning")
		e.notify(a, notify.EventRaised)
		for _, adv := range []time.Duration{0, time.Minute, 2 * time.Minute} {
			e.clock.Advance(adv)
			e.runOnce()
		}
		e.clock.Advance(24 * time.Hour)
		e.runOnce()
		if got := len(r.take(t)); got != 3 {
			t.Errorf("%d calls, want 3", got)
		}
		ds := e.webhookDeliveries(a.ID)
		if len(ds) != 1 || ds[0].State != notifystore.DeliveryFailed || ds[0].Attempts != 3 || ds[0].LastError != "HTTP 503" {
			t.Errorf("webhook deliveries %s, want one failed after 3 attempts with HTTP 503", show(ds...))
		}
	})
}

// Transport errors and redirects are failures, described without the URL.
func TestWebhookErrors(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, notify.Config{})
		r := newReceiver(t, e.clock, func(hook string, _ int) int {
			if hook == "h-redirect" {
				return http.StatusTemporaryRedirect
			}
			return http.StatusOK
		})
		r.webhook(t, st, "h-redirect", "acme-north", nil, true)

		closed := httptest.NewServer(http.NotFoundHandler())
		closedURL := closed.URL + "/hook?token=t0ps3cret"
		closed.Close()
		if err := st.CreateWebhook(t.Context(), notifystore.Webhook{ID: "h-closed", TenantID: "acme-north", URL: closedURL,
			Secret: []byte("s"), Enabled: true, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateWebhook(t.Context(), notifystore.Webhook{ID: "h-deleted", TenantID: "acme-north", URL: r.srv.URL + "/h-deleted",
			Secret: []byte("s"), Enabled: true, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}

		a := e.raise("pump", "north-1", "r-temp", "warning")
		e.notify(a, notify.EventRaised)
		if err := st.DeleteWebhook(t.Context(), "h-deleted"); err != nil {
			t.Fatal(err)
		}
		e.runOnce()

		got := map[string]notifystore.Delivery{}
		for _, d := range e.webhookDeliveries(a.ID) {
			got[d.Target] = d
		}
		if d := got["h-redirect"]; d.State != notifystore.DeliveryPending || d.LastError != "HTTP 307" {
			t.Errorf("redirect: %s, want pending with HTTP 307", show(d))
		}
		if d := got["h-closed"]; d.State != notifystore.DeliveryPending || !strings.HasPrefix(d.LastError, "dial tcp: ") ||
			strings.Contains(d.LastError, "127.0.0.1") || strings.Contains(d.LastError, "t0ps3cret") {
			t.Errorf("closed server: %s, want pending with a dial error without the URL", show(d))
		}
		if d := got["h-deleted"]; d.State != notifystore.DeliveryFailed || d.LastError != "webhook deleted" {
			t.Errorf("deleted webhook: %s, want failed", show(d))
		}
		for _, c := range r.take(t) {
			if c.hook != "h-redirect" {
				t.Errorf("unexpected call to %s", c.hook)
			}
		}
	})
}

func TestSignVerify(t *testing.T) {
	secret := []byte("it's a secret to everybody")
	body := []byte(`{"id":1,"event":"raised"}`)
	now := time.Unix(1767323045, 0)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("1767323045." + string(body)))
	sig := notify.Sign(secret, now.Unix(), body)
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); sig != want {
		t.Fatalf("Sign = %s, want %s", sig, want)
	}
	if err := notify.Verify(secret, "1767323045", body, sig, now.Add(4*time.Minute), 5*time.Minute); err != nil {
		t.Errorf("Verify of a good call: %v", err)
	}
	for _, tc := range []struct {
		name      string
		secret    []byte
		ts        string
		body      string
		sig       string
		now       time.Time
		maxAge    time.Duration
		wantError string
	}{
		{"wrong secret", []byte("guess"), "1767323045", string(body), sig, now, time.Minute, "does not match"},
		{"changed body", secret, "1767323045", `{"id":1,"event":"cleared"}`, sig, now, time.Minute, "does not match"},
		{"changed timestamp", secret, "1767323046", string(body), sig, now, time.Minute, "does not match"},
		{"padded timestamp", secret, "01767323045", string(body), sig, now, time.Minute, "does not match"},
		{"no signature", secret, "1767323045", string(body), "", now, time.Minute, "does not match"},
		{"malformed timestamp", secret, "yesterday", string(body), sig, now, time.Minute, "not a Unix time"},
		{"old", secret, "1767323045", string(body), sig, now.Add(6 * time.Minute), 5 * time.Minute, "old"},
		{"old, default age", secret, "1767323045", string(body), sig, now.Add(6 * time.Minute), 0, "old"},
		{"from the future", secret, "1767323045", string(body), sig, now.Add(-6 * time.Minute), 5 * time.Minute, "ahead"},
	} {
		err := notify.Verify(tc.secret, tc.ts, []byte(tc.body), tc.sig, tc.now, tc.maxAge)
		if err == nil || !strings.Contains(err.Error(), tc.wantError) {
			t.Errorf("%s: Verify = %v, want an error containing %q", tc.name, err, tc.wantError)
		}
	}
}

// Run delivers in the background until its context ends.
func TestRun(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, notify.Config{PollEvery: 10 * time.Millisecond})
		r := newReceiver(t, e.clock, nil)
		r.webhook(t, st, "h-north", "acme-north", nil, true)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			e.n.Run(ctx)
		}()
		if err := e.clock.BlockUntil(ctx, 1); err != nil { // Run's poll ticker
			t.Fatal(err)
		}
		a := e.raise("pump", "north-1", "r-temp", "warning")
		e.notify(a, notify.EventRaised)
		deadline := time.Now().Add(10 * time.Second)
		for {
			ds := e.webhookDeliveries(a.ID)
			if len(ds) == 1 && ds[0].State == notifystore.DeliverySent {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("not delivered in time: %s", show(ds...))
			}
			e.clock.Advance(10 * time.Millisecond) // the next poll round
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
		if got := hooks(r.take(t)); !slices.Equal(got, []string{"h-north raised"}) {
			t.Errorf("calls %q", got)
		}
	})
}

// Post hands events to Run's fan-out; events still queued when Run's
// context ends are put in the outbox before it returns.
func TestPostFansOutInRun(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, notify.Config{PollEvery: time.Hour})
		r := newReceiver(t, e.clock, nil)
		r.webhook(t, st, "h-north", "acme-north", nil, true)
		a := e.raise("pump", "north-1", "r-temp", "warning")
		e.n.Post(t.Context(), a, notify.EventRaised) // queued before Run starts
		ctx, cancel := context.WithCancel(t.Context())
		cancel() // Run stops at once: the queued event must still reach the outbox
		e.n.Run(ctx)
		if ds := e.webhookDeliveries(a.ID); len(ds) != 1 || ds[0].Event != notify.EventRaised {
			t.Fatalf("outbox after Run: %s", show(ds...))
		}
	})
}
