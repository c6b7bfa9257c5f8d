package commitlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

func payloadOf(i uint64) []byte {
	return fmt.Appendf(nil, "record %d %s", i, bytes.Repeat([]byte{byte(i)}, int(i%97)))
}

func open(t *testing.T, dir string, opts Options) *Log {
	t.Helper()
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func appendN(t *testing.T, l *Log, n int) {
	t.Helper()
	for range n {
		next := l.Next()
		first, err := l.Append(context.Background(), payloadOf(next))
		if err != nil {
			t.Fatal(err)
		}
		if first != next {
			t.Fatalf("appended at %d, want %d", first, next)
		}
	}
}

// readAll reads the log from offset from to its end.
func readAll(t *testing.T, l *Log, from uint64) []Entry {
	t.Helper()
	r := l.NewReader(from)
	defer r.Close()
	var all []Entry
	for {
		es, err := r.TryRead(1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			return all
		}
		for _, e := range es {
			all = append(all, Entry{Offset: e.Offset, Payload: bytes.Clone(e.Payload)})
		}
	}
}

func checkEntries(t *testing.T, got []Entry, from, to uint64) {
	t.Helper()
	if uint64(len(got)) != to-from {
		t.Fatalf("read %d records, want %d (offsets %d to %d)", len(got), to-from, from, to)
	}
	for i, e := range got {
		want := from + uint64(i)
		if e.Offset != want || !bytes.Equal(e.Payload, payloadOf(want)) {
			t.Fatalf("record %d: offset %d payload %q, want offset %d payload %q", i, e.Offset, e.Payload, want, payloadOf(want))
		}
	}
}

func TestAppendReadReopen(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, Options{SegmentBytes: 4 << 10})
	appendN(t, l, 500)
	checkEntries(t, readAll(t, l, 0), 0, 500)
	checkEntries(t, readAll(t, l, 123), 123, 500)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	if len(segs) < 5 {
		t.Fatalf("%d segments for 500 records of 4 KiB segments", len(segs))
	}

	l = open(t, dir, Options{SegmentBytes: 4 << 10})
	rec := l.Recovery()
	if rec.Records != 500 || rec.TornBytes != 0 || rec.Lost != 0 || rec.Segments != len(segs) {
		t.Fatalf("recovery %+v, want 500 records in %d segments, nothing cut", rec, len(segs))
	}
	if l.Next() != 500 {
		t.Fatalf("next %d after reopening, want 500", l.Next())
	}
	appendN(t, l, 10)
	checkEntries(t, readAll(t, l, 0), 0, 510)
}

func TestGroupCommitOfConcurrentAppends(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, Options{})
	const writers, each = 16, 200
	var wg sync.WaitGroup
	offsets := make(chan uint64, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				off, err := l.Append(context.Background(), fmt.Appendf(nil, "w%d-%d", w, i), fmt.Appendf(nil, "w%d-%d second", w, i))
				if err != nil {
					t.Error(err)
					return
				}
				offsets <- off
			}
		})
	}
	wg.Wait()
	close(offsets)
	seen := map[uint64]bool{}
	for off := range offsets {
		if seen[off] || seen[off+1] {
			t.Fatalf("offset %d given twice", off)
		}
		seen[off], seen[off+1] = true, true
	}
	all := readAll(t, l, 0)
	if len(all) != 2*writers*each {
		t.Fatalf("read %d records, want %d", len(all), 2*writers*each)
	}
	for i := 0; i < len(all); i += 2 {
		// An Append's records are consecutive.
		if !bytes.Equal(append(all[i].Payload, " second"...), all[i+1].Payload) {
			t.Fatalf("records %d and %d: %q %q", i, i+1, all[i].Payload, all[i+1].Payload)
		}
	}
}

func TestReaderWaitsAndFollows(t *testing.T) {
	l := open(t, t.TempDir(), Options{SegmentBytes: 2 << 10})
	r := l.NewReader(0)
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make(chan []Entry)
	go func() {
		var all []Entry
		for len(all) < 300 {
			es, err := r.Read(ctx, 7)
			if err != nil {
				t.Error(err)
				break
			}
			for _, e := range es {
				all = append(all, Entry{Offset: e.Offset, Payload: bytes.Clone(e.Payload)})
			}
		}
		got <- all
	}()
	for range 300 {
		appendN(t, l, 1)
	}
	checkEntries(t, <-got, 0, 300)

	short, cancelShort := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelShort()
	if _, err := r.Read(short, 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read at the end: %v, want the context's deadline", err)
	}
	l.Close()
	if _, err := r.Read(ctx, 10); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v, want ErrClosed", err)
	}
	if _, err := l.Append(ctx, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v, want ErrClosed", err)
	}
}

