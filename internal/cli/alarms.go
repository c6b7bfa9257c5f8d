package cli

// The alarm commands: rule, alarm, webhook, escalation, deliveries, kpi and
// notifications.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/warden-iot/warden/internal/api"
	"github.com/warden-iot/warden/internal/client"
)

const ruleUsage = `rule <subcommand> [flags]

Alarm rules watch telemetry and raise alarms. A rule is JSON, e.g.

  {"name": "Boiler too hot", "severity": "critical", "scope": {"model": "vp-40"},
   "threshold": {"metric": "temp", "op": "above", "value": 90, "hysteresis": 2, "minDuration": "1m"}}

with a scope (deviceId, siteId or model) and exactly one condition:
threshold, rateOfChange, expression, stale or offline ("enabled" defaults
to true; see the API documentation at /api/openapi.yaml).

Subcommands:
  create --file F [--tenant T]
                        make a rule from the JSON in F ("-": standard input)
                        in T (default: the file's tenantId, else yours);
                        prints its id
  list [--tenant T]     list the rules of T (default: yours) and below
  show ID               print a rule as JSON
  update ID --file F    replace a rule's definition with the JSON in F
  delete ID             delete a rule; its alarms stay`

const alarmUsage = `alarm <subcommand> [flags]

Subcommands:
  list [--active|--cleared] [--unacked] [--device D] [--site S] [--severity warning|critical]
       [--tenant T] [--limit N] [--after ID]
                        list alarms of the devices whose data you may read,
                        oldest first, a page at a time
  show ID               print an alarm as JSON
  ack ID [--comment C]  acknowledge an alarm (once)
  clear ID [--comment C]
                        clear an active alarm by hand (acknowledging it too
                        if nobody did)`

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

const escalationUsage = `escalation <subcommand> [flags]

A critical alarm nobody acknowledged in time is mailed to a second
recipient.

Subcommands:
  set --delay 15m --email E [--tenant T]
                        escalate after the delay (whole minutes); --delay 0
                        removes the escalation
  show [--tenant T]     print the escalation of T (default: yours)`

const deliveriesUsage = `deliveries [--state pending|sent|failed] [--alarm ID] [--tenant T] [--limit N]

Lists the newest alarm notifications (e-mails and webhook calls) of a tenant
(default: yours) and below, with their state, attempts and last error.`

const kpiUsage = `kpi [--device D | --site S | --tenant T] [--from TIME --to TIME | --last 30d]

Key figures from the alarm history of the devices whose alarms you may read:
alarms, time in alarm, downtime (time with a critical alarm active),
availability, failures, MTBF, MTTR and utilisation, per device and in total.
Default: your tenant, the last 30 days. TIME is RFC 3339
(2026-03-01T00:00:00Z) or a date (2026-03-01, midnight UTC).`

const notificationsUsage = `notifications <subcommand> [flags]

Your alarm e-mails.

Subcommands:
  show                  print your preferences
  set [--email on|off] [--severity warning,critical|all] [--site ID,…|all]
                        change what the given flags say: e-mail at all,
                        only these severities, only these sites ("all":
                        no restriction)`

// beginPlain is begin for a command without subcommands.
func beginPlain(env *Env, cmd, usage string) *invocation {
	in := &invocation{env: env, name: cmd, usage: usage, given: map[string]bool{}}
	in.fs = newFlagSet(cmd, usage, env.Stderr)
	in.cf.register(in.fs)
	in.fs.BoolVar(&in.json, "json", false, "print the server's answer as JSON")
	return in
}

