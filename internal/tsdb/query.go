package tsdb

import (
	"context"
	"fmt"
	"time"

	"github.com/warden-iot/warden/internal/tsdb/chunkenc"
	"github.com/warden-iot/warden/internal/tsdb/tsdbstore"
)

// Latest returns the newest value of every metric of a device, by name.
func (e *Engine) Latest(ctx context.Context, tenantID, deviceID string) ([]tsdbstore.Latest, error) {
	blob, err := e.store.LatestBlob(ctx, tenantID, deviceID)
	if err != nil {
		return nil, err
	}
	return e.openLatest(ctx, tenantID, deviceID, blob, nil)
}

func (e *Engine) openLatest(ctx context.Context, tenantID, deviceID string, blob []byte, n names) ([]tsdbstore.Latest, error) {
	out := []tsdbstore.Latest{}
	if blob == nil {
		return out, nil
	}
	pt, err := e.keys.Open(ctx, tenantID, blob, latestAAD(deviceID))
	if err != nil {
		return nil, fmt.Errorf("latest of %s: %w", deviceID, err)
	}
	ps, err := decodePoints(pt, n)
	if err != nil {
		return nil, fmt.Errorf("latest of %s: %w", deviceID, err)
	}
	out = make([]tsdbstore.Latest, len(ps))
	for i, p := range ps {
		out[i] = tsdbstore.Latest{Metric: p.metric, TS: time.UnixMilli(p.ts).UTC(), Value: p.v}
	}
	return out, nil
}

// DeviceLatest is one device's newest values.
type DeviceLatest struct {
	DeviceID string
	Metrics  []tsdbstore.Latest
}

// FleetLatest returns the newest values of a page of a tenant's devices,
// in device id order, starting after the given id.
func (e *Engine) FleetLatest(ctx context.Context, tenantID, after string, limit int) ([]DeviceLatest, error) {
	blobs, err := e.store.LatestBlobs(ctx, tenantID, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]DeviceLatest, len(blobs))
	n := names{}
	for i, b := range blobs {
		ms, err := e.openLatest(ctx, b.TenantID, b.DeviceID, b.Blob, n)
		if err != nil {
			return nil, err
		}
		out[i] = DeviceLatest{DeviceID: b.DeviceID, Metrics: ms}
	}
	return out, nil
}

// view is one series over [from, to): its chunks and the head points not
// yet sealed, which win over chunk points at the same instant.
type view struct {
	chunks []tsdbstore.ChunkRecord
	head   []tv // sorted, deduplicated
}

func (e *Engine) view(ctx context.Context, tenantID, deviceID, metric string, from, to int64) (view, error) {
	head, chunks, err := e.store.ReadSeries(ctx, tenantID, deviceID, metric, from, to)
	if err != nil {
		return view{}, err
	}
	var pts []tv
	for _, r := range head {
		ps, err := e.openHead(ctx, r)
		if err != nil {
			return view{}, err
		}
		for _, p := range ps {
			if p.metric == metric && p.ts >= from && p.ts < to {
				pts = append(pts, tv{p.ts, p.v})
			}
		}
	}
	return view{chunks: chunks, head: sortDedup(pts)}, nil
}

// walk calls point for every point of the view in [from, to) in time order,
// or, for a chunk that whole(start, end) accepts and no head point touches,
// chunk once with its summary instead. It stops when a callback returns
// false.
func (e *Engine) walk(ctx context.Context, v view, from, to int64,
	whole func(start, end int64) bool, chunk func(start, end int64, s summary) bool, point func(tv) bool) error {
	h := 0
	emitHeadUntil := func(limit int64) bool { // head points with ts < limit
		for h < len(v.head) && v.head[h].ts < limit {
			if !point(v.head[h]) {
				return false
			}
			h++
		}
		return true
	}
	for _, c := range v.chunks {
		if !emitHeadUntil(c.StartTS) {
			return nil
		}
		touched := h < len(v.head) && v.head[h].ts <= c.EndTS
		s, data, err := e.openChunk(ctx, c)
		if err != nil {
			return err
		}
		if !touched && c.StartTS >= from && c.EndTS < to && whole != nil && whole(c.StartTS, c.EndTS) {
			if !chunk(c.StartTS, c.EndTS, s) {
				return nil
			}
			continue
		}
		it, err := chunkenc.NewIterator(data)
		if err != nil {
			return fmt.Errorf("chunk %d of %s/%s: %w", c.ID, c.DeviceID, c.Metric, err)
		}
		for it.Next() {
			ts, val := it.At()
			if ts < from {
				continue
			}
			if ts >= to {
				break
			}
			if !emitHeadUntil(ts) {
				return nil
			}
			if h < len(v.head) && v.head[h].ts == ts {
				continue // the head's newer value wins
			}
			if !point(tv{ts, val}) {
				return nil
			}
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("chunk %d of %s/%s: %w", c.ID, c.DeviceID, c.Metric, err)
		}
	}
	emitHeadUntil(to)
	return nil
}

// Range calls fn for each point of one series in [from, to), in time order,
// until fn returns false or limit points (0: no limit) were given.
func (e *Engine) Range(ctx context.Context, tenantID, deviceID, metric string, from, to time.Time, limit int, fn func(tsdbstore.Sample) bool) error {
	f, t := from.UnixMilli(), to.UnixMilli()
	v, err := e.view(ctx, tenantID, deviceID, metric, f, t)
	if err != nil {
		return err
	}
	n := 0
	return e.walk(ctx, v, f, t, nil, nil, func(p tv) bool {
		n++
		return fn(tsdbstore.Sample{TS: time.UnixMilli(p.ts).UTC(), Value: p.v}) && (limit <= 0 || n < limit)
	})
}

// Downsample folds one series in [from, to) into buckets of width; a chunk
// that lies within one bucket is taken from its summary without decoding.
func (e *Engine) Downsample(ctx context.Context, tenantID, deviceID, metric string, from, to time.Time, width time.Duration) ([]Bucket, error) {
	ds, err := NewDownsampler(from, to, width)
	if err != nil {
		return nil, err
	}
	f, t := from.UnixMilli(), to.UnixMilli()
	v, err := e.view(ctx, tenantID, deviceID, metric, f, t)
	if err != nil {
		return nil, err
	}
	w := width.Milliseconds()
	sameBucket := func(start, end int64) bool { return (start-f)/w == (end-f)/w }
	err = e.walk(ctx, v, f, t, sameBucket,
		func(start, _ int64, s summary) bool {
			ds.addSummary(start, s)
			return true
		},
		func(p tv) bool {
			ds.AddMS(p.ts, p.v)
			return true
		})
	if err != nil {
		return nil, err
	}
	return ds.Buckets(), nil
}
