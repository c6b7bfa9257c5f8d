package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/warden-iot/warden/internal/apiv1"
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
  show ID               print a rule
  update ID --file F    replace a rule's definition with the JSON in F
  delete ID             delete a rule; its alarms stay`

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
func ruleScope(r apiv1.Rule) string {
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
func ruleCondition(r apiv1.Rule) string {
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
	one := arity{1, 1, "a rule id", withToken}
	err = in.parse(args, map[string]arity{"create": {}, "list": {}, "show": one, "update": one, "delete": one})
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
		var r apiv1.Rule
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
		return printList(in, rs, "no rules", []string{"ID", "NAME", "TENANT", "SEVERITY", "ENABLED", "SCOPE", "CONDITION"},
			func(r apiv1.Rule) []any {
				return []any{r.ID, shorten(r.Name, 40), r.TenantID, r.Severity, r.Enabled, ruleScope(r), shorten(ruleCondition(r), 50)}
			})
	case "show":
		r, err := c.Rule(ctx, id)
		if err != nil {
			return fmt.Errorf("show rule: %w", err)
		}
		return printObject(in, r)
	case "delete":
		if err := c.DeleteRule(ctx, id); err != nil {
			return fmt.Errorf("delete rule %s: %w", id, err)
		}
		fmt.Fprintf(env.Stderr, "rule %s deleted; its alarms stay\n", id)
	}
	return nil
}