// readRuleFile reads a rule's JSON from a file or ("-") standard input
// and sets its tenantId if tenant is given.
func readRuleFile(env *Env, name, tenant string) (json.RawMessage, error) {
	var b []byte
	var err error
	if name == "-" {
		b, err = io.ReadAll(io.LimitReader(env.Stdin, 1<<20))
	} else {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, fmt.Errorf("read the rule: %w", err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return nil, fmt.Errorf("%s is not a JSON object: %w", name, err)
	}
	if tenant != "" {
		t, _ := json.Marshal(tenant)
		obj["tenantId"] = t
	}
	return json.Marshal(obj)
}

// ruleScope says what a rule watches, e.g. "model vp-40".
func ruleScope(r api.Rule) string {
	switch {
	case r.Scope.DeviceID != "":
		return "device " + r.Scope.DeviceID
	case r.Scope.SiteID != "":
		return "site " + r.Scope.SiteID
	case r.Scope.Model != "":
		return "model " + r.Scope.Model
	}
	return "-"
}

// ruleCondition summarises a rule's condition.
func ruleCondition(r api.Rule) string {
	num := func(p *float64) string {
		if p == nil {
			return "?"
		}
		return strconv.FormatFloat(*p, 'g', -1, 64)
	}
	switch {
	case r.Threshold != nil:
		t := r.Threshold
		if t.Op == "outside" || t.Op == "inside" {
			return fmt.Sprintf("%s %s %s…%s", t.Metric, t.Op, num(t.Low), num(t.High))
		}
		return fmt.Sprintf("%s %s %s", t.Metric, t.Op, num(t.Value))
	case r.RateOfChange != nil:
		return fmt.Sprintf("%s changes > %g/min", r.RateOfChange.Metric, r.RateOfChange.MaxRatePerMinute)
	case r.Expression != nil:
		return r.Expression.Expr
	case r.Stale != nil:
		return fmt.Sprintf("no %s for %s", r.Stale.Metric, r.Stale.After)
	case r.Offline != nil:
		return fmt.Sprintf("offline for %s", r.Offline.After)
	}
	return "-"
}

func runRule(ctx context.Context, env *Env, args []string) error {
	in, args, err := begin(env, "rule", ruleUsage, args)
	if err != nil {
		return err
	}
	file := in.fs.String("file", "", "the rule's JSON file, - for standard input (create, update)")
	tenant := in.fs.String("tenant", "", "the rule's tenant (create), or list this tenant and below (list); default: yours")
	one := arity{1, 1, "a rule id"}
	err = in.parse(args, map[string]arity{"create": {0, 0, ""}, "list": {0, 0, ""}, "show": one, "update": one, "delete": one})
	if err != nil {
		return err
	}
	var body json.RawMessage
	switch in.sub {
	case "create", "update":
		if err := in.require("file"); err != nil {
			return err
		}
		if in.sub == "update" && *tenant != "" {
			return in.usageError("--tenant: a rule cannot move to another tenant")
		}
		if body, err = readRuleFile(env, *file, *tenant); err != nil {
			return err
		}
	}
	c, err := in.client()
	if err != nil {
		return err
	}
	id := in.arg(0)
	switch in.sub {
	case "create", "update":
		var r api.Rule
		if in.sub == "create" {
			r, err = c.CreateRule(ctx, body)
		} else {
			r, err = c.UpdateRule(ctx, id, body)
		}
		if err != nil {
			return fmt.Errorf("%s rule: %w", in.sub, err)
		}
		if in.json {
			return printJSON(env, r)
		}
		if in.sub == "create" {
			fmt.Fprintln(env.Stdout, r.ID)
		}
		fmt.Fprintf(env.Stderr, "rule %s (%s) %sd in tenant %s: %s, %s when %s%s\n", r.ID, r.Name, in.sub, r.TenantID,
			ruleScope(r), r.Severity, ruleCondition(r), map[bool]string{true: "", false: " (disabled)"}[r.Enabled])
	case "list":
		rs, err := c.Rules(ctx, *tenant)
		if err != nil {
			return fmt.Errorf("list rules: %w", err)
		}
		if in.json {
			return printJSON(env, rs)
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tTENANT\tSEVERITY\tENABLED\tSCOPE\tCONDITION")
		for _, r := range rs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%s\t%s\n", r.ID, shorten(r.Name, 40), r.TenantID, r.Severity, r.Enabled,
				ruleScope(r), shorten(ruleCondition(r), 50))
		}
		return tw.Flush()
	case "show":
		r, err := c.Rule(ctx, id)
		if err != nil {
			return fmt.Errorf("show rule: %w", err)
		}
		return printJSON(env, r)
	case "delete":
		if err := c.DeleteRule(ctx, id); err != nil {
			return fmt.Errorf("delete rule %s: %w", id, err)
		}
		fmt.Fprintf(env.Stderr, "rule %s deleted; its alarms stay\n", id)
	}
	return nil
}

// alarmID reads an alarm id argument.
func (in *invocation) alarmID() (int64, error) {
	id, err := strconv.ParseInt(in.arg(0), 10, 64)
	if err != nil || id <= 0 {
		return 0, in.usageError("%q is not an alarm id (a number)", in.arg(0))
	}
	return id, nil
}

func alarmAck(a api.Alarm) string {
	if a.AckedAt == nil {
		return "-"
	}
	return localTime(*a.AckedAt)
}

