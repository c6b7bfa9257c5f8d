package ingest

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/telemetry"
	"github.com/warden-iot/warden/internal/tsdb/tsdbstore"
)

// stuckStore blocks the first stuck writes until their context ends, as
// a transaction waiting for a lock that is never released would; later
// writes go through to memStore.
type stuckStore struct {
	memStore
	stuck int64
	calls atomic.Int64
}

func (s *stuckStore) Apply(ctx context.Context, msgs []telemetry.Message, mark tsdbstore.LogMark) ([]tsdbstore.WriteResult, error) {
	if s.calls.Add(1) <= s.stuck {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.memStore.Apply(ctx, msgs, mark)
}

// TestPipelineApplyTimesOutAndRetries: a write to the database that never
// returns on its own is abandoned after CommitTimeout and tried again; the
// device's acknowledgement does not wait for it (the message is durable in
// the commit log), and the message is stored once an attempt succeeds.
func TestPipelineApplyTimesOutAndRetries(t *testing.T) {
	st := &stuckStore{stuck: 2}
	p := startPipeline(t, st, Config{CommitTimeout: 50 * time.Millisecond})
	o := submit(t, p, rawMsg("d1", "$.mid=1", `{"t": 1}`))
	if got, err := o.wait(t); got != Stored || err != nil {
		t.Fatalf("Done(%v, %v); want stored", got, err)
	}
	caughtUp(t, p)
	if n := st.calls.Load(); n != 3 {
		t.Errorf("%d write attempts; want 3", n)
	}
	if got := counter(t, p.metrics.commitTimeouts); got != 2 {
		t.Errorf("failed writes counted: %v; want 2", got)
	}
	if st.stored() != 1 {
		t.Errorf("%d messages stored; want 1", st.stored())
	}
}

// TestPipelineAckDoesNotWaitForTheDatabase: while the database takes no
// writes at all, devices are still acknowledged; what they sent is written
// once it takes them again, and a pipeline closed meanwhile leaves it in
// the commit log for the next start, which writes it.
func TestPipelineAckDoesNotWaitForTheDatabase(t *testing.T) {
	st := &stuckStore{stuck: 1 << 30}
	p := newPipeline(t, st, Config{CommitTimeout: 20 * time.Millisecond})
	go p.Run(context.Background())
	for i := range 10 {
		o := submit(t, p, rawMsg("d1", "$.mid="+string(rune('a'+i)), `{"t": 1}`))
		if got, err := o.wait(t); got != Stored || err != nil {
			t.Fatalf("message %d: Done(%v, %v); want stored", i, got, err)
		}
	}
	p.Close()
	if st.stored() != 0 {
		t.Fatalf("%d messages stored by a database that takes nothing", st.stored())
	}
	// The next start, on the same log, once the database works again.
	st.stuck = 0
	next := newPipeline(t, st, Config{CommitLog: p.cfg.CommitLog, LogID: p.cfg.LogID, Keys: p.cfg.Keys})
	go next.Run(context.Background())
	caughtUp(t, next)
	next.Close()
	if st.stored() != 10 {
		t.Fatalf("%d messages stored after the restart; want 10", st.stored())
	}
	if got := counter(t, next.metrics.messages); got != 10 {
		t.Errorf("stored counted: %v; want 10", got)
	}
}

// TestPipelineDroppedNotAcknowledged: a message of a tenant that does not
// exist (deleted) is reported with ErrTenantGone and counted, not stored.
func TestPipelineDroppedNotAcknowledged(t *testing.T) {
	st := &memStore{}
	p := startPipeline(t, st, Config{})
	r := rawMsg("d1", "$.mid=1", `{"t": 1}`)
	r.TenantID = "gone"
	if _, err := submit(t, p, r).wait(t); !errors.Is(err, ErrTenantGone) {
		t.Fatalf("Done error %v; want ErrTenantGone", err)
	}
	if got, err := submit(t, p, rawMsg("d2", "$.mid=1", `{"t": 1}`)).wait(t); got != Stored || err != nil {
		t.Fatalf("other tenant: Done(%v, %v)", got, err)
	}
	p.Close()
	if got := counter(t, p.metrics.dropped); got != 1 {
		t.Errorf("dropped counted: %v; want 1", got)
	}
	if st.stored() != 1 {
		t.Errorf("%d messages stored; want 1", st.stored())
	}
}

// unsureStore cannot say how far the log is applied for its first calls,
// as a database still starting would.
type unsureStore struct {
	memStore
	fails atomic.Int64
}

func (s *unsureStore) LogApplied(ctx context.Context, logID string) (uint64, error) {
	if s.fails.Add(-1) >= 0 {
		return 0, errors.New("database starting")
	}
	return s.memStore.LogApplied(ctx, logID)
}

// TestPipelineApplierWaitsForTheDatabase: while the database cannot say
// where the applier starts, messages are acknowledged (into the log); the
// applier asks again and writes them once it can.
func TestPipelineApplierWaitsForTheDatabase(t *testing.T) {
	st := &unsureStore{}
	st.fails.Store(3)
	p := startPipeline(t, st, Config{})
	if got, err := submit(t, p, rawMsg("d1", "$.mid=1", `{"t": 1}`)).wait(t); got != Stored || err != nil {
		t.Fatalf("Done(%v, %v); want stored", got, err)
	}
	caughtUp(t, p)
	if st.stored() != 1 {
		t.Fatalf("%d messages stored; want 1", st.stored())
	}
}
