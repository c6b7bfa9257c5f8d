package tsdb

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/tsdb/chunkenc"
	"github.com/warden-iot/warden/internal/tsdb/tsdbstore"
)

// SealDue seals every device whose head is due (twice SealRows messages, or
// its oldest twice SealAge old), leaving its newest messages in the head
// (see Config), and returns how many points went into chunks.
func (e *Engine) SealDue(ctx context.Context) (int, error) {
	const page = 100
	total := 0
	for {
		now := e.clock.Now()
		due, err := e.store.DevicesToSeal(ctx, 2*e.cfg.SealRows, now.Add(-2*e.cfg.SealAge), page)
		if err != nil {
			return total, fmt.Errorf("find heads to seal: %w", err)
		}
		keepAfter := now.Add(-e.cfg.SealAge)
		for _, d := range due {
			n, err := e.seal(ctx, d.TenantID, d.DeviceID, func(head []tsdbstore.HeadRecord) int {
				return sealable(head, e.cfg.SealRows, keepAfter)
			})
			if errors.Is(err, database.ErrConflict) {
				continue // another node sealed it meanwhile
			}
			if err != nil {
				return total, err
			}
			total += n
		}
		if len(due) < page || ctx.Err() != nil {
			return total, ctx.Err()
		}
	}
}

// tv is a point of a known series.
type tv struct {
	ts int64
	v  float64
}

// sealable returns how many of the oldest head records (in arrival order)
// are sealed: all but the newest keep that arrived after keepAfter.
func sealable(head []tsdbstore.HeadRecord, keep int, keepAfter time.Time) int {
	n := max(len(head)-keep, 0)
	for n < len(head) && !head[n].ReceivedAt.After(keepAfter) {
		n++
	}
	return n
}

// SealDevice folds a device's whole head into its series' chunks and
// returns the number of points sealed.
func (e *Engine) SealDevice(ctx context.Context, tenantID, deviceID string) (int, error) {
	return e.seal(ctx, tenantID, deviceID, func(head []tsdbstore.HeadRecord) int { return len(head) })
}

// seal folds the oldest records of a device's head, as many as pick says,
// into its series' chunks and returns the number of points sealed.
func (e *Engine) seal(ctx context.Context, tenantID, deviceID string, pick func([]tsdbstore.HeadRecord) int) (int, error) {
	head, err := e.store.HeadRecords(ctx, deviceID)
	if err != nil {
		return 0, err
	}
	head = head[:pick(head)]
	if len(head) == 0 {
		return 0, nil
	}
	ids := make([]int64, len(head))
	series := map[string][]tv{}
	for i, r := range head {
		ids[i] = r.ID
		ps, err := e.openHead(ctx, r)
		if errors.Is(err, keyring.ErrShredded) {
			continue // the tenant's keys are gone: nothing to keep
		}
		if err != nil {
			return 0, err
		}
		for _, p := range ps {
			series[p.metric] = append(series[p.metric], tv{p.ts, p.v})
		}
	}
	var remove []int64
	var add []tsdbstore.ChunkRecord
	sealed := 0
	for metric, pts := range series {
		pts = sortDedup(pts)
		sealed += len(pts)
		rm, ad, err := e.mergeIntoChunks(ctx, tenantID, deviceID, metric, pts)
		if err != nil {
			return 0, err
		}
		remove = append(remove, rm...)
		add = append(add, ad...)
	}
	if err := e.store.SealHead(ctx, deviceID, ids, remove, add); err != nil {
		return 0, fmt.Errorf("seal head of %s: %w", deviceID, err)
	}
	return sealed, nil
}

func (e *Engine) openHead(ctx context.Context, r tsdbstore.HeadRecord) ([]point, error) {
	h, err := e.openHeadMessage(ctx, r)
	return h.points, err
}

func (e *Engine) openHeadMessage(ctx context.Context, r tsdbstore.HeadRecord) (headMessage, error) {
	pt, err := e.keys.Open(ctx, r.TenantID, r.Blob, headAAD(r.DeviceID))
	if err != nil {
		return headMessage{}, fmt.Errorf("head record %d of %s: %w", r.ID, r.DeviceID, err)
	}
	h, err := decodeHead(pt)
	if err != nil {
		return headMessage{}, fmt.Errorf("head record %d of %s: %w", r.ID, r.DeviceID, err)
	}
	return h, nil
}

