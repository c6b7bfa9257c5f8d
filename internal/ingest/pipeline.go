// Package ingest turns device messages into stored telemetry, whatever
// protocol they came by: a protocol adapter (the broker's IoT Hub MQTT, see
// internal/iothub) hands each message to Pipeline.Submit as a
// telemetry.Message; ingest decodes its payload by content type and keeps
// what it cannot read as a rejected message.
//
// An accepted message is made durable in two steps. First the committer
// seals it with its tenant's data key and appends it to the commit log
// (package commitlog) together with the messages that arrived meanwhile,
// under one fsync: then, and only then, its device is told it is stored.
// Behind the acknowledgements the applier reads the log in order and writes
// it to the telemetry engine in large transactions, each of which records
// how far the log is applied, so that after a crash the log is replayed
// from there, exactly once. The applier then hands the stored messages, and
// the connection changes between them, to the message log (msglog) that
// the alarm runtime reads.
package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/warden-iot/warden/internal/clock"
	"github.com/warden-iot/warden/internal/commitlog"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/msglog"
	"github.com/warden-iot/warden/internal/telemetry"
	"github.com/warden-iot/warden/internal/tsdb/tsdbstore"
)

// Outcome is what became of a submitted message.
type Outcome int

const (
	// Stored: the message is durable in the commit log; it is written to
	// the telemetry engine behind the acknowledgement, unless a message
	// with its id was stored before (then it is counted as a duplicate).
	Stored Outcome = iota
	// Rejected: unparseable, kept in the device's rejected list.
	Rejected
)

func (o Outcome) String() string {
	if o == Stored {
		return "stored"
	}
	return "rejected"
}

// Done is called once per submitted message, from the committer goroutine,
// after the outcome is durable (err == nil) or has failed (err != nil). It
// must not block for long.
type Done func(Outcome, error)

// Config tunes the pipeline.
type Config struct {
	// CommitLog is where accepted messages become durable (required).
	CommitLog *commitlog.Log
	// LogID names CommitLog in the applied marks the sink keeps: a log
	// made anew (a new data directory) starts from nothing instead of
	// inheriting the marks of another.
	LogID string
	// Keys seals the records of the commit log with their tenants' keys
	// (required).
	Keys *keyring.Keyring
	// MaxBatch is the most messages appended with one fsync.
	MaxBatch int
	// Queue is how many messages may wait for the committer before Submit
	// blocks (and so the sending connection stops being read).
	Queue int
	// MaxPayload is the largest message body accepted, in bytes; a larger
	// one is kept as rejected (its size, hash and first bytes). 0 means
	// DefaultMaxPayload.
	MaxPayload int
	// ApplyBatch is the most log records the applier writes in one
	// transaction (default 4096).
	ApplyBatch int
	// MaxLag is how many records the applier may be behind the log before
	// the committer waits for it (default 200,000): the log on disk stays
	// bounded when the database cannot keep up.
	MaxLag int
	// Log, if set, receives every stored (not duplicate) message, and the
	// connection changes given to Presence, in the order they were
	// submitted, after the applier wrote them. A full log slows the
	// applier down (its Append waits, within its bound).
	Log msglog.Appender
	// CommitTimeout bounds one attempt of the applier to write a batch (0:
	// DefaultCommitTimeout); a failed attempt is tried again until it
	// succeeds or the pipeline closes. It also bounds an append to the
	// commit log: an append that times out is not acknowledged.
	CommitTimeout time.Duration
}

// DefaultCommitTimeout is the default bound of one commit attempt.
const DefaultCommitTimeout = 5 * time.Second

// ErrTenantGone is the error of a message whose tenant was deleted before
// it could be stored: it is dropped.
var ErrTenantGone = errors.New("the device's tenant no longer exists: message dropped")

// DefaultMaxPayload is IoT Hub's limit of a device-to-cloud message.
const DefaultMaxPayload = 256 << 10

// Sink is where the applier writes: the telemetry engine (tsdb).
type Sink interface {
	// Apply commits a batch durably together with mark (how far the
	// commit log is applied); results are in batch order.
	Apply(ctx context.Context, msgs []telemetry.Message, mark tsdbstore.LogMark) ([]tsdbstore.WriteResult, error)
	// LogApplied is the offset up to which the log logID was applied.
	LogApplied(ctx context.Context, logID string) (uint64, error)
	// AddRejected keeps a message that could not be parsed.
	AddRejected(ctx context.Context, r tsdbstore.Rejected) error
}

