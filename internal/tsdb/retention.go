package tsdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/telemetry"
	"github.com/warden-iot/warden/internal/tsdb/tsdbstore"
)

// EnforceRetention deletes, for every tenant with a retention period,
// telemetry older than it: whole chunks and head records, the expired part
// of chunks that straddle the cutoff, expired latest values and rejected
// messages. It returns the number of chunks and head records deleted.
func (e *Engine) EnforceRetention(ctx context.Context) (int64, error) {
	tenants, err := e.tenants.ListTenants(ctx)
	if err != nil {
		return 0, fmt.Errorf("retention: %w", err)
	}
	var total int64
	for _, t := range tenants {
		if t.RetentionDays <= 0 {
			continue
		}
		cutoff := e.clock.Now().Add(-time.Duration(t.RetentionDays) * 24 * time.Hour).UnixMilli()
		n, err := e.store.DeleteTelemetryBefore(ctx, t.ID, cutoff)
		if err != nil {
			return total, fmt.Errorf("retention of tenant %s: %w", t.ID, err)
		}
		total += n
		if err := e.trimChunks(ctx, t.ID, cutoff); err != nil {
			return total, fmt.Errorf("retention of tenant %s: %w", t.ID, err)
		}
		if err := e.trimLatest(ctx, t.ID, cutoff); err != nil {
			return total, fmt.Errorf("retention of tenant %s: %w", t.ID, err)
		}
	}
	return total, nil
}

// trimChunks rewrites chunks that start before the cutoff and end after it.
func (e *Engine) trimChunks(ctx context.Context, tenantID string, cutoff int64) error {
	chunks, err := e.store.ChunksSpanning(ctx, tenantID, cutoff)
	if err != nil {
		return err
	}
	for _, c := range chunks {
		ts, vs, err := e.decodeChunk(ctx, c)
		if errors.Is(err, keyring.ErrShredded) {
			continue
		}
		if err != nil {
			return err
		}
		var keep []tv
		for i := range ts {
			if ts[i] >= cutoff {
				keep = append(keep, tv{ts[i], vs[i]})
			}
		}
		var add []tsdbstore.ChunkRecord
		if len(keep) > 0 {
			nc, err := e.sealChunk(ctx, tenantID, c.DeviceID, c.Metric, keep)
			if err != nil {
				return err
			}
			add = append(add, nc)
		}
		if err := e.store.SealHead(ctx, c.DeviceID, nil, []int64{c.ID}, add); err != nil && !errors.Is(err, database.ErrConflict) {
			return err
		}
	}
	return nil
}

// trimLatest drops latest values older than the cutoff.
func (e *Engine) trimLatest(ctx context.Context, tenantID string, cutoff int64) error {
	after := ""
	for {
		page, err := e.store.LatestBlobs(ctx, tenantID, after, 500)
		if err != nil {
			return err
		}
		for _, b := range page {
			after = b.DeviceID
			if b.Blob == nil {
				continue
			}
			ms, err := e.openLatest(ctx, tenantID, b.DeviceID, b.Blob, nil)
			if errors.Is(err, keyring.ErrShredded) {
				continue
			}
			if err != nil {
				return err
			}
			var keep []telemetry.Point
			for _, m := range ms {
				if m.TS.UnixMilli() >= cutoff {
					keep = append(keep, telemetry.Point{Metric: m.Metric, TS: m.TS, Value: m.Value})
				}
			}
			if len(keep) == len(ms) {
				continue
			}
			var blob []byte
			if len(keep) > 0 {
				if blob, err = e.keys.Seal(ctx, tenantID, appendPoints(nil, keep), latestAAD(b.DeviceID)); err != nil {
					return err
				}
			}
			if err := e.store.SetLatestBlob(ctx, b.DeviceID, blob); err != nil {
				return err
			}
		}
		if len(page) < 500 {
			return nil
		}
	}
}