// sortDedup sorts points by time; of several points at one instant the last
// given wins (head records come in arrival order).
func sortDedup(pts []tv) []tv {
	slices.SortStableFunc(pts, func(a, b tv) int { return cmp.Compare(a.ts, b.ts) })
	out := pts[:0]
	for i, p := range pts {
		if i+1 < len(pts) && pts[i+1].ts == p.ts {
			continue
		}
		out = append(out, p)
	}
	return out
}

// mergeIntoChunks merges sorted new points with the chunks they overlap
// (and the series' last chunk, if it has room and they come after it), and
// returns the chunks to remove and the chunks to add.
func (e *Engine) mergeIntoChunks(ctx context.Context, tenantID, deviceID, metric string, pts []tv) ([]int64, []tsdbstore.ChunkRecord, error) {
	from, to := pts[0].ts, pts[len(pts)-1].ts
	old, err := e.store.ChunksForMerge(ctx, deviceID, metric, from, to)
	if err != nil {
		return nil, nil, fmt.Errorf("chunks of %s/%s: %w", deviceID, metric, err)
	}
	var remove []int64
	var existing []tv
	for _, c := range old {
		if c.EndTS < from && c.Count >= e.cfg.ChunkPoints {
			continue // a full last chunk stays as it is
		}
		ts, vs, err := e.decodeChunk(ctx, c)
		if errors.Is(err, keyring.ErrShredded) {
			remove = append(remove, c.ID) // unreadable forever: drop it
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		for i := range ts {
			existing = append(existing, tv{ts[i], vs[i]})
		}
		remove = append(remove, c.ID)
	}
	merged := mergeSorted(existing, pts)
	var add []tsdbstore.ChunkRecord
	for start := 0; start < len(merged); start += e.cfg.ChunkPoints {
		part := merged[start:min(start+e.cfg.ChunkPoints, len(merged))]
		c, err := e.sealChunk(ctx, tenantID, deviceID, metric, part)
		if err != nil {
			return nil, nil, err
		}
		add = append(add, c)
	}
	return remove, add, nil
}

// mergeSorted merges two time-sorted point lists; on equal times b wins.
func mergeSorted(a, b []tv) []tv {
	out := make([]tv, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && a[i].ts < b[j].ts:
			out = append(out, a[i])
			i++
		case i == len(a) || b[j].ts < a[i].ts:
			out = append(out, b[j])
			j++
		default: // same instant
			out = append(out, b[j])
			i++
			j++
		}
	}
	return out
}

func (e *Engine) sealChunk(ctx context.Context, tenantID, deviceID, metric string, pts []tv) (tsdbstore.ChunkRecord, error) {
	ts := make([]int64, len(pts))
	vs := make([]float64, len(pts))
	for i, p := range pts {
		ts[i], vs[i] = p.ts, p.v
	}
	plain, _, err := encodeChunk(ts, vs)
	if err != nil {
		return tsdbstore.ChunkRecord{}, fmt.Errorf("encode chunk of %s/%s: %w", deviceID, metric, err)
	}
	blob, err := e.keys.Seal(ctx, tenantID, plain, chunkAAD(deviceID, metric))
	if err != nil {
		return tsdbstore.ChunkRecord{}, fmt.Errorf("seal chunk of %s/%s: %w", deviceID, metric, err)
	}
	return tsdbstore.ChunkRecord{TenantID: tenantID, DeviceID: deviceID, Metric: metric,
		StartTS: ts[0], EndTS: ts[len(ts)-1], Count: len(ts), Blob: blob}, nil
}

// openChunk decrypts a chunk and returns its summary and encoded points.
func (e *Engine) openChunk(ctx context.Context, c tsdbstore.ChunkRecord) (summary, []byte, error) {
	plain, err := e.keys.Open(ctx, c.TenantID, c.Blob, chunkAAD(c.DeviceID, c.Metric))
	if err != nil {
		return summary{}, nil, fmt.Errorf("chunk %d of %s/%s: %w", c.ID, c.DeviceID, c.Metric, err)
	}
	s, data, err := splitChunk(plain)
	if err != nil {
		return summary{}, nil, fmt.Errorf("chunk %d of %s/%s: %w", c.ID, c.DeviceID, c.Metric, err)
	}
	return s, data, nil
}

func (e *Engine) decodeChunk(ctx context.Context, c tsdbstore.ChunkRecord) ([]int64, []float64, error) {
	_, data, err := e.openChunk(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	ts, vs, err := chunkenc.Decode(data)
	if err != nil {
		return nil, nil, fmt.Errorf("chunk %d of %s/%s: %w", c.ID, c.DeviceID, c.Metric, err)
	}
	return ts, vs, nil
}
