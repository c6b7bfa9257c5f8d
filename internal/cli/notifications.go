package cli

import (
	"context"
	"fmt"
	"strings"
)

const notificationsUsage = `notifications <subcommand> [flags]

Your alarm e-mails.

Subcommands:
  show                  print your preferences
  set [--email on|off] [--severity warning,critical|all] [--site ID,…|all]
                        change what the given flags say: e-mail at all,
                        only these severities, only these sites ("all":
                        no restriction)`

func runNotifications(ctx context.Context, env *Env, args []string) error {
	in, args, err := begin(env, "notifications", notificationsUsage, args)
	if err != nil {
		return err
	}
	email := in.fs.String("email", "", "on or off: e-mail me about alarms at all (set)")
	var sev, sites listFlag
	in.fs.Var(&sev, "severity", "only these severities, comma-separated or repeated; all: every one (set)")
	in.fs.Var(&sites, "site", "only alarms of these sites, comma-separated or repeated; all: every site (set)")
	err = in.parse(args, map[string]arity{"show": {}, "set": {}})
	if err != nil {
		return err
	}
	var on bool
	if in.sub == "set" {
		if !in.given["email"] && !in.given["severity"] && !in.given["site"] {
			return in.usageError("nothing to change: give --email, --severity or --site")
		}
		if in.given["email"] {
			switch strings.ToLower(*email) {
			case "on", "true", "yes":
				on = true
			case "off", "false", "no":
			default:
				return in.usageError("--email: want on or off, got %q", *email)
			}
		}
		if len(sev) == 1 && sev[0] == "all" {
			sev = listFlag{}
		}
		if len(sites) == 1 && sites[0] == "all" {
			sites = listFlag{}
		}
		if err := in.checkSeverities("severity", sev); err != nil {
			return err
		}
	}
	c, err := in.client()
	if err != nil {
		return err
	}
	p, err := c.NotificationPrefs(ctx)
	if err != nil {
		return selfError("notification preferences", err)
	}
	if in.sub == "set" {
		if in.given["email"] {
			p.Email = on
		}
		if in.given["severity"] {
			p.Severities = []string(sev)
		}
		if in.given["site"] {
			p.SiteIDs = []string(sites)
		}
		if p, err = c.SetNotificationPrefs(ctx, p); err != nil {
			return selfError("set notification preferences", err)
		}
	}
	printWarnings(env, p.Warnings)
	if in.json {
		return printJSON(env, p)
	}
	sitesText := "every site you may see"
	if len(p.SiteIDs) > 0 {
		sitesText = "sites " + strings.Join(p.SiteIDs, ", ")
	}
	if in.sub == "show" {
		return printFields(env.Stdout, []field{{"email", onOff(p.Email)}, {"severities", severitiesOrAll(p.Severities)},
			{"sites", sitesText}})
	}
	fmt.Fprintf(env.Stderr, "alarm e-mails %s: %s alarms of %s\n", onOff(p.Email), severitiesOrAll(p.Severities), sitesText)
	return nil
}
