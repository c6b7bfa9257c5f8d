package monitor

import (
	"context"
	"sync"
	"time"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/store"
)

type eventKind int

const (
	evObserve eventKind = iota
	evPresence
	evRules
	evForget
	evTick
	evFlush
	evCall         // runs call on the shard (maintenance.go)
	evForgetTenant // tenant.go
)

type event struct {
	kind      eventKind
	dev       alarm.DeviceFacts
	ts        time.Time
	values    map[string]float64
	connected bool
	rules     []alarm.Rule
	call      func(*shard) error
	tenant    string     // evForgetTenant: the tenant deleted
	devices   []string   // evForgetTenant: its devices
	plans     planIndex  // evForgetTenant: the plans left
	done      chan error // answered by broadcast events
}

// shard is one goroutine with its own evaluator.
type shard struct {
	m  *Monitor
	id int
	ev *alarm.Evaluator
	in chan event
	// devices is the latest facts of each device the shard has seen: the
	// alarm's tenant and site come from there.
	devices map[string]alarm.DeviceFacts
	mt      maintShard // maintenance.go
	// gone is the tenants deleted while the shard ran: later events of
	// their devices are dropped (tenant.go).
	gone map[string]bool

	mu   sync.Mutex
	snap alarm.Snapshot // the state as of the last save tick
}

// maxBatch bounds how many queued events one round evaluates before it
// stores their alarms.
const maxBatch = 512

func (s *shard) run(ctx context.Context) {
	tick := time.NewTicker(s.m.cfg.TickEvery)
	defer tick.Stop()
	save := time.NewTicker(s.m.cfg.SaveEvery)
	defer save.Stop()
	s.snapshot()
	var trs []alarm.Transition
	for {
		var ev event
		ok := true // false once the queue is closed
		select {
		case ev, ok = <-s.in:
			if !ok {
				s.snapshot()
				return
			}
		case <-tick.C:
			ev = event{kind: evTick, ts: s.m.now()}
		case <-save.C:
			s.snapshot()
			if s.id == 0 {
				if err := s.m.save(ctx); err != nil {
					s.m.log.Error("monitor: save state", "err", err)
				}
			}
			continue
		}
		trs = s.handle(trs[:0], ev)
		var dones []chan error
		if ev.done != nil {
			dones = append(dones, ev.done)
		}
	drain:
		for n := 0; n < maxBatch; n++ {
			select {
			case ev, ok = <-s.in:
				if !ok {
					break drain
				}
				trs = s.handle(trs, ev)
				if ev.done != nil {
					dones = append(dones, ev.done)
				}
			default:
				break drain
			}
		}
		err := s.apply(ctx, trs)
		for _, d := range dones {
			d <- err
		}
		if !ok {
			s.snapshot()
			return
		}
	}
}

func (s *shard) handle(out []alarm.Transition, ev event) []alarm.Transition {
	switch ev.kind {
	case evObserve:
		if s.goneDevice(ev.dev) {
			return out
		}
		s.devices[ev.dev.ID] = ev.dev
		s.maintObserve(ev.dev, ev.ts, ev.values)
		return append(out, s.ev.Observe(ev.dev, ev.ts, ev.values)...)
	case evPresence:
		if s.goneDevice(ev.dev) {
			return out
		}
		s.devices[ev.dev.ID] = ev.dev
		if ev.connected {
			return append(out, s.ev.Connected(ev.dev, ev.ts)...)
		}
		return append(out, s.ev.Disconnected(ev.dev, ev.ts)...)
	case evRules:
		trs, err := s.ev.SetRules(ev.rules, s.m.now())
		if err != nil {
			s.m.log.Error("monitor: rules refused", "err", err)
		}
		return append(out, trs...)
	case evForget:
		trs := s.ev.Forget(ev.dev.ID, ev.ts)
		out = append(out, trs...)
		s.maintForget(ev.dev.ID, ev.ts)
		return out
	case evTick:
		s.maintTick(ev.ts)
		return append(out, s.ev.Tick(ev.ts)...)
	case evCall:
		_ = ev.call(s) // the caller reads its own error
	case evForgetTenant:
		return s.forgetTenant(out, ev)
	}
	return out
}

// apply stores the alarm changes and tells the notifier.
func (s *shard) apply(ctx context.Context, trs []alarm.Transition) error {
	maint := s.takeMaintChanges()
	if len(trs) == 0 && len(maint) == 0 {
		return nil
	}
	changes := make([]store.AlarmChange, len(trs), len(trs)+len(maint))
	for i, t := range trs {
		f, ok := s.devices[t.DeviceID]
		tenant := tenantOf(f.TenantPath)
		if !ok || tenant == "" {
			tenant = t.TenantID
		}
		changes[i] = store.AlarmChange{Kind: string(t.Kind), TenantID: tenant, RuleID: t.RuleID, DeviceID: t.DeviceID,
			SiteID: f.SiteID, Alarm: store.AlarmKindRule, Severity: string(t.Severity), Message: t.Message,
			Value: t.Value, At: t.At, By: "auto"}
	}
	changes = append(changes, maint...)
	alarms, err := s.write(ctx, changes)
	for i, a := range alarms {
		if a.ID != 0 {
			s.m.onAlarm(ctx, a, changes[i].Kind)
		}
	}
	return err
}

// snapshot keeps the evaluator's state for the next save.
func (s *shard) snapshot() {
	snap := s.ev.State()
	s.mu.Lock()
	s.snap = snap
	s.mu.Unlock()
	s.maintSnapshot()
}
