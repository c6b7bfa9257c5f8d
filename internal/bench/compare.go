package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"time"
)

// CompareOptions configure Compare: the same load against Warden and a
// reference broker.
type CompareOptions struct {
	Warden    IngestOptions
	Reference IngestOptions
	// Rounds is the number of runs against each target (default 3).
	Rounds int
	// Pause separates two runs (default 2 s).
	Pause time.Duration
}

// CompareResult holds every run and the medians.
type CompareResult struct {
	Warden, Reference             []IngestResult
	WardenMedian, ReferenceMedian IngestResult
	RatioVsReference              float64 // Warden msg/s ÷ reference msg/s, medians
}

// Compare alternates runs against Warden and the reference, changing which
// goes first every round so that drift of the machine affects both alike,
// prints each run's figures under a "# round" comment, then the medians
// prefixed "warden_" and "reference_" and ratio_vs_reference.
func Compare(ctx context.Context, o CompareOptions, out io.Writer) (CompareResult, error) {
	var res CompareResult
	if o.Rounds <= 0 {
		o.Rounds = 3
	}
	if o.Pause <= 0 {
		o.Pause = 2 * time.Second
	}
	first := true
	run := func(round int, name string, opts IngestOptions, dst *[]IngestResult) error {
		if !first && !sleepUntil(ctx, time.Now().Add(o.Pause)) {
			return ctx.Err()
		}
		first = false
		fmt.Fprintf(out, "# round %d/%d: %s (%s)\n", round, o.Rounds, name, opts.target())
		r, err := Ingest(ctx, opts, out)
		if err != nil {
			return fmt.Errorf("round %d, %s: %w", round, name, err)
		}
		*dst = append(*dst, r)
		return nil
	}
	for i := 1; i <= o.Rounds; i++ {
		a, b := func() error { return run(i, "warden", o.Warden, &res.Warden) },
			func() error { return run(i, "reference", o.Reference, &res.Reference) }
		if i%2 == 0 {
			a, b = b, a
		}
		if err := a(); err != nil {
			return res, err
		}
		if err := b(); err != nil {
			return res, err
		}
	}
	res.WardenMedian, res.ReferenceMedian = medianResult(res.Warden), medianResult(res.Reference)
	res.RatioVsReference = res.WardenMedian.MessagesPerSec / res.ReferenceMedian.MessagesPerSec
	fmt.Fprintf(out, "# medians of %d rounds\n", o.Rounds)
	if err := res.WardenMedian.Write(out, "warden_"); err != nil {
		return res, err
	}
	if err := res.ReferenceMedian.Write(out, "reference_"); err != nil {
		return res, err
	}
	_, err := fmt.Fprintf(out, "ratio_vs_reference: %.3f\n", res.RatioVsReference)
	return res, err
}

// medianResult takes the median of every figure separately, except the
// counts of failures (connect failures, errors, lost connections, server
// rejects and duplicates), which are the worst run's.
func medianResult(rs []IngestResult) IngestResult {
	med := func(f func(IngestResult) float64) float64 {
		var xs []float64
		for _, r := range rs {
			if v := f(r); !math.IsNaN(v) {
				xs = append(xs, v)
			}
		}
		if len(xs) == 0 {
			return math.NaN()
		}
		slices.Sort(xs)
		if n := len(xs); n%2 == 0 {
			return (xs[n/2-1] + xs[n/2]) / 2
		}
		return xs[len(xs)/2]
	}
	worst := func(f func(IngestResult) float64) float64 {
		v := math.NaN()
		for _, r := range rs {
			if x := f(r); !math.IsNaN(x) && !(x <= v) {
				v = x
			}
		}
		return v
	}
	dur := func(f func(IngestResult) time.Duration) time.Duration {
		return time.Duration(med(func(r IngestResult) float64 { return float64(f(r)) }))
	}
	m := IngestResult{
		Devices:            int(med(func(r IngestResult) float64 { return float64(r.Devices) })),
		ConnectFailures:    int(worst(func(r IngestResult) float64 { return float64(r.ConnectFailures) })),
		Messages:           int64(med(func(r IngestResult) float64 { return float64(r.Messages) })),
		MessagesPerSec:     med(func(r IngestResult) float64 { return r.MessagesPerSec }),
		PointsPerSec:       med(func(r IngestResult) float64 { return r.PointsPerSec }),
		P50:                dur(func(r IngestResult) time.Duration { return r.P50 }),
		P99:                dur(func(r IngestResult) time.Duration { return r.P99 }),
		Errors:             int64(worst(func(r IngestResult) float64 { return float64(r.Errors) })),
		ConnectionsLost:    int64(worst(func(r IngestResult) float64 { return float64(r.ConnectionsLost) })),
		BenchCPUSeconds:    med(func(r IngestResult) float64 { return r.BenchCPUSeconds }),
		ServerRSSMB:        med(func(r IngestResult) float64 { return r.ServerRSSMB }),
		ServerCPUSeconds:   med(func(r IngestResult) float64 { return r.ServerCPUSeconds }),
		ServerRejected:     worst(func(r IngestResult) float64 { return r.ServerRejected }),
		ServerDuplicates:   worst(func(r IngestResult) float64 { return r.ServerDuplicates }),
		ServerStoredPerSec: med(func(r IngestResult) float64 { return r.ServerStoredPerSec }),
		ServerApplyLag:     worst(func(r IngestResult) float64 { return r.ServerApplyLag }),
	}
	if len(rs) > 0 {
		m.Target, m.Window = rs[0].Target, rs[0].Window
	}
	return m
}
