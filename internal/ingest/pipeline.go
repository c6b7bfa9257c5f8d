// Package ingest turns device messages into stored telemetry, whatever
// protocol they came by: a protocol adapter (the broker's IoT Hub MQTT, see
// internal/iothub) hands each message to Pipeline.Submit as a
// telemetry.Message; ingest decodes its payload by content type, keeps what
// it cannot read as a rejected message, and commits accepted messages in
// groups so that a device's QoS 1 acknowledgement is sent only once its
// points are durable.
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

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-iot/warden/internal/clock"
	"github.com/warden-iot/warden/internal/msglog"
	"github.com/warden-iot/warden/internal/telemetry"
	"github.com/warden-iot/warden/internal/tsdb/tsdbstore"
)

// Outcome is what became of a submitted message.
type Outcome int

const (
	Stored    Outcome = iota // points committed
	Duplicate                // same message id seen before: nothing stored
	Rejected                 // unparseable: kept in the device's rejected list
)

func (o Outcome) String() string {
	switch o {
	case Stored:
		return "stored"
	case Duplicate:
		return "duplicate"
	default:
		return "rejected"
	}
}

// Done is called once per submitted message, from the committer goroutine,
// after the outcome is durable (err == nil) or has failed (err != nil). It
// must not block for long.
type Done func(Outcome, error)

// Config tunes the committer.
type Config struct {
	// MaxBatch is the most messages committed in one transaction.
	MaxBatch int
	// Queue is how many messages may wait for the committer before Submit
	// blocks (and so the sending connection stops being read).
	Queue int
	// MaxPayload is the largest message body accepted, in bytes; a larger
	// one is kept as rejected (its size, hash and first bytes). 0 means
	// DefaultMaxPayload.
	MaxPayload int
	// Log, if set, receives every accepted (stored, not duplicate) message
	// of a group commit, and the connection changes given to Presence, in
	// the order they were submitted — after the senders were told the
	// outcome: acknowledgements wait for the commit only. A full log slows
	// the committer down (its Append waits, within its bound).
	Log msglog.Appender
	// CommitTimeout bounds one attempt to commit a group; an attempt that
	// times out is rolled back and tried again, up to CommitAttempts
	// attempts, after which its messages fail (they are not acknowledged,
	// so their devices send them again). 0 means DefaultCommitTimeout and
	// 3 attempts.
	CommitTimeout  time.Duration
	CommitAttempts int
}

// DefaultCommitTimeout is the default bound of one commit attempt.
const DefaultCommitTimeout = 5 * time.Second

// ErrTenantGone is the error of a message whose tenant was deleted before
// it could be stored: it is dropped.
var ErrTenantGone = errors.New("the device's tenant no longer exists: message dropped")

// DefaultMaxPayload is IoT Hub's limit of a device-to-cloud message.
const DefaultMaxPayload = 256 << 10

// Sink is where committed telemetry goes: the telemetry engine (tsdb), or,
// with several nodes, a durable stream in front of it.
type Sink interface {
	// Write commits a batch durably; results are in batch order.
	Write(ctx context.Context, msgs []telemetry.Message) ([]tsdbstore.WriteResult, error)
	// AddRejected keeps a message that could not be parsed.
	AddRejected(ctx context.Context, r tsdbstore.Rejected) error
}

// Pipeline parses messages and commits them in groups.
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
}

type job struct {
	msg      telemetry.Message
	rejected *tsdbstore.Rejected
	presence *msglog.Presence // a connection change: no commit, only the log
	done     Done
	queued   time.Time
}