func alarmRule(a api.Alarm) string {
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
	one := arity{1, 1, "an alarm id"}
	err = in.parse(args, map[string]arity{"list": {0, 0, ""}, "show": one, "ack": one, "clear": one})
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
		if in.json {
			return printJSON(env, page)
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATE\tSEVERITY\tDEVICE\tRULE\tRAISED\tRETRIGGERS\tACKED\tMESSAGE")
		for _, a := range page.Alarms {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", a.ID, a.State, a.Severity, a.DeviceID,
				shorten(alarmRule(a), 30), localTime(a.RaisedAt), a.Retriggers, alarmAck(a), shorten(a.Message, 60))
		}
		if err := tw.Flush(); err != nil {
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
		return printJSON(env, a)
	case "ack", "clear":
		var a api.Alarm
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
	err = in.parse(args, map[string]arity{"create": {0, 0, ""}, "list": {0, 0, ""}, "delete": {1, 1, "a webhook id"}})
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
		if in.json {
			return printJSON(env, hs)
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTENANT\tURL\tSEVERITIES\tENABLED\tCREATED")
		for _, h := range hs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%s\n", h.ID, h.TenantID, shorten(h.URL, 60), severitiesOrAll(h.Severities),
				h.Enabled, localTime(h.CreatedAt))
		}
		return tw.Flush()
	case "delete":
		if err := c.DeleteWebhook(ctx, in.arg(0)); err != nil {
			return fmt.Errorf("delete webhook %s: %w", in.arg(0), err)
		}
		fmt.Fprintf(env.Stderr, "webhook %s deleted\n", in.arg(0))
	}
	return nil
}

func printEscalation(env *Env, e api.Escalation) {
	if e.DelayMinutes == 0 {
		fmt.Fprintf(env.Stdout, "tenant %s: no escalation\n", e.TenantID)
		return
	}
	fmt.Fprintf(env.Stdout, "tenant %s: critical alarms not acknowledged within %s go to %s\n", e.TenantID,
		time.Duration(e.DelayMinutes)*time.Minute, e.Email)
}

func runEscalation(ctx context.Context, env *Env, args []string) error {
	in, args, err := begin(env, "escalation", escalationUsage, args)
	if err != nil {
		return err
	}
	delay := in.fs.Duration("delay", 0, "how long an unacknowledged critical alarm waits, e.g. 15m; 0 removes the escalation (set)")
	email := in.fs.String("email", "", "who gets the escalation (set)")
	tenant := in.fs.String("tenant", "", "the tenant (default: yours)")
	err = in.parse(args, map[string]arity{"set": {0, 0, ""}, "show": {0, 0, ""}})
	if err != nil {
		return err
	}
	if in.sub == "set" {
		switch {
		case !in.given["delay"]:
			return in.usageError("--delay is required (0 removes the escalation)")
		case *delay < 0 || *delay%time.Minute != 0:
			return in.usageError("--delay %s: want whole minutes, e.g. 15m or 1h", *delay)
		case *delay > 0 && *email == "":
			return in.usageError("--email is required")
		}
	}
	c, err := in.client()
	if err != nil {
		return err
	}
	var e api.Escalation
	if in.sub == "set" {
		e, err = c.SetEscalation(ctx, *tenant, int(*delay/time.Minute), *email)
	} else {
		e, err = c.Escalation(ctx, *tenant)
	}
	if err != nil {
		return fmt.Errorf("%s escalation: %w", in.sub, err)
	}
	if in.json {
		return printJSON(env, e)
	}
	printEscalation(env, e)
	return nil
}

