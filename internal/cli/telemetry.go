package cli

import (
	"context"
	"fmt"
	"net/url"
	"text/tabwriter"
	"time"
)

const telemetryUsage = `telemetry <subcommand> [flags]

Subcommands:
  latest <device-id>                 newest value of every metric
  history <device-id> <metric>       points or buckets of one metric
      [--from RFC3339] [--to RFC3339] [--since 24h] [--bucket 5m | --buckets 100] [--limit N]`

func runTelemetry(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(env.Stderr, "Usage: warden "+telemetryUsage)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("telemetry "+sub, telemetryUsage, env.Stderr)
	var cf clientFlags
	cf.register(fs)
	from := fs.String("from", "", "start, RFC 3339")
	to := fs.String("to", "", "end, RFC 3339 (default now)")
	since := fs.Duration("since", 0, "start this long before --to (instead of --from)")
	bucket := fs.String("bucket", "", "bucket width, e.g. 5m")
	buckets := fs.Int("buckets", 0, "bucket count")
	limit := fs.Int("limit", 0, "most raw points")
	var pos []string
	for len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		pos, args = append(pos, args[0]), args[1:]
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	pos = append(pos, fs.Args()...)
	c, err := cf.client()
	if err != nil {
		return err
	}
	switch {
	case sub == "latest" && len(pos) == 1:
		ms, err := c.Latest(ctx, pos[0])
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "METRIC\tVALUE\tTIME")
		for _, m := range ms {
			fmt.Fprintf(tw, "%s\t%g\t%s\n", m.Name, m.Value, m.TS.Format(time.RFC3339Nano))
		}
		return tw.Flush()
	case sub == "history" && len(pos) == 2:
		q := url.Values{}
		end := time.Now()
		if *to != "" {
			q.Set("to", *to)
			if t, err := time.Parse(time.RFC3339Nano, *to); err == nil {
				end = t
			}
		}
		if *from != "" {
			q.Set("from", *from)
		} else if *since > 0 {
			q.Set("from", end.Add(-*since).Format(time.RFC3339Nano))
		}
		if *bucket != "" {
			q.Set("bucket", *bucket)
		}
		if *buckets > 0 {
			q.Set("buckets", fmt.Sprint(*buckets))
		}
		if *limit > 0 {
			q.Set("limit", fmt.Sprint(*limit))
		}
		h, err := c.History(ctx, pos[0], pos[1], q)
		if err != nil {
			return err
		}
		return printJSON(env, h)
	default:
		fmt.Fprintln(env.Stderr, "Usage: warden "+telemetryUsage)
		return errUsage
	}
}