// New makes a pipeline that stamps messages with clk's time (nil: the wall
// clock); call Run to start committing.
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
	if cfg.CommitTimeout <= 0 {
		cfg.CommitTimeout = DefaultCommitTimeout
	}
	if cfg.CommitAttempts <= 0 {
		cfg.CommitAttempts = 3
	}
	return &Pipeline{
		sink: sink, log: log, clock: clock.OrReal(clk), cfg: cfg, metrics: m,
		queue: make(chan job, cfg.Queue),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
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

// Presence queues a device's connection change for the log, behind the
// messages submitted before it, so that the log has a device's messages and
// connection changes in the order they happened. It blocks while the queue
// is full. Without a log it does nothing.
func (p *Pipeline) Presence(ctx context.Context, tenantID, deviceID string, connected bool, at time.Time) error {
	if p.cfg.Log == nil {
		return nil
	}
	j := job{msg: telemetry.Message{TenantID: tenantID, DeviceID: deviceID}, presence: &msglog.Presence{Connected: connected, At: at},
		queued: p.clock.Now()}
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

// Run commits queued messages until Close; it returns after the queue is
// drained.
func (p *Pipeline) Run(ctx context.Context) {
	defer close(p.done)
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
		// batch commits, the next one gathers.
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

// Close stops accepting messages, commits what is queued, and waits for Run
// to finish.
func (p *Pipeline) Close() {
	p.once.Do(func() {
		p.mu.Lock() // waits for Submits that are queueing
		close(p.stop)
		p.mu.Unlock()
	})
	<-p.done
}

func (p *Pipeline) commit(ctx context.Context, batch []job) {
	ctx = context.WithoutCancel(ctx) // finish what devices are waiting for
	msgs := make([]telemetry.Message, 0, len(batch))
	var rejectErrs map[int]error
	for i, j := range batch {
		if j.presence != nil {
			continue
		}
		if j.rejected == nil {
			msgs = append(msgs, j.msg)
			continue
		}
		actx, cancel := context.WithTimeout(ctx, p.cfg.CommitTimeout)
		err := p.sink.AddRejected(actx, *j.rejected)
		cancel()
		if err != nil {
			p.log.Error("keep rejected message", "device", j.rejected.DeviceID, "err", err)
			if rejectErrs == nil {
				rejectErrs = map[int]error{}
			}
			rejectErrs[i] = err
			continue
		}
		p.metrics.rejects.Inc()
	}
	var results []tsdbstore.WriteResult
	var err error
	if len(msgs) > 0 {
		start := time.Now()
		results, err = p.write(ctx, msgs)
		p.metrics.commitSeconds.Observe(time.Since(start).Seconds())
		p.metrics.batchSize.Observe(float64(len(msgs)))
		if err != nil {
			p.log.Error("commit telemetry", "messages", len(msgs), "err", err)
		}
	}
	// Report in submission order: a device's acknowledgements must go out
	// in the order its messages arrived.
	m := 0
	var recs []msglog.Record
	if p.cfg.Log != nil {
		recs = make([]msglog.Record, 0, len(batch))
	}
	for i, j := range batch {
		switch {
		case j.presence != nil:
			if recs != nil {
				recs = append(recs, msglog.Record{TenantID: j.msg.TenantID, DeviceID: j.msg.DeviceID, Presence: j.presence})
			}
			continue
		case j.rejected != nil:
			j.done(Rejected, rejectErrs[i])
			continue
		case err != nil:
			j.done(Stored, err)
		case results[m].Dropped:
			p.metrics.dropped.Inc()
			j.done(Stored, ErrTenantGone)
		case results[m].Err != nil:
			j.done(Stored, results[m].Err)
		case results[m].Duplicate:
			p.metrics.duplicates.Inc()
			j.done(Duplicate, nil)
		default:
			p.metrics.messages.Inc()
			p.metrics.points.Add(float64(len(j.msg.Points)))
			j.done(Stored, nil)
			if recs != nil {
				recs = append(recs, msglog.Record{TenantID: j.msg.TenantID, DeviceID: j.msg.DeviceID, Message: &msgs[m]})
			}
		}
		m++
	}
	if len(recs) > 0 {
		if err := p.cfg.Log.Append(ctx, recs); err != nil {
			// Stored, acknowledged, but not evaluated: the alarms they
			// would have raised are lost. Say so loudly.
			p.metrics.logDropped.Add(float64(droppedOf(err, len(recs))))
			p.log.Error("message log refused committed messages: alarm rules did not see them", "records", len(recs), "err", err)
		}
	}
}

// droppedOf is how many of n records an Append error says were dropped:
// the count of a msglog.FullError, else all of them.
func droppedOf(err error, n int) int {
	if fe, ok := errors.AsType[*msglog.FullError](err); ok {
		return fe.Dropped
	}
	return n
}

// write commits msgs, each attempt bounded by CommitTimeout: a commit that
// waits for ever (a lock, a stalled disk or database) must not stall ingest
// for good. An attempt that timed out was rolled back, so it is tried
// again; nothing is acknowledged until an attempt commits.
func (p *Pipeline) write(ctx context.Context, msgs []telemetry.Message) ([]tsdbstore.WriteResult, error) {
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, p.cfg.CommitTimeout)
		results, err := p.sink.Write(actx, msgs)
		timedOut := err != nil && actx.Err() == context.DeadlineExceeded
		cancel()
		if !timedOut {
			return results, err
		}
		if attempt == p.cfg.CommitAttempts {
			return nil, fmt.Errorf("commit timed out %d times (after %v each): %w", attempt, p.cfg.CommitTimeout, err)
		}
		p.metrics.commitTimeouts.Inc()
		p.log.Warn("commit timed out; trying again", "messages", len(msgs), "attempt", attempt, "timeout", p.cfg.CommitTimeout, "err", err)
	}
}

// Metrics are the pipeline's Prometheus metrics.
type Metrics struct {
	messages       prometheus.Counter
	points         prometheus.Counter
	duplicates     prometheus.Counter
	rejects        prometheus.Counter
	dropped        prometheus.Counter
	commitTimeouts prometheus.Counter
	commitSeconds  prometheus.Histogram
	batchSize      prometheus.Histogram
	logDropped     prometheus.Counter
}

// NewMetrics makes the pipeline's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		messages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_messages_stored_total", Help: "Telemetry messages committed."}),
		points: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_points_stored_total", Help: "Telemetry points committed."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_messages_duplicate_total", Help: "Messages acknowledged but not stored again because their id was seen before."}),
		rejects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_messages_rejected_total", Help: "Messages that could not be parsed and were kept as rejected."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_messages_dropped_total", Help: "Messages dropped because their tenant was deleted before they were stored."}),
		commitTimeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_commit_timeouts_total", Help: "Group commit attempts that timed out and were tried again."}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "warden_commit_duration_seconds", Help: "Time to durably commit one group of messages.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "warden_commit_batch_messages", Help: "Messages per group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12)}),
		logDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_log_dropped_total", Help: "Committed messages and connection changes the alarm runtime did not see because its log stayed full."}),
	}
	if reg != nil {
		reg.MustRegister(m.messages, m.points, m.duplicates, m.rejects, m.dropped, m.commitTimeouts, m.commitSeconds, m.batchSize, m.logDropped)
	}
	return m
}
