// Package tsdbtest is the behavioural suite every telemetry store
// (tsdbstore.Store) must pass: tsdbsqlite's and tsdbpg's tests run it on
// their engine.
package tsdbtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/enginetest"
	"github.com/warden-iot/warden/internal/tenancy"
	"github.com/warden-iot/warden/internal/tsdb/tsdbstore"
)

// Open returns a fresh, migrated engine (for what the telemetry store does
// not hold: devices, tenants, their keys, server settings) and the
// telemetry store on its database. It registers its own cleanup with t.
type Open func(t *testing.T) (store.Store, tsdbstore.Store)

// Run runs the whole suite, each test on a store of its own.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(t *testing.T, eng store.Store, s tsdbstore.Store)
	}{
		{"WriteHeadAndLatest", testWriteHeadAndLatest},
		{"Deduplication", testDeduplication},
		{"DuplicateInsideOneBatch", testDuplicateInsideOneBatch},
		{"ForgetMessageIDs", testForgetMessageIDs},
		{"MergeErrorRollsBack", testMergeErrorRollsBack},
		{"LogMark", testLogMark},
		{"WriteHeadKeyGone", testWriteHeadKeyGone},
		{"SealLifecycle", testSealLifecycle},
		{"SealConflict", testSealConflict},
		{"ChunksForMerge", testChunksForMerge},
		{"ReadSeries", testReadSeries},
		{"LatestBlobs", testLatestBlobs},
		{"Retention", testRetention},
		{"Rejected", testRejected},
		{"RejectedUpgrade", testRejectedUpgrade},
		{"ConcurrentWriters", testConcurrentWriters},
		{"RejectedBound", testRejectedBound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eng, s := open(t)
			tc.fn(t, eng, s)
		})
	}
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ctx(t *testing.T) context.Context { return t.Context() }

func blobs[T tsdbstore.HeadRecord | tsdbstore.ChunkRecord](xs []T) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		switch x := any(x).(type) {
		case tsdbstore.HeadRecord:
			out[i] = string(x.Blob)
		case tsdbstore.ChunkRecord:
			out[i] = string(x.Blob)
		}
	}
	return out
}

func testWriteHeadAndLatest(t *testing.T, eng store.Store, s tsdbstore.Store) {
	enginetest.RootDevice(t, eng, "pump-1")
	enginetest.RootDevice(t, eng, "pump-2")
	var calls []string
	merge := func(tenantID, deviceID string, old []byte, accepted []int) ([]byte, error) {
		calls = append(calls, fmt.Sprintf("%s %s old=%q %v", tenantID, deviceID, old, accepted))
		return fmt.Appendf(old, "%v;", accepted), nil
	}
	res, err := s.WriteHead(ctx(t), []tsdbstore.HeadRecord{enginetest.HeadRecord("pump-1", "m1", 10, 20), enginetest.HeadRecord("pump-2", "m1", 5, 5), enginetest.HeadRecord("pump-1", "", 30, 30)}, merge, tsdbstore.LogMark{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[0].Duplicate || res[1].Duplicate || res[2].Duplicate {
		t.Fatalf("results = %+v", res)
	}
	want := []string{`root pump-1 old="" [0 2]`, `root pump-2 old="" [1]`}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Fatalf("merge calls = %q, want %q", calls, want)
	}
	head, err := s.HeadRecords(ctx(t), "pump-1")
	if err != nil {
		t.Fatal(err)
	}
	if got := blobs(head); fmt.Sprint(got) != "[pump-1/m1/10-20 pump-1//30-30]" {
		t.Fatalf("head = %v", got)
	}
	h := head[0]
	if h.ID == 0 || h.TenantID != tenancy.RootTenantID || h.MessageID != "m1" || h.MinTS != 10 || h.MaxTS != 20 ||
		!h.ReceivedAt.Equal(t0.Add(20*time.Millisecond)) || head[1].ID <= h.ID {
		t.Fatalf("head record = %+v", h)
	}
	calls = nil
	if _, err := s.WriteHead(ctx(t), []tsdbstore.HeadRecord{enginetest.HeadRecord("pump-1", "m2", 40, 40)}, merge, tsdbstore.LogMark{}); err != nil {
		t.Fatal(err)
	}
	if want := []string{`root pump-1 old="[0 2];" [0]`}; fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Fatalf("merge calls = %q, want %q", calls, want)
	}
	b, err := s.LatestBlob(ctx(t), tenancy.RootTenantID, "pump-1")
	if err != nil || string(b) != "[0 2];[0];" {
		t.Fatalf("LatestBlob = %q, %v", b, err)
	}
	enginetest.RootDevice(t, eng, "silent")
	if b, err := s.LatestBlob(ctx(t), tenancy.RootTenantID, "silent"); err != nil || b != nil {
		t.Fatalf("LatestBlob of a device without data = %q, %v; want nil", b, err)
	}
}