func TestDropBefore(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, Options{SegmentBytes: 1 << 10})
	appendN(t, l, 200)
	slow := l.NewReader(0) // in the first segment when it is dropped
	defer slow.Close()
	if es, err := slow.TryRead(3); err != nil || len(es) != 3 {
		t.Fatalf("%d records, %v", len(es), err)
	}
	n, err := l.DropBefore(150)
	if err != nil || n == 0 {
		t.Fatalf("dropped %d segments: %v", n, err)
	}
	first := l.First()
	if first > 150 || first == 0 {
		t.Fatalf("first %d after dropping below 150", first)
	}
	// A new reader starts at the oldest record kept; the one in a dropped
	// segment reads it to its end, then goes on from the oldest kept.
	checkEntries(t, readAll(t, l, 0), first, 200)
	var rest []Entry
	for {
		es, err := slow.TryRead(50)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			break
		}
		rest = append(rest, es...)
	}
	if rest[0].Offset != 3 || rest[len(rest)-1].Offset != 199 {
		t.Fatalf("slow reader read %d to %d", rest[0].Offset, rest[len(rest)-1].Offset)
	}
	l.Close()
	l = open(t, dir, Options{SegmentBytes: 1 << 10})
	if l.First() != first || l.Next() != 200 {
		t.Fatalf("reopened: first %d next %d, want %d and 200", l.First(), l.Next(), first)
	}
}

func TestRecordTooLarge(t *testing.T) {
	l := open(t, t.TempDir(), Options{})
	if _, err := l.Append(context.Background(), make([]byte, MaxRecordSize+1)); err == nil {
		t.Fatal("a record over the limit was accepted")
	}
	big := bytes.Repeat([]byte("b"), 3<<20) // larger than a reader's chunk
	if _, err := l.Append(context.Background(), []byte("small"), big, []byte("after")); err != nil {
		t.Fatal(err)
	}
	all := readAll(t, l, 0)
	if len(all) != 3 || !bytes.Equal(all[1].Payload, big) || string(all[2].Payload) != "after" {
		t.Fatalf("read %d records", len(all))
	}
}

// TestTornTail cuts the last segment at every byte of its last two
// records, as a crash in the middle of a write would: every record before
// the cut is kept, the cut one and what follows are gone, and the log
// appends after them.
func TestTornTail(t *testing.T) {
	src := t.TempDir()
	l := open(t, src, Options{})
	appendN(t, l, 20)
	l.Close()
	seg := filepath.Join(src, segmentName(0))
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	ends := recordEnds(t, data)
	for cut := ends[17]; cut < len(data); cut++ {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segmentName(0)), data[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		l := open(t, dir, Options{})
		kept := 18
		if cut >= ends[18] {
			kept = 19
		}
		rec := l.Recovery()
		if rec.Records != uint64(kept) || rec.TornBytes != int64(cut-ends[kept-1]) || rec.Lost != 0 {
			t.Fatalf("cut at %d: recovery %+v, want %d records, %d torn bytes", cut, rec, kept, cut-ends[kept-1])
		}
		appendN(t, l, 1)
		checkEntries(t, readAll(t, l, 0), 0, uint64(kept+1))
		l.Close()
	}
}

// recordEnds returns the end position of each record of a segment.
func recordEnds(t *testing.T, data []byte) []int {
	t.Helper()
	var ends []int
	pos := 0
	var next uint64
	for pos < len(data) {
		off, _, size, err := decodeRecord(data[pos:], next)
		if err != nil {
			t.Fatal(err)
		}
		pos += size
		next = off + 1
		ends = append(ends, pos)
	}
	return ends
}

// TestDamagedRecords flips bits: in the last record (a damaged tail: cut
// off), and in a record with intact ones after it (cut out, counted as
// lost, its bytes kept aside); the other records are all kept.
func TestDamagedRecords(t *testing.T) {
	src := t.TempDir()
	l := open(t, src, Options{})
	appendN(t, l, 30)
	l.Close()
	data, err := os.ReadFile(filepath.Join(src, segmentName(0)))
	if err != nil {
		t.Fatal(err)
	}
	ends := recordEnds(t, data)

	for _, c := range []struct {
		name   string
		at     int // byte to flip
		keep   []uint64
		lost   uint64
		torn   bool
		header bool
	}{
		{name: "last record's payload", at: ends[29] - 1, torn: true},
		{name: "last record's length", at: ends[28] + 1, torn: true},
		{name: "middle record's payload", at: ends[10] - 2, lost: 1},
		{name: "middle record's length", at: ends[10] + 2, lost: 1},
		{name: "middle record's offset", at: ends[10] + 9, lost: 1},
		{name: "first record's checksum", at: 5, lost: 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			bad := bytes.Clone(data)
			bad[c.at] ^= 0x40
			if err := os.WriteFile(filepath.Join(dir, segmentName(0)), bad, 0o600); err != nil {
				t.Fatal(err)
			}
			l := open(t, dir, Options{})
			rec := l.Recovery()
			if c.torn {
				if rec.Records != 29 || rec.TornBytes == 0 || rec.Lost != 0 {
					t.Fatalf("recovery %+v, want 29 records and a torn tail", rec)
				}
				checkEntries(t, readAll(t, l, 0), 0, 29)
				return
			}
			if rec.Records != 29 || rec.Lost != c.lost || rec.TornBytes != 0 || len(rec.Damaged) != 1 {
				t.Fatalf("recovery %+v, want 29 records, %d lost, one damaged file", rec, c.lost)
			}
			kept, err := os.ReadFile(rec.Damaged[0])
			if err != nil || len(kept) == 0 {
				t.Fatalf("damaged bytes: %d, %v", len(kept), err)
			}
			all := readAll(t, l, 0)
			if len(all) != 29 {
				t.Fatalf("read %d records, want 29", len(all))
			}
			for _, e := range all {
				if !bytes.Equal(e.Payload, payloadOf(e.Offset)) {
					t.Fatalf("record %d: %q", e.Offset, e.Payload)
				}
			}
			appendN(t, l, 1)
			if l.Next() != 31 {
				t.Fatalf("next %d, want 31", l.Next())
			}
			l.Close()
			// Reopened, the repaired log is whole: nothing more is cut.
			l = open(t, dir, Options{})
			if rec := l.Recovery(); rec.Records != 30 || rec.Lost != 0 || rec.TornBytes != 0 {
				t.Fatalf("second recovery %+v", rec)
			}
		})
	}
}

