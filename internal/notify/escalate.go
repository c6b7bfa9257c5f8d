package notify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/notify/notifystore"
	"github.com/warden-iot/warden/internal/tenancy"
)

// escalationKey names one escalation: an alarm escalated by a tenant.
type escalationKey struct {
	alarmID  int64
	tenantID string
}

const (
	// alarmPage is how many candidate alarms one query reads.
	alarmPage = 500
	// deliveriesPerAlarm bounds the outbox read that checks whether an
	// alarm was escalated.
	deliveriesPerAlarm = 100000
)

// escalate enqueues an "escalated" e-mail (and webhook calls) for every
// active, unacknowledged critical alarm older than the delay of a tenant
// on its device's tenant path, unless the outbox already holds it. The
// caller holds n.mu.
func (n *Notifier) escalate(ctx context.Context) error {
	now := n.clock.Now()
	var (
		tenants = map[string]tenancy.Tenant{}
		escs    = map[string]*notifystore.Escalation{} // nil: none
		done    = map[escalationKey]bool{}
		errs    []error
		after   int64
	)
	for {
		as, err := n.st.ListAlarms(ctx, alarm.Filter{State: alarm.StateActive, Severity: "critical",
			Unacked: true, After: after, Limit: alarmPage})
		if err != nil {
			errs = append(errs, fmt.Errorf("notify: escalation candidates: %w", err))
			break
		}
		for _, a := range as {
			after = max(after, a.ID)
			if err := n.escalateAlarm(ctx, a, now, tenants, escs, done); err != nil {
				errs = append(errs, fmt.Errorf("notify: escalate alarm %d: %w", a.ID, err))
			}
		}
		if len(as) < alarmPage || ctx.Err() != nil {
			break
		}
	}
	// Forget alarms no longer waiting (acknowledged, cleared).
	if len(errs) == 0 {
		n.escalated = done
	} else {
		for k := range done {
			n.escalated[k] = true
		}
	}
	return errors.Join(errs...)
}

// escalateAlarm escalates one candidate alarm for each tenant whose delay
// it has passed; done collects the escalations that are in the outbox.
func (n *Notifier) escalateAlarm(ctx context.Context, a alarm.Record, now time.Time, tenants map[string]tenancy.Tenant,
	escs map[string]*notifystore.Escalation, done map[escalationKey]bool) error {
	if !a.AckedAt.IsZero() || a.State != alarm.StateActive || a.Severity != "critical" {
		return nil
	}
	t, ok := tenants[a.TenantID]
	if !ok {
		var err error
		t, err = n.st.GetTenant(ctx, a.TenantID)
		if errors.Is(err, database.ErrNotFound) {
			return nil // the tenant is being deleted
		}
		if err != nil {
			return fmt.Errorf("tenant %s: %w", a.TenantID, err)
		}
		tenants[a.TenantID] = t
	}
	var f *alarmFacts
	for _, id := range strings.Split(t.Path, "/") {
		e, ok := escs[id]
		if !ok {
			switch got, err := n.st.GetEscalation(ctx, id); {
			case err == nil && got.Delay > 0:
				e = &got
			case err != nil && !errors.Is(err, database.ErrNotFound):
				return fmt.Errorf("escalation of %s: %w", id, err)
			}
			escs[id] = e
		}
		if e == nil || now.Sub(a.RaisedAt) < e.Delay {
			continue
		}
		key := escalationKey{a.ID, id}
		if n.escalated[key] {
			done[key] = true
			continue
		}
		if f == nil {
			var err error
			if f, err = n.facts(ctx, a); err != nil {
				return err
			}
		}
		if id == tenancy.RootTenantID && !f.operatorMay() {
			continue // the operator hears of a customer's machine only with factory access
		}
		sent, err := n.escalationInOutbox(ctx, key)
		if err != nil {
			return err
		}
		if !sent {
			if err := n.enqueueEscalation(ctx, f, e); err != nil {
				return err
			}
		}
		done[key] = true
	}
	return nil
}

// escalationInOutbox says whether the outbox holds the escalation.
func (n *Notifier) escalationInOutbox(ctx context.Context, k escalationKey) (bool, error) {
	ds, err := n.st.ListDeliveries(ctx, notifystore.DeliveryFilter{TenantIDs: []string{k.tenantID}, AlarmID: k.alarmID,
		Limit: deliveriesPerAlarm})
	if err != nil {
		return false, fmt.Errorf("deliveries: %w", err)
	}
	return slices.ContainsFunc(ds, func(d notifystore.Delivery) bool {
		return d.AlarmID == k.alarmID && d.TenantID == k.tenantID && d.Event == EventEscalated
	}), nil
}

// enqueueEscalation writes the escalation's e-mail and webhook calls.
// Without a mail sender and without webhooks nothing is written; the
// escalation then counts as done until the process restarts.
func (n *Notifier) enqueueEscalation(ctx context.Context, f *alarmFacts, e *notifystore.Escalation) error {
	now, a := n.clock.Now(), f.alarm
	var ds []notifystore.Delivery
	if n.mailer != nil && e.Email != "" {
		msg, err := n.mailPayload(ctx, f, EventEscalated, e)
		if err != nil {
			return err
		}
		ds = append(ds, newDelivery(e.TenantID, a, ChannelEmail, e.Email, EventEscalated, msg, now))
	}
	hooks, err := n.webhooks(ctx, f, []string{e.TenantID})
	if err != nil {
		return err
	}
	if len(hooks) > 0 {
		body, err := webhookPayload(a, EventEscalated, now)
		if err != nil {
			return err
		}
		for _, h := range hooks {
			ds = append(ds, newDelivery(h.TenantID, a, ChannelWebhook, h.ID, EventEscalated, body, now))
		}
	}
	if len(ds) == 0 {
		return nil
	}
	if err := n.st.EnqueueDeliveries(ctx, ds); err != nil {
		return fmt.Errorf("enqueue escalation: %w", err)
	}
	n.log.Info("notify: alarm escalated", "alarm", a.ID, "tenant", e.TenantID, "deliveries", len(ds))
	return nil
}
