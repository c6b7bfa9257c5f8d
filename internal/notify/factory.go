package notify

import (
	"context"
	"errors"
	"fmt"

	"github.com/warden-iot/warden/internal/audit"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/notify/notifystore"
	"github.com/warden-iot/warden/internal/tenancy"
)

// errAccessClosed is why a delivery to the operator is not sent.
const errAccessClosed = "not sent: the owner's factory service access for this machine is off"

// operatorClosed says whether d goes to the operator (a webhook, escalation
// or user of the root tenant) and is about a customer's machine the
// operator may not hear of now: its site's factory service access is off.
// Deliveries are checked again when they are sent, so a switch turned off
// after an alarm stops what is still in the outbox.
// owner is the tenant of the alarm's device when the delivery takes a
// customer's machine data to the operator under the switch ("" otherwise):
// its sending is recorded for that owner (recordOperatorDelivery).
func (n *Notifier) operatorClosed(ctx context.Context, d notifystore.Delivery) (closed bool, owner string, err error) {
	if d.TenantID != tenancy.RootTenantID {
		return false, "", nil
	}
	a, err := n.st.GetAlarm(ctx, d.AlarmID)
	if errors.Is(err, database.ErrNotFound) {
		return true, "", nil // its device and history are gone: nothing to tell
	}
	if err != nil {
		return false, "", fmt.Errorf("alarm %d: %w", d.AlarmID, err)
	}
	f, err := n.facts(ctx, a)
	if err != nil {
		return false, "", fmt.Errorf("alarm %d: %w", d.AlarmID, err)
	}
	if f.tenant.ID != tenancy.RootTenantID {
		owner = f.tenant.ID
	}
	return !f.operatorMay(), owner, nil
}

// ActionOperatorNotified is the audit action of a notification about a
// customer's machine sent to the operator (its webhook, escalation or staff
// e-mail) while the owner's factory service access was on.
const ActionOperatorNotified = "alarm.notify.operator"

// recordOperatorDelivery writes a sent operator delivery about owner's
// machine to the audit trail, so the owner sees it in the access log.
func (n *Notifier) recordOperatorDelivery(ctx context.Context, d notifystore.Delivery, owner string) {
	if n.cfg.Audit == nil || owner == "" {
		return
	}
	_, _ = n.cfg.Audit.Record(ctx, audit.Event{TenantID: tenancy.RootTenantID, ActorID: d.Channel + ":" + d.Target,
		ActorName: d.Target, Action: ActionOperatorNotified, Target: fmt.Sprintf("alarm/%d/%s", d.AlarmID, d.Event),
		OwnerTenantID: owner, Outcome: audit.Success}) // Record logs its own failure
}

// AccessClosed is the reaction to event.FactoryAccessClosed: the next round
// gives up the operator's pending deliveries about machines it may no
// longer hear of, rather than when each falls due.
func (n *Notifier) AccessClosed() { n.sweep.Store(true) }

// sweepClosed gives up the operator's pending deliveries about machines it
// may not hear of now.
func (n *Notifier) sweepClosed(ctx context.Context) error {
	if !n.sweep.Swap(false) {
		return nil
	}
	ds, err := n.st.ListDeliveries(ctx, notifystore.DeliveryFilter{TenantIDs: []string{tenancy.RootTenantID},
		State: notifystore.DeliveryPending, Limit: 1000})
	if err != nil {
		n.sweep.Store(true)
		return fmt.Errorf("notify: operator's pending deliveries: %w", err)
	}
	var errs []error
	for _, d := range ds {
		closed, _, err := n.operatorClosed(ctx, d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !closed {
			continue
		}
		d.State, d.LastError = notifystore.DeliveryFailed, errAccessClosed
		if err := n.st.UpdateDelivery(ctx, d); err != nil {
			errs = append(errs, fmt.Errorf("notify: record delivery %d: %w", d.ID, err))
		}
	}
	if len(errs) > 0 {
		n.sweep.Store(true)
	}
	return errors.Join(errs...)
}
