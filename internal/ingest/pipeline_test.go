package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/warden-iot/warden/internal/clock/clocktest"
	"github.com/warden-iot/warden/internal/commitlog"
	"github.com/warden-iot/warden/internal/iothub"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/store/sqlite"
	"github.com/warden-iot/warden/internal/telemetry"
	"github.com/warden-iot/warden/internal/tenancy"
	"github.com/warden-iot/warden/internal/tsdb"
	"github.com/warden-iot/warden/internal/tsdb/tsdbstore"
)

// The server clock of the pipeline tests.
var serverNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is a clock standing at serverNow.
func fakeClock() *clocktest.Fake { return clocktest.New(serverNow) }

// newSQLite opens a migrated store with devices d1 and d2 of the root tenant.
func newSQLite(t *testing.T) testEngine {
	t.Helper()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"d1", "d2"} {
		err := st.CreateDevice(ctx, registry.Device{
			ID: id, TenantID: tenancy.RootTenantID, Status: registry.DeviceEnabled,
			PrimaryKey: bytes.Repeat([]byte{1}, 32), SecondaryKey: bytes.Repeat([]byte{2}, 32),
			CreatedAt: serverNow.Add(-time.Hour),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	keys, err := keyring.New(ctx, bytes.Repeat([]byte{7}, keyring.KeySize), st, fakeClock().Now)
	if err != nil {
		t.Fatal(err)
	}
	return testEngine{tsdb.New(tsdb.Config{}, st, keys, slog.New(slog.DiscardHandler), fakeClock()), keys}
}

// testEngine is a telemetry engine with its keyring, which the pipeline
// on it seals its commit log with.
type testEngine struct {
	*tsdb.Engine
	keys *keyring.Keyring
}

// newPipeline makes a pipeline on st; unless cfg says otherwise, with a
// commit log in a temporary directory and a keyring on a SQLite store of
// its own.
func newPipeline(t testing.TB, st Sink, cfg Config) *Pipeline {
	t.Helper()
	if cfg.CommitLog == nil {
		l, err := commitlog.Open(t.TempDir(), commitlog.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		cfg.CommitLog, cfg.LogID = l, l.ID()
	}
	if te, ok := st.(testEngine); ok && cfg.Keys == nil {
		cfg.Keys = te.keys
	}
	if s, ok := st.(*slowStore); ok && cfg.Keys == nil {
		if te, ok := s.Sink.(testEngine); ok {
			cfg.Keys = te.keys
		}
	}
	if cfg.Keys == nil {
		cfg.Keys = testKeys(t)
	}
	return New(st, cfg, NewMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler), fakeClock())
}

// testKeys is a keyring on a SQLite store of its own, with the root
// tenant.
func testKeys(t testing.TB) *keyring.Keyring {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "keys.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	keys, err := keyring.New(t.Context(), bytes.Repeat([]byte{7}, keyring.KeySize), st, fakeClock().Now)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// startPipeline runs a pipeline on st until the test ends.
func startPipeline(t *testing.T, st Sink, cfg Config) *Pipeline {
	t.Helper()
	p := newPipeline(t, st, cfg)
	go p.Run(context.Background())
	t.Cleanup(p.Close)
	return p
}

// caughtUp waits until what p acknowledged is written to its sink.
func caughtUp(t *testing.T, p *Pipeline) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := p.CaughtUp(ctx); err != nil {
		t.Fatalf("applying the commit log: %v", err)
	}
}

// rawMsg is a device's IoT Hub telemetry publish, as the broker hands it
// to the pipeline.
func rawMsg(device, bag, body string) telemetry.Message {
	return iothub.Message(iothub.Publish{
		TenantID: tenancy.RootTenantID, DeviceID: device,
		Topic: "devices/" + device + "/messages/events/" + bag, Bag: bag,
		Body: []byte(body), ReceivedAt: serverNow.Add(-time.Second),
	})
}

// outcome records the calls of one message's Done.
type outcome struct {
	mu    sync.Mutex
	calls int
	got   Outcome
	err   error
	done  chan struct{}
}

func newOutcome() *outcome { return &outcome{done: make(chan struct{})} }

func (o *outcome) Done(out Outcome, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls++
	o.got, o.err = out, err
	if o.calls == 1 {
		close(o.done)
	}
}

// wait waits for Done and returns what it was given.
func (o *outcome) wait(t *testing.T) (Outcome, error) {
	t.Helper()
	select {
	case <-o.done:
	case <-time.After(10 * time.Second):
		t.Fatal("Done not called within 10s")
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.got, o.err
}

func (o *outcome) callCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.calls
}

func submit(t *testing.T, p *Pipeline, r telemetry.Message) *outcome {
	t.Helper()
	o := newOutcome()
	if err := p.Submit(t.Context(), r, o.Done); err != nil {
		t.Fatalf("Submit: %v", err)
	}
	return o
}

func samples(t *testing.T, st testEngine, device, metric string) []tsdbstore.Sample {
	t.Helper()
	var out []tsdbstore.Sample
	err := st.Range(t.Context(), tenancy.RootTenantID, device, metric, serverNow.Add(-24*time.Hour), serverNow.Add(24*time.Hour), 0,
		func(s tsdbstore.Sample) bool { out = append(out, s); return true })
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func histogram(t *testing.T, h prometheus.Histogram) (count uint64, sum float64) {
	t.Helper()
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

type wantMetrics struct{ messages, points, duplicates, rejects float64 }

func checkMetrics(t *testing.T, m *Metrics, want wantMetrics) {
	t.Helper()
	got := wantMetrics{counter(t, m.messages), counter(t, m.points), counter(t, m.duplicates), counter(t, m.rejects)}
	if got != want {
		t.Errorf("metrics (messages, points, duplicates, rejects) = %v; want %v", got, want)
	}
}

func TestPipelineStoresConcurrentSubmissions(t *testing.T) {
	st := newSQLite(t)
	// Small batches and a small queue so that Submit blocks and several
	// group commits happen.
	p := startPipeline(t, st, Config{MaxBatch: 16, Queue: 4})

	const goroutines, perGoroutine = 8, 40
	const n = goroutines * perGoroutine
	outcomes := make([]*outcome, n)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perGoroutine {
				k := g*perGoroutine + i
				ts := serverNow.Add(-time.Duration(k+1) * time.Second)
				device := []string{"d1", "d2"}[k%2]
				body := fmt.Sprintf(`{"ts": %q, "values": {"t": %d, "motor": {"current": %d.5}}}`, ts.Format(time.RFC3339), k, k)
				o := newOutcome()
				outcomes[k] = o
				if err := p.Submit(t.Context(), rawMsg(device, fmt.Sprintf("$.mid=m-%d", k), body), o.Done); err != nil {
					t.Errorf("Submit %d: %v", k, err)
				}
			}
		})
	}
	wg.Wait()
	for k, o := range outcomes {
		if got, err := o.wait(t); got != Stored || err != nil {
			t.Errorf("message %d: Done(%v, %v); want Done(stored, <nil>)", k, got, err)
		}
	}
	p.Close()
	for k, o := range outcomes {
		if c := o.callCount(); c != 1 {
			t.Errorf("message %d: Done called %d times", k, c)
		}
	}

	for _, device := range []string{"d1", "d2"} {
		for _, metric := range []string{"t", "motor.current"} {
			got := samples(t, st, device, metric)
			if len(got) != n/2 {
				t.Fatalf("%s %s: %d samples; want %d", device, metric, len(got), n/2)
			}
			// Samples come in time order: newest message first in k.
			for i, s := range got {
				k := n - 1 - 2*i
				if device == "d1" {
					k--
				}
				want := float64(k)
				if metric == "motor.current" {
					want += 0.5
				}
				if wantTS := serverNow.Add(-time.Duration(k+1) * time.Second); !s.TS.Equal(wantTS) || s.Value != want {
					t.Fatalf("%s %s sample %d = %v; want %v at %v", device, metric, i, s, want, wantTS)
				}
			}
		}
	}
	checkMetrics(t, p.metrics, wantMetrics{messages: n, points: 2 * n})
	// Every message went through exactly one group commit.
	commits, sum := histogram(t, p.metrics.batchSize)
	if sum != n || commits == 0 || commits > n {
		t.Errorf("batch size histogram: %d commits of %v messages in all; want %d messages", commits, sum, n)
	}
	if c, _ := histogram(t, p.metrics.commitSeconds); c != commits {
		t.Errorf("commit duration observed %d times; want %d (once per commit)", c, commits)
	}
}

func TestPipelineDeduplicatesByMessageID(t *testing.T) {
	st := newSQLite(t)
	p := startPipeline(t, st, Config{})

	body := func(v int) string { return fmt.Sprintf(`{"ts": "2026-03-01T11:00:00Z", "values": {"t": %d}}`, v) }

	t.Run("the same $.mid twice: the second is a duplicate and not stored", func(t *testing.T) {
		first := submit(t, p, rawMsg("d1", "$.mid=m-1", body(1)))
		if got, err := first.wait(t); got != Stored || err != nil {
			t.Fatalf("first: Done(%v, %v); want stored", got, err)
		}
		second := submit(t, p, rawMsg("d1", "%24.mid=m-1", body(2)))
		if got, err := second.wait(t); got != Stored || err != nil {
			t.Fatalf("second: Done(%v, %v); want acknowledged", got, err)
		}
		caughtUp(t, p)
		if got := samples(t, st, "d1", "t"); len(got) != 1 || got[0].Value != 1 {
			t.Fatalf("samples %v; want only the first message's value 1", got)
		}
	})
	t.Run("a mid in the body deduplicates too", func(t *testing.T) {
		a := submit(t, p, rawMsg("d1", "", `{"mid": "b-1", "u": 1}`))
		b := submit(t, p, rawMsg("d1", "", `{"mid": "b-1", "u": 2}`))
		if got, err := a.wait(t); got != Stored || err != nil {
			t.Fatalf("first: Done(%v, %v); want stored", got, err)
		}
		if got, err := b.wait(t); got != Stored || err != nil {
			t.Fatalf("second: Done(%v, %v); want acknowledged", got, err)
		}
	})
	t.Run("the same id from another device is not a duplicate", func(t *testing.T) {
		o := submit(t, p, rawMsg("d2", "$.mid=m-1", body(3)))
		if got, err := o.wait(t); got != Stored || err != nil {
			t.Fatalf("Done(%v, %v); want stored", got, err)
		}
	})
	t.Run("messages without an id are never duplicates", func(t *testing.T) {
		for _, ts := range []string{"2026-03-01T11:00:01Z", "2026-03-01T11:00:02Z"} {
			o := submit(t, p, rawMsg("d1", "", `{"ts": "`+ts+`", "values": {"t": 9}}`))
			if got, err := o.wait(t); got != Stored || err != nil {
				t.Fatalf("Done(%v, %v); want stored", got, err)
			}
		}
		caughtUp(t, p)
		if got := samples(t, st, "d1", "t"); len(got) != 3 {
			t.Fatalf("samples %v; want 3", got)
		}
	})
	p.Close()
	// stored: m-1, b-1, d2's m-1, two without id; duplicates: m-1, b-1.
	checkMetrics(t, p.metrics, wantMetrics{messages: 5, points: 5, duplicates: 2})
}

func TestPipelineKeepsRejectedMessages(t *testing.T) {
	st := newSQLite(t)
	p := startPipeline(t, st, Config{})

	for _, tc := range []struct {
		name, bag string
		body      []byte
		wantID    string
		reason    string
	}{
		{"string value", "$.mid=bad-1&alert=true", []byte(" {\"t\": \"hot\"}\n"), "bad-1", `"t": want a number or boolean, got string`},
		{"not UTF-8", "", []byte("{\"t\xff\": 1}"), "", "not valid UTF-8"},
		{"bad property bag", "a=%zz", []byte(`{"t": 1}`), "", "property bag"},
		{"not JSON content", "$.ct=text%2Fplain", []byte("71.5"), "", "not JSON"},
		{"empty body", "$.mid=bad-2", nil, "bad-2", "empty payload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rawMsg("d1", tc.bag, "")
			r.Payload = tc.body
			o := submit(t, p, r)
			if got, err := o.wait(t); got != Rejected || err != nil {
				t.Fatalf("Done(%v, %v); want Done(rejected, <nil>)", got, err)
			}
			list, err := st.ListRejected(t.Context(), tenancy.RootTenantID, "d1", 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 1 {
				t.Fatalf("ListRejected: %v", list)
			}
			rej := list[0]
			if !strings.Contains(rej.Reason, tc.reason) {
				t.Errorf("reason %q; want it to contain %q", rej.Reason, tc.reason)
			}
			if !bytes.Equal(rej.Payload, tc.body) {
				t.Errorf("payload %q; want exactly %q", rej.Payload, tc.body)
			}
			if rej.MessageID != tc.wantID || rej.Topic != r.Topic || rej.TenantID != tenancy.RootTenantID ||
				rej.DeviceID != "d1" || !rej.ReceivedAt.Equal(r.ReceivedAt) {
				t.Errorf("rejected = %+v", rej)
			}
		})
	}
	if got := samples(t, st, "d1", "t"); len(got) != 0 {
		t.Errorf("a rejected message stored points: %v", got)
	}
	p.Close()
	checkMetrics(t, p.metrics, wantMetrics{rejects: 5})
}

func TestPipelineSubmitAfterClose(t *testing.T) {
	st := newSQLite(t)
	p := startPipeline(t, st, Config{})
	p.Close()
	p.Close() // Close may be called again

	for _, body := range []string{`{"t": 1}`, `{"t": "not a number"}`} {
		o := newOutcome()
		if err := p.Submit(t.Context(), rawMsg("d1", "", body), o.Done); !errors.Is(err, ErrClosed) {
			t.Errorf("Submit(%s) after Close: %v; want ErrClosed", body, err)
		}
		if o.callCount() != 0 {
			t.Errorf("Done called for a message Submit refused")
		}
	}
	if list, err := st.ListRejected(t.Context(), tenancy.RootTenantID, "d1", 10); err != nil || len(list) != 0 {
		t.Errorf("ListRejected = %v, %v; want nothing", list, err)
	}
	checkMetrics(t, p.metrics, wantMetrics{})
}

func TestPipelineCloseDrainsQueue(t *testing.T) {
	st := &slowStore{Sink: newSQLite(t), delay: 2 * time.Millisecond}
	p := startPipeline(t, st, Config{MaxBatch: 8, ApplyBatch: 8, Queue: 1000})
	const n = 300
	outcomes := make([]*outcome, n)
	for k := range outcomes {
		outcomes[k] = submit(t, p, rawMsg("d1", fmt.Sprintf("$.mid=m-%d", k),
			fmt.Sprintf(`{"ts": %q, "values": {"t": %d}}`, serverNow.Add(-time.Duration(k+1)*time.Second).Format(time.RFC3339), k)))
	}
	p.Close()
	for k, o := range outcomes {
		if c := o.callCount(); c != 1 {
			t.Fatalf("message %d: Done called %d times by the time Close returned; want 1", k, c)
		}
		if got, err := o.wait(t); got != Stored || err != nil {
			t.Fatalf("message %d: Done(%v, %v)", k, got, err)
		}
	}
	if got := samples(t, st.Sink.(testEngine), "d1", "t"); len(got) != n {
		t.Fatalf("%d samples after Close; want %d", len(got), n)
	}
	if m := st.maxBatch.Load(); m > 8 {
		t.Errorf("a write held %d messages; ApplyBatch is 8", m)
	}
	checkMetrics(t, p.metrics, wantMetrics{messages: n, points: n})
}

// Submit racing Close: every message Submit accepted is committed before
// Close returns; every other one gets ErrClosed and never a Done.
func TestPipelineCloseRacingSubmit(t *testing.T) {
	for round := range 30 {
		st := &memStore{}
		p := newPipeline(t, st, Config{MaxBatch: 4, Queue: 64})
		go p.Run(context.Background())

		var accepted, done atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := range 16 {
			wg.Go(func() {
				<-start
				for i := 0; ; i++ {
					err := p.Submit(context.Background(), rawMsg("d1", fmt.Sprintf("$.mid=%d-%d", g, i), `{"t": 1}`),
						func(Outcome, error) { done.Add(1) })
					if errors.Is(err, ErrClosed) {
						return
					}
					if err != nil {
						t.Errorf("Submit: %v", err)
						return
					}
					accepted.Add(1)
				}
			})
		}
		close(start)
		time.Sleep(time.Millisecond)
		p.Close()
		afterClose := done.Load()
		wg.Wait()
		if a := accepted.Load(); afterClose != a {
			t.Fatalf("round %d: Submit accepted %d messages but only %d were committed when Close returned", round, a, afterClose)
		}
		if d := done.Load(); d != afterClose {
			t.Fatalf("round %d: Done called %d times after Close returned", round, d-afterClose)
		}
	}
}

// A device's acknowledgements must go out in the order its messages
// arrived, whatever became of each.
func TestPipelineReportsInSubmissionOrder(t *testing.T) {
	st := &slowStore{Sink: newSQLite(t), delay: time.Millisecond}
	p := startPipeline(t, st, Config{MaxBatch: 8, Queue: 100})
	var mu sync.Mutex
	var order []int
	const n = 60
	for k := range n {
		body := fmt.Sprintf(`{"ts": %q, "values": {"t": %d}}`, serverNow.Add(-time.Duration(k+1)*time.Second).Format(time.RFC3339), k)
		bag := fmt.Sprintf("$.mid=m-%d", k)
		switch k % 5 {
		case 1:
			body = `{"t": "bad"}`
		case 3:
			bag = "$.mid=m-0" // a duplicate
		}
		err := p.Submit(t.Context(), rawMsg("d1", bag, body), func(Outcome, error) {
			mu.Lock()
			order = append(order, k)
			mu.Unlock()
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	if len(order) != n {
		t.Fatalf("%d Done calls; want %d", len(order), n)
	}
	for i, k := range order {
		if i != k {
			t.Fatalf("Done calls in order %v; want submission order", order)
		}
	}
	checkMetrics(t, p.metrics, wantMetrics{messages: n * 3 / 5, points: n * 3 / 5, duplicates: n / 5, rejects: n / 5})
}

// TestPipelineCommitLogFailure: messages the commit log did not take are
// not acknowledged (their devices send them again), and nothing of them is
// stored.
func TestPipelineCommitLogFailure(t *testing.T) {
	st := &memStore{}
	p := startPipeline(t, st, Config{})
	p.cfg.CommitLog.Close() // as if its disk had failed
	a := submit(t, p, rawMsg("d1", "$.mid=1", `{"t": 1}`))
	b := submit(t, p, rawMsg("d1", "$.mid=2", `{"t": 2}`))
	for _, o := range []*outcome{a, b} {
		if _, err := o.wait(t); !errors.Is(err, commitlog.ErrClosed) {
			t.Errorf("Done error %v; want the commit log's error", err)
		}
	}
	p.Close()
	checkMetrics(t, p.metrics, wantMetrics{})
	if st.stored() != 0 {
		t.Errorf("%d messages stored", st.stored())
	}
}

func TestPipelineSubmitBlocksWhileQueueFull(t *testing.T) {
	st := newSQLite(t)
	p := newPipeline(t, st, Config{MaxBatch: 1, Queue: 1})
	// Run is not started yet: the first message fills the queue.
	first := newOutcome()
	if err := p.Submit(t.Context(), rawMsg("d1", "", `{"t": 1}`), first.Done); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	second := newOutcome()
	if err := p.Submit(ctx, rawMsg("d1", "", `{"t": 2}`), second.Done); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Submit to a full queue: %v; want context.DeadlineExceeded", err)
	}
	go p.Run(context.Background())
	if got, err := first.wait(t); got != Stored || err != nil {
		t.Fatalf("first: Done(%v, %v)", got, err)
	}
	p.Close()
	if second.callCount() != 0 {
		t.Error("Done called for a message Submit gave up on")
	}
}

func TestOutcomeString(t *testing.T) {
	for o, want := range map[Outcome]string{Stored: "stored", Rejected: "rejected"} {
		if o.String() != want {
			t.Errorf("%d.String() = %q; want %q", int(o), o.String(), want)
		}
	}
}

// slowStore makes every commit take a while, so that messages queue up, and
// records the largest batch.
type slowStore struct {
	Sink
	delay    time.Duration
	maxBatch atomic.Int64
}

func (s *slowStore) Apply(ctx context.Context, msgs []telemetry.Message, mark tsdbstore.LogMark) ([]tsdbstore.WriteResult, error) {
	time.Sleep(s.delay)
	for {
		m := s.maxBatch.Load()
		if int64(len(msgs)) <= m || s.maxBatch.CompareAndSwap(m, int64(len(msgs))) {
			break
		}
	}
	return s.Sink.Apply(ctx, msgs, mark)
}

// memStore is the part of a store the pipeline uses, in memory.
type memStore struct {
	fail error

	mu       sync.Mutex
	ids      map[string]bool
	rejected []tsdbstore.Rejected
	marks    map[string]uint64
}

func (s *memStore) Apply(_ context.Context, msgs []telemetry.Message, mark tsdbstore.LogMark) ([]tsdbstore.WriteResult, error) {
	if s.fail != nil {
		return nil, s.fail
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.marks == nil {
		s.marks = map[string]uint64{}
	}
	s.marks[mark.LogID] = mark.Next
	if s.ids == nil {
		s.ids = map[string]bool{}
	}
	res := make([]tsdbstore.WriteResult, len(msgs))
	for i, m := range msgs {
		key := m.DeviceID + "\x00" + m.MessageID
		if m.MessageID != "" && s.ids[key] {
			res[i].Duplicate = true
		}
		s.ids[key] = true
	}
	return res, nil
}

func (s *memStore) LogApplied(_ context.Context, logID string) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.marks[logID], nil
}

func (s *memStore) stored() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids)
}

func (s *memStore) AddRejected(_ context.Context, r tsdbstore.Rejected) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejected = append(s.rejected, r)
	return nil
}

// TestPipelineOversizedRecordFailsAlone: a message whose log record would
// be over the commit log's limit (properties of megabytes, possible only
// with an MQTT packet limit far above the default) fails on its own; the others of its group are
// acknowledged and stored.
func TestPipelineOversizedRecordFailsAlone(t *testing.T) {
	st := &memStore{}
	p := newPipeline(t, st, Config{MaxPayload: 16 << 20})
	// Queued before Run, so that both go in one group.
	small := submit(t, p, rawMsg("d1", "$.mid=small", `{"t": 1}`))
	big := rawMsg("d1", "$.mid=huge", `{"t": 1}`)
	big.App = map[string]string{"note": strings.Repeat("x", 5<<20)}
	huge := submit(t, p, big)
	go p.Run(context.Background())
	t.Cleanup(p.Close)
	if got, err := small.wait(t); got != Stored || err != nil {
		t.Fatalf("small message: Done(%v, %v)", got, err)
	}
	if _, err := huge.wait(t); err == nil || !strings.Contains(err.Error(), "over its limit") {
		t.Fatalf("oversized record: Done error %v", err)
	}
	caughtUp(t, p)
	if st.stored() != 1 {
		t.Fatalf("%d messages stored, want 1", st.stored())
	}
}
