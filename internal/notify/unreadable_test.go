package notify_test

import (
	"net/http"
	"testing"

	"github.com/warden-iot/warden/internal/notify"
	"github.com/warden-iot/warden/internal/notify/notifystore"
	"github.com/warden-iot/warden/internal/store/enginetest"
)

// A queued delivery of a tenant whose keys were destroyed is not sent
// (there is nothing left to send) but given up at once, with a reason.
func TestUnreadableDeliveryGivenUp(t *testing.T) {
	st := enginetest.SQLite(t)
	kr := enginetest.WithKeyring(t, st)
	e := newEnv(t, st, notify.Config{})
	r := newReceiver(t, e.clock, func(string, int) int { return http.StatusOK })
	r.webhook(t, st, "h-north", "acme-north", nil, true)
	a := e.raise("pump", "north-1", "r-temp", "warning")
	e.notify(a, notify.EventRaised)
	if err := kr.Shred(t.Context(), "acme-north"); err != nil {
		t.Fatal(err)
	}
	e.runOnce()
	if calls := r.take(t); len(calls) != 0 {
		t.Errorf("%d webhook calls for an unreadable delivery", len(calls))
	}
	ds := e.webhookDeliveries(a.ID)
	if len(ds) != 1 || ds[0].State != notifystore.DeliveryFailed || !ds[0].Unreadable {
		t.Fatalf("deliveries %s, want one failed and unreadable", show(ds...))
	}
}
