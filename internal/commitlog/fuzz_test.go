package commitlog

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecodeRecord: any bytes decode to a record, a torn record or a
// corruption error, never a panic; what decodes re-encodes to the same
// bytes.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendRecord(nil, 0, []byte("hello")), uint64(0))
	f.Add(appendRecord(nil, 7, nil), uint64(5))
	f.Add(appendRecord(nil, 1<<40, bytes.Repeat([]byte{0xff}, 100)), uint64(1<<40))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, uint64(0))
	f.Fuzz(func(t *testing.T, b []byte, min uint64) {
		off, payload, size, err := decodeRecord(b, min)
		if err != nil {
			return
		}
		if off < min || size > len(b) || size != headerSize+len(payload) {
			t.Fatalf("offset %d (min %d), size %d of %d bytes, payload %d", off, min, size, len(b), len(payload))
		}
		if again := appendRecord(nil, off, payload); !bytes.Equal(again, b[:size]) {
			t.Fatalf("re-encoded %x, decoded from %x", again, b[:size])
		}
	})
}

// FuzzRecover: a segment of any bytes opens without a panic, and what the
// log then holds reads back and survives a second opening unchanged.
func FuzzRecover(f *testing.F) {
	var seg []byte
	for i := range uint64(5) {
		seg = appendRecord(seg, i, payloadOf(i))
	}
	f.Add(seg)
	f.Add(seg[:len(seg)-3])
	bad := bytes.Clone(seg)
	bad[40] ^= 1
	f.Add(bad)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segmentName(0)), data, 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		first := readAll(t, l, 0)
		if uint64(len(first)) != l.Recovery().Records {
			t.Fatalf("read %d records, recovery counted %d", len(first), l.Recovery().Records)
		}
		l.Close()
		l, err = Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if rec := l.Recovery(); rec.TornBytes != 0 || rec.Lost != 0 {
			t.Fatalf("second opening cut more: %+v", rec)
		}
		second := readAll(t, l, 0)
		if len(second) != len(first) {
			t.Fatalf("%d records, then %d", len(first), len(second))
		}
		for i := range first {
			if first[i].Offset != second[i].Offset || !bytes.Equal(first[i].Payload, second[i].Payload) {
				t.Fatalf("record %d changed", i)
			}
		}
	})
}
