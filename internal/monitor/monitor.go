// Package monitor is the alarm and maintenance runtime: it reads the log of
// what the server accepted (package msglog: committed telemetry messages and
// connection changes, partitioned by device), feeds each record to the
// partition's evaluators — the alarm rules (package alarm) and the
// maintenance plans (package maintenance), behind the Evaluator interface —
// stores the alarms that result, and hands them to the notifier.
//
// The ingest committer appends to the log after a group commit and after the
// devices were acknowledged, so evaluation never holds an acknowledgement.
// Each partition is one goroutine with its own evaluators, so a device's
// records are evaluated in order without locks; it commits its log offset
// once the alarm changes of what it read are stored. The evaluators' state
// is saved periodically and on shutdown, so alarms survive a restart.
package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/clock"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/msglog"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/telemetry"
	"github.com/warden-iot/warden/internal/tenancy"
)

// Config tunes the monitor; zero values take defaults.
type Config struct {
	// Log is the message log the monitor reads as consumer Consumer (nil:
	// an in-process log of its own with Shards partitions, fed by Observe
	// and Presence). With a log, the monitor has one partition goroutine
	// per log partition.
	Log       msglog.Log
	Shards    int           // without Log: partitions; default GOMAXPROCS
	TickEvery time.Duration // how often time-based conditions are checked; default 1s
	SaveEvery time.Duration // how often the evaluator state is saved; default 1m
	QueueLen  int           // without Log: records kept per partition before Observe waits; default 16384
	// Evaluators make further evaluators, one for each partition; they run
	// after the alarm rules and the maintenance plans, on the same records,
	// and their alarm changes are stored with theirs. Their state is
	// theirs to keep.
	Evaluators []func(partition int) Evaluator
}

// Consumer is the monitor's consumer name in the message log.
const Consumer = "alarms"

// AlarmFunc is told of every stored alarm change: the alarm as it is now
// and the event ("raised", "retriggered", "cleared").
type AlarmFunc func(ctx context.Context, a alarm.Record, event string)

// Store is what the monitor keeps and looks up: the alarm store (rules,
// alarms, maintenance plans, its saved state), the devices and tenants it
// evaluates, and its partition count among the server's settings.
// store.Store is one.
type Store interface {
	alarm.Store
	GetDevice(ctx context.Context, id string) (registry.Device, error)
	GetTenant(ctx context.Context, id string) (tenancy.Tenant, error)
	GetMeta(ctx context.Context, key string) (string, error)
	SetMeta(ctx context.Context, key, value string) error
}

// Monitor evaluates alarm rules on the telemetry stream.
type Monitor struct {
	cfg     Config
	st      Store
	log     *slog.Logger
	clock   clock.Clock
	onAlarm AlarmFunc
	msgs    msglog.Log

	shards []*shard

	mu    sync.Mutex
	facts map[string]alarm.DeviceFacts // by device id
	gone  map[string]bool              // tenants deleted (TenantDeleted)

	wg        sync.WaitGroup // the partitions
	readers   sync.WaitGroup // their log readers
	cancel    context.CancelFunc
	stopRead  context.CancelFunc
	closeOnce sync.Once
}

// New makes a monitor on clk (nil: the wall clock); Start loads the rules
// and the saved state.
func New(st Store, cfg Config, onAlarm AlarmFunc, log *slog.Logger, clk clock.Clock) *Monitor {
	if cfg.Shards <= 0 {
		cfg.Shards = runtime.GOMAXPROCS(0)
	}
	if cfg.Log == nil {
		cfg.Log = msglog.NewMemory(msglog.MemoryConfig{Partitions: cfg.Shards, Capacity: cfg.QueueLen,
			Consumers: []string{Consumer}})
	}
	cfg.Shards = cfg.Log.Partitions()
	if cfg.TickEvery <= 0 {
		cfg.TickEvery = time.Second
	}
	if cfg.SaveEvery <= 0 {
		cfg.SaveEvery = time.Minute
	}
	if onAlarm == nil {
		onAlarm = func(context.Context, alarm.Record, string) {}
	}
	return &Monitor{cfg: cfg, st: st, log: log, clock: clock.OrReal(clk), onAlarm: onAlarm, msgs: cfg.Log, facts: map[string]alarm.DeviceFacts{},
		gone: map[string]bool{}}
}

