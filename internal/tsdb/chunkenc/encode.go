package chunkenc

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Encode compresses one series into a new chunk. Timestamps must strictly
// increase; there must be 1 to MaxPoints points, one value per timestamp.
func Encode(ts []int64, vs []float64) ([]byte, error) {
	return AppendEncode(nil, ts, vs)
}

// AppendEncode is Encode appending the chunk to dst, so that a caller can
// reuse one buffer.
func AppendEncode(dst []byte, ts []int64, vs []float64) ([]byte, error) {
	n := len(ts)
	if n != len(vs) {
		return dst, fmt.Errorf("chunkenc: %d timestamps but %d values", n, len(vs))
	}
	if n < 1 || n > MaxPoints {
		return dst, fmt.Errorf("chunkenc: %d points, want 1 to %d", n, MaxPoints)
	}
	regular := true // every interval the same: the timestamps cost no bits
	for i := 1; i < n; i++ {
		if ts[i] <= ts[i-1] {
			return dst, fmt.Errorf("%w: index %d has %d after %d", ErrUnsorted, i, ts[i], ts[i-1])
		}
		regular = regular && ts[i]-ts[i-1] == ts[1]-ts[0]
	}
	var tp tsPlan
	if regular && n > 1 {
		first := uint64(ts[1] - ts[0])
		tp = tsPlan{mode: tsDOD, ref: first, code: codeAllZero, headerBytes: 2 + uvarintLen(first)}
	} else {
		tp = planTimestamps(ts)
	}
	vp := planValues(vs)

	size := 2 + uvarintLen(uint64(n)) + uvarintLen(zigzag(ts[0])) + tp.headerBytes + vp.headerBytes +
		(tp.bits+vp.bits+7)/8
	dst = grow(dst, size)

	dst = append(dst, Version, vp.mode)
	dst = binary.AppendUvarint(dst, uint64(n))
	dst = binary.AppendVarint(dst, ts[0])
	if n > 1 {
		dst = append(dst, tp.mode)
		dst = binary.AppendUvarint(dst, tp.ref)
		dst = append(dst, tp.code)
	}
	if vp.mode == ModeXOR {
		dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(vs[0]))
	} else {
		dst = append(dst, byte(vp.exp))
		dst = binary.AppendVarint(dst, vp.m0)
		if n > 1 {
			dst = binary.AppendVarint(dst, vp.ref)
			dst = append(dst, vp.code)
		}
	}
	if n == 1 {
		return dst, nil
	}

	// The writer lives in local variables (see emit) so that the loops keep
	// it in registers; put handles the rare codes longer than 64 bits.
	out, acc, nacc := dst, uint64(0), uint(0)
	tc, _ := newIntCode(tp.code)
	tsDODMode := tp.mode == tsDOD
	pred := tp.ref // predicted interval, as uint64 so that wrapping is defined
	if vp.mode == ModeXOR {
		x := xorState{prev: math.Float64bits(vs[0])}
		for i := 1; i < n; i++ {
			d := uint64(ts[i] - ts[i-1])
			if bits, nbits, ok := tc.code(int64(d - pred)); ok {
				out, acc, nacc = emit(out, acc, nacc, bits, nbits)
			} else {
				out, acc, nacc = putSlow(&tc, out, acc, nacc, int64(d-pred))
			}
			if tsDODMode {
				pred = d
			}
			switch ctrl, p := x.step(math.Float64bits(vs[i])); ctrl {
			case xorSame:
				out, acc, nacc = emit(out, acc, nacc, 0, 1)
			case xorReuse:
				out, acc, nacc = emit(out, acc, nacc, 0b10, 2)
				out, acc, nacc = emit(out, acc, nacc, p, x.sig)
			default:
				out, acc, nacc = emit(out, acc, nacc, 0b11<<11|uint64(x.lead)<<6|uint64(x.sig&63), 13)
				out, acc, nacc = emit(out, acc, nacc, p, x.sig)
			}
		}
	} else {
		vc, _ := newIntCode(vp.code)
		valDOD := vp.mode == ModeDecimalDOD
		scale := pow10[vp.exp]
		prevM, vpred := vp.m0, uint64(vp.ref)
		for i := 1; i < n; i++ {
			d := uint64(ts[i] - ts[i-1])
			if bits, nbits, ok := tc.code(int64(d - pred)); ok {
				out, acc, nacc = emit(out, acc, nacc, bits, nbits)
			} else {
				out, acc, nacc = putSlow(&tc, out, acc, nacc, int64(d-pred))
			}
			if tsDODMode {
				pred = d
			}
			m := int64(math.RoundToEven(vs[i] * scale)) // checked exact by planValues
			dm := uint64(m - prevM)
			if bits, nbits, ok := vc.code(int64(dm - vpred)); ok {
				out, acc, nacc = emit(out, acc, nacc, bits, nbits)
			} else {
				out, acc, nacc = putSlow(&vc, out, acc, nacc, int64(dm-vpred))
			}
			if valDOD {
				vpred = dm
			}
			prevM = m
		}
	}
	w := bitWriter{out: out, acc: acc, n: nacc}
	return w.finish(), nil
}