func runDeliveries(ctx context.Context, env *Env, args []string) error {
	in := beginPlain(env, "deliveries", deliveriesUsage)
	state := in.fs.String("state", "", "only pending, sent or failed notifications")
	alarmID := in.fs.Int64("alarm", 0, "only notifications about this alarm")
	tenant := in.fs.String("tenant", "", "the tenant (default: yours) and below")
	limit := in.fs.Int("limit", 100, "how many, newest first")
	if err := in.parse(args, map[string]arity{"": {0, 0, ""}}); err != nil {
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
	if in.json {
		return printJSON(env, ds)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tALARM\tEVENT\tCHANNEL\tTARGET\tSTATE\tATTEMPTS\tCREATED\tNEXT\tLAST ERROR")
	for _, d := range ds {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", d.ID, d.AlarmID, d.Event, d.Channel, shorten(d.Target, 40),
			d.State, d.Attempts, localTime(d.CreatedAt), localTimePtr(d.NextAt, "-"), dash(shorten(d.LastError, 60)))
	}
	return tw.Flush()
}

// parseTime reads an RFC 3339 time or a date (midnight UTC).
func parseTime(flag, s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--%s %q: want an RFC 3339 time like 2026-03-01T00:00:00Z or a date like 2026-03-01", flag, s)
}

// parseSpan reads a duration: Go syntax, or whole days like 30d.
func parseSpan(flag, s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if days, err := strconv.Atoi(n); err == nil && days > 0 {
			return time.Duration(days) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--%s %q: want a duration like 30d or 12h", flag, s)
	}
	return d, nil
}

// humanSeconds writes seconds as "3d 4h", "4h 12m", "12m 3s" or "3s".
func humanSeconds(s float64) string {
	d := time.Duration(s * float64(time.Second)).Round(time.Second)
	day := 24 * time.Hour
	switch {
	case d >= day:
		return fmt.Sprintf("%dd %dh", d/day, d%day/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh %dm", d/time.Hour, d%time.Hour/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%dm %ds", d/time.Minute, d%time.Minute/time.Second)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

func humanSecondsPtr(s *float64) string {
	if s == nil {
		return "-"
	}
	return humanSeconds(*s)
}

func percent(f float64) string { return strconv.FormatFloat(100*f, 'f', 2, 64) + "%" }

func percentPtr(f *float64) string {
	if f == nil {
		return "-"
	}
	return percent(*f)
}

func kpiRow(name string, f api.KPIFigures) string {
	return fmt.Sprintf("%s\t%d/%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s", name, f.Alarms["warning"], f.Alarms["critical"],
		humanSeconds(f.TimeInAlarm), humanSeconds(f.Downtime), percent(f.Availability), f.Failures,
		humanSecondsPtr(f.MTBF), humanSecondsPtr(f.MTTR), percentPtr(f.Utilisation))
}

func runKPI(ctx context.Context, env *Env, args []string) error {
	in := beginPlain(env, "kpi", kpiUsage)
	device := in.fs.String("device", "", "one device")
	site := in.fs.String("site", "", "the devices of a site")
	tenant := in.fs.String("tenant", "", "the devices of a tenant and below (default: yours)")
	fromS := in.fs.String("from", "", "start of the period: RFC 3339 time or date")
	toS := in.fs.String("to", "", "end of the period: RFC 3339 time or date (default: now)")
	last := in.fs.String("last", "", "the period ending now (or at --to), e.g. 30d or 12h (default: 30d)")
	if err := in.parse(args, map[string]arity{"": {0, 0, ""}}); err != nil {
		return err
	}
	n := 0
	for _, s := range []string{*device, *site, *tenant} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		return in.usageError("give at most one of --device, --site and --tenant")
	}
	q := client.KPIQuery{Device: *device, Site: *site, Tenant: *tenant}
	var err error
	if *toS != "" {
		if q.To, err = parseTime("to", *toS); err != nil {
			return in.usageError("%v", err)
		}
	}
	switch {
	case *last != "" && *fromS != "":
		return in.usageError("give --from or --last, not both")
	case *fromS != "":
		if q.From, err = parseTime("from", *fromS); err != nil {
			return in.usageError("%v", err)
		}
	case *last != "":
		span, err := parseSpan("last", *last)
		if err != nil {
			return in.usageError("%v", err)
		}
		end := q.To
		if end.IsZero() {
			end = time.Now()
		}
		q.From = end.Add(-span)
	}
	c, err := in.client()
	if err != nil {
		return err
	}
	rep, err := c.KPI(ctx, q)
	if err != nil {
		return fmt.Errorf("key figures: %w", err)
	}
	if in.json {
		return printJSON(env, rep)
	}
	fmt.Fprintf(env.Stdout, "%s %s, %s to %s (%s)\n", rep.Scope, rep.ScopeID, localTime(rep.From), localTime(rep.To), humanSeconds(rep.Period))
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tALARMS W/C\tIN ALARM\tDOWNTIME\tAVAILABILITY\tFAILURES\tMTBF\tMTTR\tUTILISATION")
	for _, d := range rep.Devices {
		fmt.Fprintln(tw, kpiRow(d.DeviceID, d.KPIFigures))
	}
	fmt.Fprintln(tw, kpiRow(fmt.Sprintf("TOTAL (%d)", len(rep.Devices)), rep.Total))
	return tw.Flush()
}

func runNotifications(ctx context.Context, env *Env, args []string) error {
	in, args, err := begin(env, "notifications", notificationsUsage, args)
	if err != nil {
		return err
	}
	email := in.fs.String("email", "", "on or off: e-mail me about alarms at all (set)")
	var sev, sites listFlag
	in.fs.Var(&sev, "severity", "only these severities, comma-separated or repeated; all: every one (set)")
	in.fs.Var(&sites, "site", "only alarms of these sites, comma-separated or repeated; all: every site (set)")
	err = in.parse(args, map[string]arity{"show": {0, 0, ""}, "set": {0, 0, ""}})
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
	if in.json {
		return printJSON(env, p)
	}
	sitesText := "every site you may see"
	if len(p.SiteIDs) > 0 {
		sitesText = "sites " + strings.Join(p.SiteIDs, ", ")
	}
	fmt.Fprintf(env.Stdout, "alarm e-mails %s: %s alarms of %s\n", onOff(p.Email), severitiesOrAll(p.Severities), sitesText)
	return nil
}