func testDeduplication(t *testing.T, eng store.Store, s tsdbstore.Store) {
	enginetest.RootDevice(t, eng, "a")
	enginetest.RootDevice(t, eng, "b")
	enginetest.WriteHead(t, s, enginetest.HeadRecord("a", "same", 1, 1))
	res := enginetest.WriteHead(t, s, enginetest.HeadRecord("a", "same", 2, 2), enginetest.HeadRecord("b", "same", 2, 2))
	if !res[0].Duplicate || res[1].Duplicate {
		t.Fatalf("results = %+v, want [dup, new]", res)
	}
	if head, _ := s.HeadRecords(ctx(t), "a"); len(head) != 1 || string(head[0].Blob) != "a/same/1-1" {
		t.Fatalf("device a head = %v, want only the first copy", blobs(head))
	}
	if head, _ := s.HeadRecords(ctx(t), "b"); len(head) != 1 {
		t.Fatalf("device b head = %v", blobs(head))
	}
}

func testDuplicateInsideOneBatch(t *testing.T, eng store.Store, s tsdbstore.Store) {
	enginetest.RootDevice(t, eng, "a")
	var accepted []int
	res, err := s.WriteHead(ctx(t), []tsdbstore.HeadRecord{enginetest.HeadRecord("a", "m", 1, 1), enginetest.HeadRecord("a", "m", 2, 2)},
		func(_, _ string, old []byte, acc []int) ([]byte, error) { accepted = acc; return []byte("x"), nil }, tsdbstore.LogMark{})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Duplicate || !res[1].Duplicate || fmt.Sprint(accepted) != "[0]" {
		t.Fatalf("results = %+v, accepted %v; want [new, dup] and [0]", res, accepted)
	}
}

