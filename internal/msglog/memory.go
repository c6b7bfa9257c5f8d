package msglog

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// MemoryConfig tunes a Memory log; zero values take defaults.
type MemoryConfig struct {
	// Partitions is the number of partitions (default GOMAXPROCS).
	Partitions int
	// Capacity is how many records a partition holds that a consumer has
	// not committed yet (default 16384). It bounds the log's memory.
	Capacity int
	// MaxWait is how long one Append waits, in all, for room in full
	// partitions before it drops what does not fit (default 5s).
	MaxWait time.Duration
	// Consumers names the consumers: a record is kept until each of them
	// committed past it. Without consumers records are not kept at all.
	Consumers []string
}

// Memory is an in-process Log. Its records live until every consumer
// committed past them, at most Capacity per partition; a producer that
// finds a partition full waits up to MaxWait for the consumers, then drops
// what does not fit and reports it (ErrFull). Dropped records are counted
// (Dropped).
type Memory struct {
	cfg     MemoryConfig
	parts   []*partition
	dropped atomic.Int64
	closed  chan struct{}
	once    sync.Once
}

type partition struct {
	mu        sync.Mutex
	base      int64 // offset of recs[0]
	recs      []Record
	committed map[string]int64
	data      chan struct{} // closed when records are appended
	room      chan struct{} // closed when records are released
}

// NewMemory makes an in-process log.
func NewMemory(cfg MemoryConfig) *Memory {
	if cfg.Partitions <= 0 {
		cfg.Partitions = runtime.GOMAXPROCS(0)
	}
	if cfg.Capacity <= 0 {
		cfg.Capacity = 1 << 14
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 5 * time.Second
	}
	m := &Memory{cfg: cfg, parts: make([]*partition, cfg.Partitions), closed: make(chan struct{})}
	for i := range m.parts {
		p := &partition{committed: map[string]int64{}, data: make(chan struct{}), room: make(chan struct{})}
		for _, c := range cfg.Consumers {
			p.committed[c] = 0
		}
		m.parts[i] = p
	}
	return m
}

// Partitions implements Log.
func (m *Memory) Partitions() int { return len(m.parts) }

// PartitionOf implements Log.
func (m *Memory) PartitionOf(deviceID string) int {
	return Partition(deviceID, len(m.parts))
}

// Dropped is how many records Append dropped because their partition was
// full.
func (m *Memory) Dropped() int64 { return m.dropped.Load() }

// Close wakes the readers (Read returns ErrClosed) and refuses appends.
func (m *Memory) Close() { m.once.Do(func() { close(m.closed) }) }

// Append implements Log.
func (m *Memory) Append(ctx context.Context, recs []Record) error {
	select {
	case <-m.closed:
		return ErrClosed
	default:
	}
	var deadline <-chan time.Time // set when a partition is first found full
	expired := false              // the wait is over for this call
	dropped := 0
	// Readers are woken once per partition and call, and before waiting
	// for room.
	appended := make([]bool, len(m.parts))
	defer func() {
		for i, ok := range appended {
			if ok {
				m.parts[i].wake()
			}
		}
	}()
	for _, r := range recs {
		pi := m.PartitionOf(r.DeviceID)
		p := m.parts[pi]
		for {
			p.mu.Lock()
			if len(p.committed) == 0 {
				// Nobody reads: nothing to keep.
				p.base++
				p.mu.Unlock()
				break
			}
			if len(p.recs) < m.cfg.Capacity {
				r.Offset = p.base + int64(len(p.recs))
				p.recs = append(p.recs, r)
				p.mu.Unlock()
				appended[pi] = true
				break
			}
			room := p.room
			p.mu.Unlock()
			if appended[pi] {
				p.wake()
				appended[pi] = false
			}
			if expired {
				dropped++
				break
			}
			if deadline == nil {
				t := time.NewTimer(m.cfg.MaxWait)
				defer t.Stop()
				deadline = t.C
			}
			select {
			case <-room:
				continue
			case <-deadline:
			case <-ctx.Done():
			case <-m.closed:
			}
			expired = true
			dropped++
			break
		}
	}
	if dropped > 0 {
		m.dropped.Add(int64(dropped))
		return &FullError{Dropped: dropped, Of: len(recs)}
	}
	return nil
}

// wake tells the partition's readers of new records.
func (p *partition) wake() {
	p.mu.Lock()
	close(p.data)
	p.data = make(chan struct{})
	p.mu.Unlock()
}

// Read implements Log.
func (m *Memory) Read(ctx context.Context, pi int, from int64, limit int) ([]Record, error) {
	if pi < 0 || pi >= len(m.parts) {
		return nil, fmt.Errorf("message log: no partition %d", pi)
	}
	p := m.parts[pi]
	for {
		p.mu.Lock()
		from = max(from, p.base)
		if i := int(from - p.base); i < len(p.recs) {
			out := slices.Clone(p.recs[i:min(len(p.recs), i+limit)])
			p.mu.Unlock()
			return out, nil
		}
		data := p.data
		p.mu.Unlock()
		select {
		case <-data:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-m.closed:
			return nil, ErrClosed
		}
	}
}

// End implements Log.
func (m *Memory) End(pi int) int64 {
	p := m.parts[pi]
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.base + int64(len(p.recs))
}

// Commit implements Log.
func (m *Memory) Commit(_ context.Context, consumer string, pi int, offset int64) error {
	if pi < 0 || pi >= len(m.parts) {
		return fmt.Errorf("message log: no partition %d", pi)
	}
	p := m.parts[pi]
	p.mu.Lock()
	defer p.mu.Unlock()
	cur, ok := p.committed[consumer]
	if !ok {
		return fmt.Errorf("message log: unknown consumer %q", consumer)
	}
	if end := p.base + int64(len(p.recs)); offset > end {
		return fmt.Errorf("message log: commit of offset %d beyond the end %d of partition %d", offset, end, pi)
	}
	if offset <= cur {
		return nil
	}
	p.committed[consumer] = offset
	low := offset
	for _, o := range p.committed {
		low = min(low, o)
	}
	if n := int(low - p.base); n > 0 {
		clear(p.recs[:n]) // let the messages go
		p.recs = p.recs[n:]
		p.base = low
		close(p.room)
		p.room = make(chan struct{})
	}
	return nil
}

// Committed implements Log.
func (m *Memory) Committed(_ context.Context, consumer string, pi int) (int64, error) {
	if pi < 0 || pi >= len(m.parts) {
		return 0, fmt.Errorf("message log: no partition %d", pi)
	}
	p := m.parts[pi]
	p.mu.Lock()
	defer p.mu.Unlock()
	o, ok := p.committed[consumer]
	if !ok {
		return 0, fmt.Errorf("message log: unknown consumer %q", consumer)
	}
	return o, nil
}
