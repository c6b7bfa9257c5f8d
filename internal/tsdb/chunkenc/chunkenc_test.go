package chunkenc

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// roundTrip encodes, decodes both ways and fails unless the points come back
// bit for bit. It returns the chunk.
func roundTrip(t *testing.T, ts []int64, vs []float64) []byte {
	t.Helper()
	b, err := Encode(ts, vs)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	gotTS, gotVS, err := Decode(b)
	if err != nil {
		t.Fatalf("Decode: %v (mode %d, %d bytes)", err, b[1], len(b))
	}
	if len(gotTS) != len(ts) || len(gotVS) != len(vs) {
		t.Fatalf("Decode returned %d/%d points, want %d", len(gotTS), len(gotVS), len(ts))
	}
	for i := range ts {
		if gotTS[i] != ts[i] || math.Float64bits(gotVS[i]) != math.Float64bits(vs[i]) {
			t.Fatalf("point %d: got (%d, %v %#x), want (%d, %v %#x)", i,
				gotTS[i], gotVS[i], math.Float64bits(gotVS[i]), ts[i], vs[i], math.Float64bits(vs[i]))
		}
	}
	it, err := NewIterator(b)
	if err != nil {
		t.Fatalf("NewIterator: %v", err)
	}
	i := 0
	for it.Next() {
		gt, gv := it.At()
		if gt != ts[i] || math.Float64bits(gv) != math.Float64bits(vs[i]) {
			t.Fatalf("iterator point %d: got (%d, %v), want (%d, %v)", i, gt, gv, ts[i], vs[i])
		}
		i++
	}
	if it.Err() != nil || i != len(ts) {
		t.Fatalf("iterator stopped after %d of %d points: %v", i, len(ts), it.Err())
	}
	if n, err := Count(b); err != nil || n != len(ts) {
		t.Fatalf("Count = %d, %v; want %d", n, err, len(ts))
	}
	return b
}

func regular(n int, start, step int64) []int64 {
	ts := make([]int64, n)
	for i := range ts {
		ts[i] = start + int64(i)*step
	}
	return ts
}

func fill(n int, f func(i int) float64) []float64 {
	vs := make([]float64, n)
	for i := range vs {
		vs[i] = f(i)
	}
	return vs
}

