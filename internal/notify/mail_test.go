package notify_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/warden-iot/warden/internal/notify"
	"github.com/warden-iot/warden/internal/notify/notifystore"
	"github.com/warden-iot/warden/internal/store"
)

// A raised alarm is e-mailed to those who asked for it and may see the
// machine: nobody else.
func TestRaisedAlarmMail(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, notify.Config{})
		ctx := t.Context()

		a := e.raise("pump", "north-1", "r-pressure", "critical")
		e.notify(a, notify.EventRaised)
		e.runOnce()
		// Not: north-quiet (e-mail off), north-unset (no settings),
		// north-site2 (other site), north-pending and north-disabled (not
		// active), beta-admin (a sibling tenant), op-admin and op-service
		// (no factory access), sup-revoked, sup-expired, sup-fan (no
		// grant in force for the pump), sup-none (no grant at all).
		want := emails("acme-admin", "north-admin", "north-critical", "sup-site", "sup-device")
		if got := e.newRecipients(); !slices.Equal(got, want) {
			t.Errorf("raised critical on pump: mail to %v, want %v", got, want)
		}

		// Severity filter: north-critical does not hear of a warning.
		w := e.raise("pump", "north-1", "r-temp", "warning")
		e.notify(w, notify.EventRaised)
		e.runOnce()
		want = emails("acme-admin", "north-admin", "sup-site", "sup-device")
		if got := e.newRecipients(); !slices.Equal(got, want) {
			t.Errorf("raised warning on pump: mail to %v, want %v", got, want)
		}

		// Site filter: north-site2 hears of the fan at north-2, and so does
		// the supporter granted that site.
		f := e.raise("fan", "north-2", "r-temp", "warning")
		e.notify(f, notify.EventRaised)
		e.runOnce()
		want = emails("acme-admin", "north-admin", "north-site2", "sup-fan")
		if got := e.newRecipients(); !slices.Equal(got, want) {
			t.Errorf("raised warning on fan: mail to %v, want %v", got, want)
		}

		// Once the owner switches factory service access on, operator
		// staff hear of the pump too.
		if err := st.SetFactoryAccess(ctx, "north-1", true, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		b := e.raise("pump", "north-1", "r-flow", "critical")
		e.notify(b, notify.EventRaised)
		e.runOnce()
		want = emails("acme-admin", "north-admin", "north-critical", "op-admin", "op-service", "sup-site", "sup-device")
		if got := e.newRecipients(); !slices.Equal(got, want) {
			t.Errorf("raised critical on pump with factory access: mail to %v, want %v", got, want)
		}

		// The operator's own machine: operator staff only.
		r := e.raise("root-dev", "root-1", "r-root", "critical")
		e.notify(r, notify.EventRaised)
		e.runOnce()
		want = emails("op-admin", "op-service")
		if got := e.newRecipients(); !slices.Equal(got, want) {
			t.Errorf("raised critical on root-dev: mail to %v, want %v", got, want)
		}

		// A revoked grant stops the mails.
		if err := st.RevokeGrant(ctx, "g-site", "north-admin", e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		c := e.raise("pump", "north-1", "r-pressure-2", "warning")
		e.notify(c, notify.EventRaised)
		e.runOnce()
		want = emails("acme-admin", "north-admin", "op-admin", "op-service", "sup-device")
		if got := e.newRecipients(); !slices.Equal(got, want) {
			t.Errorf("after revoking sup-site's grant: mail to %v, want %v", got, want)
		}

		// Other events are not e-mailed.
		for _, ev := range []string{notify.EventRetriggered, notify.EventAcknowledged, notify.EventCleared} {
			e.notify(a, ev)
		}
		e.runOnce()
		if got := e.newRecipients(); len(got) != 0 {
			t.Errorf("retriggered, acknowledged, cleared: mail to %v, want none", got)
		}
	})
}

// The mail names the alarm, the machine, its site and rule, the value, the
// time in UTC, the state and the link.
func TestMailContent(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, notify.Config{})
		a := e.raise("pump", "north-1", "r-pressure", "critical")
		e.notify(a, notify.EventRaised)
		e.runOnce()
		var m *struct{ subject, text string }
		for _, r := range e.newMail() {
			if slices.Contains(r.To, "north-admin@example.com") {
				m = &struct{ subject, text string }{r.Subject, r.Text}
			}
		}
		if m == nil {
			t.Fatal("no mail to north-admin")
		}
		if want := "[Warden] CRITICAL: Pressure high — pump"; m.subject != want {
			t.Errorf("subject %q, want %q", m.subject, want)
		}
		for _, want := range []string{
			"Pressure high",
			"The pump (pump)",
			"Site north-1 (north-1)",
			"Rule r-pressure (r-pressure)",
			"12.5",
			"2026-03-02 08:00:00 UTC",
			"active, not acknowledged",
			"https://warden.example.com/api/v1/alarms/" + itoa(a.ID),
		} {
			if !strings.Contains(m.text, want) {
				t.Errorf("mail text lacks %q:\n%s", want, m.text)
			}
		}
		for _, d := range e.deliveries(a.ID) {
			if d.Channel == notify.ChannelEmail && (d.State != notifystore.DeliverySent || d.Attempts != 1 || d.SentAt.IsZero()) {
				t.Errorf("e-mail delivery %s, want sent after 1 attempt", show(d))
			}
		}
	})
}

// Without a mail sender no e-mail deliveries are made.
func TestNoMailer(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, notify.Config{})
		n := notify.New(st, nil, notify.Config{}, nil, e.clock)
		a := e.raise("pump", "north-1", "r-pressure", "critical")
		if err := n.Alarm(t.Context(), a, notify.EventRaised); err != nil {
			t.Fatal(err)
		}
		if err := n.RunOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
		if ds := e.deliveries(a.ID); len(ds) != 0 {
			t.Errorf("deliveries %s, want none", show(ds...))
		}
		if got := e.newRecipients(); len(got) != 0 {
			t.Errorf("mail to %v", got)
		}
	})
}

func TestUnknownEvent(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, notify.Config{})
		a := e.raise("pump", "north-1", "r-pressure", "critical")
		for _, ev := range []string{"", "escalated", "deleted"} {
			if err := e.n.Alarm(t.Context(), a, ev); err == nil {
				t.Errorf("Alarm(%q) = nil, want an error", ev)
			}
		}
	})
}
