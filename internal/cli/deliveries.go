package cli

import (
	"context"
	"fmt"

	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/client"
)

const deliveriesUsage = `deliveries [--state pending|sent|failed] [--alarm ID] [--tenant T] [--limit N]

Lists the newest alarm notifications (e-mails and webhook calls) of a tenant
(default: yours) and below, with their state, attempts and last error.`

func runDeliveries(ctx context.Context, env *Env, args []string) error {
	in := beginPlain(env, "deliveries", deliveriesUsage)
	state := in.fs.String("state", "", "only pending, sent or failed notifications")
	alarmID := in.fs.Int64("alarm", 0, "only notifications about this alarm")
	tenant := in.fs.String("tenant", "", "the tenant (default: yours) and below")
	limit := in.fs.Int("limit", 100, "how many, newest first")
	if err := in.parse(args, map[string]arity{"": {}}); err != nil {
		return err
	}
	switch *state {
	case "", "pending", "sent", "failed":
	default:
		return in.usageError("--state %q: want pending, sent or failed", *state)
	}
	if *limit < 1 || *limit > 1000 {
		return in.usageError("--limit: 1 to 1000")
	}
	c, err := in.client()
	if err != nil {
		return err
	}
	ds, err := c.Deliveries(ctx, client.DeliveryFilter{Tenant: *tenant, State: *state, Alarm: *alarmID, Limit: *limit})
	if err != nil {
		return fmt.Errorf("list deliveries: %w", err)
	}
	return printList(in, ds, "no notifications", []string{"ID", "ALARM", "EVENT", "CHANNEL", "TARGET", "STATE", "ATTEMPTS", "CREATED", "NEXT", "LAST ERROR"},
		func(d apiv1.Delivery) []any {
			return []any{d.ID, d.AlarmID, d.Event, d.Channel, shorten(d.Target, 40), d.State, d.Attempts, localTime(d.CreatedAt),
				localTimePtr(d.NextAt, "-"), dash(shorten(d.LastError, 60))}
		})
}
