// Package monitor watches the telemetry stream as it is committed: it feeds
// every accepted message and every connection change to the alarm rules
// (package alarm), stores the alarms that result, and hands them to the
// notifier. Evaluation happens in the ingest path, after the group commit
// and before anything polls the database; the evaluator's state is saved
// periodically and on shutdown, so alarms survive a restart.
//
// Devices are spread over shards by id; each shard is one goroutine owning
// one alarm.Evaluator, so a device's events are evaluated in order without
// locks. With several nodes the same Observe is fed from a durable stream.
package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/ingest"
	"github.com/warden-iot/warden/internal/store"
)

// Config tunes the monitor; zero values take defaults.
type Config struct {
	Shards    int           // default GOMAXPROCS
	TickEvery time.Duration // how often time-based conditions are checked; default 1s
	SaveEvery time.Duration // how often the evaluator state is saved; default 1m
	QueueLen  int           // events waiting per shard before Observe blocks; default 4096
}

// AlarmFunc is told of every stored alarm change: the alarm as it is now
// and the event ("raised", "retriggered", "cleared").
type AlarmFunc func(ctx context.Context, a store.Alarm, event string)

// Monitor evaluates alarm rules on the telemetry stream.
type Monitor struct {
	cfg     Config
	st      store.Store
	log     *slog.Logger
	now     func() time.Time
	onAlarm AlarmFunc

	shards []*shard

	mu    sync.Mutex
	facts map[string]alarm.DeviceFacts // by device id

	wg        sync.WaitGroup
	cancel    context.CancelFunc
	closeOnce sync.Once
}

const stateKey = "alarm-evaluator"

// New makes a monitor; Start loads the rules and the saved state.
func New(st store.Store, cfg Config, onAlarm AlarmFunc, log *slog.Logger, now func() time.Time) *Monitor {
	if cfg.Shards <= 0 {
		cfg.Shards = runtime.GOMAXPROCS(0)
	}
	if cfg.TickEvery <= 0 {
		cfg.TickEvery = time.Second
	}
	if cfg.SaveEvery <= 0 {
		cfg.SaveEvery = time.Minute
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 4096
	}
	if now == nil {
		now = time.Now
	}
	if onAlarm == nil {
		onAlarm = func(context.Context, store.Alarm, string) {}
	}
	return &Monitor{cfg: cfg, st: st, log: log, now: now, onAlarm: onAlarm, facts: map[string]alarm.DeviceFacts{}}
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
	maint, legacyMaint, err := m.loadMaintenance(ctx)
	if err != nil {
		return err
	}
	var snap alarm.Snapshot
	blobs, err := m.st.LoadMonitorState(ctx, stateKey)
	if err != nil {
		return fmt.Errorf("monitor: load state: %w", err)
	}
	_, legacy := blobs[""]
	for tenantID, blob := range blobs {
		var part alarm.Snapshot
		if err := json.Unmarshal(blob, &part); err != nil {
			m.log.Error("monitor: saved evaluator state unreadable; starting afresh", "tenant", tenantID, "err", err)
			continue
		}
		snap.Devices = append(snap.Devices, part.Devices...)
	}
	parts := make([]alarm.Snapshot, m.cfg.Shards)
	for _, d := range snap.Devices {
		i := m.shardOf(d.Device.ID)
		parts[i].Devices = append(parts[i].Devices, d)
	}
	now := m.now()
	ctx, m.cancel = context.WithCancel(context.WithoutCancel(ctx))
	m.shards = make([]*shard, m.cfg.Shards)
	for i := range m.shards {
		ev, err := alarm.New(rules)
		if err != nil {
			return fmt.Errorf("monitor: rules: %w", err)
		}
		s := &shard{m: m, id: i, ev: ev, in: make(chan event, m.cfg.QueueLen), devices: map[string]alarm.DeviceFacts{}}
		var trs []alarm.Transition
		if len(parts[i].Devices) > 0 {
			if trs, err = ev.Restore(parts[i], now); err != nil {
				m.log.Error("monitor: saved evaluator state refused; starting afresh", "shard", i, "err", err)
				trs = nil
			}
			for _, d := range parts[i].Devices {
				s.devices[d.Device.ID] = d.Device
				if d.Connected {
					trs = append(trs, ev.Disconnected(d.Device, now)...)
				}
			}
		}
		s.maintStart(plans, maint[i], now)
		s.apply(ctx, trs)
		m.shards[i] = s
	}
	if legacy || legacyMaint {
		// A state saved before states were sealed: save it now, sealed
		// by tenant, which drops the plaintext one.
		for _, s := range m.shards {
			s.snapshot()
		}
		if err := m.save(ctx); err != nil {
			return err
		}
	}
	for _, s := range m.shards {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			s.run(ctx)
		}()
	}
	m.log.Info("alarm monitor started", "rules", len(rules), "shards", len(m.shards), "devices", len(snap.Devices))
	return nil
}

// Close stops the shards after they evaluated what is queued, and saves
// the evaluator state.
// Feeding the monitor after Close is a bug (the server stops the broker and
// the pipeline first); Close itself may be called again.
func (m *Monitor) Close(ctx context.Context) error {
	if m.cancel == nil {
		return nil
	}
	var err error
	m.closeOnce.Do(func() {
		for _, s := range m.shards {
			close(s.in)
		}
		m.wg.Wait()
		m.cancel()
		err = m.save(ctx)
	})
	return err
}

