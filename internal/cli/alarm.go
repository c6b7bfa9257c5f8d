package cli

import (
	"context"
	"fmt"
	"strconv"

	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/client"
)

const alarmUsage = `alarm <subcommand> [flags]

Subcommands:
  list [--active|--cleared] [--unacked] [--device D] [--site S] [--severity warning|critical] [--tenant T] [--limit N] [--after ID]
                        list alarms of the devices whose data you may read,
                        oldest first, a page at a time
  show ID               print an alarm
  ack ID [--comment C]  acknowledge an alarm (once)
  clear ID [--comment C]
                        clear an active alarm by hand (acknowledging it too
                        if nobody did)`

// alarmID reads an alarm id argument.
func (in *invocation) alarmID() (int64, error) {
	id, err := strconv.ParseInt(in.arg(0), 10, 64)
	if err != nil || id <= 0 {
		return 0, in.usageError("%q is not an alarm id (a number)", in.arg(0))
	}
	return id, nil
}

func alarmAck(a apiv1.Alarm) string {
	if a.AckedAt == nil {
		return "-"
	}
	return localTime(*a.AckedAt)
}

func alarmRule(a apiv1.Alarm) string {
	if a.RuleName != "" {
		return a.RuleName
	}
	return a.RuleID
}

func runAlarm(ctx context.Context, env *Env, args []string) error {
	in, args, err := begin(env, "alarm", alarmUsage, args)
	if err != nil {
		return err
	}
	fs := in.fs
	active := fs.Bool("active", false, "only active alarms (list)")
	cleared := fs.Bool("cleared", false, "only cleared alarms (list)")
	unacked := fs.Bool("unacked", false, "only alarms nobody acknowledged (list)")
	device := fs.String("device", "", "only alarms of this device (list)")
	site := fs.String("site", "", "only alarms raised at this site (list)")
	severity := fs.String("severity", "", "only alarms of this severity: warning or critical (list)")
	tenant := fs.String("tenant", "", "only alarms of devices of this tenant and below (list; default: yours)")
	limit := fs.Int("limit", 100, "page size (list)")
	after := fs.Int64("after", 0, "the page after this alarm id (list)")
	comment := fs.String("comment", "", "a comment (ack, clear)")
	one := arity{1, 1, "an alarm id", withToken}
	err = in.parse(args, map[string]arity{"list": {}, "show": one, "ack": one, "clear": one})
	if err != nil {
		return err
	}
	var id int64
	if in.sub != "list" {
		if id, err = in.alarmID(); err != nil {
			return err
		}
	}
	f := client.AlarmFilter{Tenant: *tenant, Device: *device, Site: *site, Severity: *severity, Unacked: *unacked,
		Limit: *limit, After: *after}
	if in.sub == "list" {
		switch {
		case *active && *cleared:
			return in.usageError("give --active or --cleared, not both")
		case *active:
			f.State = "active"
		case *cleared:
			f.State = "cleared"
		}
		if *severity != "" && *severity != "warning" && *severity != "critical" {
			return in.usageError("--severity %q: want warning or critical", *severity)
		}
		if *limit < 1 || *limit > 1000 {
			return in.usageError("--limit: 1 to 1000")
		}
	}
	c, err := in.client()
	if err != nil {
		return err
	}
	switch in.sub {
	case "list":
		page, err := c.Alarms(ctx, f)
		if err != nil {
			return fmt.Errorf("list alarms: %w", err)
		}
		err = printList(in, page.Alarms, "no alarms", []string{"ID", "STATE", "SEVERITY", "DEVICE", "RULE", "RAISED", "RETRIGGERS", "ACKED", "MESSAGE"},
			func(a apiv1.Alarm) []any {
				return []any{a.ID, a.State, a.Severity, a.DeviceID, shorten(alarmRule(a), 30), localTime(a.RaisedAt), a.Retriggers,
					alarmAck(a), shorten(a.Message, 60)}
			})
		if err != nil {
			return err
		}
		if page.Next != 0 {
			fmt.Fprintf(env.Stderr, "more: run again with --after %d\n", page.Next)
		}
	case "show":
		a, err := c.Alarm(ctx, id)
		if err != nil {
			return fmt.Errorf("show alarm: %w", err)
		}
		return printObject(in, a)
	case "ack", "clear":
		var a apiv1.Alarm
		if in.sub == "ack" {
			a, err = c.AckAlarm(ctx, id, *comment)
		} else {
			a, err = c.ClearAlarm(ctx, id, *comment)
		}
		if err != nil {
			what := map[string]string{"ack": "acknowledge", "clear": "clear"}[in.sub]
			return fmt.Errorf("%s alarm %d: %w", what, id, err)
		}
		if in.json {
			return printJSON(env, a)
		}
		if in.sub == "ack" {
			fmt.Fprintf(env.Stderr, "alarm %d (%s on %s) acknowledged by %s\n", a.ID, alarmRule(a), a.DeviceID, a.AckedBy)
		} else {
			fmt.Fprintf(env.Stderr, "alarm %d (%s on %s) cleared by %s\n", a.ID, alarmRule(a), a.DeviceID, a.ClearedBy)
		}
	}
	return nil
}
