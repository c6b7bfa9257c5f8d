package monitor

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/msglog"
)

type eventKind int

const (
	evRecords eventKind = iota // records read from the log
	evForget
	evTick
	evFlush
	evCall // runs call on the shard
)

type event struct {
	kind eventKind
	recs []msglog.Record
	dev  alarm.DeviceFacts
	ts   time.Time
	call func(*shard) error
	done chan error // answered by broadcast events
}

// shard is one partition of the log: one goroutine evaluating the
// partition's records in order, with its own evaluators.
type shard struct {
	m     *Monitor
	id    int // the partition
	rules *ruleEval
	maint *maintEval
	evals []Evaluator // rules, maint, then Config.Evaluators
	in    chan event
	next  int64 // offset of the next record to evaluate
	// failed holds the errors of storing alarm changes since the last
	// flush event.
	failed error

	saveMu sync.Mutex // one save of the partition at a time

	pmu      sync.Mutex
	done     int64         // records below it are evaluated and their changes stored
	progress chan struct{} // closed when done moves
}

// maxBatch bounds how many records (and other events) one round evaluates
// before it stores their alarms; the reader reads at most as many at once.
const maxBatch = 512

// read feeds the partition's records from offset from to the shard, until
// ctx ends or the log closes.
func (s *shard) read(ctx context.Context, from int64) {
	for {
		recs, err := s.m.msgs.Read(ctx, s.id, from, maxBatch)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, msglog.ErrClosed) {
				return
			}
			s.m.log.Error("monitor: read the message log; retrying", "partition", s.id, "err", err)
			select {
			case <-time.After(time.Second):
				continue
			case <-ctx.Done():
				return
			}
		}
		if len(recs) == 0 {
			continue
		}
		from = recs[len(recs)-1].Offset + 1
		select {
		case s.in <- event{kind: evRecords, recs: recs}:
		case <-ctx.Done():
			return
		}
	}
}

func (s *shard) run(ctx context.Context) {
	tick := s.m.clock.NewTicker(s.m.cfg.TickEvery)
	defer tick.Stop()
	save := s.m.clock.NewTicker(s.m.cfg.SaveEvery)
	defer save.Stop()
	s.snapshot()
	for {
		var ev event
		ok := true // false once the queue is closed
		select {
		case ev, ok = <-s.in:
			if !ok {
				s.snapshot()
				return
			}
		case <-tick.C():
			ev = event{kind: evTick, ts: s.m.clock.Now()}
		case <-save.C():
			s.snapshot()
			if err := s.save(ctx); err != nil {
				s.m.log.Error("monitor: save state", "partition", s.id, "err", err)
			}
			continue
		}
		s.handle(ctx, ev)
		n := max(1, len(ev.recs)) // records (or other events) in this round
		var dones []chan error
		if ev.done != nil {
			dones = append(dones, ev.done)
		}
	drain:
		for n < maxBatch {
			select {
			case ev, ok = <-s.in:
				if !ok {
					break drain
				}
				s.handle(ctx, ev)
				n += max(1, len(ev.recs))
				if ev.done != nil {
					dones = append(dones, ev.done)
				}
			default:
				break drain
			}
		}
		if err := s.apply(ctx); err != nil {
			s.failed = errors.Join(s.failed, err)
		}
		s.advance(ctx)
		if len(dones) > 0 {
			for _, d := range dones {
				d <- s.failed
			}
			s.failed = nil
		}
		if !ok {
			s.snapshot()
			return
		}
	}
}

func (s *shard) handle(ctx context.Context, ev event) {
	switch ev.kind {
	case evRecords:
		for _, r := range ev.recs {
			s.next = r.Offset + 1
			dev, ok := s.m.deviceFacts(ctx, r.TenantID, r.DeviceID)
			if !ok {
				continue
			}
			switch {
			case r.Message != nil:
				for _, g := range byTime(r.Message.Points) {
					for _, e := range s.evals {
						e.Observe(dev, g.ts, g.values)
					}
				}
			case r.Presence != nil:
				for _, e := range s.evals {
					e.Presence(dev, r.Presence.At, r.Presence.Connected)
				}
			}
		}
	case evForget:
		for _, e := range s.evals {
			e.Forget(ev.dev.ID, ev.ts)
		}
	case evTick:
		for _, e := range s.evals {
			e.Tick(ev.ts)
		}
	case evCall:
		_ = ev.call(s) // the caller reads its own error
	}
}

// apply stores the evaluators' alarm changes and tells the notifier.
func (s *shard) apply(ctx context.Context) error {
	var changes []alarm.Change
	for _, e := range s.evals {
		changes = append(changes, e.Changes()...)
	}
	if len(changes) == 0 {
		return nil
	}
	alarms, err := s.write(ctx, changes)
	for i, a := range alarms {
		if a.ID != 0 {
			s.m.onAlarm(ctx, a, changes[i].Kind)
		}
	}
	return err
}

// advance commits the records evaluated so far to the log, and wakes those
// waiting for them.
func (s *shard) advance(ctx context.Context) {
	s.pmu.Lock()
	moved := s.next > s.done
	if moved {
		s.done = s.next
		close(s.progress)
		s.progress = make(chan struct{})
	}
	s.pmu.Unlock()
	if moved {
		if err := s.m.msgs.Commit(ctx, Consumer, s.id, s.next); err != nil {
			s.m.log.Error("monitor: commit the message log offset", "partition", s.id, "err", err)
		}
	}
}

// waitFor waits until the records below offset are evaluated and their
// alarm changes stored.
func (s *shard) waitFor(ctx context.Context, offset int64) error {
	for {
		s.pmu.Lock()
		done, progress := s.done, s.progress
		s.pmu.Unlock()
		if done >= offset {
			return nil
		}
		select {
		case <-progress:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// snapshot keeps the evaluators' state for the next save.
func (s *shard) snapshot() {
	for _, e := range s.evals {
		e.Snapshot()
	}
}
