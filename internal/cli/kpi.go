package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/client"
)

const kpiUsage = `kpi [--device D | --site S | --tenant T] [--from TIME --to TIME | --last 30d]

Key figures from the alarm history of the devices whose alarms you may read:
alarms, time in alarm, downtime (time with a critical alarm active),
availability, failures, MTBF, MTTR and utilisation, per device and in total.
Default: your tenant, the last 30 days. TIME is RFC 3339
(2026-03-01T00:00:00Z) or a date (2026-03-01, midnight UTC).`

func kpiRow(name string, f apiv1.KPIFigures) string {
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
	last := durationFlagOf(in.fs, "last", 0, "the period ending now (or at --to), e.g. 30d, 2w or 12h (default: 30d)")
	if err := in.parse(args, map[string]arity{"": {}}); err != nil {
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
		if q.To, err = parseTimeArg(*toS); err != nil {
			return in.usageError("--to %q: %v", *toS, err)
		}
	}
	switch {
	case in.given["last"] && *fromS != "":
		return in.usageError("give --from or --last, not both")
	case *fromS != "":
		if q.From, err = parseTimeArg(*fromS); err != nil {
			return in.usageError("--from %q: %v", *fromS, err)
		}
	case in.given["last"]:
		span := *last
		if span <= 0 {
			return in.usageError("--last must be positive")
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
