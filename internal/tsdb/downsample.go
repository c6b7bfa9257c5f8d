// Package tsdb answers time-series questions over stored telemetry. Today it
// downsamples a series into fixed-width buckets.
package tsdb

import (
	"errors"
	"fmt"
	"time"
)

// Bucket summarises the points of one series in [Start, Start+width).
type Bucket struct {
	Start time.Time
	Count int
	Min   float64
	Max   float64
	Sum   float64
	First float64
	Last  float64
}

// Avg is the mean of the bucket's points.
func (b Bucket) Avg() float64 {
	if b.Count == 0 {
		return 0
	}
	return b.Sum / float64(b.Count)
}

// MaxBuckets bounds one downsampled answer.
const MaxBuckets = 100_000

// Downsampler folds points, given in time order, into buckets of a fixed
// width aligned to from. Buckets without points are left out.
type Downsampler struct {
	from, to, width int64 // Unix ms
	out             []Bucket
	cur             int64 // start (ms) of the last bucket in out
}

// BucketWidth returns the width that splits [from, to) into n buckets,
// rounded up to a whole millisecond.
func BucketWidth(from, to time.Time, n int) (time.Duration, error) {
	if n <= 0 || n > MaxBuckets {
		return 0, fmt.Errorf("bucket count %d is not between 1 and %d", n, MaxBuckets)
	}
	span := to.Sub(from)
	if span <= 0 {
		return 0, errors.New("time range is empty")
	}
	w := (span + time.Duration(n) - 1) / time.Duration(n)
	w = (w + time.Millisecond - 1).Truncate(time.Millisecond)
	return w, nil
}

// NewDownsampler checks the range and width.
func NewDownsampler(from, to time.Time, width time.Duration) (*Downsampler, error) {
	if !to.After(from) {
		return nil, errors.New("time range is empty: to must be after from")
	}
	if width < time.Millisecond {
		return nil, fmt.Errorf("bucket width %s is below 1ms", width)
	}
	if n := to.Sub(from) / width; n > MaxBuckets {
		return nil, fmt.Errorf("bucket width %s gives %d buckets, more than %d", width, n, MaxBuckets)
	}
	return &Downsampler{from: from.UnixMilli(), to: to.UnixMilli(), width: width.Milliseconds()}, nil
}

// Add folds in one point; points must come in time order.
func (d *Downsampler) Add(ts time.Time, v float64) { d.AddMS(ts.UnixMilli(), v) }

// AddMS is Add with a Unix-millisecond time, for hot loops.
func (d *Downsampler) AddMS(ts int64, v float64) {
	if ts < d.from || ts >= d.to {
		return
	}
	start := d.from + (ts-d.from)/d.width*d.width
	if n := len(d.out); n > 0 && d.cur == start {
		b := &d.out[n-1]
		b.Count++
		b.Sum += v
		b.Min = min(b.Min, v)
		b.Max = max(b.Max, v)
		b.Last = v
		return
	}
	d.cur = start
	d.out = append(d.out, Bucket{Start: time.UnixMilli(start).UTC(), Count: 1, Min: v, Max: v, Sum: v, First: v, Last: v})
}

// Buckets returns the non-empty buckets in time order.
func (d *Downsampler) Buckets() []Bucket { return d.out }
