package notify_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/notify"
	"github.com/warden-iot/warden/internal/notify/notifystore"
	"github.com/warden-iot/warden/internal/store"
)

// An unacknowledged critical alarm is escalated once, after the delay:
// not before, not twice (not after a restart either), and not when it is
// acknowledged or only a warning.
func TestEscalation(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, notify.Config{})
		ctx := t.Context()
		r := newReceiver(t, e.clock, nil)
		r.webhook(t, st, "h-acme", "acme", nil, true)
		r.webhook(t, st, "h-north", "acme-north", nil, true)
		for _, esc := range []notifystore.Escalation{
			{TenantID: "acme", Delay: 15 * time.Minute, Email: "oncall@acme.example"},
			// The operator's escalation does not reach a customer's
			// machine without factory access.
			{TenantID: "root", Delay: 5 * time.Minute, Email: "ops@warden.example"},
		} {
			if err := st.SetEscalation(ctx, esc); err != nil {
				t.Fatal(err)
			}
		}

		// Stored without telling the notifier: only escalation mails here.
		critical := e.raise("pump", "north-1", "r-pressure", "critical")
		warning := e.raise("pump", "north-1", "r-temp", "warning")
		acked := e.raise("fan", "north-2", "r-pressure", "critical")
		e.clock.Advance(time.Minute)
		if _, err := st.AckAlarm(ctx, acked.ID, "north-admin", "", e.clock.Now()); err != nil {
			t.Fatal(err)
		}

		e.clock.Advance(14*time.Minute - time.Second) // t0 + 15m - 1s
		e.runOnce()
		if got := e.newRecipients(); len(got) != 0 {
			t.Fatalf("before the delay: mail to %v", got)
		}
		if got := r.take(t); len(got) != 0 {
			t.Fatalf("before the delay: calls %v", hooks(got))
		}

		e.clock.Advance(time.Second) // t0 + 15m
		e.runOnce()
		msgs := e.newMail()
		if len(msgs) != 1 || !slices.Equal(msgs[0].To, []string{"oncall@acme.example"}) {
			var to [][]string
			for _, m := range msgs {
				to = append(to, m.To)
			}
			t.Fatalf("after the delay: mails to %v, want one to oncall@acme.example", to)
		}
		if want := "[Warden] UNACKNOWLEDGED CRITICAL: Pressure high — pump"; msgs[0].Subject != want {
			t.Errorf("subject %q, want %q", msgs[0].Subject, want)
		}
		if !strings.Contains(msgs[0].Text, "not been acknowledged for 15m0s") || !strings.Contains(msgs[0].Text, "Tenant acme") {
			t.Errorf("text:\n%s", msgs[0].Text)
		}
		if got, want := hooks(r.take(t)), []string{"h-acme escalated"}; !slices.Equal(got, want) {
			t.Errorf("webhook calls %q, want %q", got, want)
		}

		for range 3 {
			e.clock.Advance(time.Minute)
			e.runOnce()
		}
		e.n = e.notifier() // a restart
		e.runOnce()
		if got := e.newRecipients(); len(got) != 0 {
			t.Errorf("escalated again: mail to %v", got)
		}
		if got := r.take(t); len(got) != 0 {
			t.Errorf("escalated again: calls %q", hooks(got))
		}

		var escalated []string
		for _, id := range []int64{critical.ID, warning.ID, acked.ID} {
			for _, d := range e.deliveries(id) {
				if d.Event == notify.EventEscalated {
					escalated = append(escalated, itoa(id)+" "+d.Channel+" "+d.Target+" "+d.State)
				}
			}
		}
		slices.Sort(escalated)
		want := []string{itoa(critical.ID) + " email oncall@acme.example sent", itoa(critical.ID) + " webhook h-acme sent"}
		if !slices.Equal(escalated, want) {
			t.Errorf("escalations in the outbox %q, want %q", escalated, want)
		}

		// With factory access the operator's escalation applies too (its
		// delay has long passed).
		if err := st.SetFactoryAccess(ctx, "north-1", true, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		e.runOnce()
		if got, want := e.newRecipients(), []string{"ops@warden.example"}; !slices.Equal(got, want) {
			t.Errorf("with factory access: mail to %v, want %v", got, want)
		}
		e.runOnce()
		if got := e.newRecipients(); len(got) != 0 {
			t.Errorf("root escalated again: mail to %v", got)
		}
	})
}