// putSlow writes a residual whose code is longer than 64 bits.
func putSlow(c *intCode, out []byte, acc uint64, n uint, v int64) ([]byte, uint64, uint) {
	w := bitWriter{out: out, acc: acc, n: n}
	c.put(&w, v)
	return w.out, w.acc, w.n
}

// tsPlan is the encoder's choice for the timestamps.
type tsPlan struct {
	mode        byte
	ref         uint64 // first interval (tsDOD) or reference interval (tsFixed)
	code        byte
	bits        int
	headerBytes int
}

// planTimestamps prices both timestamp modes and keeps the cheaper.
func planTimestamps(ts []int64) tsPlan {
	n := len(ts)
	if n < 2 {
		return tsPlan{}
	}
	first := uint64(ts[1] - ts[0])
	ref := typicalInterval(ts)
	hd, hf := histogram{}, histogram{}
	pred := first
	for i := 1; i < n; i++ {
		d := uint64(ts[i] - ts[i-1])
		hd.add(int64(d - pred))
		pred = d
		hf.add(int64(d - ref))
	}
	dodCode, dodBits := hd.best()
	fixCode, fixBits := hf.best()
	dod := tsPlan{mode: tsDOD, ref: first, code: dodCode, bits: dodBits, headerBytes: 2 + uvarintLen(first)}
	fix := tsPlan{mode: tsFixed, ref: ref, code: fixCode, bits: fixBits, headerBytes: 2 + uvarintLen(ref)}
	if 8*fix.headerBytes+fix.bits < 8*dod.headerBytes+dod.bits {
		return fix
	}
	return dod
}

