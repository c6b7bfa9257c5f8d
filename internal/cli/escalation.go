package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/warden-iot/warden/internal/apiv1"
)

const escalationUsage = `escalation <subcommand> [flags]

A critical alarm nobody acknowledged in time is mailed to a second
recipient.

Subcommands:
  set --delay 15m --email E [--tenant T]
                        escalate after the delay (whole minutes); --delay 0
                        removes the escalation
  show [--tenant T]     print the escalation of T (default: yours)`

// printEscalation prints what set did as a line on stderr, or what show
// found as field lines.
func printEscalation(in *invocation, e apiv1.Escalation) error {
	printWarnings(in.env, e.Warnings)
	delay := formatDuration(time.Duration(e.DelayMinutes) * time.Minute)
	if in.sub == "show" {
		if e.DelayMinutes == 0 {
			return printFields(in.env.Stdout, []field{{"tenant", e.TenantID}, {"delay", "none: no escalation"}})
		}
		return printFields(in.env.Stdout, []field{{"tenant", e.TenantID}, {"delay", delay}, {"email", e.Email}})
	}
	if e.DelayMinutes == 0 {
		fmt.Fprintf(in.env.Stderr, "tenant %s: no escalation\n", e.TenantID)
		return nil
	}
	fmt.Fprintf(in.env.Stderr, "tenant %s: critical alarms not acknowledged within %s go to %s\n", e.TenantID, delay, e.Email)
	return nil
}

func runEscalation(ctx context.Context, env *Env, args []string) error {
	in, args, err := begin(env, "escalation", escalationUsage, args)
	if err != nil {
		return err
	}
	delay := durationFlagOf(in.fs, "delay", 0, "how long an unacknowledged critical alarm waits, e.g. 15m or 1h; 0 removes the escalation (set)")
	email := in.fs.String("email", "", "who gets the escalation (set)")
	tenant := in.fs.String("tenant", "", "the tenant (default: yours)")
	err = in.parse(args, map[string]arity{"set": {}, "show": {}})
	if err != nil {
		return err
	}
	if in.sub == "set" {
		switch {
		case !in.given["delay"]:
			return in.usageError("--delay is required (0 removes the escalation)")
		case *delay < 0 || *delay%time.Minute != 0:
			return in.usageError("--delay %s: want whole minutes, e.g. 15m or 1h", formatDuration(*delay))
		case *delay > 0 && *email == "":
			return in.usageError("--email is required")
		}
	}
	c, err := in.client()
	if err != nil {
		return err
	}
	var e apiv1.Escalation
	if in.sub == "set" {
		e, err = c.SetEscalation(ctx, *tenant, int(*delay/time.Minute), *email)
	} else {
		e, err = c.Escalation(ctx, *tenant)
	}
	if err != nil {
		return fmt.Errorf("%s escalation: %w", in.sub, err)
	}
	if in.json {
		printWarnings(env, e.Warnings)
		return printJSON(env, e)
	}
	return printEscalation(in, e)
}
