package chunkenc

import (
	"encoding/binary"
	"math"
	"math/bits"
	"testing"
)

// Sizes of the same series in the classic formats, computed here for
// comparison only: Prometheus's XOR chunk and the Gorilla paper's block.

// dodBucket is one class of a Gorilla-style delta-of-delta code.
type dodBucket struct {
	prefix int // bits
	width  int // bits; the value fits if -(2^(w-1)-1) ≤ dod ≤ 2^(w-1)
}

var (
	prometheusBuckets = []dodBucket{{2, 14}, {3, 17}, {4, 20}, {4, 64}}
	gorillaBuckets    = []dodBucket{{2, 7}, {3, 9}, {4, 12}, {4, 32}}
)

func dodCost(dod int64, table []dodBucket) int {
	if dod == 0 {
		return 1
	}
	for _, b := range table {
		if b.width == 64 || (-(int64(1)<<(b.width-1))+1 <= dod && dod <= int64(1)<<(b.width-1)) {
			return b.prefix + b.width
		}
	}
	return 64 + 4 // Gorilla's 32-bit bucket cannot hold it; count an escape
}

// classicXORBits is Gorilla's value code as Prometheus writes it: reuse the
// previous window whenever the bits fit.
func classicXORBits(vs []float64) int {
	total := 0
	prev := math.Float64bits(vs[0])
	lead, trail := uint(0xff), uint(0)
	for _, v := range vs[1:] {
		cur := math.Float64bits(v)
		d := cur ^ prev
		prev = cur
		if d == 0 {
			total++
			continue
		}
		l := min(uint(bits.LeadingZeros64(d)), 31)
		t := uint(bits.TrailingZeros64(d))
		if lead != 0xff && l >= lead && t >= trail {
			total += 2 + int(64-lead-trail)
			continue
		}
		lead, trail = l, t
		total += 2 + 5 + 6 + int(64-l-t)
	}
	return total
}

// prometheusBytes is the size of a Prometheus XOR chunk holding the series.
func prometheusBytes(ts []int64, vs []float64) int {
	nbits := 16 + 8*varintLen(ts[0]) + 64 // count, first timestamp, first value
	if len(ts) > 1 {
		d := ts[1] - ts[0]
		nbits += 8 * uvarintLen(uint64(d))
		for i := 2; i < len(ts); i++ {
			nbits += dodCost((ts[i]-ts[i-1])-(ts[i-1]-ts[i-2]), prometheusBuckets)
		}
		nbits += classicXORBits(vs)
	}
	return (nbits + 7) / 8
}

// gorillaBytes is the size of a Gorilla paper block holding the series: a
// 64-bit block start, the first timestamp as a 14-bit delta, the first value
// in 64 bits, then delta-of-delta timestamps and XOR values.
func gorillaBytes(ts []int64, vs []float64) int {
	nbits := 64 + 14 + 64
	if len(ts) > 1 {
		nbits += 14 // first delta
		for i := 2; i < len(ts); i++ {
			nbits += dodCost((ts[i]-ts[i-1])-(ts[i-1]-ts[i-2]), gorillaBuckets)
		}
		nbits += classicXORBits(vs)
	}
	return (nbits + 7) / 8
}