// Pipeline parses messages, makes them durable in the commit log and
// applies the log to the sink.
type Pipeline struct {
	sink    Sink
	log     *slog.Logger
	clock   clock.Clock
	cfg     Config
	metrics *Metrics

	queue chan job
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
	mu    sync.RWMutex // held for reading by Submit while it queues

	// applied is how far the applier got; progress is closed and replaced
	// when it moves.
	amu      sync.Mutex
	applied  uint64
	progress chan struct{}
	started  bool
}

type job struct {
	msg      telemetry.Message
	rejected *tsdbstore.Rejected
	presence *msglog.Presence // a connection change: no payload
	done     Done
	queued   time.Time
}

// New makes a pipeline that stamps messages with clk's time (nil: the wall
// clock); call Run to start it.
func New(sink Sink, cfg Config, m *Metrics, log *slog.Logger, clk clock.Clock) *Pipeline {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 1000
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 8 * cfg.MaxBatch
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = DefaultMaxPayload
	}
	if cfg.ApplyBatch <= 0 {
		cfg.ApplyBatch = 4096
	}
	if cfg.MaxLag <= 0 {
		cfg.MaxLag = 200_000
	}
	if cfg.CommitTimeout <= 0 {
		cfg.CommitTimeout = DefaultCommitTimeout
	}
	return &Pipeline{
		sink: sink, log: log, clock: clock.OrReal(clk), cfg: cfg, metrics: m,
		queue:    make(chan job, cfg.Queue),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		progress: make(chan struct{}),
	}
}

// ErrClosed is returned by Submit after Close.
var ErrClosed = errors.New("ingest pipeline closed")

// Submit is the one way in for telemetry, whatever its protocol: it
// decodes a message an adapter made of what a device sent (see Decode) and
// queues it for commit, or, if it cannot be read, for keeping as rejected.
// done is called when its outcome is durable. Submit blocks while the queue
// is full.
func (p *Pipeline) Submit(ctx context.Context, m telemetry.Message, done Done) error {
	j := job{done: done, queued: p.clock.Now()}
	var msg telemetry.Message
	var err error
	if len(m.Payload) > p.cfg.MaxPayload {
		msg = telemetry.Message{TenantID: m.TenantID, DeviceID: m.DeviceID, MessageID: m.MessageID, ReceivedAt: m.ReceivedAt}
		err = fmt.Errorf("payload of %d bytes is over the limit of %d bytes", len(m.Payload), p.cfg.MaxPayload)
	} else {
		msg, err = Decode(m, j.queued)
	}
	if err != nil {
		j.rejected = rejectedOf(m, msg.MessageID, err)
	} else {
		j.msg = msg
	}
	return p.enqueue(ctx, j)
}

// Presence queues a device's connection change for the log, behind the
// messages submitted before it, so that the log has a device's messages and
// connection changes in the order they happened. It blocks while the queue
// is full.
func (p *Pipeline) Presence(ctx context.Context, tenantID, deviceID string, connected bool, at time.Time) error {
	return p.enqueue(ctx, job{msg: telemetry.Message{TenantID: tenantID, DeviceID: deviceID},
		presence: &msglog.Presence{Connected: connected, At: at}, queued: p.clock.Now()})
}

