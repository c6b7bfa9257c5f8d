package commitlog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
)

// readChunk is how much a reader reads from a segment at a time.
const readChunk = 1 << 20

// Reader reads a log's durable records in order. It is for one goroutine.
type Reader struct {
	l    *Log
	next uint64 // the offset wanted next

	seg   *segment // the segment being read, nil before the first read
	f     *os.File
	pos   int64  // of the next record in seg
	floor uint64 // the next record in seg has an offset of at least this
	buf   []byte
}

// NewReader returns a reader at offset from; a from below the oldest record
// kept starts at the oldest record kept.
func (l *Log) NewReader(from uint64) *Reader {
	return &Reader{l: l, next: from}
}

// Read returns up to max records (at least one), waiting for them while
// there are none, until ctx ends or the log is closed (ErrClosed). The
// payloads stay valid until the next Read.
func (r *Reader) Read(ctx context.Context, max int) ([]Entry, error) {
	for {
		entries, err := r.TryRead(max)
		if err != nil || len(entries) > 0 {
			return entries, err
		}
		r.l.mu.Lock()
		grown, closed, end := r.l.grown, r.l.closed, r.l.segs[len(r.l.segs)-1].next
		r.l.mu.Unlock()
		if r.next < end {
			continue // appended since TryRead looked
		}
		if closed {
			return nil, ErrClosed
		}
		select {
		case <-grown:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// TryRead returns up to max records, none if there are none yet; it does not
// wait.
func (r *Reader) TryRead(max int) ([]Entry, error) {
	r.buf = r.buf[:0]
	var entries []Entry
	for len(entries) < max {
		size, last, err := r.position()
		if err != nil {
			return nil, err
		}
		if r.pos >= size {
			if last {
				break
			}
			r.moveOn()
			continue
		}
		n := min(size-r.pos, readChunk)
		start := len(r.buf)
		r.buf = append(r.buf, make([]byte, n)...)
		if _, err := r.f.ReadAt(r.buf[start:], r.pos); err != nil {
			return nil, fmt.Errorf("commit log: read %s: %w", r.seg.path, err)
		}
		chunk := r.buf[start:]
		used := 0
		for used < len(chunk) && len(entries) < max {
			off, payload, rsize, err := decodeRecord(chunk[used:], r.floor)
			if errors.Is(err, errTorn) && used == 0 && len(chunk) >= headerSize && int64(len(chunk)) < size-r.pos {
				// A record longer than a chunk: read it whole.
				need := int64(headerSize) + int64(binary.LittleEndian.Uint32(chunk[:4]))
				if need > size-r.pos {
					return nil, fmt.Errorf("commit log: %s at byte %d: record runs past the durable end", r.seg.path, r.pos)
				}
				r.buf = append(r.buf[:start], make([]byte, need)...)
				if _, err := r.f.ReadAt(r.buf[start:], r.pos); err != nil {
					return nil, fmt.Errorf("commit log: read %s: %w", r.seg.path, err)
				}
				chunk = r.buf[start:]
				continue
			}
			if errors.Is(err, errTorn) && used > 0 {
				break // the rest comes with the next chunk
			}
			if err != nil {
				return nil, fmt.Errorf("commit log: %s at byte %d: %w", r.seg.path, r.pos+int64(used), err)
			}
			used += rsize
			r.floor = off + 1
			if off >= r.next {
				entries = append(entries, Entry{Offset: off, Payload: payload})
				r.next = off + 1
			}
		}
		r.pos += int64(used)
		r.buf = r.buf[:start+used]
	}
	return entries, nil
}

// position opens the segment that holds the reader's next record if none
// is open, and returns how many of its bytes are durable and whether it is
// the log's newest.
func (r *Reader) position() (size int64, last bool, err error) {
	for r.seg == nil {
		r.l.mu.Lock()
		segs := r.l.segs
		i := 0
		for i < len(segs)-1 && segs[i].next <= r.next {
			i++ // read to its end or dropped below it
		}
		seg := segs[i]
		r.l.mu.Unlock()
		if r.next < seg.base {
			r.next = seg.base // below the oldest record kept, or a gap cut out by recovery
		}
		f, err := os.Open(seg.path)
		if errors.Is(err, os.ErrNotExist) {
			continue // dropped meanwhile
		}
		if err != nil {
			return 0, false, fmt.Errorf("commit log: %w", err)
		}
		r.seg, r.f, r.pos, r.floor = seg, f, 0, seg.base
	}
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	return r.seg.size, r.seg == r.l.segs[len(r.l.segs)-1], nil
}

// moveOn leaves a segment read to its end.
func (r *Reader) moveOn() {
	r.l.mu.Lock()
	r.next = max(r.next, r.seg.next)
	r.l.mu.Unlock()
	r.f.Close()
	r.seg, r.f = nil, nil
}

// Close releases the reader's file.
func (r *Reader) Close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.seg, r.f = nil, nil
	return err
}