// refEncode writes a series in the Prometheus XOR chunk layout: a 2-byte
// count, the first timestamp as a varint and value in 64 bits, the second
// timestamp's delta as a uvarint, then delta-of-delta buckets of 14, 17 and
// 20 bits or 64, and Gorilla XOR values. It is here as a baseline to time
// against, built on this package's bit writer.
func refEncode(ts []int64, vs []float64) []byte {
	w := bitWriter{out: make([]byte, 0, 16+2*len(ts))}
	w.out = append(w.out, byte(len(ts)>>8), byte(len(ts)))
	w.out = binary.AppendVarint(w.out, ts[0])
	w.out = binary.BigEndian.AppendUint64(w.out, math.Float64bits(vs[0]))
	if len(ts) > 1 {
		w.out = binary.AppendUvarint(w.out, uint64(ts[1]-ts[0]))
	}
	prev := math.Float64bits(vs[0])
	lead, trail := uint(0xff), uint(0)
	for i := 1; i < len(ts); i++ {
		if i > 1 {
			dod := (ts[i] - ts[i-1]) - (ts[i-1] - ts[i-2])
			switch {
			case dod == 0:
				w.writeBits(0, 1)
			case -(1<<13)+1 <= dod && dod <= 1<<13:
				w.writeBits(0b10, 2)
				w.writeBits(uint64(dod)&(1<<14-1), 14)
			case -(1<<16)+1 <= dod && dod <= 1<<16:
				w.writeBits(0b110, 3)
				w.writeBits(uint64(dod)&(1<<17-1), 17)
			case -(1<<19)+1 <= dod && dod <= 1<<19:
				w.writeBits(0b1110, 4)
				w.writeBits(uint64(dod)&(1<<20-1), 20)
			default:
				w.writeBits(0b1111, 4)
				w.writeBits(uint64(dod), 64)
			}
		}
		cur := math.Float64bits(vs[i])
		d := cur ^ prev
		prev = cur
		if d == 0 {
			w.writeBits(0, 1)
			continue
		}
		l := min(uint(bits.LeadingZeros64(d)), 31)
		t := uint(bits.TrailingZeros64(d))
		if lead != 0xff && l >= lead && t >= trail {
			w.writeBits(0b10, 2)
			w.writeBits(d>>trail, 64-lead-trail)
			continue
		}
		lead, trail = l, t
		sig := 64 - l - t
		w.writeBits(0b11<<11|uint64(l)<<6|uint64(sig&63), 13)
		w.writeBits(d>>t, sig)
	}
	return w.finish()
}

// refDecode reads what refEncode writes into ts and vs.
func refDecode(b []byte, ts []int64, vs []float64) bool {
	n := int(b[0])<<8 | int(b[1])
	t, k := binary.Varint(b[2:])
	b = b[2+k:]
	prev := binary.BigEndian.Uint64(b)
	b = b[8:]
	ts[0], vs[0] = t, math.Float64frombits(prev)
	if n == 1 {
		return true
	}
	delta, k := binary.Uvarint(b)
	var r bitReader
	r.reset(b[k:])
	lead, sig := uint(0), uint(0)
	for i := 1; i < n; i++ {
		if i > 1 {
			var nb uint
			switch r.leadingOnes(4) {
			case 0:
				r.skip(1)
			case 1:
				r.skip(2)
				nb = 14
			case 2:
				r.skip(3)
				nb = 17
			case 3:
				r.skip(4)
				nb = 20
			default:
				r.skip(4)
				nb = 64
			}
			if nb > 0 {
				v, ok := r.readBits(nb)
				if !ok {
					return false
				}
				delta += uint64(int64(v<<(64-nb)) >> (64 - nb))
			}
		}
		t += int64(delta)
		switch r.leadingOnes(2) {
		case 0:
			r.skip(1)
		case 1:
			r.skip(2)
			p, ok := r.readBits(sig)
			if !ok {
				return false
			}
			prev ^= p << (64 - lead - sig)
		default:
			r.skip(2)
			h, _ := r.readBits(11)
			lead, sig = uint(h>>6), uint(h&63)
			if sig == 0 {
				sig = 64
			}
			p, ok := r.readBits(sig)
			if !ok {
				return false
			}
			prev ^= p << (64 - lead - sig)
		}
		ts[i], vs[i] = t, math.Float64frombits(prev)
	}
	return true
}

func TestReferenceCodec(t *testing.T) {
	for _, s := range append(shapes[:len(shapes):len(shapes)], extraShapes...) {
		ts, vs := s.gen(1000, 1)
		b := refEncode(ts, vs)
		if len(b) != prometheusBytes(ts, vs) {
			t.Errorf("%s: reference chunk is %d bytes, size model says %d", s.name, len(b), prometheusBytes(ts, vs))
		}
		gt, gv := make([]int64, len(ts)), make([]float64, len(vs))
		if !refDecode(b, gt, gv) {
			t.Fatalf("%s: reference decode failed", s.name)
		}
		for i := range ts {
			if gt[i] != ts[i] || math.Float64bits(gv[i]) != math.Float64bits(vs[i]) {
				t.Fatalf("%s: reference point %d differs", s.name, i)
			}
		}
	}
}
