package commitlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// maxGap bounds how far past the expected offset a record found after
// damage may be: a header that claims more is taken for noise, which keeps
// the search for intact records after damage cheap.
const maxGap = 1 << 24

// check reads segment s, whose records must start at or above s.base,
// sets its size and next offset, and repairs it: a damaged tail is cut off
// (torn: never acknowledged) when nothing intact follows it here or in the
// later segments; damage that intact records follow is cut out and kept in
// a .damaged file (acknowledged records lost: reported).
func (l *Log) check(s *segment, later []*segment) (uint64, error) {
	data, err := os.ReadFile(s.path)
	if err != nil {
		return 0, err
	}
	next := s.base
	var records uint64
	pos := 0
	repaired := false
	for pos < len(data) {
		off, _, size, err := decodeRecord(data[pos:], next)
		if err == nil {
			pos += size
			next = off + 1
			records++
			continue
		}
		q, qoff, found := resync(data, pos+1, next)
		if !found && !hasBytes(later) {
			// The end of the log, cut short: never acknowledged.
			l.rec.TornBytes += int64(len(data) - pos)
			l.opts.Logger.Warn("commit log: cut off a record cut short by a crash", "segment", filepath.Base(s.path),
				"offset", next, "bytes", len(data)-pos, "reason", errReason(err))
			data = data[:pos]
			repaired = true
			break
		}
		if !found {
			q, qoff = len(data), later[0].base
		}
		damaged, derr := l.keepDamaged(s, pos, data[pos:q])
		if derr != nil {
			return 0, derr
		}
		lost := uint64(0)
		if qoff > next {
			lost = qoff - next
		}
		l.rec.Lost += lost
		l.rec.Damaged = append(l.rec.Damaged, damaged)
		l.opts.Logger.Error("commit log: damaged records cut out; their bytes are kept aside", "segment", filepath.Base(s.path),
			"from_offset", next, "lost_offsets", lost, "bytes", q-pos, "kept_in", damaged, "reason", errReason(err))
		data = append(data[:pos:pos], data[q:]...)
		repaired = true
	}
	if repaired {
		if err := l.rewrite(s.path, data); err != nil {
			return 0, err
		}
	}
	s.size = int64(len(data))
	s.next = next
	return records, nil
}

func errReason(err error) string {
	var ce *CorruptError
	if errors.As(err, &ce) {
		return ce.Reason
	}
	return err.Error()
}

// resync looks for the first intact record in data from position from on,
// with an offset in [min, min+maxGap).
func resync(data []byte, from int, min uint64) (pos int, offset uint64, ok bool) {
	for i := from; i+headerSize <= len(data); i++ {
		off := binary.LittleEndian.Uint64(data[i+8 : i+16])
		if off < min || off-min >= maxGap {
			continue
		}
		if off, _, _, err := decodeRecord(data[i:], min); err == nil {
			return i, off, true
		}
	}
	return 0, 0, false
}

// hasBytes reports whether any of the segments holds anything.
func hasBytes(segs []*segment) bool {
	for _, s := range segs {
		if fi, err := os.Stat(s.path); err == nil && fi.Size() > 0 {
			return true
		}
	}
	return false
}

// keepDamaged saves damaged bytes beside the segment and returns the
// file's path.
func (l *Log) keepDamaged(s *segment, pos int, b []byte) (string, error) {
	for n := 0; ; n++ {
		path := fmt.Sprintf("%s.%d.damaged", s.path, pos)
		if n > 0 {
			path = fmt.Sprintf("%s.%d-%d.damaged", s.path, pos, n)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("keep damaged bytes: %w", err)
		}
		_, err = f.Write(b)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", fmt.Errorf("keep damaged bytes: %w", err)
		}
		return path, nil
	}
}

// rewrite replaces a segment's content: a new file is written and synced,
// then renamed over the old one.
func (l *Log) rewrite(path string, data []byte) error {
	tmp := path + ".repair"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("repair segment: %w", err)
	}
	f, err := os.Open(tmp)
	if err != nil {
		return fmt.Errorf("repair segment: %w", err)
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return fmt.Errorf("repair segment: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("repair segment: %w", err)
	}
	return syncDir(filepath.Dir(path))
}