// Start loads the rules and the saved evaluator state and starts the
// shards. Devices that were connected when the state was saved count as
// disconnected from now on (their connections did not survive).
func (m *Monitor) Start(ctx context.Context) error {
	rules, err := m.loadRules(ctx)
	if err != nil {
		return err
	}
	plans, err := m.loadPlans(ctx)
	if err != nil {
		return err
	}
	saved, err := m.savedPartitions(ctx)
	if err != nil {
		return err
	}
	maint, rewriteMaint, err := m.loadMaintenance(ctx, saved)
	if err != nil {
		return err
	}
	parts, rewrite, err := m.loadRuleState(ctx, saved)
	if err != nil {
		return err
	}
	devices := 0
	for _, p := range parts {
		devices += len(p.Devices)
	}
	now := m.clock.Now()
	ctx, m.cancel = context.WithCancel(context.WithoutCancel(ctx))
	m.shards = make([]*shard, m.cfg.Shards)
	for i := range m.shards {
		ev, err := alarm.New(rules)
		if err != nil {
			return fmt.Errorf("monitor: rules: %w", err)
		}
		from, err := m.msgs.Committed(ctx, Consumer, i)
		if err != nil {
			return fmt.Errorf("monitor: message log: %w", err)
		}
		s := &shard{m: m, id: i, in: make(chan event, 64), next: from, done: from, progress: make(chan struct{}),
			rules: &ruleEval{log: m.log, now: m.clock.Now, ev: ev, devices: map[string]alarm.DeviceFacts{}},
			maint: &maintEval{log: m.log, part: i}}
		s.evals = []Evaluator{s.rules, s.maint}
		for _, mk := range m.cfg.Evaluators {
			s.evals = append(s.evals, mk(i))
		}
		if len(parts[i].Devices) > 0 {
			trs, err := ev.Restore(parts[i], now)
			if err != nil {
				m.log.Error("monitor: saved evaluator state refused; starting afresh", "shard", i, "err", err)
				trs = nil
			}
			for _, d := range parts[i].Devices {
				s.rules.devices[d.Device.ID] = d.Device
				if d.Connected {
					trs = append(trs, ev.Disconnected(d.Device, now)...)
				}
			}
			s.rules.add(trs)
		}
		s.maint.maintStart(plans, maint[i], now)
		s.apply(ctx)
		m.shards[i] = s
	}
	if rewrite || rewriteMaint {
		// A state saved whole, unsealed, or with another number of
		// partitions: save it by partition, sealed, and drop the old.
		if err := m.rewriteState(ctx, saved); err != nil {
			return err
		}
	}
	var readCtx context.Context
	readCtx, m.stopRead = context.WithCancel(ctx)
	for _, s := range m.shards {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			s.run(ctx)
		}()
		m.readers.Add(1)
		go func() {
			defer m.readers.Done()
			s.read(readCtx, s.next)
		}()
	}
	m.log.Info("alarm monitor started", "rules", len(rules), "partitions", len(m.shards), "devices", devices)
	return nil
}

// Close stops the partitions after they evaluated what the log holds (or
// ctx ends), and saves the evaluator state.
// Appending to the log after Close is a bug (the server stops the broker and
// the pipeline first); Close itself may be called again.
func (m *Monitor) Close(ctx context.Context) error {
	if m.cancel == nil {
		return nil
	}
	var err error
	m.closeOnce.Do(func() {
		err = m.caughtUp(ctx)
		m.stopRead()
		m.readers.Wait()
		for _, s := range m.shards {
			close(s.in)
		}
		m.wg.Wait()
		m.cancel()
		err = errors.Join(err, m.save(ctx))
	})
	return err
}

