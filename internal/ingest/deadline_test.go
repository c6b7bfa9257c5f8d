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

// stuckStore blocks the first stuck commits until their context ends, as
// a transaction waiting for a lock that is never released would; later
// commits go through to memStore.
type stuckStore struct {
	memStore
	stuck int64
	calls atomic.Int64
}

func (s *stuckStore) Write(ctx context.Context, msgs []telemetry.Message) ([]tsdbstore.WriteResult, error) {
	if s.calls.Add(1) <= s.stuck {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.memStore.Write(ctx, msgs)
}

// TestPipelineCommitTimesOutAndRetries: a commit that never returns on its
// own is abandoned after CommitTimeout and tried again; its messages are
// reported stored only once an attempt committed them.
func TestPipelineCommitTimesOutAndRetries(t *testing.T) {
	st := &stuckStore{stuck: 2}
	p := startPipeline(t, st, Config{CommitTimeout: 50 * time.Millisecond, CommitAttempts: 3})
	began := time.Now()
	o := submit(t, p, rawMsg("d1", "$.mid=1", `{"t": 1}`))
	if got, err := o.wait(t); got != Stored || err != nil {
		t.Fatalf("Done(%v, %v); want stored after the retries", got, err)
	}
	if n := st.calls.Load(); n != 3 {
		t.Errorf("%d commit attempts; want 3", n)
	}
	if el := time.Since(began); el > 5*time.Second {
		t.Errorf("commit took %v", el)
	}
	if got := counter(t, p.metrics.commitTimeouts); got != 2 {
		t.Errorf("commit timeouts counted: %v; want 2", got)
	}
	if len(st.ids) != 1 {
		t.Errorf("%d messages stored; want 1", len(st.ids))
	}
}

// TestPipelineCommitGivesUp: when every attempt times out, the messages
// fail (no acknowledgement) within CommitAttempts × CommitTimeout, and the
// pipeline goes on with the next group.
func TestPipelineCommitGivesUp(t *testing.T) {
	st := &stuckStore{stuck: 2}
	p := startPipeline(t, st, Config{CommitTimeout: 50 * time.Millisecond, CommitAttempts: 2})
	o := submit(t, p, rawMsg("d1", "$.mid=1", `{"t": 1}`))
	if _, err := o.wait(t); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Done error %v; want the deadline", err)
	}
	next := submit(t, p, rawMsg("d1", "$.mid=2", `{"t": 2}`))
	if got, err := next.wait(t); got != Stored || err != nil {
		t.Fatalf("next message: Done(%v, %v); want stored", got, err)
	}
}

// droppingStore reports every message of tenant "gone" dropped.
type droppingStore struct{ memStore }

func (s *droppingStore) Write(ctx context.Context, msgs []telemetry.Message) ([]tsdbstore.WriteResult, error) {
	res, err := s.memStore.Write(ctx, msgs)
	for i, m := range msgs {
		if m.TenantID == "gone" {
			res[i] = tsdbstore.WriteResult{Dropped: true}
		}
	}
	return res, err
}

// TestPipelineDroppedNotAcknowledged: a message of a deleted tenant is
// reported with ErrTenantGone and counted, not as stored.
func TestPipelineDroppedNotAcknowledged(t *testing.T) {
	p := startPipeline(t, &droppingStore{}, Config{})
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
}