func testForgetMessageIDs(t *testing.T, eng store.Store, s tsdbstore.Store) {
	enginetest.RootDevice(t, eng, "a")
	old, recent := enginetest.HeadRecord("a", "old", 1, 1), enginetest.HeadRecord("a", "recent", 2, 2)
	old.ReceivedAt, recent.ReceivedAt = t0, t0.Add(48*time.Hour)
	enginetest.WriteHead(t, s, old, recent)
	n, err := s.ForgetMessageIDs(ctx(t), t0.Add(24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("ForgetMessageIDs = %d, %v; want 1", n, err)
	}
	res := enginetest.WriteHead(t, s, enginetest.HeadRecord("a", "old", 3, 3), enginetest.HeadRecord("a", "recent", 3, 3))
	if res[0].Duplicate || !res[1].Duplicate {
		t.Fatalf("results = %+v, want the forgotten id accepted and the recent one deduplicated", res)
	}
}

func testMergeErrorRollsBack(t *testing.T, eng store.Store, s tsdbstore.Store) {
	enginetest.RootDevice(t, eng, "a")
	boom := errors.New("boom")
	_, err := s.WriteHead(ctx(t), []tsdbstore.HeadRecord{enginetest.HeadRecord("a", "m", 1, 1)},
		func(string, string, []byte, []int) ([]byte, error) { return nil, boom }, tsdbstore.LogMark{})
	if !errors.Is(err, boom) {
		t.Fatalf("WriteHead error = %v, want the merge error", err)
	}
	if head, _ := s.HeadRecords(ctx(t), "a"); len(head) != 0 {
		t.Fatalf("head after failed write = %v, want nothing", blobs(head))
	}
	if res := enginetest.WriteHead(t, s, enginetest.HeadRecord("a", "m", 1, 1)); res[0].Duplicate {
		t.Fatal("message id of a failed write was remembered")
	}
}

// testWriteHeadKeyGone: records sealed with a data key destroyed before the
// commit are not stored, nor their message ids; the rest of the batch is.
// testLogMark: a commit log's mark is written with the records, also
// when there are none or all are duplicates; a transaction that fails
// leaves the mark where it was; each log has its own.
func testLogMark(t *testing.T, eng store.Store, s tsdbstore.Store) {
	enginetest.RootDevice(t, eng, "a")
	applied := func(id string) uint64 {
		t.Helper()
		n, err := s.LogApplied(ctx(t), id)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := applied("log-1"); n != 0 {
		t.Fatalf("mark of a log never written: %d, want 0", n)
	}
	mark := tsdbstore.LogMark{LogID: "log-1", Next: 7}
	if _, err := s.WriteHead(ctx(t), []tsdbstore.HeadRecord{enginetest.HeadRecord("a", "m1", 1, 1)}, enginetest.KeepLatest, mark); err != nil {
		t.Fatal(err)
	}
	if n := applied("log-1"); n != 7 {
		t.Fatalf("mark %d, want 7", n)
	}
	// Only duplicates, and nothing at all: the mark moves on.
	if _, err := s.WriteHead(ctx(t), []tsdbstore.HeadRecord{enginetest.HeadRecord("a", "m1", 1, 1)}, enginetest.KeepLatest,
		tsdbstore.LogMark{LogID: "log-1", Next: 9}); err != nil {
		t.Fatal(err)
	}
	if n := applied("log-1"); n != 9 {
		t.Fatalf("mark after duplicates %d, want 9", n)
	}
	if _, err := s.WriteHead(ctx(t), nil, nil, tsdbstore.LogMark{LogID: "log-1", Next: 12}); err != nil {
		t.Fatal(err)
	}
	if n := applied("log-1"); n != 12 {
		t.Fatalf("mark without records %d, want 12", n)
	}
	// A failed transaction moves neither the records nor the mark.
	boom := errors.New("boom")
	if _, err := s.WriteHead(ctx(t), []tsdbstore.HeadRecord{enginetest.HeadRecord("a", "m2", 2, 2)},
		func(string, string, []byte, []int) ([]byte, error) { return nil, boom }, tsdbstore.LogMark{LogID: "log-1", Next: 20}); !errors.Is(err, boom) {
		t.Fatalf("WriteHead error = %v, want the merge error", err)
	}
	if n := applied("log-1"); n != 12 {
		t.Fatalf("mark after a failed write %d, want 12", n)
	}
	if n := applied("log-2"); n != 0 {
		t.Fatalf("another log's mark %d, want 0", n)
	}
}

func testWriteHeadKeyGone(t *testing.T, eng store.Store, s tsdbstore.Store) {
	enginetest.RootDevice(t, eng, "pump-1")
	enginetest.RootDevice(t, eng, "pump-2")
	newKey := func() uint32 {
		t.Helper()
		k, err := eng.CreateTenantKey(ctx(t), tenancy.RootTenantID, t0, func(uint32) ([]byte, error) { return []byte("wrapped"), nil })
		if err != nil {
			t.Fatal(err)
		}
		return k.ID
	}
	shredded := newKey()
	if err := eng.DeleteTenantKeys(ctx(t), tenancy.RootTenantID); err != nil {
		t.Fatal(err)
	}
	live := newKey()
	a, dup, b := enginetest.HeadRecord("pump-1", "m1", 1, 1), enginetest.HeadRecord("pump-1", "m1", 2, 2), enginetest.HeadRecord("pump-2", "m1", 1, 1)
	a.KeyID, dup.KeyID, b.KeyID = shredded, shredded, live
	res := enginetest.WriteHead(t, s, a, dup, b)
	if !res[0].KeyGone || !res[1].KeyGone || res[2].KeyGone || res[2].Duplicate {
		t.Fatalf("results = %+v, want the first two KeyGone", res)
	}
	if h, err := s.HeadRecords(ctx(t), "pump-1"); err != nil || len(h) != 0 {
		t.Fatalf("head of pump-1 = %v, %v; want empty", blobs(h), err)
	}
	if h, err := s.HeadRecords(ctx(t), "pump-2"); err != nil || len(h) != 1 {
		t.Fatalf("head of pump-2 = %v, %v; want one record", blobs(h), err)
	}
	if blob, err := s.LatestBlob(ctx(t), tenancy.RootTenantID, "pump-1"); err != nil || blob != nil {
		t.Fatalf("latest of pump-1 = %q, %v; want none", blob, err)
	}
	// Sealed again with the live key, the message is new: its id was not kept.
	a.KeyID = live
	if res := enginetest.WriteHead(t, s, a); res[0].KeyGone || res[0].Duplicate {
		t.Fatalf("rewritten with a live key: %+v, want stored", res[0])
	}
}

func testSealLifecycle(t *testing.T, eng store.Store, s tsdbstore.Store) {
	enginetest.RootDevice(t, eng, "busy")
	enginetest.RootDevice(t, eng, "slow")
	for i := range 5 {
		enginetest.WriteHead(t, s, enginetest.HeadRecord("busy", fmt.Sprint(i), int64(i), int64(i)))
	}
	old := enginetest.HeadRecord("slow", "x", 0, 0)
	old.ReceivedAt = t0.Add(-3 * time.Hour)
	enginetest.WriteHead(t, s, old)

	due, err := s.DevicesToSeal(ctx(t), 5, t0.Add(-time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(due) != "[{root busy} {root slow}]" {
		t.Fatalf("DevicesToSeal = %v, want busy (5 rows) and slow (old)", due)
	}
	if due, _ := s.DevicesToSeal(ctx(t), 6, t0.Add(-4*time.Hour), 10); len(due) != 0 {
		t.Fatalf("DevicesToSeal with higher limits = %v, want none", due)
	}
	head, _ := s.HeadRecords(ctx(t), "busy")
	ids := []int64{head[0].ID, head[1].ID, head[2].ID}
	if err := s.SealHead(ctx(t), "busy", ids, nil, []tsdbstore.ChunkRecord{enginetest.Chunk("busy", "x", 0, 2)}); err != nil {
		t.Fatal(err)
	}
	head, _ = s.HeadRecords(ctx(t), "busy")
	if fmt.Sprint(blobs(head)) != "[busy/3/3-3 busy/4/4-4]" {
		t.Fatalf("head after sealing three = %v", blobs(head))
	}
	if due, _ := s.DevicesToSeal(ctx(t), 3, t0.Add(-4*time.Hour), 10); len(due) != 0 {
		t.Fatalf("DevicesToSeal after sealing = %v, want none (2 rows left)", due)
	}
	_, chunks, err := s.ReadSeries(ctx(t), tenancy.RootTenantID, "busy", "x", 0, 100)
	if err != nil || fmt.Sprint(blobs(chunks)) != "[busy/x/0-2]" {
		t.Fatalf("chunks = %v, %v", blobs(chunks), err)
	}
	c := chunks[0]
	if c.ID == 0 || c.TenantID != tenancy.RootTenantID || c.Metric != "x" || c.StartTS != 0 || c.EndTS != 2 || c.Count != 3 {
		t.Fatalf("chunk = %+v", c)
	}
	// Replace the chunk by two (a merge): no head records involved.
	if err := s.SealHead(ctx(t), "busy", nil, []int64{c.ID}, []tsdbstore.ChunkRecord{enginetest.Chunk("busy", "x", 0, 1), enginetest.Chunk("busy", "x", 2, 4)}); err != nil {
		t.Fatal(err)
	}
	_, chunks, _ = s.ReadSeries(ctx(t), tenancy.RootTenantID, "busy", "x", 0, 100)
	if fmt.Sprint(blobs(chunks)) != "[busy/x/0-1 busy/x/2-4]" {
		t.Fatalf("chunks after replace = %v", blobs(chunks))
	}
}

func testSealConflict(t *testing.T, eng store.Store, s tsdbstore.Store) {
	enginetest.RootDevice(t, eng, "a")
	enginetest.WriteHead(t, s, enginetest.HeadRecord("a", "1", 1, 1), enginetest.HeadRecord("a", "2", 2, 2))
	head, _ := s.HeadRecords(ctx(t), "a")
	if err := s.SealHead(ctx(t), "a", []int64{head[0].ID}, nil, []tsdbstore.ChunkRecord{enginetest.Chunk("a", "x", 1, 1)}); err != nil {
		t.Fatal(err)
	}
	// A second sealer that read the head before the first one committed.
	err := s.SealHead(ctx(t), "a", []int64{head[0].ID, head[1].ID}, nil, []tsdbstore.ChunkRecord{enginetest.Chunk("a", "x", 1, 2)})
	if !errors.Is(err, database.ErrConflict) {
		t.Fatalf("second seal error = %v, want ErrConflict", err)
	}
	head2, _ := s.HeadRecords(ctx(t), "a")
	_, chunks, _ := s.ReadSeries(ctx(t), tenancy.RootTenantID, "a", "x", 0, 100)
	if len(head2) != 1 || fmt.Sprint(blobs(chunks)) != "[a/x/1-1]" {
		t.Fatalf("after a conflict: head %v, chunks %v; want nothing changed", blobs(head2), blobs(chunks))
	}
}

func testChunksForMerge(t *testing.T, eng store.Store, s tsdbstore.Store) {
	enginetest.RootDevice(t, eng, "a")
	add := []tsdbstore.ChunkRecord{enginetest.Chunk("a", "x", 0, 99), enginetest.Chunk("a", "x", 100, 199), enginetest.Chunk("a", "x", 300, 399), enginetest.Chunk("a", "y", 0, 999)}
	if err := s.SealHead(ctx(t), "a", nil, nil, add); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		from, to int64
		want     string
	}{
		{150, 350, "[a/x/0-99 a/x/100-199 a/x/300-399]"}, // overlaps two, plus the last one before
		{250, 260, "[a/x/100-199]"},                      // in a gap: the chunk before it
		{500, 600, "[a/x/300-399]"},                      // after everything: the tail
		{-50, -10, "[]"},                                 // before everything
		{199, 199, "[a/x/0-99 a/x/100-199]"},             // inclusive end
	} {
		got, err := s.ChunksForMerge(ctx(t), "a", "x", c.from, c.to)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(blobs(got)) != c.want {
			t.Errorf("ChunksForMerge(%d, %d) = %v, want %s", c.from, c.to, blobs(got), c.want)
		}
	}
}

func testReadSeries(t *testing.T, eng store.Store, s tsdbstore.Store) {
	enginetest.RootDevice(t, eng, "a")
	enginetest.WriteHead(t, s, enginetest.HeadRecord("a", "1", 0, 50), enginetest.HeadRecord("a", "2", 100, 100), enginetest.HeadRecord("a", "3", 150, 300))
	if err := s.SealHead(ctx(t), "a", nil, nil, []tsdbstore.ChunkRecord{enginetest.Chunk("a", "x", 0, 99), enginetest.Chunk("a", "x", 100, 199), enginetest.Chunk("a", "y", 0, 500)}); err != nil {
		t.Fatal(err)
	}
	head, chunks, err := s.ReadSeries(ctx(t), tenancy.RootTenantID, "a", "x", 100, 150)
	if err != nil {
		t.Fatal(err)
	}
	// Half-open [100, 150): head record 3 starts at 150 and is left out.
	if fmt.Sprint(blobs(head)) != "[a/2/100-100]" || fmt.Sprint(blobs(chunks)) != "[a/x/100-199]" {
		t.Fatalf("ReadSeries = head %v, chunks %v", blobs(head), blobs(chunks))
	}
	if _, _, err := s.ReadSeries(ctx(t), tenancy.RootTenantID, "ghost", "x", 0, 1); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("ReadSeries of unknown device error = %v", err)
	}
}

func testLatestBlobs(t *testing.T, eng store.Store, s tsdbstore.Store) {
	for _, id := range []string{"d1", "d2", "d3"} {
		enginetest.RootDevice(t, eng, id)
	}
	enginetest.WriteHead(t, s, enginetest.HeadRecord("d1", "", 1, 1), enginetest.HeadRecord("d3", "", 1, 1))
	page, err := s.LatestBlobs(ctx(t), tenancy.RootTenantID, "", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 2 || page[0].DeviceID != "d1" || string(page[0].Blob) != "[0];" || page[1].DeviceID != "d2" || page[1].Blob != nil {
		t.Fatalf("first page = %+v", page)
	}
	page, _ = s.LatestBlobs(ctx(t), tenancy.RootTenantID, "d2", 2)
	if len(page) != 1 || page[0].DeviceID != "d3" || page[0].TenantID != tenancy.RootTenantID {
		t.Fatalf("second page = %+v", page)
	}
	if err := s.SetLatestBlob(ctx(t), "d1", []byte("new")); err != nil {
		t.Fatal(err)
	}
	if b, _ := s.LatestBlob(ctx(t), tenancy.RootTenantID, "d1"); string(b) != "new" {
		t.Fatalf("after SetLatestBlob = %q", b)
	}
	if err := s.SetLatestBlob(ctx(t), "d1", nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := s.LatestBlob(ctx(t), tenancy.RootTenantID, "d1"); b != nil {
		t.Fatalf("after deleting = %q", b)
	}
}

func testRetention(t *testing.T, eng store.Store, s tsdbstore.Store) {
	enginetest.RootDevice(t, eng, "a")
	enginetest.WriteHead(t, s, enginetest.HeadRecord("a", "old", 0, 40), enginetest.HeadRecord("a", "straddles", 40, 60), enginetest.HeadRecord("a", "new", 70, 80))
	if err := s.SealHead(ctx(t), "a", nil, nil, []tsdbstore.ChunkRecord{enginetest.Chunk("a", "x", 0, 49), enginetest.Chunk("a", "x", 50, 99), enginetest.Chunk("a", "y", 10, 200)}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddRejected(ctx(t), tsdbstore.Rejected{TenantID: tenancy.RootTenantID, DeviceID: "a", Reason: "old", ReceivedAt: time.UnixMilli(10)}); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteTelemetryBefore(ctx(t), tenancy.RootTenantID, 50)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 { // chunk x/0-49 and head record "old"
		t.Fatalf("DeleteTelemetryBefore deleted %d, want 2", n)
	}
	head, _ := s.HeadRecords(ctx(t), "a")
	if fmt.Sprint(blobs(head)) != "[a/straddles/40-60 a/new/70-80]" {
		t.Fatalf("head after retention = %v", blobs(head))
	}
	spanning, err := s.ChunksSpanning(ctx(t), tenancy.RootTenantID, 50)
	if err != nil || fmt.Sprint(blobs(spanning)) != "[a/y/10-200]" {
		t.Fatalf("ChunksSpanning = %v, %v", blobs(spanning), err)
	}
	if r, _ := s.ListRejected(ctx(t), tenancy.RootTenantID, "a", 10); len(r) != 0 {
		t.Fatalf("old rejected messages kept: %+v", r)
	}
	// Other tenants are untouched.
	if err := eng.CreateTenant(ctx(t), tenancy.Tenant{ID: "other", ParentID: tenancy.RootTenantID, Name: "Other", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.DeleteTelemetryBefore(ctx(t), "other", 1000); n != 0 {
		t.Fatalf("retention of another tenant deleted %d", n)
	}
}

func testRejected(t *testing.T, eng store.Store, s tsdbstore.Store) {
	enginetest.RootDevice(t, eng, "a")
	for i := range 3 {
		r := tsdbstore.Rejected{TenantID: tenancy.RootTenantID, DeviceID: "a", MessageID: fmt.Sprint("m", i),
			Topic: "devices/a/messages/events/", Reason: fmt.Sprint("reason ", i),
			Payload: []byte{'{', byte(i), 0xff}, ReceivedAt: t0.Add(time.Duration(i) * time.Second),
			Size: int64(100 + i), Sealed: []byte{0, byte(i), 0xfe}}
		if err := s.AddRejected(ctx(t), r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ListRejected(ctx(t), tenancy.RootTenantID, "a", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Reason != "reason 2" || got[1].Reason != "reason 1" ||
		!bytes.Equal(got[0].Payload, []byte{'{', 2, 0xff}) || got[0].MessageID != "m2" ||
		got[0].Topic != "devices/a/messages/events/" || !got[0].ReceivedAt.Equal(t0.Add(2*time.Second)) || got[0].ID == 0 ||
		got[0].Size != 102 || !bytes.Equal(got[0].Sealed, []byte{0, 2, 0xfe}) {
		t.Fatalf("ListRejected = %+v", got)
	}
}

// testRejectedUpgrade: OldRejected pages through the entries in the old
// form only; UpgradeRejected replaces each only while it is still old,
// empties topic and reason and notes the compaction as due.
func testRejectedUpgrade(t *testing.T, eng store.Store, s tsdbstore.Store) {
	enginetest.RootDevice(t, eng, "a")
	for i := range 5 {
		r := tsdbstore.Rejected{TenantID: tenancy.RootTenantID, DeviceID: "a", MessageID: fmt.Sprint("m", i),
			Topic: fmt.Sprint("topic ", i), Reason: fmt.Sprint("reason ", i), Payload: bytes.Repeat([]byte{byte(i)}, 2000),
			ReceivedAt: t0, Size: tsdbstore.RejectedOld}
		if i == 2 { // in today's form
			r.Topic, r.Reason, r.Payload, r.Size, r.Sealed = "", "", []byte{2}, 2000, []byte{9}
		}
		if err := s.AddRejected(ctx(t), r); err != nil {
			t.Fatal(err)
		}
	}
	first, err := s.OldRejected(ctx(t), 0, 3, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 3 || first[0].MessageID != "m0" || first[1].MessageID != "m1" || first[2].MessageID != "m3" ||
		first[0].Topic != "topic 0" || first[0].Reason != "reason 0" || len(first[0].Payload) != 2000 || first[0].Size != tsdbstore.RejectedOld {
		t.Fatalf("OldRejected = %+v", first)
	}
	rest, err := s.OldRejected(ctx(t), first[2].ID, 3, 1<<20)
	if err != nil || len(rest) != 1 || rest[0].MessageID != "m4" {
		t.Fatalf("OldRejected after %d = %+v, %v", first[2].ID, rest, err)
	}
	// A byte budget ends the page after the row that reaches it.
	if page, err := s.OldRejected(ctx(t), 0, 3, 3000); err != nil || len(page) != 2 || page[1].MessageID != "m1" {
		t.Fatalf("OldRejected with 3000 bytes = %d rows, %v; want 2", len(page), err)
	}
	if _, err := eng.GetMeta(ctx(t), "sealed_compact_pending"); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("compaction pending before any upgrade: %v", err)
	}
	up := slices.Clone(first)
	for i := range up {
		up[i].Payload, up[i].Size, up[i].Sealed = []byte{byte(i), 1}, 2000, []byte{byte(i), 2}
	}
	up[2].Size = tsdbstore.RejectedUnreadable
	if n, err := s.UpgradeRejected(ctx(t), up); err != nil || n != 3 {
		t.Fatalf("UpgradeRejected = %d, %v; want 3", n, err)
	}
	if _, err := eng.GetMeta(ctx(t), "sealed_compact_pending"); err != nil {
		t.Errorf("compaction not noted as due: %v", err)
	}
	// Upgraded meanwhile (by another node): nothing changes.
	up[0].Payload = []byte("stale")
	if n, err := s.UpgradeRejected(ctx(t), up[:1]); err != nil || n != 0 {
		t.Errorf("second UpgradeRejected = %d, %v; want 0", n, err)
	}
	if left, err := s.OldRejected(ctx(t), 0, 10, 1<<20); err != nil || len(left) != 1 || left[0].MessageID != "m4" {
		t.Errorf("OldRejected after the upgrade = %+v, %v", left, err)
	}
	got, err := s.ListRejected(ctx(t), tenancy.RootTenantID, "a", 10)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]tsdbstore.Rejected{}
	for _, r := range got {
		byID[r.MessageID] = r
	}
	if r := byID["m0"]; r.Topic != "" || r.Reason != "" || !bytes.Equal(r.Payload, []byte{0, 1}) || r.Size != 2000 ||
		!bytes.Equal(r.Sealed, []byte{0, 2}) {
		t.Errorf("upgraded entry = %+v", r)
	}
	if r := byID["m3"]; r.Size != tsdbstore.RejectedUnreadable || r.Topic != "" {
		t.Errorf("entry upgraded as unreadable = %+v", r)
	}
	if r := byID["m4"]; r.Topic != "topic 4" || r.Size != tsdbstore.RejectedOld || len(r.Payload) != 2000 {
		t.Errorf("entry not in the batch = %+v", r)
	}
}

func testConcurrentWriters(t *testing.T, eng store.Store, s tsdbstore.Store) {
	const writers, perWriter = 4, 25
	for w := range writers {
		enginetest.RootDevice(t, eng, fmt.Sprint("w", w))
	}
	errc := make(chan error, writers)
	for w := range writers {
		go func() {
			for i := range perWriter {
				_, err := s.WriteHead(ctx(t), []tsdbstore.HeadRecord{enginetest.HeadRecord(fmt.Sprint("w", w), fmt.Sprint(i), int64(i), int64(i))}, enginetest.KeepLatest, tsdbstore.LogMark{})
				if err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for range writers {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	for w := range writers {
		if head, err := s.HeadRecords(ctx(t), fmt.Sprint("w", w)); err != nil || len(head) != perWriter {
			t.Fatalf("writer %d: %d head records, %v; want %d", w, len(head), err, perWriter)
		}
	}
}

// testRejectedBound: the rejected list of a device is bounded; the newest
// entries stay.
func testRejectedBound(t *testing.T, eng store.Store, s tsdbstore.Store) {
	enginetest.RootDevice(t, eng, "d")
	const n = 1010
	for i := range n {
		if err := s.AddRejected(ctx(t), tsdbstore.Rejected{TenantID: tenancy.RootTenantID, DeviceID: "d",
			Reason: fmt.Sprint(i), ReceivedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ListRejected(ctx(t), tenancy.RootTenantID, "d", -1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1000 || got[0].Reason != fmt.Sprint(n-1) || got[999].Reason != fmt.Sprint(n-1000) {
		t.Fatalf("%d rejected kept, newest %q, oldest %q; want 1000 from %d to %d",
			len(got), got[0].Reason, got[len(got)-1].Reason, n-1, n-1000)
	}
}
