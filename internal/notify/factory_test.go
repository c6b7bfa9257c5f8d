package notify_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/warden-iot/warden/internal/notify"
	"github.com/warden-iot/warden/internal/notify/notifystore"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/tenancy"
)

// TestOperatorDeliveriesFollowTheSwitch: what was queued for the operator
// about a customer's machine while the owner's switch was on is not sent
// once the switch is off; the customer's own deliveries go out.
func TestOperatorDeliveriesFollowTheSwitch(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, notify.Config{})
		r := newReceiver(t, e.clock, nil)
		r.webhook(t, st, "h-north", "acme-north", nil, true)
		r.webhook(t, st, "h-root", "root", nil, true)
		if err := st.SetFactoryAccess(t.Context(), "north-1", true, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		a := e.raise("pump", "north-1", "r-pressure", "critical")
		e.notify(a, notify.EventRaised)
		var queued []string
		for _, d := range e.deliveries(a.ID) {
			queued = append(queued, d.TenantID+" "+d.Target)
		}
		for _, want := range []string{"root h-root", "root op-admin@example.com", "root op-service@example.com", "acme-north h-north"} {
			if !slices.Contains(queued, want) {
				t.Fatalf("queued while on: %q, want %q among them", queued, want)
			}
		}

		if err := st.SetFactoryAccess(t.Context(), "north-1", false, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		e.runOnce()
		if got := hooks(r.take(t)); !slices.Equal(got, []string{"h-north raised"}) {
			t.Errorf("webhook calls after the switch went off: %q, want only the customer's", got)
		}
		for _, to := range e.newRecipients() {
			if strings.HasPrefix(to, "op-") {
				t.Errorf("mail to %s after the switch went off", to)
			}
		}
		for _, d := range e.deliveries(a.ID) {
			switch {
			case d.TenantID == tenancy.RootTenantID && (d.State != notifystore.DeliveryFailed || !strings.Contains(d.LastError, "factory service access")):
				t.Errorf("operator's delivery: %s", show(d))
			case d.TenantID != tenancy.RootTenantID && d.State != notifystore.DeliverySent:
				t.Errorf("customer's delivery: %s", show(d))
			}
		}
	})
}
