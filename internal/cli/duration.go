package cli

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

const (
	day  = 24 * time.Hour
	week = 7 * day
)

// durationFlag is the value of every duration flag: a Go duration (90m,
// 1h30m, 500ms) that may also count days and weeks (30d, 2w, 1d12h). Use
// it as fs.Var((*durationFlag)(&d), name, usage), or with durationVar.
type durationFlag time.Duration

func (d *durationFlag) String() string { return formatDuration(time.Duration(*d)) }

func (d *durationFlag) Set(s string) error {
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = durationFlag(v)
	return nil
}

// durationVar defines a duration flag with default value stored in p.
func durationVar(fs *flag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var((*durationFlag)(p), name, usage)
}

// durationFlagOf defines a duration flag and returns where its value is kept.
func durationFlagOf(fs *flag.FlagSet, name string, value time.Duration, usage string) *time.Duration {
	p := new(time.Duration)
	durationVar(fs, p, name, value, usage)
	return p
}

// errDuration says what a duration looks like.
var errDuration = errors.New("want a duration like 90m, 12h, 30d, 2w or 1d12h")

// parseDuration reads a Go duration whose parts may also be days (d) and
// weeks (w): "2w", "1d12h", "90m", "-1h". "0" is zero.
func parseDuration(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	neg := false
	if rest, ok := strings.CutPrefix(in, "-"); ok {
		in, neg = rest, true
	} else {
		in = strings.TrimPrefix(in, "+")
	}
	if in == "0" {
		return 0, nil
	}
	if in == "" {
		return 0, errDuration
	}
	var total time.Duration
	for in != "" {
		i := 0
		for i < len(in) && (in[i] == '.' || ('0' <= in[i] && in[i] <= '9')) {
			i++
		}
		j := i
		for j < len(in) && !(in[j] == '.' || ('0' <= in[j] && in[j] <= '9')) {
			j++
		}
		num, unit := in[:i], in[i:j]
		if num == "" || unit == "" {
			return 0, errDuration
		}
		var part time.Duration
		switch unit {
		case "d", "w":
			n, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, errDuration
			}
			part = time.Duration(n * float64(map[string]time.Duration{"d": day, "w": week}[unit]))
		default:
			var err error
			if part, err = time.ParseDuration(num + unit); err != nil {
				return 0, errDuration
			}
		}
		total += part
		in = in[j:]
	}
	if neg {
		total = -total
	}
	return total, nil
}

// formatDuration writes d the way parseDuration reads it, shortest first:
// 30d, 1d12h, 1h30m, 90s, 500ms.
func formatDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	var b strings.Builder
	b.WriteString(sign)
	if d >= day {
		fmt.Fprintf(&b, "%dd", d/day)
		d %= day
	}
	if d > 0 {
		s := d.String()
		if strings.HasSuffix(s, "m0s") {
			s = strings.TrimSuffix(s, "0s")
		}
		if strings.HasSuffix(s, "h0m") {
			s = strings.TrimSuffix(s, "0m")
		}
		b.WriteString(s)
	}
	return b.String()
}

// timeOrAgo reads a time: RFC 3339, a date (midnight UTC), or a duration
// before now ("24h", "7d").
func timeOrAgo(s string, now time.Time) (time.Time, error) {
	if t, err := parseTimeArg(s); err == nil {
		return t, nil
	}
	d, err := parseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, errors.New("want an RFC 3339 time like 2026-07-01T18:00:00Z, a date like 2026-07-01 or a duration like 24h or 7d")
	}
	return now.Add(-d), nil
}

// timeOrFromNow reads a time: RFC 3339, a date (midnight UTC), or a
// duration from now ("72h", "30d").
func timeOrFromNow(s string, now time.Time) (time.Time, error) {
	if t, err := parseTimeArg(s); err == nil {
		return t, nil
	}
	d, err := parseDuration(s)
	if err != nil || d <= 0 {
		return time.Time{}, errors.New("want an RFC 3339 time like 2026-07-01T18:00:00Z, a date like 2026-07-01 or a duration like 72h or 30d")
	}
	return now.Add(d), nil
}

// parseTimeArg reads an RFC 3339 time or a date (midnight UTC).
func parseTimeArg(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, errors.New("want an RFC 3339 time like 2026-03-01T00:00:00Z or a date like 2026-03-01")
}
