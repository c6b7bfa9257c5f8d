package monitor_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/clock"
	"github.com/warden-iot/warden/internal/commitlog"
	"github.com/warden-iot/warden/internal/ingest"
	"github.com/warden-iot/warden/internal/iothub"
	"github.com/warden-iot/warden/internal/monitor"
	"github.com/warden-iot/warden/internal/msglog"
	"github.com/warden-iot/warden/internal/telemetry"
	"github.com/warden-iot/warden/internal/tsdb/tsdbstore"
)

// blockingEval is a third evaluator that records what it sees and blocks
// on every observation until released.
type blockingEval struct {
	release <-chan struct{}
	entered chan<- struct{}

	mu   sync.Mutex
	seen []string // device@unix-seconds, and presence changes
}

func (b *blockingEval) Observe(dev alarm.DeviceFacts, at time.Time, _ map[string]float64) {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	<-b.release
	b.mu.Lock()
	b.seen = append(b.seen, fmt.Sprintf("%s@%d", dev.ID, at.Unix()))
	b.mu.Unlock()
}

func (b *blockingEval) Presence(dev alarm.DeviceFacts, _ time.Time, connected bool) {
	b.mu.Lock()
	b.seen = append(b.seen, fmt.Sprintf("%s connected=%v", dev.ID, connected))
	b.mu.Unlock()
}
func (b *blockingEval) Forget(string, time.Time) {}
func (b *blockingEval) Tick(time.Time)           {}
func (b *blockingEval) Changes() []alarm.Change  { return nil }
func (b *blockingEval) Snapshot()                {}

// okSink commits nothing and says so at once.
type okSink struct{}

func (okSink) Apply(_ context.Context, msgs []telemetry.Message, _ tsdbstore.LogMark) ([]tsdbstore.WriteResult, error) {
	return make([]tsdbstore.WriteResult, len(msgs)), nil
}
func (okSink) LogApplied(context.Context, string) (uint64, error)    { return 0, nil }
func (okSink) AddRejected(context.Context, tsdbstore.Rejected) error { return nil }

// An evaluator that blocks does not hold the acknowledgement of committed
// messages nor the next commits: PUBACK waits for the commit only. Once
// it runs again, it sees every message, in order, with the device's
// connection changes between them.
func TestEvaluationOffTheAckPath(t *testing.T) {
	e := newEnv(t)
	e.device("p1", "pump")
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	var evals []*blockingEval
	var mu sync.Mutex
	msgs := msglog.NewMemory(msglog.MemoryConfig{Partitions: 2, Consumers: []string{monitor.Consumer}})
	m := monitor.New(e.st, monitor.Config{Log: msgs, TickEvery: time.Hour, SaveEvery: time.Hour,
		Evaluators: []func(int) monitor.Evaluator{func(int) monitor.Evaluator {
			b := &blockingEval{release: release, entered: entered}
			mu.Lock()
			evals = append(evals, b)
			mu.Unlock()
			return b
		}}}, nil, slog.New(slog.DiscardHandler), clock.Real())
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	cl, err := commitlog.Open(t.TempDir(), commitlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	p := ingest.New(okSink{}, ingest.Config{MaxBatch: 1, Log: msgs, CommitLog: cl, LogID: cl.ID(), Keys: e.keys},
		ingest.NewMetrics(nil), slog.New(slog.DiscardHandler), clock.Real())
	go p.Run(context.Background())

	const n = 20
	acked := make(chan ingest.Outcome, n)
	submit := func(i int) {
		t.Helper()
		body := fmt.Sprintf(`{"temperature": %d}`, i)
		bag := fmt.Sprintf("$.mid=m%d&$.ct=application%%2Fjson&$.ce=utf-8&iothub-creation-time-utc=%s", i,
			monday.Add(time.Duration(i)*time.Second).Format(time.RFC3339))
		r := iothub.Message(iothub.Publish{TenantID: "acme", DeviceID: "p1", Topic: "devices/p1/messages/events/" + bag, Bag: bag,
			Body: []byte(body), ReceivedAt: monday})
		if err := p.Submit(t.Context(), r, func(o ingest.Outcome, err error) {
			if err != nil {
				t.Error(err)
			}
			acked <- o
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Presence(t.Context(), "acme", "p1", true, monday); err != nil {
		t.Fatal(err)
	}
	submit(0)
	select {
	case <-entered: // the evaluator holds the partition now
	case <-time.After(10 * time.Second):
		t.Fatal("the evaluator never saw the first message")
	}
	for i := 1; i < n; i++ {
		submit(i)
	}
	if err := p.Presence(t.Context(), "acme", "p1", false, monday.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for range n {
		select {
		case o := <-acked:
			if o != ingest.Stored {
				t.Fatalf("outcome %v", o)
			}
		case <-deadline:
			t.Fatal("acknowledgements waited for the blocked evaluator")
		}
	}
	close(release)
	p.Close()
	if err := m.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	var seen []string
	mu.Lock()
	for _, b := range evals {
		b.mu.Lock()
		seen = append(seen, b.seen...)
		b.mu.Unlock()
	}
	mu.Unlock()
	want := []string{"p1 connected=true"}
	for i := range n {
		want = append(want, fmt.Sprintf("p1@%d", monday.Add(time.Duration(i)*time.Second).Unix()))
	}
	want = append(want, "p1 connected=false")
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("the evaluators saw\n%v\nwant\n%v", seen, want)
	}
	for i := range msgs.Partitions() {
		c, err := msgs.Committed(t.Context(), monitor.Consumer, i)
		if err != nil {
			t.Fatal(err)
		}
		if c != msgs.End(i) {
			t.Fatalf("partition %d: committed %d of %d records", i, c, msgs.End(i))
		}
	}
}

// Observe keeps what it was given, not the caller's slice: a caller that
// reuses its batch (as a committer does) does not change what is evaluated.
func TestObserveKeepsMessages(t *testing.T) {
	e := newEnv(t)
	e.device("p1", "pump")
	e.device("p2", "pump")
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	var evals []*blockingEval
	var mu sync.Mutex
	m := monitor.New(e.st, monitor.Config{Shards: 1, TickEvery: time.Hour, SaveEvery: time.Hour,
		Evaluators: []func(int) monitor.Evaluator{func(int) monitor.Evaluator {
			b := &blockingEval{release: release, entered: entered}
			mu.Lock()
			evals = append(evals, b)
			mu.Unlock()
			return b
		}}}, nil, slog.New(slog.DiscardHandler), clock.Real())
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	msg := func(dev string, sec int) telemetry.Message {
		at := monday.Add(time.Duration(sec) * time.Second)
		return telemetry.Message{TenantID: "acme", DeviceID: dev, ReceivedAt: at,
			Points: []telemetry.Point{{Metric: "t", TS: at, Value: 1}}}
	}
	batch := []telemetry.Message{msg("p1", 0)}
	m.Observe(t.Context(), batch)
	select {
	case <-entered: // the partition is held: what follows waits in the log
	case <-time.After(10 * time.Second):
		t.Fatal("the evaluator never saw the first message")
	}
	batch[0] = msg("p1", 1)
	m.Observe(t.Context(), batch)
	batch[0] = msg("p2", 2) // reused, as a committer would
	m.Observe(t.Context(), batch)
	close(release)
	if err := m.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprint([]string{fmt.Sprintf("p1@%d", monday.Unix()), fmt.Sprintf("p1@%d", monday.Unix()+1),
		fmt.Sprintf("p2@%d", monday.Unix()+2)})
	if got := fmt.Sprint(evals[0].seen); got != want {
		t.Fatalf("evaluated %s, want %s", got, want)
	}
}