func (p *Pipeline) enqueue(ctx context.Context, j job) error {
	// Close closes stop under the write lock: once stop is seen open here,
	// Run cannot finish draining before this job is queued.
	p.mu.RLock()
	defer p.mu.RUnlock()
	select {
	case <-p.stop:
		return ErrClosed
	default:
	}
	select {
	case p.queue <- j:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// rejectedOf describes a refused message without keeping it whole: its
// size, hash and first tsdbstore.RejectedPrefixBytes (copied, so that the
// received buffer is not held).
func rejectedOf(m telemetry.Message, messageID string, err error) *tsdbstore.Rejected {
	sum := sha256.Sum256(m.Payload)
	prefix := m.Payload[:min(len(m.Payload), tsdbstore.RejectedPrefixBytes)]
	return &tsdbstore.Rejected{
		TenantID: m.TenantID, DeviceID: m.DeviceID, MessageID: messageID, Topic: m.Topic,
		Reason: err.Error(), Payload: bytes.Clone(prefix), Size: int64(len(m.Payload)), SHA256: sum[:],
		ReceivedAt: m.ReceivedAt,
	}
}

// Run replays the commit log from where it was last applied, then commits
// queued messages and applies the log until Close; it returns after the
// queue is drained and what the log holds is applied (or, if the sink
// cannot take it, left in the log for the next start).
func (p *Pipeline) Run(ctx context.Context) {
	defer close(p.done)
	applyCtx, stopApply := context.WithCancel(context.WithoutCancel(ctx))
	applied := make(chan struct{})
	go func() {
		defer close(applied)
		from, ok := p.applyStart(applyCtx)
		if !ok {
			return
		}
		if next := p.cfg.CommitLog.Next(); next > from {
			p.log.Info("replaying the commit log", "from", from, "records", next-from)
		}
		p.advance(from)
		p.apply(applyCtx, from)
	}()
	p.commitLoop(ctx)
	// The queue is drained: let the applier catch up with the log, then
	// stop it.
	drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*p.cfg.CommitTimeout)
	if err := p.waitApplied(drain, p.cfg.CommitLog.Next()); err != nil {
		p.log.Warn("closing with commit log records not applied yet: they are applied at the next start", "err", err)
	}
	cancel()
	stopApply()
	<-applied
}

func (p *Pipeline) commitLoop(ctx context.Context) {
	batch := make([]job, 0, p.cfg.MaxBatch)
	for {
		var first job
		select {
		case first = <-p.queue:
		case <-p.stop:
			// Drain what was queued before Close.
			for {
				select {
				case j := <-p.queue:
					batch = append(batch[:0], j)
					p.fill(&batch)
					p.commit(ctx, batch)
				default:
					return
				}
			}
		}
		// Group commit: take whatever else is already waiting. While this
		// batch is synced, the next one gathers.
		batch = append(batch[:0], first)
		p.fill(&batch)
		p.commit(ctx, batch)
	}
}

func (p *Pipeline) fill(batch *[]job) {
	for len(*batch) < p.cfg.MaxBatch {
		select {
		case j := <-p.queue:
			*batch = append(*batch, j)
		default:
			return
		}
	}
}

// Close stops accepting messages, commits what is queued, applies what the
// log holds, and waits for Run to finish.
func (p *Pipeline) Close() {
	p.once.Do(func() {
		p.mu.Lock() // waits for Submits that are queueing
		close(p.stop)
		p.mu.Unlock()
	})
	<-p.done
}

// commit seals a batch into log records, appends them with one fsync and
// reports each message's outcome in submission order.
func (p *Pipeline) commit(ctx context.Context, batch []job) {
	ctx = context.WithoutCancel(ctx) // finish what devices are waiting for
	start := time.Now()
	payloads := make([][]byte, 0, len(batch))
	errs := make([]error, len(batch))
	keys := map[string]*keyring.TenantKeys{}
	logged := make([]bool, len(batch))
	for i, j := range batch {
		if j.rejected != nil {
			actx, cancel := context.WithTimeout(ctx, p.cfg.CommitTimeout)
			err := p.sink.AddRejected(actx, *j.rejected)
			cancel()
			if err != nil {
				p.log.Error("keep rejected message", "device", j.rejected.DeviceID, "err", err)
				errs[i] = err
				continue
			}
			p.metrics.rejects.Inc()
			continue
		}
		rec, err := p.seal(ctx, keys, j)
		if err == nil && len(rec) > commitlog.MaxRecordSize {
			// Only with limits far above the defaults (megabytes of
			// properties); one message must not fail the others of its
			// group.
			err = fmt.Errorf("message of %d bytes in the commit log is over its limit of %d bytes", len(rec), commitlog.MaxRecordSize)
		}
		if err != nil {
			errs[i] = err
			continue
		}
		payloads = append(payloads, rec)
		logged[i] = true
	}
	if len(payloads) > 0 {
		if err := p.waitLag(ctx); err != nil {
			for i := range batch {
				if logged[i] {
					errs[i] = err
				}
			}
		} else {
			actx, cancel := context.WithTimeout(ctx, p.cfg.CommitTimeout)
			_, err := p.cfg.CommitLog.Append(actx, payloads...)
			cancel()
			if err != nil {
				p.log.Error("append to the commit log: messages not acknowledged", "messages", len(payloads), "err", err)
				for i := range batch {
					if logged[i] {
						errs[i] = fmt.Errorf("commit log: %w", err)
					}
				}
			}
			p.metrics.commitSeconds.Observe(time.Since(start).Seconds())
			p.metrics.batchSize.Observe(float64(len(payloads)))
		}
	}
	// Report in submission order: a device's acknowledgements must go out
	// in the order its messages arrived.
	for i, j := range batch {
		switch {
		case j.presence != nil:
		case j.rejected != nil:
			j.done(Rejected, errs[i])
		case errors.Is(errs[i], ErrTenantGone):
			p.metrics.dropped.Inc()
			j.done(Stored, errs[i])
		default:
			j.done(Stored, errs[i])
		}
	}
}

// seal makes the log record of a message or connection change, sealed with
// its tenant's data key (pinned once per batch and tenant).
func (p *Pipeline) seal(ctx context.Context, keys map[string]*keyring.TenantKeys, j job) ([]byte, error) {
	tenantID := j.msg.TenantID
	k, ok := keys[tenantID]
	if !ok {
		var err error
		k, err = p.cfg.Keys.Pin(ctx, tenantID)
		for attempt := 0; err != nil && attempt < 3 && (errors.Is(err, keyring.ErrShredded) || errors.Is(err, database.ErrConflict)); attempt++ {
			k, err = p.cfg.Keys.Pin(ctx, tenantID) // shredded as it was read: a new key is made
		}
		if errors.Is(err, database.ErrNotFound) {
			return nil, ErrTenantGone
		}
		if err != nil {
			return nil, fmt.Errorf("data key of tenant %q: %w", tenantID, err)
		}
		keys[tenantID] = k
	}
	kind := recordMessage
	var body []byte
	if j.presence != nil {
		kind = recordPresence
		body = appendPresence(nil, j.msg.DeviceID, j.presence.Connected, j.presence.At)
	} else {
		body = appendMessage(make([]byte, 0, 64+24*len(j.msg.Points)), &j.msg)
	}
	sealed, err := k.Seal(body, logAAD(kind, tenantID))
	if err != nil {
		return nil, fmt.Errorf("seal message of %s: %w", j.msg.DeviceID, err)
	}
	return encodeRecord(kind, tenantID, sealed), nil
}

// applyStart reads where the applier starts: how far the sink has applied
// the log. It tries again while the sink cannot say (a database still
// starting), until ctx ends (false).
func (p *Pipeline) applyStart(ctx context.Context) (uint64, bool) {
	backoff := 100 * time.Millisecond
	for {
		from, err := p.sink.LogApplied(ctx, p.cfg.LogID)
		if err == nil {
			return from, true
		}
		if ctx.Err() != nil {
			return 0, false
		}
		p.log.Warn("read how far the commit log is applied; trying again (messages are acknowledged meanwhile, up to the lag bound)", "err", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return 0, false
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// waitLag waits while the applier is more than MaxLag records behind.
func (p *Pipeline) waitLag(ctx context.Context) error {
	for {
		p.amu.Lock()
		applied, progress, started := p.applied, p.progress, p.started
		p.amu.Unlock()
		if !started {
			// Not known yet: what the log holds may all be unapplied.
			applied = p.cfg.CommitLog.First()
		}
		next := p.cfg.CommitLog.Next()
		if next < applied || next-applied <= uint64(p.cfg.MaxLag) {
			return nil
		}
		select {
		case <-progress:
		case <-time.After(p.cfg.CommitTimeout):
			return fmt.Errorf("the database is %d records behind the commit log", next-applied)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// CaughtUp waits until every message acknowledged before the call is
// written to the sink, or ctx ends: readers call it so that what a device
// was told is stored can be read back at once.
func (p *Pipeline) CaughtUp(ctx context.Context) error {
	return p.waitApplied(ctx, p.cfg.CommitLog.Next())
}

func (p *Pipeline) waitApplied(ctx context.Context, target uint64) error {
	for {
		p.amu.Lock()
		applied, progress, started := p.applied, p.progress, p.started
		p.amu.Unlock()
		if started && applied >= target {
			return nil
		}
		select {
		case <-progress:
		case <-p.done:
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
