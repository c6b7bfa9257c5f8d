package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/client"
)

const c2dUsage = `c2d <subcommand> [flags]

Subcommands:
  send DEVICE PAYLOAD [--prop key=value]... [--ttl 1h] [--message-id ID] [--correlation-id ID]
                        queue a cloud-to-device message (the payload is sent
                        as text); the device gets it when it is connected
                        and subscribed, at once or when it comes back
  list DEVICE [--limit N]
                        the device's messages, newest first, with their
                        state: queued, delivered, completed (acknowledged)
                        or expired`

func runC2D(ctx context.Context, env *Env, args []string) error {
	in, args, err := begin(env, "c2d", c2dUsage, args)
	if err != nil {
		return err
	}
	fs := in.fs
	props := propsFlag{}
	fs.Var(props, "prop", "application property key=value, repeatable (send)")
	ttl := durationFlagOf(fs, "ttl", time.Hour, "time to live: not delivered after it (send; up to 2d)")
	messageID := fs.String("message-id", "", "message id (send; default: a new UUID)")
	correlationID := fs.String("correlation-id", "", "correlation id (send)")
	limit := fs.Int("limit", 0, "how many messages (list; default 100)")
	err = in.parse(args, map[string]arity{"send": {2, 2, "a device id and a payload", withToken},
		"list": {1, 1, "a device id", withToken}})
	if err != nil {
		return err
	}
	if in.sub == "send" && *ttl <= 0 {
		return in.usageError("--ttl must be positive")
	}
	c, err := in.client()
	if err != nil {
		return err
	}
	dev := in.arg(0)
	switch in.sub {
	case "send":
		m, err := c.SendC2D(ctx, dev, client.C2DSend{Payload: in.arg(1), Properties: props, TTL: *ttl,
			MessageID: *messageID, CorrelationID: *correlationID})
		if err != nil {
			return fmt.Errorf("send to %s: %w", dev, err)
		}
		if in.json {
			return printJSON(env, m)
		}
		fmt.Fprintln(env.Stdout, m.ID)
		fmt.Fprintf(env.Stderr, "message %s to %s %s, expires %s\n", m.ID, dev, m.State, localTime(m.ExpiresAt))
	case "list":
		ms, err := c.C2DMessages(ctx, dev, *limit)
		if err != nil {
			return fmt.Errorf("messages of %s: %w", dev, err)
		}
		return printList(in, ms, "no cloud-to-device messages for "+dev, []string{"ID", "STATE", "CREATED", "EXPIRES", "DELIVERIES", "PAYLOAD"},
			func(m apiv1.C2DMessage) []any {
				return []any{m.ID, m.State, localTime(m.CreatedAt), localTime(m.ExpiresAt), m.DeliveryCount, shorten(m.Payload, 40)}
			})
	}
	return nil
}
