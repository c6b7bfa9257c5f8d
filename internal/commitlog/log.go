// Package commitlog is an append-only log of records in segment files on
// disk, made for the step before a device's acknowledgement: Append returns
// only once its records are written and fsynced, and the appends that arrive
// while one group is being synced go together in the next group, so that one
// fsync covers many devices' messages.
//
// Each record carries its offset and a checksum (see record.go). Open checks
// every segment: a tail cut short or damaged by a crash (records that were
// never acknowledged) is cut off; damage with intact records after it is
// cut out and kept aside in a ".damaged" file, and reported, never skipped in
// silence. Readers follow the log from any offset. The owner drops whole
// segments once what they hold is stored elsewhere (DropBefore).
//
// The log knows nothing of what its records mean: encoding and encryption
// are the caller's.
package commitlog

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Options tune a log.
type Options struct {
	// SegmentBytes: a segment that has reached this size is closed and
	// the next group goes to a new one (default 64 MiB).
	SegmentBytes int64
	// MaxGroupBytes bounds the bytes one write and fsync carries (default
	// 4 MiB); a single Append is never split.
	MaxGroupBytes int
	// Queue is how many Appends may wait for the writer (default 4096).
	Queue int
	// Logger receives recovery reports (default: discarded).
	Logger *slog.Logger

	// create and open make segment files; tests put faults in them.
	create func(path string) (file, error)
	open   func(path string) (file, error)
}

func (o *Options) defaults() {
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = 64 << 20
	}
	if o.MaxGroupBytes <= 0 {
		o.MaxGroupBytes = 4 << 20
	}
	if o.Queue <= 0 {
		o.Queue = 4096
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.create == nil {
		o.create = func(path string) (file, error) {
			return os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		}
	}
	if o.open == nil {
		o.open = func(path string) (file, error) { return os.OpenFile(path, os.O_RDWR, 0) }
	}
}

// file is what the log needs of a segment file (an *os.File).
type file interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
	Truncate(size int64) error
	Close() error
}

// Entry is a record read from the log.
type Entry struct {
	Offset  uint64
	Payload []byte
}

// Recovery is what Open found.
type Recovery struct {
	Segments int
	Records  uint64
	// TornBytes were cut off the end: a write the crash interrupted,
	// never acknowledged.
	TornBytes int64
	// Lost counts offsets cut out of the middle of the log: damaged
	// records with intact ones after them (their bytes are kept in
	// .damaged files beside the segments).
	Lost uint64
	// Damaged lists the files the damaged bytes were moved to.
	Damaged []string
}

type segment struct {
	base uint64 // offset of its first record
	path string
	size int64  // durable bytes
	next uint64 // offset after its last record
}

// Log is an open commit log. Its methods may be called from any goroutine.
type Log struct {
	dir  string
	id   string
	opts Options
	rec  Recovery

	reqs    chan *request
	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once

	mu     sync.Mutex
	segs   []*segment    // oldest first; the last is active
	grown  chan struct{} // closed when records are added, then replaced
	failed error         // set when the log cannot go on writing
	closed bool

	// Owned by the writer goroutine.
	active file
	buf    []byte

	syncs atomic.Int64 // fsyncs of groups done
}

type request struct {
	payloads [][]byte
	first    uint64
	err      error
	done     chan struct{}
}

// ErrClosed is returned after Close.
var ErrClosed = errors.New("commit log closed")

const segmentExt = ".seg"

func segmentName(base uint64) string { return fmt.Sprintf("%020d%s", base, segmentExt) }

// Open opens the log in dir, creating it if needed, and recovers it (see
// Recovery): its records are then all intact, with nothing cut short.
func Open(dir string, opts Options) (*Log, error) {
	opts.defaults()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("commit log: %w", err)
	}
	l := &Log{dir: dir, opts: opts, reqs: make(chan *request, opts.Queue), stop: make(chan struct{}),
		stopped: make(chan struct{}), grown: make(chan struct{})}
	if err := l.recover(); err != nil {
		return nil, fmt.Errorf("commit log %s: %w", dir, err)
	}
	var err error
	if l.id, err = logID(dir); err != nil {
		return nil, fmt.Errorf("commit log %s: %w", dir, err)
	}
	last := l.segs[len(l.segs)-1]
	f, err := opts.open(last.path)
	if err != nil {
		return nil, fmt.Errorf("commit log: %w", err)
	}
	l.active = f
	go l.run()
	return l, nil
}

// ID names this log: made at random when the log is made, it tells its
// offsets apart from those of another log (a data directory made anew).
func (l *Log) ID() string { return l.id }

