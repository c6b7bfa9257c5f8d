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

	"github.com/warden-iot/warden/internal/clock"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/telemetry"
	"github.com/warden-iot/warden/internal/tenancy"
	"github.com/warden-iot/warden/internal/tsdb/tsdbstore"
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

// Store is the telemetry store the engine keeps its records in: heads,
// chunks, latest values, rejected messages (see package tsdbstore; its
// implementations are tsdbsqlite and tsdbpg).
type Store = tsdbstore.Store

// Tenants lists the tenants, whose retention periods the engine enforces.
type Tenants interface {
	ListTenants(ctx context.Context) ([]tenancy.Tenant, error)
}

// Storage is what New takes: the telemetry store and the tenant list, which
// an engine (store/sqlite, store/postgres) holds both of.
type Storage interface {
	Store
	Tenants
}

// Engine is Warden's telemetry engine: messages land durably in a per-device
// head (one encrypted row per message); a sealer folds heads into
// compressed, encrypted per-series chunks; queries merge both.
type Engine struct {
	cfg     Config
	store   Store
	tenants Tenants
	keys    *keyring.Keyring
	log     *slog.Logger
	clock   clock.Clock

	stop chan struct{}
	wg   sync.WaitGroup
}

// New makes an engine on clk (nil: the wall clock); Start runs its background jobs.
func New(cfg Config, st Storage, keys *keyring.Keyring, log *slog.Logger, clk clock.Clock) *Engine {
	cfg.defaults()
	return &Engine{cfg: cfg, store: st, tenants: st, keys: keys, log: log, clock: clock.OrReal(clk), stop: make(chan struct{})}
}

// Associated data binds each sealed blob to what it belongs to, so a blob
// copied to another row does not decrypt.
func headAAD(deviceID string) []byte   { return []byte("head\x00" + deviceID) }
func latestAAD(deviceID string) []byte { return []byte("latest\x00" + deviceID) }
func chunkAAD(deviceID, metric string) []byte {
	return []byte("chunk\x00" + deviceID + "\x00" + metric)
}

// writeAttempts bounds the transactions one Write tries: another is needed
// only when a tenant's keys are destroyed between the sealing of its
// messages and the commit, or when a device's latest values were sealed
// with a key this engine had not loaded.
const writeAttempts = 5

// Write commits a batch of messages durably (see Store.WriteHead):
// each accepted message becomes one encrypted head record, and each
// device's latest values are updated.
//
// Everything the transaction needs is obtained before it begins: the
// tenants' data keys (a tenant without one gets it in a short transaction
// of its own) and the sealed records; inside it only rows are read and
// written, and the new latest values are sealed with the keys in hand. A
// message of a tenant that no longer exists is dropped (Dropped): its
// device is gone with it. If a tenant's keys are destroyed between sealing
// and commit, the other tenants' messages commit and that tenant's are
// sealed again with its new key, or dropped if the tenant was deleted.
func (e *Engine) Write(ctx context.Context, msgs []telemetry.Message) ([]tsdbstore.WriteResult, error) {
	return e.Apply(ctx, msgs, tsdbstore.LogMark{})
}

// Apply is Write for messages read from a commit log: each transaction
// also records mark, how far the log is applied (see LogApplied), so that
// a batch is applied exactly once. (Messages retried after their tenant's
// keys were destroyed during an attempt are written after the mark: a crash
// between the two loses them with the data the destruction erased.)
func (e *Engine) Apply(ctx context.Context, msgs []telemetry.Message, mark tsdbstore.LogMark) ([]tsdbstore.WriteResult, error) {
	results := make([]tsdbstore.WriteResult, len(msgs))
	pending := make([]int, len(msgs))
	for i := range msgs {
		pending[i] = i
	}
	keys := map[string]*keyring.TenantKeys{}
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt == writeAttempts {
			for _, i := range pending {
				results[i].Err = fmt.Errorf("message of %s: the keys of tenant %q were destroyed during each of %d attempts",
					msgs[i].DeviceID, msgs[i].TenantID, writeAttempts)
			}
			break
		}
		batch, err := e.pin(ctx, msgs, pending, keys, results)
		if err != nil {
			return nil, err
		}
		if len(batch) == 0 {
			if attempt == 0 && mark.LogID != "" {
				// Every message was dropped: the mark still moves on.
				if _, err := e.store.WriteHead(ctx, nil, nil, mark); err != nil {
					return nil, err
				}
			}
			break
		}
		res, err := e.writeOnce(ctx, msgs, batch, keys, mark)
		var np *keyring.NotPinnedError
		if errors.As(err, &np) {
			if err := e.keys.Load(ctx, keys[np.TenantID], np.ID); err != nil {
				return nil, fmt.Errorf("latest values of tenant %q: %w", np.TenantID, err)
			}
			pending = batch
			continue
		}
		if err != nil {
			return nil, err
		}
		pending = pending[:0]
		for j, i := range batch {
			if !res[j].KeyGone {
				results[i] = res[j]
				continue
			}
			// Destroyed since it was pinned: forget it, so that the next
			// attempt reads the tenant's keys again.
			if k, ok := keys[msgs[i].TenantID]; ok {
				e.keys.Forget(k.KeyID())
				delete(keys, msgs[i].TenantID)
			}
			pending = append(pending, i)
		}
	}
	return results, nil
}

