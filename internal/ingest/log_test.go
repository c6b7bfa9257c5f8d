package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-iot/warden/internal/msglog"
	"github.com/warden-iot/warden/internal/telemetry"
	"github.com/warden-iot/warden/internal/tenancy"
)

// recLog is a log that keeps what is appended, and can hold Append until
// released.
type recLog struct {
	mu    sync.Mutex
	recs  []msglog.Record
	hold  chan struct{} // Append waits for it when set
	calls chan struct{} // told of each Append call
	err   error
}

func (l *recLog) Append(ctx context.Context, recs []msglog.Record) error {
	if l.calls != nil {
		l.calls <- struct{}{}
	}
	if l.hold != nil {
		select {
		case <-l.hold:
		case <-ctx.Done():
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, recs...)
	return l.err
}

func (l *recLog) records() []msglog.Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]msglog.Record(nil), l.recs...)
}

// The log gets the accepted messages — not duplicates, not rejected ones —
// and connection changes, in the order they were submitted.
func TestLogGetsAcceptedInOrder(t *testing.T) {
	lg := &recLog{}
	p := startPipeline(t, &memStore{}, Config{MaxBatch: 100, Log: lg})
	ctx := t.Context()
	var wg sync.WaitGroup
	submit := func(r telemetry.Message) {
		wg.Add(1)
		if err := p.Submit(ctx, r, func(Outcome, error) { wg.Done() }); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Presence(ctx, tenancy.RootTenantID, "d1", true, serverNow); err != nil {
		t.Fatal(err)
	}
	submit(rawMsg("d1", "$.mid=1", `{"t": 1}`))
	submit(rawMsg("d1", "$.mid=1", `{"t": 1}`)) // duplicate
	submit(rawMsg("d1", "$.mid=2", `not json`))
	submit(rawMsg("d1", "$.mid=3", `{"t": 3}`))
	if err := p.Presence(ctx, tenancy.RootTenantID, "d1", false, serverNow.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	p.Close()
	var got []string
	for _, r := range lg.records() {
		switch {
		case r.Presence != nil && r.Presence.Connected:
			got = append(got, "connected")
		case r.Presence != nil:
			got = append(got, "disconnected")
		default:
			got = append(got, r.Message.MessageID)
		}
		if r.DeviceID != "d1" || r.TenantID != tenancy.RootTenantID {
			t.Fatalf("record of %s/%s", r.TenantID, r.DeviceID)
		}
	}
	want := []string{"connected", "1", "3", "disconnected"}
	if len(got) != len(want) {
		t.Fatalf("log got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("log got %v, want %v", got, want)
		}
	}
}

// A log that does not take the records (an alarm runtime far behind) does
// not hold the acknowledgement: the sender is told as soon as the commit is
// durable.
func TestSlowLogDoesNotDelayAck(t *testing.T) {
	lg := &recLog{hold: make(chan struct{}), calls: make(chan struct{}, 10)}
	defer close(lg.hold)
	p := startPipeline(t, &memStore{}, Config{MaxBatch: 1, Log: lg})
	acked := make(chan Outcome, 1)
	if err := p.Submit(t.Context(), rawMsg("d1", "$.mid=1", `{"t": 1}`), func(o Outcome, err error) {
		if err != nil {
			t.Error(err)
		}
		acked <- o
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case o := <-acked:
		if o != Stored {
			t.Fatalf("outcome %v", o)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("acknowledgement waited for the log")
	}
	select {
	case <-lg.calls:
	case <-time.After(5 * time.Second):
		t.Fatal("the committed message never reached the log")
	}
}

// Records the log drops are counted.
func TestLogDropsCounted(t *testing.T) {
	lg := &recLog{err: &msglog.FullError{Dropped: 1, Of: 1}}
	m := NewMetrics(prometheus.NewRegistry())
	p := newPipeline(t, &memStore{}, Config{Log: lg})
	p.metrics = m
	go p.Run(context.Background())
	done := make(chan struct{})
	if err := p.Submit(t.Context(), rawMsg("d1", "$.mid=1", `{"t": 1}`), func(Outcome, error) { close(done) }); err != nil {
		t.Fatal(err)
	}
	<-done
	p.Close()
	if n := counter(t, m.logDropped); n != 1 {
		t.Fatalf("dropped counter %v, want 1", n)
	}
	if !errors.Is(lg.err, msglog.ErrFull) {
		t.Fatal("FullError does not match ErrFull")
	}
}

// BenchmarkPipelineLog measures the committer with and without the message
// log (an in-process one, read and committed by one consumer per
// partition): the log's share of the ingest path.
func BenchmarkPipelineLog(b *testing.B) {
	for _, withLog := range []bool{false, true} {
		b.Run(fmt.Sprintf("log=%v", withLog), func(b *testing.B) {
			cfg := Config{MaxBatch: 1000}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if withLog {
				lg := msglog.NewMemory(msglog.MemoryConfig{Partitions: 2, Consumers: []string{"c"}})
				for p := range lg.Partitions() {
					go func() {
						var off int64
						for {
							recs, err := lg.Read(ctx, p, off, 512)
							if err != nil {
								return
							}
							off = recs[len(recs)-1].Offset + 1
							_ = lg.Commit(ctx, "c", p, off)
						}
					}()
				}
				cfg.Log = lg
			}
			p := newPipeline(b, &memStore{}, cfg)
			go p.Run(context.Background())
			var wg sync.WaitGroup
			wg.Add(b.N)
			done := func(Outcome, error) { wg.Done() }
			b.ResetTimer()
			for i := range b.N {
				dev := fmt.Sprintf("d%d", i%200)
				if err := p.Submit(ctx, rawMsg(dev, "", `{"t": 1, "p": 2}`), done); err != nil {
					b.Fatal(err)
				}
			}
			wg.Wait()
			b.StopTimer()
			p.Close()
		})
	}
}
