package cli

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/warden-iot/warden/internal/apiv1"
)

const telemetryUsage = `telemetry <subcommand> [flags]

Subcommands:
  latest DEVICE         the newest value of every metric of a device
  history DEVICE METRIC [--from TIME] [--to TIME] [--since 24h] [--bucket 5m | --buckets 100] [--limit N]
                        the points of one metric, or with --bucket or
                        --buckets its downsampled buckets (count, min, max,
                        avg); TIME is RFC 3339 or a date; --since: from this
                        long before --to (default now), e.g. 24h, 7d, 2w`

func runTelemetry(ctx context.Context, env *Env, args []string) error {
	in, args, err := begin(env, "telemetry", telemetryUsage, args)
	if err != nil {
		return err
	}
	fs := in.fs
	from := fs.String("from", "", "start: RFC 3339 time or date (history)")
	to := fs.String("to", "", "end: RFC 3339 time or date (history; default now)")
	since := durationFlagOf(fs, "since", 0, "start this long before --to, e.g. 24h or 7d, instead of --from (history)")
	bucket := durationFlagOf(fs, "bucket", 0, "bucket width, e.g. 5m or 1d (history)")
	buckets := fs.Int("buckets", 0, "number of buckets (history)")
	limit := fs.Int("limit", 0, "at most this many raw points (history)")
	err = in.parse(args, map[string]arity{"latest": {1, 1, "a device id", withToken},
		"history": {2, 2, "a device id and a metric name", withToken}})
	if err != nil {
		return err
	}
	q := url.Values{}
	if in.sub == "history" {
		end := time.Now()
		if *to != "" {
			t, err := parseTimeArg(*to)
			if err != nil {
				return in.usageError("--to %q: %v", *to, err)
			}
			end = t
			q.Set("to", t.UTC().Format(time.RFC3339Nano))
		}
		switch {
		case *from != "" && in.given["since"]:
			return in.usageError("give --from or --since, not both")
		case *from != "":
			t, err := parseTimeArg(*from)
			if err != nil {
				return in.usageError("--from %q: %v", *from, err)
			}
			q.Set("from", t.UTC().Format(time.RFC3339Nano))
		case *since > 0:
			q.Set("from", end.Add(-*since).UTC().Format(time.RFC3339Nano))
		case *since < 0:
			return in.usageError("--since must be positive")
		}
		if *bucket < 0 || *buckets < 0 || *limit < 0 {
			return in.usageError("--bucket, --buckets and --limit must not be negative")
		}
		if *bucket > 0 {
			q.Set("bucket", bucket.String())
		}
		if *buckets > 0 {
			q.Set("buckets", strconv.Itoa(*buckets))
		}
		if *limit > 0 {
			q.Set("limit", strconv.Itoa(*limit))
		}
	}
	c, err := in.client()
	if err != nil {
		return err
	}
	dev := in.arg(0)
	switch in.sub {
	case "latest":
		ms, err := c.Latest(ctx, dev)
		if err != nil {
			return fmt.Errorf("latest telemetry of %s: %w", dev, err)
		}
		return printList(in, ms, "no telemetry of device "+dev, []string{"METRIC", "VALUE", "TIME"},
			func(m apiv1.Metric) []any {
				return []any{m.Name, strconv.FormatFloat(m.Value, 'g', -1, 64), m.TS.Format(time.RFC3339Nano)}
			})
	case "history":
		h, err := c.History(ctx, dev, in.arg(1), q)
		if err != nil {
			return fmt.Errorf("history of %s %s: %w", dev, in.arg(1), err)
		}
		if in.json {
			return printJSON(env, h)
		}
		num := func(f float64) string { return strconv.FormatFloat(f, 'g', 6, 64) }
		empty := fmt.Sprintf("no %s points of device %s from %s to %s", h.Metric, dev, localTime(h.From), localTime(h.To))
		if h.Bucket != "" || len(h.Buckets) > 0 {
			err = printList(in, h.Buckets, empty, []string{"START", "COUNT", "MIN", "MAX", "AVG", "FIRST", "LAST"},
				func(b apiv1.Bucket) []any {
					return []any{b.Start.Format(time.RFC3339), b.Count, num(b.Min), num(b.Max), num(b.Avg), num(b.First), num(b.Last)}
				})
		} else {
			err = printList(in, h.Points, empty, []string{"TIME", "VALUE"},
				func(p apiv1.Sample) []any {
					return []any{p.TS.Format(time.RFC3339Nano), strconv.FormatFloat(p.Value, 'g', -1, 64)}
				})
		}
		if err != nil {
			return err
		}
		if h.Truncated {
			fmt.Fprintln(env.Stderr, "more points than --limit: narrow --from/--to or use --buckets")
		}
	}
	return nil
}