// TestDamagedSegmentEndBeforeIntactSegment: the end of a full segment is
// damaged and a later segment is intact: the damage is cut out and
// reported, the later segment is kept.
func TestDamagedSegmentEndBeforeIntactSegment(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, Options{SegmentBytes: 1 << 10})
	appendN(t, l, 100)
	l.Close()
	first := filepath.Join(dir, segmentName(0))
	data, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(first, data[:len(data)-3], 0o600); err != nil {
		t.Fatal(err)
	}
	l = open(t, dir, Options{SegmentBytes: 1 << 10})
	rec := l.Recovery()
	if rec.Lost != 1 || rec.Records != 99 {
		t.Fatalf("recovery %+v, want 99 records and 1 lost", rec)
	}
	if got := readAll(t, l, 0); len(got) != 99 || got[len(got)-1].Offset != 99 {
		t.Fatalf("read %d records", len(got))
	}
}

// faultyFile fails writes once limit bytes have been written, as a full
// disk does.
type faultyFile struct {
	*os.File
	mu      *sync.Mutex
	written *int64
	limit   int64
	syncErr error
}

func (f faultyFile) WriteAt(b []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	room := f.limit - *f.written
	if int64(len(b)) > room {
		n, _ := f.File.WriteAt(b[:max(room, 0)], off)
		*f.written += int64(n)
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	n, err := f.File.WriteAt(b, off)
	*f.written += int64(n)
	return n, err
}

func (f faultyFile) Sync() error {
	if f.syncErr != nil {
		return f.syncErr
	}
	return f.File.Sync()
}

func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var written int64
	limit := int64(2000)
	wrap := func(f *os.File, err error) (file, error) {
		if err != nil {
			return nil, err
		}
		return faultyFile{File: f, mu: &mu, written: &written, limit: limit}, nil
	}
	opts := Options{
		create: func(p string) (file, error) { return wrap(os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)) },
		open:   func(p string) (file, error) { return wrap(os.OpenFile(p, os.O_RDWR, 0)) },
	}
	l := open(t, dir, opts)
	var acked uint64
	var full error
	for i := uint64(0); i < 1000; i++ {
		_, err := l.Append(context.Background(), payloadOf(i))
		if err != nil {
			full = err
			break
		}
		acked++
	}
	if !errors.Is(full, syscall.ENOSPC) {
		t.Fatalf("append on a full disk: %v, want ENOSPC", full)
	}
	// Not acknowledged, not there; the log goes on once there is room.
	checkEntries(t, readAll(t, l, 0), 0, acked)
	mu.Lock()
	written = -1 << 20
	mu.Unlock()
	if off, err := l.Append(context.Background(), payloadOf(acked)); err != nil || off != acked {
		t.Fatalf("append with room again: %d, %v", off, err)
	}
	l.Close()
	l = open(t, dir, Options{})
	if rec := l.Recovery(); rec.Records != acked+1 || rec.TornBytes != 0 {
		t.Fatalf("recovery %+v, want %d records", rec, acked+1)
	}
	checkEntries(t, readAll(t, l, 0), 0, acked+1)
}

func TestFailedSyncStopsTheLog(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var written int64
	opts := Options{open: func(p string) (file, error) {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
		return faultyFile{File: f, mu: &mu, written: &written, limit: 1 << 30, syncErr: syscall.EIO}, nil
	}}
	l := open(t, dir, opts)
	if _, err := l.Append(context.Background(), []byte("x")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("append with a failing fsync: %v, want EIO", err)
	}
	if _, err := l.Append(context.Background(), []byte("y")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("append after a failed fsync: %v, want the log stopped", err)
	}
}