func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(42, 42))
	nan1 := math.Float64frombits(0x7ff8_0000_0000_0001)
	snan := math.Float64frombits(0x7ff0_0000_0000_0001)
	negNaN := math.Float64frombits(0xfff8_dead_beef_0000)
	negZero := math.Copysign(0, -1)
	cases := []struct {
		name string
		ts   []int64
		vs   []float64
		mode int // expected value mode, or -1 for any
	}{
		{"single point", []int64{t0}, []float64{21.5}, -1},
		{"single point XOR", []int64{-5}, []float64{math.Pi}, ModeXOR},
		{"single NaN", []int64{0}, []float64{nan1}, ModeXOR},
		{"two points", []int64{t0, t0 + 1}, []float64{1, 2}, -1},
		{"constant", regular(240, t0, 10_000), fill(240, func(int) float64 { return 22.5 }), -1},
		{"constant zero", regular(240, t0, 10_000), fill(240, func(int) float64 { return 0 }), -1},
		{"constant pi", regular(240, t0, 10_000), fill(240, func(int) float64 { return math.Pi }), ModeXOR},
		{"integer counter", regular(240, t0, 60_000), fill(240, func(i int) float64 { return float64(1000 + 7*i) }), -1},
		{"counter with noise", regular(240, t0, 60_000), fill(240, func(i int) float64 { return float64(1000 + 7*i + i%3) }), -1},
		{"random walk 2 decimals", regular(240, t0, 10_000), func() []float64 {
			x := 0.0
			return fill(240, func(int) float64 { x += r.NormFloat64(); return math.Round(x*100) / 100 })
		}(), -1},
		{"jittery timestamps", func() []int64 {
			ts := regular(240, t0, 10_000)
			for i := range ts {
				ts[i] += r.Int64N(101) - 50
			}
			return ts
		}(), fill(240, func(i int) float64 { return float64(i % 5) }), -1},
		{"irregular timestamps", func() []int64 {
			ts := make([]int64, 500)
			t := int64(0)
			for i := range ts {
				t += 1 + r.Int64N(1<<uint(r.IntN(40)))
				ts[i] = t
			}
			return ts
		}(), fill(500, func(int) float64 { return r.Float64() }), ModeXOR},
		{"extreme timestamps", []int64{math.MinInt64, -1, 0, 1, math.MaxInt64 - 1, math.MaxInt64}, []float64{1, 2, 3, 4, 5, 6}, -1},
		{"negative values", regular(100, t0, 1000), fill(100, func(i int) float64 { return -40 + float64(i%7)*0.25 }), -1},
		{"negative zero", regular(4, 0, 1), []float64{0, negZero, 0, negZero}, ModeXOR},
		{"negative zero alone", []int64{0}, []float64{negZero}, ModeXOR},
		{"NaN payloads", regular(6, 0, 1), []float64{1, nan1, snan, negNaN, nan1, 2}, ModeXOR},
		{"infinities", regular(5, 0, 1), []float64{math.Inf(1), 1, math.Inf(-1), math.Inf(-1), 0}, ModeXOR},
		{"large and small exponents", regular(8, 0, 1), []float64{
			math.MaxFloat64, math.SmallestNonzeroFloat64, 1e300, -1e-300, 1e-10, 2.2250738585072014e-308, -math.MaxFloat64, 1,
		}, ModeXOR},
		{"nine decimals", regular(5, 0, 1), []float64{1e-9, 2e-9, 0.123456789, -0.000000001, 0}, -1},
		{"ten decimals", regular(3, 0, 1), []float64{1e-10, 2e-10, 3e-10}, ModeXOR},
		{"beyond 2^53", regular(3, 0, 1), []float64{1 << 60, 1<<60 + 256, 1 << 61}, ModeXOR},
		{"near 2^53", regular(3, 0, 1), []float64{1<<53 - 1, 1 << 53, -(1 << 53)}, -1},
		{"point one plus point two", regular(50, 0, 1000), fill(50, func(i int) float64 { return pointOne*float64(i) + pointTwo }), ModeXOR},
		{"0.1+0.2 constant", regular(50, 0, 1000), fill(50, func(int) float64 { return pointOne + pointTwo }), ModeXOR},
		{"mixed magnitudes", regular(6, 0, 1), []float64{1e15, -1e15, 0.5, 1e15, 0, 3}, -1},
		{"max count", regular(MaxPoints, 0, 1000), fill(MaxPoints, func(i int) float64 { return float64(i%1000) / 10 }), -1},
		{"max count XOR", regular(MaxPoints, 0, 1), fill(MaxPoints, func(int) float64 { return r.NormFloat64() }), ModeXOR},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := roundTrip(t, c.ts, c.vs)
			if c.mode >= 0 && int(b[1]) != c.mode {
				t.Errorf("value mode %d, want %d", b[1], c.mode)
			}
		})
	}
}

func TestShapesRoundTrip(t *testing.T) {
	for _, s := range append(shapes[:len(shapes):len(shapes)], extraShapes...) {
		for _, n := range []int{1, 2, 3, 240, 1000} {
			for seed := range uint64(5) {
				ts, vs := s.gen(n, seed)
				roundTrip(t, ts, vs)
			}
		}
	}
}

func TestModeSelection(t *testing.T) {
	cases := []struct {
		shape string
		modes []int
	}{
		{"sensor-walk", []int{ModeDecimalDelta}},
		{"temperature", []int{ModeDecimalDelta}},
		{"counter", []int{ModeDecimalDelta, ModeDecimalDOD}},
		{"constant", []int{ModeDecimalDelta, ModeDecimalDOD}},
		{"float-average", []int{ModeXOR}},
	}
	all := append(shapes[:len(shapes):len(shapes)], extraShapes...)
	for _, c := range cases {
		for _, s := range all {
			if s.name != c.shape {
				continue
			}
			ts, vs := s.gen(240, 1)
			b, err := Encode(ts, vs)
			if err != nil {
				t.Fatal(err)
			}
			ok := false
			for _, m := range c.modes {
				ok = ok || int(b[1]) == m
			}
			if !ok {
				t.Errorf("%s: value mode %d, want one of %v", c.shape, b[1], c.modes)
			}
		}
	}
}

// Variables, so that the sum is computed in float64 and not exactly by the
// compiler.
var pointOne, pointTwo = 0.1, 0.2