// pin obtains the data keys of the tenants of the pending messages not in
// keys yet, marks the messages of tenants that no longer exist Dropped, and
// returns the others.
func (e *Engine) pin(ctx context.Context, msgs []telemetry.Message, pending []int, keys map[string]*keyring.TenantKeys, results []tsdbstore.WriteResult) ([]int, error) {
	gone := map[string]int{}
	batch := make([]int, 0, len(pending))
	for _, i := range pending {
		tenantID := msgs[i].TenantID
		if _, ok := gone[tenantID]; ok {
			gone[tenantID]++
			results[i].Dropped = true
			continue
		}
		if _, ok := keys[tenantID]; !ok {
			k, err := e.keys.Pin(ctx, tenantID)
			if errors.Is(err, database.ErrNotFound) {
				gone[tenantID]++
				results[i].Dropped = true
				continue
			}
			if errors.Is(err, keyring.ErrShredded) || errors.Is(err, database.ErrConflict) {
				batch = append(batch, i) // shredded as it was read or made: the next attempt makes a new key
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("data key of tenant %q: %w", tenantID, err)
			}
			keys[tenantID] = k
		}
		batch = append(batch, i)
	}
	for tenantID, n := range gone {
		e.log.Warn("telemetry of a deleted tenant dropped", "tenant", tenantID, "messages", n)
	}
	return batch, nil
}

// writeOnce seals the messages batch (indexes into msgs) with keys and
// commits them in one transaction; results are in batch order.
func (e *Engine) writeOnce(ctx context.Context, msgs []telemetry.Message, batch []int, keys map[string]*keyring.TenantKeys, mark tsdbstore.LogMark) ([]tsdbstore.WriteResult, error) {
	recs := make([]tsdbstore.HeadRecord, 0, len(batch))
	var sealedAt []int // batch positions of recs
	var skipped []int  // batch positions whose tenant's key was shredded as it was pinned
	for j, i := range batch {
		m := msgs[i]
		k, ok := keys[m.TenantID]
		if !ok {
			skipped = append(skipped, j)
			continue
		}
		blob, err := k.Seal(appendHead(nil, m), headAAD(m.DeviceID))
		if err != nil {
			return nil, fmt.Errorf("seal message of %s: %w", m.DeviceID, err)
		}
		r := tsdbstore.HeadRecord{TenantID: m.TenantID, DeviceID: m.DeviceID, MessageID: m.MessageID,
			ReceivedAt: m.ReceivedAt, Blob: blob, KeyID: k.KeyID()}
		for n, p := range m.Points {
			ts := p.TS.UnixMilli()
			if n == 0 || ts < r.MinTS {
				r.MinTS = ts
			}
			if n == 0 || ts > r.MaxTS {
				r.MaxTS = ts
			}
		}
		recs = append(recs, r)
		sealedAt = append(sealedAt, j)
	}
	merge := func(tenantID, deviceID string, old []byte, accepted []int) ([]byte, error) {
		k := keys[tenantID]
		latest := map[string]point{}
		if old != nil {
			pt, err := k.Open(old, latestAAD(deviceID))
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
		for _, r := range accepted {
			for _, p := range msgs[batch[sealedAt[r]]].Points {
				ts := p.TS.UnixMilli()
				if cur, ok := latest[p.Metric]; !ok || ts >= cur.ts {
					latest[p.Metric] = point{metric: p.Metric, ts: ts, v: p.Value}
				}
			}
		}
		ps := make([]telemetry.Point, 0, len(latest))
		for _, p := range latest {
			ps = append(ps, telemetry.Point{Metric: p.metric, TS: time.UnixMilli(p.ts), Value: p.v})
		}
		slices.SortFunc(ps, func(a, b telemetry.Point) int { return cmp.Compare(a.Metric, b.Metric) })
		return k.Seal(appendPoints(nil, ps), latestAAD(deviceID))
	}
	res, err := e.store.WriteHead(ctx, recs, merge, mark)
	if err != nil {
		return nil, err
	}
	out := make([]tsdbstore.WriteResult, len(batch))
	for n, j := range sealedAt {
		out[j] = res[n]
	}
	for _, j := range skipped {
		out[j].KeyGone = true
	}
	return out, nil
}

// LogApplied is how far the commit log logID is applied: the offset of
// its first record not written yet.
func (e *Engine) LogApplied(ctx context.Context, logID string) (uint64, error) {
	return e.store.LogApplied(ctx, logID)
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
	t := e.clock.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-ctx.Done():
			return
		case <-t.C():
			fn(ctx)
		}
	}
}

// Close stops the background jobs. Nothing is lost: heads are durable.
func (e *Engine) Close() {
	close(e.stop)
	e.wg.Wait()
}