// logID reads the log's id file, or makes it.
func logID(dir string) (string, error) {
	path := filepath.Join(dir, "id")
	b, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if len(id) != 32 {
			return "", fmt.Errorf("%s: not a log id: %q", path, id)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	var raw [16]byte
	rand.Read(raw[:])
	id := hex.EncodeToString(raw[:])
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o600); err != nil {
		return "", err
	}
	f, err := os.Open(tmp)
	if err != nil {
		return "", err
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return "", err
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", err
	}
	return id, syncDir(dir)
}

// Recovery reports what Open found and repaired.
func (l *Log) Recovery() Recovery { return l.rec }

// First is the offset of the oldest record kept (Next if there is none).
func (l *Log) First() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.segs[0].base
}

// Next is the offset the next record appended will get: every record
// below it is durable.
func (l *Log) Next() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.segs[len(l.segs)-1].next
}

// Append writes the payloads as consecutive records and returns the offset
// of the first once they are durable. An error means none of them is
// acknowledged: either none was written (a payload over MaxRecordSize, a
// full disk, a closed log), or, when ctx ended while waiting, they may yet
// be written; the caller must not count them as kept.
func (l *Log) Append(ctx context.Context, payloads ...[]byte) (uint64, error) {
	for i, p := range payloads {
		if len(p) > MaxRecordSize {
			return 0, fmt.Errorf("commit log: record %d of %d bytes is over the limit of %d", i, len(p), MaxRecordSize)
		}
	}
	r := &request{payloads: payloads, done: make(chan struct{})}
	select {
	case <-l.stop:
		return 0, ErrClosed
	default:
	}
	select {
	case l.reqs <- r:
	case <-l.stop:
		return 0, ErrClosed
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case <-r.done:
		return r.first, r.err
	case <-l.stopped:
		// Queued as the log closed: answered if the writer got to it,
		// never written if not.
		select {
		case <-r.done:
			return r.first, r.err
		default:
			return 0, ErrClosed
		}
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// run is the writer: it takes the waiting appends as one group, writes
// them with one write and one fsync, and answers them.
func (l *Log) run() {
	defer close(l.stopped)
	var group []*request
	for {
		var first *request
		select {
		case first = <-l.reqs:
		case <-l.stop:
			// Answer what is still queued: nothing more is written.
			for {
				select {
				case r := <-l.reqs:
					r.err = ErrClosed
					close(r.done)
				default:
					return
				}
			}
		}
		group = append(group[:0], first)
		size := recordsSize(first.payloads)
	fill:
		for size < l.opts.MaxGroupBytes {
			select {
			case r := <-l.reqs:
				group = append(group, r)
				size += recordsSize(r.payloads)
			default:
				break fill
			}
		}
		err := l.write(group)
		for _, r := range group {
			if err != nil {
				r.err = err
			}
			close(r.done)
		}
		clear(group)
	}
}

func recordsSize(payloads [][]byte) int {
	n := 0
	for _, p := range payloads {
		n += headerSize + len(p)
	}
	return n
}

// write appends a group and syncs it, rolling to a new segment first if
// the active one is full.
func (l *Log) write(group []*request) error {
	l.mu.Lock()
	failed := l.failed
	seg := l.segs[len(l.segs)-1]
	l.mu.Unlock()
	if failed != nil {
		return failed
	}
	if seg.size >= l.opts.SegmentBytes {
		var err error
		if seg, err = l.roll(seg); err != nil {
			return err
		}
	}
	next := seg.next
	l.buf = l.buf[:0]
	records := 0
	for _, r := range group {
		r.first = next
		for _, p := range r.payloads {
			l.buf = appendRecord(l.buf, next, p)
			next++
			records++
		}
	}
	if _, err := l.active.WriteAt(l.buf, seg.size); err != nil {
		// Take back what may have been written, so that the next group
		// follows the last durable record.
		if terr := l.active.Truncate(seg.size); terr != nil {
			return l.fail(fmt.Errorf("commit log: write failed (%w) and so did cutting it off: %w", err, terr))
		}
		return fmt.Errorf("commit log: write %d records: %w", records, err)
	}
	if err := l.active.Sync(); err != nil {
		// After a failed fsync the state of the written pages is unknown:
		// stop writing rather than acknowledge on top of it.
		return l.fail(fmt.Errorf("commit log: sync: %w", err))
	}
	l.syncs.Add(1)
	l.mu.Lock()
	seg.size += int64(len(l.buf))
	seg.next = next
	close(l.grown)
	l.grown = make(chan struct{})
	l.mu.Unlock()
	if cap(l.buf) > 2*l.opts.MaxGroupBytes {
		l.buf = nil // one huge group does not keep its buffer
	}
	return nil
}

func (l *Log) fail(err error) error {
	l.mu.Lock()
	l.failed = err
	l.mu.Unlock()
	l.opts.Logger.Error("commit log stopped writing", "dir", l.dir, "err", err)
	return err
}

// roll closes the full active segment and starts a new one at its end.
func (l *Log) roll(full *segment) (*segment, error) {
	seg := &segment{base: full.next, next: full.next, path: filepath.Join(l.dir, segmentName(full.next))}
	f, err := l.opts.create(seg.path)
	if err != nil {
		return nil, fmt.Errorf("commit log: new segment: %w", err)
	}
	if err := syncDir(l.dir); err != nil {
		f.Close()
		os.Remove(seg.path)
		return nil, fmt.Errorf("commit log: new segment: %w", err)
	}
	if err := l.active.Close(); err != nil {
		l.opts.Logger.Warn("commit log: close full segment", "path", full.path, "err", err)
	}
	l.active = f
	l.mu.Lock()
	l.segs = append(l.segs, seg)
	l.mu.Unlock()
	return seg, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// DropBefore deletes the segments whose records all lie below offset (the
// active segment excepted) and returns how many it deleted. Readers that
// are in a deleted segment read on to its end.
func (l *Log) DropBefore(offset uint64) (int, error) {
	l.mu.Lock()
	var drop []*segment
	for len(l.segs) > 1 && l.segs[0].next <= offset {
		drop = append(drop, l.segs[0])
		l.segs = l.segs[1:]
	}
	l.mu.Unlock()
	for i, s := range drop {
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return i, fmt.Errorf("commit log: drop segment: %w", err)
		}
	}
	if len(drop) > 0 {
		if err := syncDir(l.dir); err != nil {
			return len(drop), fmt.Errorf("commit log: drop segments: %w", err)
		}
	}
	return len(drop), nil
}

// Close stops the writer (queued appends fail with ErrClosed) and closes
// the active segment. Open readers keep working until closed.
func (l *Log) Close() error {
	var err error
	l.once.Do(func() {
		close(l.stop)
		<-l.stopped
		l.mu.Lock()
		l.closed = true
		close(l.grown)
		l.grown = make(chan struct{})
		l.mu.Unlock()
		err = l.active.Close()
	})
	return err
}

// ---- recovery ----

func (l *Log) recover() error {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return err
	}
	var segs []*segment
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, segmentExt+".repair") {
			// A repair a crash interrupted: the segment is still whole.
			if err := os.Remove(filepath.Join(l.dir, name)); err != nil {
				return err
			}
			continue
		}
		if e.IsDir() || !strings.HasSuffix(name, segmentExt) {
			continue
		}
		base, err := strconv.ParseUint(strings.TrimSuffix(name, segmentExt), 10, 64)
		if err != nil || segmentName(base) != name {
			continue // not one of ours
		}
		segs = append(segs, &segment{base: base, path: filepath.Join(l.dir, name)})
	}
	slices.SortFunc(segs, func(a, b *segment) int { return cmp.Compare(a.base, b.base) })
	if len(segs) == 0 {
		seg := &segment{path: filepath.Join(l.dir, segmentName(0))}
		f, err := l.opts.create(seg.path)
		if err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		if err := syncDir(l.dir); err != nil {
			return err
		}
		l.segs = []*segment{seg}
		l.rec.Segments = 1
		return nil
	}
	min := segs[0].base
	for i := 0; i < len(segs); i++ {
		s := segs[i]
		if s.base < min {
			return fmt.Errorf("segment %s starts at offset %d, below the end of the one before (%d)", filepath.Base(s.path), s.base, min)
		}
		n, err := l.check(s, segs[i+1:])
		if err != nil {
			return err
		}
		min = s.next
		l.rec.Records += n
	}
	// Segments left empty at the end (made just before a crash) but the
	// first are removed; the last one left is the active segment.
	for len(segs) > 1 && segs[len(segs)-1].size == 0 {
		if err := os.Remove(segs[len(segs)-1].path); err != nil {
			return err
		}
		segs = segs[:len(segs)-1]
	}
	l.segs = segs
	l.rec.Segments = len(segs)
	if l.rec.TornBytes > 0 || l.rec.Lost > 0 {
		if err := syncDir(l.dir); err != nil {
			return err
		}
	}
	return nil
}
