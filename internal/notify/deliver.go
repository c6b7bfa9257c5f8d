package notify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/warden-iot/warden/internal/notify/notifystore"
)

const (
	// batchSize is how many due deliveries one round takes.
	batchSize = 100
	// parallel is how many deliveries of a round are sent at once, so
	// that one slow endpoint does not hold up the others.
	parallel = 8
	// maxErrorLen bounds Delivery.LastError, in characters.
	maxErrorLen = 300
	// recordTimeout bounds storing a delivery's outcome.
	recordTimeout = 10 * time.Second
)

// permanentError is a failure that no retry can mend.
type permanentError string

func (e permanentError) Error() string { return string(e) }

func permanent(msg string) error { return permanentError(msg) }

// Run delivers due deliveries and escalates until ctx ends, one round every
// PollEvery (at once again after a full batch).
func (n *Notifier) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { n.fanOut(ctx) })
	defer wg.Wait()
	tick := n.clock.NewTicker(n.cfg.PollEvery)
	defer tick.Stop()
	for {
		full, err := n.round(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			n.log.Warn("notify: round failed", "err", err)
		}
		if full && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C():
		}
	}
}

// fanOut turns posted alarm events into deliveries until ctx ends, then
// those still queued, so that a clean shutdown loses none. An event taken
// from the queue is written even if ctx ends meanwhile.
func (n *Notifier) fanOut(ctx context.Context) {
	do := func(p postedEvent) {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := n.Alarm(wctx, p.alarm, p.event); err != nil {
			n.log.Error("notify: queue alarm notifications", "alarm", p.alarm.ID, "event", p.event, "err", err)
		}
	}
	for {
		select {
		case p := <-n.posted:
			do(p)
		case <-ctx.Done():
			for {
				select {
				case p := <-n.posted:
					do(p)
				default:
					return
				}
			}
		}
	}
}

// RunOnce does one round: it escalates what is overdue and delivers what is
// due (escalations made in the round included).
func (n *Notifier) RunOnce(ctx context.Context) error {
	_, err := n.round(ctx)
	return err
}

// round is RunOnce; full says the batch of due deliveries was full, so
// more may be due.
//
// Rounds of one Notifier run one at a time. Rounds of several nodes on one
// database would each take the same due deliveries and send them twice:
// once several nodes run the notifier, claiming deliveries needs a lock (a
// lease column set in DueDeliveries with SELECT … FOR UPDATE SKIP LOCKED,
// or one node elected to notify); not now.
func (n *Notifier) round(ctx context.Context) (full bool, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	sweepErr := n.sweepClosed(ctx)
	escErr := n.escalate(ctx)
	full, delErr := n.deliverDue(ctx)
	return full, errors.Join(sweepErr, escErr, delErr)
}

// deliverDue sends up to batchSize due deliveries.
func (n *Notifier) deliverDue(ctx context.Context) (bool, error) {
	ds, err := n.st.DueDeliveries(ctx, n.clock.Now(), batchSize)
	if err != nil {
		return false, fmt.Errorf("notify: due deliveries: %w", err)
	}
	if len(ds) == 0 {
		return false, nil
	}
	hooks, err := n.webhooksByID(ctx, ds)
	if err != nil {
		return false, err
	}
	var (
		wg   sync.WaitGroup
		sem  = make(chan struct{}, parallel)
		mu   sync.Mutex
		errs []error
	)
	for _, d := range ds {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := n.deliver(ctx, d, hooks); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return len(ds) == batchSize, errors.Join(errs...)
}

// webhooksByID loads the webhooks the deliveries go to.
func (n *Notifier) webhooksByID(ctx context.Context, ds []notifystore.Delivery) (map[string]notifystore.Webhook, error) {
	var tenants []string
	for _, d := range ds {
		if d.Channel == ChannelWebhook && !slices.Contains(tenants, d.TenantID) {
			tenants = append(tenants, d.TenantID)
		}
	}
	hooks := map[string]notifystore.Webhook{}
	if len(tenants) == 0 {
		return hooks, nil
	}
	hs, err := n.st.ListWebhooks(ctx, tenants)
	if err != nil {
		return nil, fmt.Errorf("notify: webhooks: %w", err)
	}
	for _, h := range hs {
		hooks[h.ID] = h
	}
	return hooks, nil
}

// deliver makes one try of d and records the outcome. Its error is only
// about recording: a failed try is the delivery's business.
func (n *Notifier) deliver(ctx context.Context, d notifystore.Delivery, hooks map[string]notifystore.Webhook) error {
	var err error
	closed, owner, cerr := n.operatorClosed(ctx, d)
	switch {
	case cerr != nil:
		return fmt.Errorf("notify: delivery %d: %w", d.ID, cerr) // it stays due
	case closed:
		err = permanent(errAccessClosed)
	case d.Unreadable:
		// Its tenant's keys were destroyed: there is nothing left to send.
		err = permanent("payload unreadable: the tenant's keys were destroyed")
	case d.Channel == ChannelEmail:
		err = n.sendMail(ctx, d)
	case d.Channel == ChannelWebhook:
		switch h, ok := hooks[d.Target]; {
		case !ok:
			err = permanent("webhook deleted")
		case !h.Enabled:
			err = permanent("webhook disabled")
		default:
			err = n.post(ctx, d, h)
		}
	default:
		err = permanent(fmt.Sprintf("unknown channel %q", d.Channel))
	}
	if err != nil && ctx.Err() != nil {
		return nil // shutting down: the try does not count, the delivery stays due
	}

	now := n.clock.Now()
	d.Attempts++
	log := n.log.With("delivery", d.ID, "alarm", d.AlarmID, "channel", d.Channel, "event", d.Event, "attempt", d.Attempts)
	var perm permanentError
	switch {
	case err == nil:
		d.State, d.SentAt, d.LastError = notifystore.DeliverySent, now, ""
		log.Debug("notify: delivered")
	case errors.As(err, &perm) || d.Attempts >= n.cfg.MaxAttempts:
		d.State, d.LastError = notifystore.DeliveryFailed, truncate(err.Error(), maxErrorLen)
		log.Warn("notify: delivery failed; giving up", "err", d.LastError)
	default:
		d.NextAt, d.LastError = now.Add(n.cfg.backoff(d.Attempts)), truncate(err.Error(), maxErrorLen)
		log.Info("notify: delivery failed; will retry", "err", d.LastError, "next", d.NextAt)
	}
	// Record the outcome even if ctx ended meanwhile: a sent delivery
	// left pending would be sent again.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err := n.st.UpdateDelivery(ctx, d); err != nil {
		return fmt.Errorf("notify: record delivery %d: %w", d.ID, err)
	}
	if d.State == notifystore.DeliverySent {
		n.recordOperatorDelivery(ctx, d, owner)
	}
	return nil
}
