package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-iot/warden/internal/commitlog"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/msglog"
	"github.com/warden-iot/warden/internal/telemetry"
	"github.com/warden-iot/warden/internal/tsdb/tsdbstore"
)

// dropEvery is how many applied records the applier lets pass before it
// drops the commit log's segments that are wholly applied.
const dropEvery = 64 << 10

// apply reads the commit log from offset from and writes it to the sink
// until ctx ends.
func (p *Pipeline) apply(ctx context.Context, from uint64) {
	r := p.cfg.CommitLog.NewReader(from)
	defer r.Close()
	sinceDrop := 0
	for {
		entries, err := r.Read(ctx, p.cfg.ApplyBatch)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, commitlog.ErrClosed) {
				p.log.Error("read the commit log: applying stopped; the records stay in the log for the next start", "err", err)
			}
			return
		}
		through := entries[len(entries)-1].Offset + 1
		for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
			err := p.applyBatch(ctx, entries, through)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			// Acknowledged messages are never skipped for a passing
			// failure: the batch waits, and the lag bound holds ingest
			// back if it lasts.
			p.log.Warn("apply the commit log: trying again", "err", err)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
		}
		p.advance(through)
		sinceDrop += len(entries)
		if sinceDrop >= dropEvery {
			sinceDrop = 0
			if _, err := p.cfg.CommitLog.DropBefore(through); err != nil {
				p.log.Warn("drop applied commit log segments", "err", err)
			}
		}
	}
}

// advance records that the log is applied up to through.
func (p *Pipeline) advance(through uint64) {
	p.amu.Lock()
	p.applied, p.started = through, true
	close(p.progress)
	p.progress = make(chan struct{})
	p.amu.Unlock()
	if next := p.cfg.CommitLog.Next(); next >= through {
		p.metrics.applyLag.Set(float64(next - through))
	}
}

// applyBatch opens and writes one batch of log records. Writes are tried
// again until they succeed or ctx ends; an error says the batch must be
// tried again (a data key could not be loaded). Records of tenants whose
// keys were destroyed are dropped (erased); a record that opens but does
// not decode is skipped and logged.
func (p *Pipeline) applyBatch(ctx context.Context, entries []commitlog.Entry, through uint64) error {
	msgs := make([]telemetry.Message, 0, len(entries))
	// order holds, in log order, each record's message index (>= 0) or
	// connection change.
	type item struct {
		msg      int
		presence *msglog.Record
	}
	order := make([]item, 0, len(entries))
	erased := 0
	for _, e := range entries {
		kind, tenantID, sealed, err := decodeRecord(e.Payload)
		if err != nil {
			p.log.Error("commit log record unreadable: skipped", "offset", e.Offset, "err", err)
			continue
		}
		body, err := p.cfg.Keys.Open(ctx, tenantID, sealed, logAAD(kind, tenantID))
		if errors.Is(err, keyring.ErrShredded) || errors.Is(err, database.ErrNotFound) {
			erased++ // the tenant's keys were destroyed: erased with it
			continue
		}
		if err != nil {
			return fmt.Errorf("open record %d of tenant %q: %w", e.Offset, tenantID, err)
		}
		switch kind {
		case recordMessage:
			m, err := decodeMessage(body, tenantID)
			if err != nil {
				p.log.Error("commit log message unreadable: skipped", "offset", e.Offset, "tenant", tenantID, "err", err)
				continue
			}
			order = append(order, item{msg: len(msgs)})
			msgs = append(msgs, m)
		case recordPresence:
			deviceID, connected, at, err := decodePresence(body)
			if err != nil {
				p.log.Error("commit log connection change unreadable: skipped", "offset", e.Offset, "tenant", tenantID, "err", err)
				continue
			}
			order = append(order, item{msg: -1, presence: &msglog.Record{TenantID: tenantID, DeviceID: deviceID,
				Presence: &msglog.Presence{Connected: connected, At: at}}})
		}
	}
	if erased > 0 {
		p.metrics.dropped.Add(float64(erased))
	}
	var results []tsdbstore.WriteResult
	if len(msgs) > 0 {
		var ok bool
		if results, ok = p.write(ctx, msgs, tsdbstore.LogMark{LogID: p.cfg.LogID, Next: through}); !ok {
			return ctx.Err()
		}
	}
	var recs []msglog.Record
	if p.cfg.Log != nil {
		recs = make([]msglog.Record, 0, len(order))
	}
	for _, it := range order {
		if it.msg < 0 {
			if recs != nil {
				recs = append(recs, *it.presence)
			}
			continue
		}
		res, m := results[it.msg], &msgs[it.msg]
		switch {
		case res.Dropped || res.KeyGone:
			p.metrics.dropped.Inc()
		case res.Err != nil:
			p.metrics.dropped.Inc()
			p.log.Error("message of the commit log not stored", "device", m.DeviceID, "err", res.Err)
		case res.Duplicate:
			p.metrics.duplicates.Inc()
		default:
			p.metrics.messages.Inc()
			p.metrics.points.Add(float64(len(m.Points)))
			if recs != nil {
				recs = append(recs, msglog.Record{TenantID: m.TenantID, DeviceID: m.DeviceID, Message: m})
			}
		}
	}
	if len(recs) > 0 {
		if err := p.cfg.Log.Append(ctx, recs); err != nil {
			// Stored, but not evaluated: the alarms they would have
			// raised are lost. Say so loudly.
			p.metrics.logDropped.Add(float64(droppedOf(err, len(recs))))
			p.log.Error("message log refused stored messages: alarm rules did not see them", "records", len(recs), "err", err)
		}
	}
	return nil
}