// typicalInterval is the median of up to 31 intervals spread over the
// series: robust to a gap or two, cheap to find.
func typicalInterval(ts []int64) uint64 {
	const samples = 31
	var buf [samples]uint64
	gaps := len(ts) - 1
	s := buf[:min(gaps, samples)]
	for i := range s {
		j := 1 + i*gaps/len(s)
		s[i] = uint64(ts[j] - ts[j-1])
	}
	for i := 1; i < len(s); i++ { // insertion sort: at most 31 elements
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s[len(s)/2]
}

// valPlan is the encoder's choice for the values.
type valPlan struct {
	mode        byte
	exp         int   // decimal modes: digits after the point
	m0          int64 // decimal modes: first mantissa
	ref         int64 // decimal modes: reference delta (DELTA) or first delta (DOD)
	code        byte  // decimal modes
	bits        int
	headerBytes int
}

// planValues prices the decimal modes, when every value is a short
// decimal, and XOR, and keeps the cheapest.
func planValues(vs []float64) valPlan {
	best := valPlan{mode: ModeXOR, headerBytes: 8, bits: math.MaxInt / 2}
	if dec, ok := planDecimal(vs); ok {
		best = dec
	}
	if len(vs) == 1 {
		if best.mode == ModeXOR || best.headerBytes >= 8 {
			return valPlan{mode: ModeXOR, headerBytes: 8}
		}
		return best
	}
	// XOR rarely wins once decimals apply; stop pricing it when it has lost.
	if nbits, ok := xorCost(vs, 8*(best.headerBytes-8)+best.bits); ok {
		best = valPlan{mode: ModeXOR, headerBytes: 8, bits: nbits}
	}
	return best
}

// planDecimal prices the decimal modes, if every value is a decimal with at
// most maxExp digits after the point.
func planDecimal(vs []float64) (valPlan, bool) {
	e, ok := decimalExponent(vs[0], 0)
	if !ok {
		return valPlan{}, false
	}
	m0, _ := decimalMantissa(vs[0], e)
	if len(vs) == 1 {
		return valPlan{mode: ModeDecimalDelta, exp: e, m0: m0, headerBytes: 1 + varintLen(m0)}, true
	}
	// Two candidates: deltas less the typical delta (0 for a random walk,
	// the steady rate of a counter), and deltas of deltas.
	var hd, hdd histogram
	var bias, first int64 // reference delta for each mode
restart:
	hd, hdd = histogram{}, histogram{}
	if m0, ok = decimalMantissa(vs[0], e); !ok {
		return valPlan{}, false // only near the limits of float64 precision
	}
	bias = typicalDelta(vs, e)
	prevM, prevD, prevV := m0, int64(0), math.Float64bits(vs[0])
	for i, v := range vs[1:] {
		m, ok := prevM, true
		if math.Float64bits(v) != prevV { // a repeated value needs no division
			m, ok = decimalMantissa(v, e)
			prevV = math.Float64bits(v)
		}
		if !ok {
			// This value needs more digits: start over with them. A value
			// exact with e digits stays exact with more, as the division is
			// correctly rounded, so this happens at most maxExp times.
			if e, ok = decimalExponent(v, e+1); !ok {
				return valPlan{}, false
			}
			goto restart
		}
		d := m - prevM
		if i == 0 {
			first, prevD = d, d
		}
		hd.add(d - bias)
		hdd.add(d - prevD)
		prevM, prevD = m, d
	}
	var best valPlan
	best.bits = math.MaxInt / 2
	for _, c := range [...]struct {
		mode byte
		ref  int64
		h    *histogram
	}{{ModeDecimalDelta, bias, &hd}, {ModeDecimalDOD, first, &hdd}} {
		code, nbits := c.h.best()
		hdr := 2 + varintLen(m0) + varintLen(c.ref)
		if 8*hdr+nbits < 8*best.headerBytes+best.bits {
			best = valPlan{mode: c.mode, exp: e, m0: m0, ref: c.ref, code: code, bits: nbits, headerBytes: hdr}
		}
	}
	return best, true
}

// typicalDelta is the median of up to 31 mantissa deltas spread over the
// series, all of whose values are decimals with e digits.
// Values that are not exact with e digits give some delta; planDecimal
// finds them in its own pass.
func typicalDelta(vs []float64, e int) int64 {
	const samples = 31
	var buf [samples]int64
	gaps := len(vs) - 1
	s := buf[:min(gaps, samples)]
	for i := range s {
		j := 1 + i*gaps/len(s)
		a, _ := decimalMantissa(vs[j-1], e)
		b, _ := decimalMantissa(vs[j], e)
		s[i] = b - a
	}
	for i := 1; i < len(s); i++ { // insertion sort: at most 31 elements
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s[len(s)/2]
}

func varintLen(x int64) int { return uvarintLen(zigzag(x)) }

// grow returns s with room for n more elements, allocating at most once
// (slices.Grow allocates twice under the race detector).
func grow[E any](s []E, n int) []E {
	if cap(s)-len(s) >= n {
		return s
	}
	g := make([]E, len(s), len(s)+n)
	copy(g, s)
	return g
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}