func (m *Monitor) shardOf(deviceID string) int {
	h := fnv.New32a()
	h.Write([]byte(deviceID))
	return int(h.Sum32() % uint32(m.cfg.Shards))
}

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
func RuleOf(row store.AlarmRule) (alarm.Rule, error) {
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
	return m.broadcast(ctx, event{kind: evRules, rules: rules})
}

// DeviceChanged drops what the monitor knows of a device (its site, model
// or tenant changed); deleted says the device is gone, and its rule
// states go too.
func (m *Monitor) DeviceChanged(ctx context.Context, deviceID string, deleted bool) {
	m.mu.Lock()
	delete(m.facts, deviceID)
	m.mu.Unlock()
	if deleted && m.shards != nil {
		m.send(ctx, deviceID, event{kind: evForget, dev: alarm.DeviceFacts{ID: deviceID}, ts: m.now()})
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
		s.ev.Reset(ruleID, deviceID, at)
		return nil
	})
}

// Observe evaluates accepted messages. It blocks only while a shard's
// queue is full.
func (m *Monitor) Observe(ctx context.Context, msgs []store.Message) {
	for _, msg := range msgs {
		dev, ok := m.deviceFacts(ctx, msg.TenantID, msg.DeviceID)
		if !ok {
			continue
		}
		for _, g := range byTime(msg.Points) {
			m.send(ctx, dev.ID, event{kind: evObserve, dev: dev, ts: g.ts, values: g.values})
		}
	}
}

// Presence records a device's connection or disconnection.
func (m *Monitor) Presence(ctx context.Context, tenantID, deviceID string, connected bool, at time.Time) {
	dev, ok := m.deviceFacts(ctx, tenantID, deviceID)
	if !ok {
		return
	}
	m.send(ctx, deviceID, event{kind: evPresence, dev: dev, ts: at, connected: connected})
}

// Flush waits until every event queued so far has been evaluated and its
// alarms stored (tests and benchmarks).
func (m *Monitor) Flush(ctx context.Context) error {
	return m.broadcast(ctx, event{kind: evFlush})
}

// TickNow runs the time-based checks at t on every shard and waits for
// them (tests on a simulated clock).
func (m *Monitor) TickNow(ctx context.Context, t time.Time) error {
	return m.broadcast(ctx, event{kind: evTick, ts: t})
}

func (m *Monitor) send(ctx context.Context, deviceID string, ev event) {
	if m.shards == nil {
		return
	}
	select {
	case m.shards[m.shardOf(deviceID)].in <- ev:
	case <-ctx.Done():
	}
}

// broadcast sends ev to every shard and waits until each has handled it.
func (m *Monitor) broadcast(ctx context.Context, ev event) error {
	if m.shards == nil {
		return nil
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

// save stores the evaluator state of every shard as one snapshot.
func (m *Monitor) save(ctx context.Context) error {
	var all alarm.Snapshot
	for _, s := range m.shards {
		s.mu.Lock()
		all.Devices = append(all.Devices, s.snap.Devices...)
		s.mu.Unlock()
	}
	// One part per tenant, sealed with the tenant's key.
	byTenant := map[string]*alarm.Snapshot{}
	for _, d := range all.Devices {
		tn := tenantOf(d.Device.TenantPath)
		if tn == "" {
			continue // no tenant to seal it for (never the case for a known device)
		}
		if byTenant[tn] == nil {
			byTenant[tn] = &alarm.Snapshot{}
		}
		byTenant[tn].Devices = append(byTenant[tn].Devices, d)
	}
	blobs := make(map[string][]byte, len(byTenant))
	for tn, part := range byTenant {
		blob, err := json.Marshal(part)
		if err != nil {
			return fmt.Errorf("monitor: encode state: %w", err)
		}
		blobs[tn] = blob
	}
	if err := m.st.SaveMonitorState(ctx, stateKey, blobs); err != nil {
		return fmt.Errorf("monitor: save state: %w", err)
	}
	return m.saveMaintenance(ctx)
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
		if !errors.Is(err, store.ErrNotFound) {
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
	m.facts[deviceID] = f
	m.mu.Unlock()
	return f, true
}

type sample struct {
	ts     time.Time
	values map[string]float64
}

// byTime groups a message's points by timestamp, in time order.
func byTime(pts []store.Point) []sample {
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

// Sink evaluates what the wrapped sink committed.
type Sink struct {
	next ingest.Sink
	m    *Monitor
}

// Wrap returns an ingest sink that commits through next and then hands the
// accepted (not duplicate) messages to the monitor.
func (m *Monitor) Wrap(next ingest.Sink) *Sink { return &Sink{next: next, m: m} }

// Write commits and then evaluates.
func (s *Sink) Write(ctx context.Context, msgs []store.Message) ([]store.WriteResult, error) {
	res, err := s.next.Write(ctx, msgs)
	if err != nil {
		return res, err
	}
	accepted := msgs
	for _, r := range res {
		if !r.Stored() {
			accepted = make([]store.Message, 0, len(msgs))
			for j, m := range msgs {
				if res[j].Stored() {
					accepted = append(accepted, m)
				}
			}
			break
		}
	}
	// The commit is done: its deadline does not bound the evaluation.
	s.m.Observe(context.WithoutCancel(ctx), accepted)
	return res, nil
}

// AddRejected passes through.
func (s *Sink) AddRejected(ctx context.Context, r store.Rejected) error {
	return s.next.AddRejected(ctx, r)
}