func TestDecimalExponent(t *testing.T) {
	cases := []struct {
		vs []float64
		e  int
		ok bool
	}{
		{[]float64{1, 2, 3}, 0, true},
		{[]float64{1.5, 2}, 1, true},
		{[]float64{21.37, 21.4, 21}, 2, true},
		{[]float64{0.001, 1.1}, 3, true},
		{[]float64{1, 1.5, 1.25, 1.125, 2}, 3, true},
		{[]float64{1, 2, 3, 1e-9}, 9, true},
		{[]float64{pointOne + pointTwo}, 0, false}, // 0.30000000000000004
		{[]float64{1, math.Copysign(0, -1)}, 0, false},
		{[]float64{math.NaN()}, 0, false},
		{[]float64{math.Inf(1)}, 0, false},
		{[]float64{1e-10}, 0, false},
		{[]float64{123456789.123456789}, 0, false},
	}
	for _, c := range cases {
		p, ok := planDecimal(c.vs)
		if ok != c.ok || (ok && p.exp != c.e) {
			t.Errorf("planDecimal(%v) = e %d, %v; want %d, %v", c.vs, p.exp, ok, c.e, c.ok)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	cases := []struct {
		name     string
		ts       []int64
		vs       []float64
		unsorted bool
	}{
		{"empty", nil, nil, false},
		{"length mismatch", []int64{1, 2}, []float64{1}, false},
		{"too many", regular(MaxPoints+1, 0, 1), make([]float64, MaxPoints+1), false},
		{"unsorted", []int64{1, 3, 2}, []float64{1, 2, 3}, true},
		{"duplicate", []int64{1, 2, 2}, []float64{1, 2, 3}, true},
		{"descending", []int64{3, 2, 1}, []float64{1, 2, 3}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := Encode(c.ts, c.vs)
			if err == nil {
				t.Fatalf("Encode succeeded with %d bytes", len(b))
			}
			if errors.Is(err, ErrUnsorted) != c.unsorted {
				t.Errorf("error %q: errors.Is(ErrUnsorted) = %v, want %v", err, !c.unsorted, c.unsorted)
			}
		})
	}
}

// corpus returns a variety of valid chunks.
func corpus(t testing.TB) [][]byte {
	var out [][]byte
	for _, s := range append(shapes[:len(shapes):len(shapes)], extraShapes...) {
		for _, n := range []int{1, 2, 17, 240} {
			ts, vs := s.gen(n, 3)
			b, err := Encode(ts, vs)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
	}
	return out
}

func TestDecodeTruncated(t *testing.T) {
	for _, b := range corpus(t) {
		for i := range len(b) {
			if _, _, err := Decode(b[:i]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Decode of %d of %d bytes (mode %d): err = %v, want ErrCorrupt", i, len(b), b[1], err)
			}
		}
	}
}

func TestDecodeTrailing(t *testing.T) {
	for _, b := range corpus(t) {
		long := append(b[:len(b):len(b)], 0)
		if _, _, err := Decode(long); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Decode with a trailing byte: err = %v, want ErrCorrupt", err)
		}
	}
}

func TestDecodeBitFlips(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for _, b := range corpus(t) {
		for range 200 {
			c := append([]byte(nil), b...)
			for range 1 + r.IntN(3) {
				c[r.IntN(len(c))] ^= 1 << r.IntN(8)
			}
			checkDecodeSane(t, c)
		}
	}
}

// checkDecodeSane decodes arbitrary bytes; whatever it returns must be
// consistent.
func checkDecodeSane(t *testing.T, b []byte) {
	t.Helper()
	ts, vs, err := Decode(b)
	n, cerr := Count(b)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Decode error %v does not wrap ErrCorrupt", err)
		}
		return
	}
	if cerr != nil || n != len(ts) || n != len(vs) {
		t.Fatalf("Decode gave %d/%d points, Count %d, %v", len(ts), len(vs), n, cerr)
	}
	for i := 1; i < len(ts); i++ {
		if ts[i] <= ts[i-1] {
			t.Fatalf("decoded timestamps not increasing at %d", i)
		}
	}
}

