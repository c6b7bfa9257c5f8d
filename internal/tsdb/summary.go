package tsdb

import "time"

// addSummary folds in a whole chunk that lies inside one bucket, starting
// at start; chunks must come in time order, like points.
func (d *Downsampler) addSummary(start int64, s summary) {
	if start < d.from || start >= d.to || s.count == 0 {
		return
	}
	bstart := d.from + (start-d.from)/d.width*d.width
	if n := len(d.out); n > 0 && d.cur == bstart {
		b := &d.out[n-1]
		b.Count += s.count
		b.Sum += s.sum
		b.Min = min(b.Min, s.min)
		b.Max = max(b.Max, s.max)
		b.Last = s.last
		return
	}
	d.cur = bstart
	d.out = append(d.out, Bucket{Start: time.UnixMilli(bstart).UTC(), Count: s.count, Min: s.min, Max: s.max, Sum: s.sum, First: s.first, Last: s.last})
}
