package tsdb

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/store"
)

// Config tunes the engine.
type Config struct {
	// SealRows and SealAge: the sealer leaves a device's newest SealRows
	// messages of the last SealAge in its head, where they are listed
	// with their properties (RecentMessages). It seals a head once it holds
	// twice SealRows messages, or once its oldest message is twice SealAge
	// old, so that each seal folds about SealRows messages or SealAge of
	// them at a time.
	SealRows int
	SealAge  time.Duration
	// ChunkPoints is the most points in one chunk.
	ChunkPoints int
	// SealEvery is how often the sealer looks for heads to seal.
	SealEvery time.Duration
	// RetentionEvery is how often per-tenant retention is enforced.
	RetentionEvery time.Duration
}

func (c *Config) defaults() {
	if c.SealRows <= 0 {
		c.SealRows = 240
	}
	if c.SealAge <= 0 {
		c.SealAge = 2 * time.Hour
	}
	if c.ChunkPoints <= 0 {
		c.ChunkPoints = 1024
	}
	if c.SealEvery <= 0 {
		c.SealEvery = 10 * time.Second
	}
	if c.RetentionEvery <= 0 {
		c.RetentionEvery = time.Hour
	}
}

// Engine is Warden's telemetry engine: messages land durably in a per-device
// head (one encrypted row per message); a sealer folds heads into
// compressed, encrypted per-series chunks; queries merge both.
type Engine struct {
	cfg   Config
	store store.Store
	keys  *keyring.Keyring
	log   *slog.Logger
	now   func() time.Time

	stop chan struct{}
	wg   sync.WaitGroup
}

// New makes an engine; Start runs its background jobs.
func New(cfg Config, st store.Store, keys *keyring.Keyring, log *slog.Logger, now func() time.Time) *Engine {
	cfg.defaults()
	return &Engine{cfg: cfg, store: st, keys: keys, log: log, now: now, stop: make(chan struct{})}
}

// Associated data binds each sealed blob to what it belongs to, so a blob
// copied to another row does not decrypt.
func headAAD(deviceID string) []byte   { return []byte("head\x00" + deviceID) }
func latestAAD(deviceID string) []byte { return []byte("latest\x00" + deviceID) }
func chunkAAD(deviceID, metric string) []byte {
	return []byte("chunk\x00" + deviceID + "\x00" + metric)
}

// Write commits a batch of messages durably (see store.Store.WriteHead):
// each accepted message becomes one encrypted head record, and each
// device's latest values are updated.
func (e *Engine) Write(ctx context.Context, msgs []store.Message) ([]store.WriteResult, error) {
	recs := make([]store.HeadRecord, len(msgs))
	for i, m := range msgs {
		blob, err := e.keys.Seal(ctx, m.TenantID, appendHead(nil, m), headAAD(m.DeviceID))
		if err != nil {
			return nil, fmt.Errorf("seal message of %s: %w", m.DeviceID, err)
		}
		r := store.HeadRecord{TenantID: m.TenantID, DeviceID: m.DeviceID, MessageID: m.MessageID,
			ReceivedAt: m.ReceivedAt, Blob: blob}
		for j, p := range m.Points {
			ts := p.TS.UnixMilli()
			if j == 0 || ts < r.MinTS {
				r.MinTS = ts
			}
			if j == 0 || ts > r.MaxTS {
				r.MaxTS = ts
			}
		}
		recs[i] = r
	}
	merge := func(tenantID, deviceID string, old []byte, accepted []int) ([]byte, error) {
		latest := map[string]point{}
		if old != nil {
			pt, err := e.keys.Open(ctx, tenantID, old, latestAAD(deviceID))
			if errors.Is(err, keyring.ErrShredded) {
				pt, err = appendPoints(nil, nil), nil // the old values are gone for good
			}
			if err != nil {
				return nil, fmt.Errorf("latest of %s: %w", deviceID, err)
			}
			ps, err := decodePoints(pt, nil)
			if err != nil {
				return nil, fmt.Errorf("latest of %s: %w", deviceID, err)
			}
			for _, p := range ps {
				latest[p.metric] = p
			}
		}
		for _, i := range accepted {
			for _, p := range msgs[i].Points {
				ts := p.TS.UnixMilli()
				if cur, ok := latest[p.Metric]; !ok || ts >= cur.ts {
					latest[p.Metric] = point{metric: p.Metric, ts: ts, v: p.Value}
				}
			}
		}
		ps := make([]store.Point, 0, len(latest))
		for _, p := range latest {
			ps = append(ps, store.Point{Metric: p.metric, TS: time.UnixMilli(p.ts), Value: p.v})
		}
		slices.SortFunc(ps, func(a, b store.Point) int { return cmp.Compare(a.Metric, b.Metric) })
		return e.keys.Seal(ctx, tenantID, appendPoints(nil, ps), latestAAD(deviceID))
	}
	return e.store.WriteHead(ctx, recs, merge)
}

// Start runs the sealer and the retention job until Close.
func (e *Engine) Start(ctx context.Context) {
	e.wg.Add(2)
	go func() {
		defer e.wg.Done()
		e.every(ctx, e.cfg.SealEvery, func(ctx context.Context) {
			if _, err := e.SealDue(ctx); err != nil {
				e.log.Warn("seal telemetry", "err", err)
			}
		})
	}()
	go func() {
		defer e.wg.Done()
		e.every(ctx, e.cfg.RetentionEvery, func(ctx context.Context) {
			if _, err := e.EnforceRetention(ctx); err != nil {
				e.log.Warn("enforce retention", "err", err)
			}
		})
	}()
}

func (e *Engine) every(ctx context.Context, d time.Duration, fn func(context.Context)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
			fn(ctx)
		}
	}
}

// Close stops the background jobs. Nothing is lost: heads are durable.
func (e *Engine) Close() {
	close(e.stop)
	e.wg.Wait()
}
