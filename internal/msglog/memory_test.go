package msglog_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/msglog"
	"github.com/warden-iot/warden/internal/telemetry"
)

func rec(dev string, n int) msglog.Record {
	return msglog.Record{TenantID: "acme", DeviceID: dev, Message: &telemetry.Message{TenantID: "acme", DeviceID: dev, MessageID: fmt.Sprint(n)}}
}

// Each device's records come back in the order appended, in its own
// partition, with consecutive offsets.
func TestOrderPerPartition(t *testing.T) {
	ctx := t.Context()
	l := msglog.NewMemory(msglog.MemoryConfig{Partitions: 4, Consumers: []string{"c"}})
	devices := []string{"a", "b", "c", "d", "e", "f", "g"}
	const n = 50
	for i := range n {
		var batch []msglog.Record
		for _, d := range devices {
			batch = append(batch, rec(d, i))
		}
		if err := l.Append(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	next := map[string]int{}
	total := 0
	for p := range l.Partitions() {
		var off int64
		for off < l.End(p) {
			recs, err := l.Read(ctx, p, off, 7)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if r.Offset != off {
					t.Fatalf("partition %d: offset %d, want %d", p, r.Offset, off)
				}
				if got := l.PartitionOf(r.DeviceID); got != p {
					t.Fatalf("device %s read from partition %d, belongs to %d", r.DeviceID, p, got)
				}
				if want := fmt.Sprint(next[r.DeviceID]); r.Message.MessageID != want {
					t.Fatalf("device %s: message %s, want %s", r.DeviceID, r.Message.MessageID, want)
				}
				next[r.DeviceID]++
				off++
				total++
			}
		}
	}
	if total != n*len(devices) {
		t.Fatalf("read %d records, want %d", total, n*len(devices))
	}
}

// Read blocks until a record arrives, and gives up with its context.
func TestReadWaits(t *testing.T) {
	l := msglog.NewMemory(msglog.MemoryConfig{Partitions: 1, Consumers: []string{"c"}})
	got := make(chan []msglog.Record, 1)
	go func() {
		recs, _ := l.Read(t.Context(), 0, 0, 10)
		got <- recs
	}()
	time.Sleep(20 * time.Millisecond)
	if err := l.Append(t.Context(), []msglog.Record{rec("a", 0)}); err != nil {
		t.Fatal(err)
	}
	select {
	case recs := <-got:
		if len(recs) != 1 || recs[0].DeviceID != "a" {
			t.Fatalf("read %+v", recs)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read did not wake up on Append")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.Read(ctx, 0, 1, 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read of an empty tail: %v, want the context's error", err)
	}
}

// A full partition makes Append wait for a commit; past the bounded wait
// the records that do not fit are dropped, counted and reported, and the
// log never holds more than its capacity.
func TestBoundedMemory(t *testing.T) {
	ctx := t.Context()
	l := msglog.NewMemory(msglog.MemoryConfig{Partitions: 1, Capacity: 3, MaxWait: 50 * time.Millisecond, Consumers: []string{"c"}})
	if err := l.Append(ctx, []msglog.Record{rec("a", 0), rec("a", 1), rec("a", 2)}); err != nil {
		t.Fatal(err)
	}
	// A commit while Append waits makes room: nothing is dropped.
	go func() {
		time.Sleep(10 * time.Millisecond)
		if err := l.Commit(ctx, "c", 0, 2); err != nil {
			t.Error(err)
		}
	}()
	if err := l.Append(ctx, []msglog.Record{rec("a", 3), rec("a", 4)}); err != nil {
		t.Fatalf("Append with room made while waiting: %v", err)
	}
	// Nobody commits: after the bounded wait the rest is dropped.
	start := time.Now()
	err := l.Append(ctx, []msglog.Record{rec("a", 5), rec("a", 6)})
	if !errors.Is(err, msglog.ErrFull) {
		t.Fatalf("Append to a full partition: %v, want ErrFull", err)
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > 2*time.Second {
		t.Fatalf("Append waited %v, want about the 50ms bound", d)
	}
	if l.Dropped() != 2 {
		t.Fatalf("dropped %d, want 2", l.Dropped())
	}
	if got := l.End(0); got != 5 {
		t.Fatalf("end %d, want 5 (the dropped records take no offset)", got)
	}
	recs, err := l.Read(ctx, 0, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[0].Offset != 2 {
		t.Fatalf("kept %d records from offset %d, want 3 from 2 (capacity 3, 2 committed)", len(recs), recs[0].Offset)
	}
}

// Records are kept until every consumer committed past them; each
// consumer's offset is its own and never moves back.
func TestConsumerOffsets(t *testing.T) {
	ctx := t.Context()
	l := msglog.NewMemory(msglog.MemoryConfig{Partitions: 1, Capacity: 10, Consumers: []string{"alarms", "export"}})
	for i := range 4 {
		if err := l.Append(ctx, []msglog.Record{rec("a", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Commit(ctx, "alarms", 0, 4); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(ctx, "alarms", 0, 1); err != nil {
		t.Fatal(err)
	}
	if o, _ := l.Committed(ctx, "alarms", 0); o != 4 {
		t.Fatalf("alarms committed %d, want 4 (an older commit does not move it back)", o)
	}
	if o, _ := l.Committed(ctx, "export", 0); o != 0 {
		t.Fatalf("export committed %d, want 0", o)
	}
	// export has not read them: all four are still there for it.
	recs, err := l.Read(ctx, 0, 0, 10)
	if err != nil || len(recs) != 4 {
		t.Fatalf("read %d records (%v), want 4 kept for the slower consumer", len(recs), err)
	}
	if err := l.Commit(ctx, "export", 0, 3); err != nil {
		t.Fatal(err)
	}
	recs, err = l.Read(ctx, 0, 0, 10)
	if err != nil || len(recs) != 1 || recs[0].Offset != 3 {
		t.Fatalf("after both committed: %+v (%v), want only offset 3", recs, err)
	}
	if err := l.Commit(ctx, "nobody", 0, 1); err == nil {
		t.Fatal("commit of an unknown consumer accepted")
	}
	if err := l.Commit(ctx, "alarms", 0, 99); err == nil {
		t.Fatal("commit beyond the end accepted")
	}
}

// Close wakes a waiting reader.
func TestCloseWakesReader(t *testing.T) {
	l := msglog.NewMemory(msglog.MemoryConfig{Partitions: 1, Consumers: []string{"c"}})
	errc := make(chan error, 1)
	go func() {
		_, err := l.Read(t.Context(), 0, 0, 1)
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	l.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, msglog.ErrClosed) {
			t.Fatalf("Read after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake the reader")
	}
}