// caughtUp waits until every partition evaluated what the log held when it
// was called.
func (m *Monitor) caughtUp(ctx context.Context) error {
	for i, s := range m.shards {
		if err := s.waitFor(ctx, m.msgs.End(i)); err != nil {
			return fmt.Errorf("monitor: evaluate the message log: %w", err)
		}
	}
	return nil
}

func (m *Monitor) shardOf(deviceID string) int { return m.msgs.PartitionOf(deviceID) }

// loadRules reads every tenant's rules.
func (m *Monitor) loadRules(ctx context.Context) ([]alarm.Rule, error) {
	rows, err := m.st.ListAlarmRules(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("monitor: load rules: %w", err)
	}
	out := make([]alarm.Rule, 0, len(rows))
	for _, row := range rows {
		r, err := RuleOf(row)
		if err != nil {
			m.log.Error("monitor: stored rule unusable; skipped", "rule", row.ID, "err", err)
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// RuleOf decodes a stored rule; the row's id, tenant, name and enabled
// flag win over the spec's.
func RuleOf(row alarm.StoredRule) (alarm.Rule, error) {
	var r alarm.Rule
	if err := json.Unmarshal(row.Spec, &r); err != nil {
		return r, fmt.Errorf("rule %s: %w", row.ID, err)
	}
	r.ID, r.TenantID, r.Name, r.Enabled = row.ID, row.TenantID, row.Name, row.Enabled
	if err := r.Validate(); err != nil {
		return r, fmt.Errorf("rule %s: %w", row.ID, err)
	}
	return r, nil
}

// RulesChanged reloads every rule; alarms of removed or changed rules are
// cleared.
func (m *Monitor) RulesChanged(ctx context.Context) error {
	rules, err := m.loadRules(ctx)
	if err != nil {
		return err
	}
	return m.broadcast(ctx, event{kind: evCall, call: func(s *shard) error {
		s.rules.setRules(rules)
		return nil
	}})
}

// DeviceChanged drops what the monitor knows of a device (its site, model
// or tenant changed); deleted says the device is gone, and its rule
// states go too.
func (m *Monitor) DeviceChanged(ctx context.Context, deviceID string, deleted bool) {
	m.mu.Lock()
	delete(m.facts, deviceID)
	m.mu.Unlock()
	if deleted && m.shards != nil {
		if err := m.send(ctx, deviceID, event{kind: evForget, dev: alarm.DeviceFacts{ID: deviceID}, ts: m.clock.Now()}); err != nil {
			m.log.Error("monitor: forget a deleted device", "device", deviceID, "err", err)
		}
	}
}

// ClearedByHand tells the rule's evaluator that a person cleared its alarm
// on the device: if the condition still holds, the next evaluation raises
// a new alarm.
func (m *Monitor) ClearedByHand(ctx context.Context, ruleID, deviceID string, at time.Time) error {
	if m.shards == nil {
		return nil
	}
	return m.call(ctx, deviceID, func(s *shard) error {
		s.rules.ev.Reset(ruleID, deviceID, at)
		return nil
	})
}

// Observe appends accepted messages to the monitor's log, to be evaluated
// (the server's ingest pipeline appends to the log itself). It waits while
// the log is full, within the log's bound. The slice may be reused once
// Observe returns; the messages' points must stay as they are until
// evaluated.
func (m *Monitor) Observe(ctx context.Context, msgs []telemetry.Message) {
	msgs = slices.Clone(msgs)
	recs := make([]msglog.Record, len(msgs))
	for i := range msgs {
		recs[i] = msglog.Record{TenantID: msgs[i].TenantID, DeviceID: msgs[i].DeviceID, Message: &msgs[i]}
	}
	m.appendLog(ctx, recs)
}

// Presence appends a device's connection or disconnection to the monitor's
// log, behind the device's messages appended before.
func (m *Monitor) Presence(ctx context.Context, tenantID, deviceID string, connected bool, at time.Time) {
	m.appendLog(ctx, []msglog.Record{{TenantID: tenantID, DeviceID: deviceID,
		Presence: &msglog.Presence{Connected: connected, At: at}}})
}

func (m *Monitor) appendLog(ctx context.Context, recs []msglog.Record) {
	if m.shards == nil {
		return // not started: nobody would read them
	}
	if err := m.msgs.Append(ctx, recs); err != nil {
		m.log.Error("monitor: message log refused records: alarm rules did not see them", "records", len(recs), "err", err)
	}
}

// Flush waits until everything appended to the log so far has been
// evaluated and its alarms stored (tests and benchmarks). It returns the
// errors of storing alarm changes since the last Flush.
func (m *Monitor) Flush(ctx context.Context) error {
	return m.broadcast(ctx, event{kind: evFlush})
}

// TickNow runs the time-based checks at t on every shard and waits for
// them (tests on a simulated clock).
func (m *Monitor) TickNow(ctx context.Context, t time.Time) error {
	return m.broadcast(ctx, event{kind: evTick, ts: t})
}

// send hands ev to the device's partition once it evaluated the records
// appended before, so that ev comes after them.
func (m *Monitor) send(ctx context.Context, deviceID string, ev event) error {
	if m.shards == nil {
		return nil
	}
	i := m.shardOf(deviceID)
	s := m.shards[i]
	if err := s.waitFor(ctx, m.msgs.End(i)); err != nil {
		return err
	}
	select {
	case s.in <- ev:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// broadcast sends ev to every shard, after the records appended before,
// and waits until each has handled it.
func (m *Monitor) broadcast(ctx context.Context, ev event) error {
	if m.shards == nil {
		return nil
	}
	if err := m.caughtUp(ctx); err != nil {
		return err
	}
	dones := make([]chan error, len(m.shards))
	for i, s := range m.shards {
		e := ev
		e.done = make(chan error, 1)
		dones[i] = e.done
		select {
		case s.in <- e:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var errs []error
	for _, d := range dones {
		select {
		case err := <-d:
			errs = append(errs, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errors.Join(errs...)
}

// deviceFacts is what the rules need to know of a device, cached.
func (m *Monitor) deviceFacts(ctx context.Context, tenantID, deviceID string) (alarm.DeviceFacts, bool) {
	m.mu.Lock()
	f, ok := m.facts[deviceID]
	m.mu.Unlock()
	if ok {
		return f, true
	}
	d, err := m.st.GetDevice(ctx, deviceID)
	if err != nil {
		if !errors.Is(err, database.ErrNotFound) {
			m.log.Error("monitor: load device", "device", deviceID, "err", err)
		}
		return f, false
	}
	t, err := m.st.GetTenant(ctx, d.TenantID)
	if err != nil {
		m.log.Error("monitor: load tenant", "tenant", d.TenantID, "err", err)
		return f, false
	}
	f = alarm.DeviceFacts{ID: d.ID, TenantPath: t.Path, SiteID: d.Info.SiteID, Model: d.Info.Model}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gone[d.TenantID] {
		return f, false // deleted while it was read
	}
	m.facts[deviceID] = f
	return f, true
}

type sample struct {
	ts     time.Time
	values map[string]float64
}

// byTime groups a message's points by timestamp, in time order.
func byTime(pts []telemetry.Point) []sample {
	if len(pts) == 0 {
		return nil
	}
	same := true
	for _, p := range pts[1:] {
		if !p.TS.Equal(pts[0].TS) {
			same = false
			break
		}
	}
	if same {
		v := make(map[string]float64, len(pts))
		for _, p := range pts {
			v[p.Metric] = p.Value
		}
		return []sample{{ts: pts[0].TS, values: v}}
	}
	idx := map[int64]int{}
	var out []sample
	for _, p := range pts {
		k := p.TS.UnixNano()
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, sample{ts: p.TS, values: map[string]float64{}})
		}
		out[i].values[p.Metric] = p.Value
	}
	slices.SortFunc(out, func(a, b sample) int { return a.ts.Compare(b.ts) })
	return out
}

// tenantOf is the last id of a tenant path.
func tenantOf(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[i+1:]
	}
	return path
}