func TestDecodeHeaderErrors(t *testing.T) {
	good, err := Encode([]int64{1, 2, 3}, []float64{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"nil":            nil,
		"version":        append([]byte{2}, good[1:]...),
		"mode":           append([]byte{Version, 3}, good[2:]...),
		"count zero":     {Version, ModeXOR, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"count too big":  {Version, ModeXOR, 0x80, 0x80, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"count overlong": {Version, ModeXOR, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		// Streams that take no bits, with an interval of 0: timestamps repeat.
		"zero interval": {Version, ModeDecimalDelta, 3, 0, tsDOD, 0, codeAllZero, 0, 0, 0, codeAllZero},
		// 65535 XOR points need at least two bits each.
		"count vs bits": {Version, ModeXOR, 0xff, 0xff, 0x03, 0, 0, 2, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	}
	for name, b := range cases {
		if _, _, err := Decode(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Decode err = %v, want ErrCorrupt", name, err)
		}
	}
	if _, err := Count(nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Count(nil) err = %v", err)
	}
}

func TestAppendDecode(t *testing.T) {
	ts, vs := shapes[0].gen(50, 1)
	b, err := Encode(ts, vs)
	if err != nil {
		t.Fatal(err)
	}
	gt, gv, err := AppendDecode([]int64{-1}, []float64{-1}, b)
	if err != nil || len(gt) != 51 || len(gv) != 51 || gt[0] != -1 || gv[0] != -1 {
		t.Fatalf("AppendDecode after one point: %d/%d points, %v", len(gt), len(gv), err)
	}
	for i := range ts {
		if gt[i+1] != ts[i] || gv[i+1] != vs[i] {
			t.Fatalf("point %d differs", i)
		}
	}
	gt, gv, err = AppendDecode(gt[:1], gv[:1], b[:len(b)-1])
	if err == nil || len(gt) != 1 || len(gv) != 1 {
		t.Fatalf("AppendDecode of a truncated chunk: %d/%d points, %v", len(gt), len(gv), err)
	}
}

func TestStreamsWithoutBits(t *testing.T) {
	// Interval 1 and a steady step: the header says it all. m0 = -3 and the
	// reference delta 1 are zigzag varints 5 and 2.
	b := []byte{Version, ModeDecimalDelta, 3, 0, tsDOD, 1, codeAllZero, 0, 5, 2, codeAllZero}
	ts, vs, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 3 || ts[0] != 0 || ts[2] != 2 || vs[0] != -3 || vs[1] != -2 || vs[2] != -1 {
		t.Fatalf("got %v %v", ts, vs)
	}
	enc, err := Encode(ts, vs)
	if err != nil || string(enc) != string(b) {
		t.Fatalf("Encode gives %x, %v; want %x", enc, err, b)
	}
}

func TestIteratorReuse(t *testing.T) {
	var it Iterator
	for _, b := range corpus(t) {
		ts, vs, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := it.Reset(b); err != nil {
			t.Fatal(err)
		}
		i := 0
		for it.Next() {
			gt, gv := it.At()
			if gt != ts[i] || math.Float64bits(gv) != math.Float64bits(vs[i]) {
				t.Fatalf("point %d differs", i)
			}
			i++
		}
		if i != len(ts) || it.Err() != nil {
			t.Fatalf("%d of %d points: %v", i, len(ts), it.Err())
		}
		if it.Next() {
			t.Fatal("Next after the end returned true")
		}
	}
	if err := it.Reset([]byte{9}); err == nil || it.Next() || it.Err() == nil {
		t.Fatal("iterator over garbage did not fail")
	}
}

func TestIteratorAllocations(t *testing.T) {
	ts, vs := shapes[0].gen(240, 1)
	b, err := Encode(ts, vs)
	if err != nil {
		t.Fatal(err)
	}
	var it Iterator
	allocs := testing.AllocsPerRun(100, func() {
		_ = it.Reset(b)
		for it.Next() {
		}
	})
	if allocs != 0 {
		t.Errorf("iterating allocates %v times", allocs)
	}
	buf := make([]byte, 0, 4096)
	allocs = testing.AllocsPerRun(100, func() {
		buf, _ = AppendEncode(buf[:0], ts, vs)
	})
	if allocs != 0 {
		t.Errorf("AppendEncode into a large enough buffer allocates %v times", allocs)
	}
	gt, gv := make([]int64, 0, len(ts)), make([]float64, 0, len(vs))
	allocs = testing.AllocsPerRun(100, func() {
		gt, gv, _ = AppendDecode(gt[:0], gv[:0], b)
	})
	if allocs != 0 {
		t.Errorf("AppendDecode into large enough slices allocates %v times", allocs)
	}
}

func TestEncodeAllocatesOnce(t *testing.T) {
	// Encode sizes the chunk before writing it: one allocation, no growth.
	for _, s := range shapes {
		ts, vs := s.gen(240, 1)
		if allocs := testing.AllocsPerRun(20, func() { _, _ = Encode(ts, vs) }); allocs != 1 {
			t.Errorf("%s: Encode allocates %v times, want 1", s.name, allocs)
		}
	}
}

func TestBitStream(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	type field struct {
		v uint64
		n uint
	}
	var fields []field
	var w bitWriter
	for range 10_000 {
		n := uint(r.IntN(65))
		v := r.Uint64()
		if n < 64 {
			v &= 1<<n - 1
		}
		switch r.IntN(3) {
		case 0:
			w.writeBit(v&1 == 1)
			fields = append(fields, field{v & 1, 1})
		case 1:
			w.writeByte(byte(v))
			fields = append(fields, field{v & 0xff, 8})
		default:
			w.writeBits(v, n)
			fields = append(fields, field{v, n})
		}
	}
	b := w.finish()
	var rd bitReader
	rd.reset(b)
	for i, f := range fields {
		got, ok := rd.readBits(f.n)
		if !ok || got != f.v {
			t.Fatalf("field %d: read %#x, %v; want %#x (%d bits)", i, got, ok, f.v, f.n)
		}
	}
	if !rd.atCleanEnd() {
		t.Fatal("not at a clean end after reading everything")
	}
	if _, ok := rd.readBits(8); ok {
		t.Fatal("read past the end succeeded")
	}

	// Single bits, up to the end of the padding and no further.
	var w1 bitWriter
	pattern := []bool{true, false, true, true, false, false, true, false, true, true, true}
	for _, bit := range pattern {
		w1.writeBit(bit)
	}
	rd.reset(w1.finish())
	for i, want := range append(pattern, false, false, false, false, false) { // 11 bits + 5 of padding
		if got, ok := rd.readBit(); !ok || got != want {
			t.Fatalf("bit %d: %v, %v; want %v", i, got, ok, want)
		}
	}
	if _, ok := rd.readBit(); ok {
		t.Fatal("bit read past the end")
	}
}

func TestIntCode(t *testing.T) {
	values := []int64{0, 1, -1, 2, -2, 3, 7, -8, 100, -100, 1 << 20, -(1 << 30), 1 << 40, math.MaxInt64, math.MinInt64}
	for p := range 256 {
		c, err := newIntCode(byte(p))
		if err != nil {
			continue
		}
		var w bitWriter
		want := 0
		for _, v := range values {
			if c.allZero {
				v = 0
			}
			c.put(&w, v)
			want += c.cost(zigzag(v)) * b2i(!c.allZero)
		}
		b := w.finish()
		if got := (want + 7) / 8; len(b) != got {
			t.Fatalf("code %#x: %d bytes written, cost says %d", p, len(b), got)
		}
		var r bitReader
		r.reset(b)
		for _, v := range values {
			if c.allZero {
				v = 0
			}
			// The writers' shortcut must agree with put.
			if bits, nbits, ok := c.code(v); ok {
				var w1, w2 bitWriter
				c.put(&w1, v)
				w2.writeBits(bits, nbits)
				if a, b := w1.finish(), w2.finish(); string(a) != string(b) {
					t.Fatalf("code %#x, %d: put writes %x, code gives %x", p, v, a, b)
				}
			}
			got, ok := c.get(&r)
			if !ok || got != v {
				t.Fatalf("code %#x: read %d, %v; want %d", p, got, ok, v)
			}
		}
	}
}

func TestKeyCost(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for range 100_000 {
		z := r.Uint64() >> r.IntN(64)
		if r.IntN(10) == 0 {
			z = uint64(r.IntN(4))
		}
		k := r.IntN(maxK + 1)
		zero := r.IntN(2) == 0
		p := byte(k)
		if zero {
			p |= codeZeroBit
		}
		c, err := newIntCode(p)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := keyCost(key(z), k, zero), c.cost(z); got != want {
			t.Fatalf("z=%d k=%d zero=%v: keyCost %d, cost %d", z, k, zero, got, want)
		}
	}
}

func TestHistogramCostExact(t *testing.T) {
	// The histogram's price for its chosen code must equal the bits the
	// code really spends.
	r := rand.New(rand.NewPCG(3, 3))
	for range 500 {
		h := histogram{}
		vals := make([]int64, 1+r.IntN(300))
		scale := uint(r.IntN(50))
		for i := range vals {
			if r.IntN(4) > 0 {
				vals[i] = r.Int64N(1<<scale+1) - 1<<scale/2
			}
			h.add(vals[i])
		}
		p, nbits := h.best()
		c, err := newIntCode(p)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for _, v := range vals {
			if !c.allZero {
				got += c.cost(zigzag(v))
			}
		}
		if got != nbits {
			t.Fatalf("code %#x: histogram says %d bits, code spends %d", p, nbits, got)
		}
	}
}
