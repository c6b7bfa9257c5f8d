package chunkenc

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the decoders. They must not panic or
// hang; when Decode succeeds its points must agree with Count and the
// Iterator, and its timestamps must increase.
func FuzzDecode(f *testing.F) {
	for _, b := range corpus(f) {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{Version, ModeXOR, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{Version, ModeDecimalDOD, 0xff, 0xff, 0x03, 0, 0, 0, 0xff, 0, 0, 0, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecodeSane(t, b)
		ts, vs, err := Decode(b)
		it, ierr := NewIterator(b)
		if ierr != nil {
			if err == nil {
				t.Fatalf("NewIterator failed (%v) where Decode succeeded", ierr)
			}
			return
		}
		i := 0
		for it.Next() {
			gt, gv := it.At()
			if err == nil && (gt != ts[i] || math.Float64bits(gv) != math.Float64bits(vs[i])) {
				t.Fatalf("iterator point %d differs from Decode", i)
			}
			i++
		}
		if (it.Err() == nil) != (err == nil) {
			t.Fatalf("iterator error %v, Decode error %v", it.Err(), err)
		}
		if err == nil && i != len(ts) {
			t.Fatalf("iterator gave %d points, Decode %d", i, len(ts))
		}
		if it.Err() != nil && !errors.Is(it.Err(), ErrCorrupt) {
			t.Fatalf("iterator error %v does not wrap ErrCorrupt", it.Err())
		}
	})
}

// FuzzRoundTrip builds a series from the fuzz input, encodes it and checks
// that it decodes to the same points, bit for bit.
func FuzzRoundTrip(f *testing.F) {
	f.Add(int64(t0), []byte{1, 10, 3, 20, 5, 30, 7, 40})
	f.Add(int64(0), []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17})
	f.Add(int64(math.MinInt64), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add(int64(-1), []byte{0x12, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1, 0x80, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, start int64, data []byte) {
		ts, vs := seriesFromBytes(start, data)
		if len(ts) == 0 {
			return
		}
		roundTrip(t, ts, vs)
	})
}

// seriesFromBytes turns fuzz input into a valid series. Each point reads an
// op byte: bit 0 picks a small or large interval, bits 1-2 how the value is
// made (raw float64 bits, a short decimal, a repeat, a small step), bits 3-6
// a decimal exponent.
func seriesFromBytes(start int64, data []byte) ([]int64, []float64) {
	var ts []int64
	var vs []float64
	next := func(n int) uint64 {
		var buf [8]byte
		k := copy(buf[8-n:], data)
		data = data[k:]
		return binary.BigEndian.Uint64(buf[:])
	}
	t := start
	v := 0.0
	for len(data) > 0 && len(ts) < MaxPoints {
		op := next(1)
		if len(ts) > 0 {
			step := 1 + next(1)
			if op&1 != 0 {
				step = 1 + next(4)<<uint(next(1)%40)
			}
			if t > math.MaxInt64-int64(step) || int64(step) <= 0 {
				break
			}
			t += int64(step)
		}
		e := int(op >> 3 % 10)
		switch op >> 1 & 3 {
		case 0:
			v = math.Float64frombits(next(8))
		case 1:
			v = float64(int64(next(4))-1<<31) / pow10[e]
		case 2: // repeat
		case 3:
			v += float64(int8(next(1))) / pow10[e]
		}
		ts = append(ts, t)
		vs = append(vs, v)
	}
	return ts, vs
}
