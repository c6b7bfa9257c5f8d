package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/warden-iot/warden/internal/apiv1"
)

const webhookUsage = `webhook <subcommand> [flags]

Webhooks receive the alarm events of a tenant and its sub-tenants as JSON
POSTs, signed: X-Warden-Signature is "sha256=" and the hex HMAC-SHA256 of
X-Warden-Timestamp, "." and the body, keyed with the secret printed on
creation (as text).

Subcommands:
  create --url U [--severity critical] [--tenant T]
                        make a webhook (https://, or http:// to localhost);
                        prints its secret, shown only this once
  list [--tenant T]     list the webhooks of T (default: yours) and below
  delete ID             delete a webhook`

// checkSeverities is a usage error for a severity that does not exist.
func (in *invocation) checkSeverities(flag string, sev []string) error {
	for _, s := range sev {
		if s != "warning" && s != "critical" {
			return in.usageError("--%s %q: want warning or critical", flag, s)
		}
	}
	return nil
}

func severitiesOrAll(s []string) string {
	if len(s) == 0 {
		return "all"
	}
	return strings.Join(s, ",")
}

func runWebhook(ctx context.Context, env *Env, args []string) error {
	in, args, err := begin(env, "webhook", webhookUsage, args)
	if err != nil {
		return err
	}
	hookURL := in.fs.String("url", "", "where to POST alarm events (create)")
	var sev listFlag
	in.fs.Var(&sev, "severity", "only alarms of this severity: warning or critical; may repeat (create; default: all)")
	tenant := in.fs.String("tenant", "", "the webhook's tenant (create), or list this tenant and below (list); default: yours")
	err = in.parse(args, map[string]arity{"create": {}, "list": {}, "delete": {1, 1, "a webhook id", withToken}})
	if err != nil {
		return err
	}
	if in.sub == "create" {
		if err := in.require("url"); err != nil {
			return err
		}
		if err := in.checkSeverities("severity", sev); err != nil {
			return err
		}
	}
	c, err := in.client()
	if err != nil {
		return err
	}
	switch in.sub {
	case "create":
		h, err := c.CreateWebhook(ctx, *tenant, *hookURL, sev)
		if err != nil {
			return fmt.Errorf("create webhook: %w", err)
		}
		if in.json {
			return printJSON(env, h)
		}
		fmt.Fprintln(env.Stdout, h.Secret)
		fmt.Fprintf(env.Stderr, "webhook %s made in tenant %s for %s alarms; its signing secret above is shown only now\n",
			h.ID, h.TenantID, severitiesOrAll(h.Severities))
	case "list":
		hs, err := c.Webhooks(ctx, *tenant)
		if err != nil {
			return fmt.Errorf("list webhooks: %w", err)
		}
		return printList(in, hs, "no webhooks", []string{"ID", "TENANT", "URL", "SEVERITIES", "ENABLED", "CREATED"},
			func(h apiv1.Webhook) []any {
				return []any{h.ID, h.TenantID, shorten(h.URL, 60), severitiesOrAll(h.Severities), h.Enabled, localTime(h.CreatedAt)}
			})
	case "delete":
		if err := c.DeleteWebhook(ctx, in.arg(0)); err != nil {
			return fmt.Errorf("delete webhook %s: %w", in.arg(0), err)
		}
		fmt.Fprintf(env.Stderr, "webhook %s deleted\n", in.arg(0))
	}
	return nil
}