// droppedOf is how many of n records an Append error says were dropped:
// the count of a msglog.FullError, else all of them.
func droppedOf(err error, n int) int {
	if fe, ok := errors.AsType[*msglog.FullError](err); ok {
		return fe.Dropped
	}
	return n
}

// write writes msgs, each attempt bounded by CommitTimeout, until an
// attempt succeeds or ctx ends (false). A failed attempt was rolled back,
// mark with it, so it can be tried again.
func (p *Pipeline) write(ctx context.Context, msgs []telemetry.Message, mark tsdbstore.LogMark) ([]tsdbstore.WriteResult, bool) {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		start := time.Now()
		actx, cancel := context.WithTimeout(ctx, p.cfg.CommitTimeout)
		results, err := p.sink.Apply(actx, msgs, mark)
		cancel()
		if err == nil {
			p.metrics.applySeconds.Observe(time.Since(start).Seconds())
			p.metrics.applyBatch.Observe(float64(len(msgs)))
			return results, true
		}
		if ctx.Err() != nil {
			return nil, false
		}
		p.metrics.commitTimeouts.Inc()
		p.log.Warn("write the commit log to the database failed; trying again", "messages", len(msgs), "attempt", attempt, "err", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, false
		}
		backoff = min(2*backoff, 5*time.Second)
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
	applySeconds   prometheus.Histogram
	applyBatch     prometheus.Histogram
	applyLag       prometheus.Gauge
	logDropped     prometheus.Counter
}

// NewMetrics makes the pipeline's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		messages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_messages_stored_total", Help: "Telemetry messages written to the database."}),
		points: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_points_stored_total", Help: "Telemetry points written to the database."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_messages_duplicate_total", Help: "Messages acknowledged but not stored again because their id was seen before."}),
		rejects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_messages_rejected_total", Help: "Messages that could not be parsed and were kept as rejected."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_messages_dropped_total", Help: "Messages dropped because their tenant was deleted (its keys destroyed) before they were stored."}),
		commitTimeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_commit_timeouts_total", Help: "Attempts to write the commit log to the database that failed or timed out and were tried again."}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "warden_commit_duration_seconds", Help: "Time to make one group of messages durable in the commit log (sealing, write, fsync).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "warden_commit_batch_messages", Help: "Messages per group commit to the commit log.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12)}),
		applySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "warden_apply_duration_seconds", Help: "Time to write one batch of the commit log to the database.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		applyBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "warden_apply_batch_messages", Help: "Messages per write of the commit log to the database.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14)}),
		applyLag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "warden_apply_lag_records", Help: "Records of the commit log acknowledged but not yet written to the database."}),
		logDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_log_dropped_total", Help: "Stored messages and connection changes the alarm runtime did not see because its log stayed full."}),
	}
	if reg != nil {
		reg.MustRegister(m.messages, m.points, m.duplicates, m.rejects, m.dropped, m.commitTimeouts, m.commitSeconds, m.batchSize,
			m.applySeconds, m.applyBatch, m.applyLag, m.logDropped)
	}
	return m
}
