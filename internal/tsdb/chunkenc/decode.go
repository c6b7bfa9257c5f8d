package chunkenc

import (
	"encoding/binary"
	"fmt"
	"math"
)

// decoder holds the state of a chunk being read. Its fill method is the one
// decoding loop, used by Decode for the whole chunk and by Iterator in
// batches.
type decoder struct {
	r     bitReader
	n     int // points in the chunk
	left  int // points not yet decoded
	t     int64
	v0    float64 // the first value, from the header
	tsDOD bool
	pred  uint64 // predicted interval
	tc    intCode

	mode   byte
	xor    xorState
	vc     intCode
	valDOD bool
	div    float64
	m      int64
	v      float64 // float64(m) / div
	vpred  uint64  // predicted mantissa delta
}

// header holds what the fixed part of a chunk says.
type header struct {
	mode byte
	n    int
	rest []byte // bytes after the count
}

func parseHeader(b []byte) (header, error) {
	if len(b) < 3 {
		return header{}, fmt.Errorf("%w: %d bytes, shorter than any header", ErrCorrupt, len(b))
	}
	if b[0] != Version {
		return header{}, fmt.Errorf("%w: format version %d, want %d", ErrCorrupt, b[0], Version)
	}
	mode := b[1]
	if mode > ModeDecimalDOD {
		return header{}, fmt.Errorf("%w: value mode %d", ErrCorrupt, mode)
	}
	n, k := binary.Uvarint(b[2:])
	if k <= 0 || n < 1 || n > MaxPoints {
		return header{}, fmt.Errorf("%w: bad point count", ErrCorrupt)
	}
	return header{mode: mode, n: int(n), rest: b[2+k:]}, nil
}

// Count returns the number of points in a chunk, reading only its header.
func Count(b []byte) (int, error) {
	h, err := parseHeader(b)
	return h.n, err
}

// reset reads the header of chunk b.
func (d *decoder) reset(b []byte) error {
	*d = decoder{}
	h, err := parseHeader(b)
	if err != nil {
		return err
	}
	d.n, d.left, d.mode = h.n, h.n, h.mode
	rest := h.rest

	t0, k := binary.Varint(rest)
	if k <= 0 {
		return fmt.Errorf("%w: bad first timestamp", ErrCorrupt)
	}
	d.t, rest = t0, rest[k:]
	tsMin := 0
	if d.n > 1 {
		if len(rest) < 1 || rest[0] > tsFixed {
			return fmt.Errorf("%w: bad timestamp mode", ErrCorrupt)
		}
		d.tsDOD = rest[0] == tsDOD
		ref, k := binary.Uvarint(rest[1:])
		if k <= 0 || len(rest) < 2+k {
			return fmt.Errorf("%w: bad reference interval", ErrCorrupt)
		}
		d.pred = ref
		if d.tc, err = newIntCode(rest[1+k]); err != nil {
			return err
		}
		rest = rest[2+k:]
		tsMin = d.tc.minBits()
	}

	valMin := 0
	if d.mode == ModeXOR {
		if len(rest) < 8 {
			return fmt.Errorf("%w: missing first value", ErrCorrupt)
		}
		d.xor.prev = binary.BigEndian.Uint64(rest)
		d.v0 = math.Float64frombits(d.xor.prev)
		rest = rest[8:]
		valMin = 1
	} else {
		if len(rest) < 1 || rest[0] > maxExp {
			return fmt.Errorf("%w: bad decimal exponent", ErrCorrupt)
		}
		d.div = pow10[rest[0]]
		m0, k := binary.Varint(rest[1:])
		if k <= 0 {
			return fmt.Errorf("%w: bad first mantissa", ErrCorrupt)
		}
		d.m = m0
		d.v0 = float64(m0) / d.div
		d.v = d.v0
		rest = rest[1+k:]
		d.valDOD = d.mode == ModeDecimalDOD
		if d.n > 1 {
			ref, k := binary.Varint(rest)
			if k <= 0 || len(rest) < k+1 {
				return fmt.Errorf("%w: bad reference delta", ErrCorrupt)
			}
			d.vpred = uint64(ref)
			if d.vc, err = newIntCode(rest[k]); err != nil {
				return err
			}
			rest = rest[k+1:]
			valMin = d.vc.minBits()
		}
	}
	d.r.reset(rest)
	// Every point after the first takes at least this many bits; a count
	// the bits cannot hold is a lie, and callers size buffers by it.
	if need := (d.n - 1) * (tsMin + valMin); need > d.r.bitsLeft() {
		return fmt.Errorf("%w: %d points need at least %d bits, %d left", ErrCorrupt, d.n, need, d.r.bitsLeft())
	}
	return nil
}

// fill decodes the next points into ts and vs, as many as both hold or as
// remain, and returns how many it decoded. After the last point it checks
// that nothing but padding follows.
func (d *decoder) fill(ts []int64, vs []float64) (int, error) {
	k := min(len(ts), len(vs), d.left)
	ts, vs = ts[:k], vs[:k]
	i := 0
	if k > 0 && d.left == d.n {
		ts[0], vs[0] = d.t, d.v0
		i = 1
	}
	var err error
	if d.mode == ModeXOR {
		i, err = d.decodeXOR(ts, vs, i)
	} else {
		i, err = d.decodeDecimal(ts, vs, i)
	}
	if err != nil {
		err = fmt.Errorf("point %d: %w", d.n-d.left+i, err)
	}
	d.left -= i
	if err == nil && d.left == 0 && !d.r.atCleanEnd() {
		err = fmt.Errorf("%w: data after the last point", ErrCorrupt)
	}
	return i, err
}

// The decoding loops keep the bit reader's state in local variables, which
// the compiler holds in registers, and writes it back only around the rare
// slow paths: escape codes and the last few bytes.

// peekCode decodes one residual of code c from the left-aligned bits acc
// and returns it with the number of bits it took. The caller checks that
// so many bits were valid.
func peekCode(c *intCode, acc uint64) (int64, uint) {
	j := leadingOnes15(acc)
	pl, w := uint(c.plen[j]), uint(c.width[j])
	p := acc << pl >> (64 - w) // w == 0 shifts by 64: p = 0
	return unzigzag(c.base[j] + p), pl + w
}

// slowCode reads one residual through the general reader: for escape codes
// and near the end of the input.
func (d *decoder) slowCode(c *intCode, pos int, acc uint64, nb uint) (int64, int, uint64, uint, error) {
	d.r.pos, d.r.acc, d.r.n = pos, acc, nb
	res, ok := c.get(&d.r)
	if !ok {
		return 0, pos, acc, nb, errTruncated
	}
	return res, d.r.pos, d.r.acc, d.r.n, nil
}

func errNotAfter(t, prev int64) error {
	return fmt.Errorf("%w: timestamp %d not after %d", ErrCorrupt, t, prev)
}

// decodeDecimal is the decoding loop of the decimal modes.
func (d *decoder) decodeDecimal(ts []int64, vs []float64, i int) (int, error) {
	b, pos, acc, nb := d.r.b, d.r.pos, d.r.acc, d.r.n
	t, pred, tsDOD := d.t, d.pred, d.tsDOD
	div, m, v, vpred, valDOD := d.div, d.m, d.v, d.vpred, d.valDOD
	var err error
	if d.tc.allZero && d.vc.allZero {
		// No bits at all: fixed intervals, and a constant or a steady
		// counter. The predictions are the answers.
		for ; i < len(ts) && i < len(vs); i++ {
			next := int64(uint64(t) + pred)
			if next <= t {
				err = errNotAfter(next, t)
				break
			}
			t = next
			if vpred != 0 {
				m += int64(vpred)
				v = float64(m) / div
			}
			ts[i], vs[i] = t, v
		}
	}
	for ; i < len(ts) && i < len(vs) && err == nil; i++ {
		if nb < 57 {
			pos, acc, nb = refill(b, pos, acc, nb)
		}
		res, used := peekCode(&d.tc, acc)
		if used <= nb {
			acc <<= used // used == 64 leaves 0
			nb -= used
		} else if res, pos, acc, nb, err = d.slowCode(&d.tc, pos, acc, nb); err != nil {
			break
		}
		delta := pred + uint64(res)
		if tsDOD {
			pred = delta
		}
		next := int64(uint64(t) + delta)
		if next <= t {
			err = errNotAfter(next, t)
			break
		}
		t = next

		if nb < 57 {
			pos, acc, nb = refill(b, pos, acc, nb)
		}
		res, used = peekCode(&d.vc, acc)
		if used <= nb {
			acc <<= used
			nb -= used
		} else if res, pos, acc, nb, err = d.slowCode(&d.vc, pos, acc, nb); err != nil {
			break
		}
		dm := vpred + uint64(res)
		if valDOD {
			vpred = dm
		}
		if dm != 0 { // an unchanged mantissa needs no division
			m += int64(dm)
			v = float64(m) / div
		}
		ts[i], vs[i] = t, v
	}
	d.r.pos, d.r.acc, d.r.n = pos, acc, nb
	d.t, d.pred, d.m, d.v, d.vpred = t, pred, m, v, vpred
	return i, err
}

// decodeXOR is the decoding loop of XOR mode.
func (d *decoder) decodeXOR(ts []int64, vs []float64, i int) (int, error) {
	b, pos, acc, nb := d.r.b, d.r.pos, d.r.acc, d.r.n
	t, pred, tsDOD := d.t, d.pred, d.tsDOD
	prev, lead, sig := d.xor.prev, d.xor.lead, d.xor.sig
	var err error
	for ; i < len(ts) && i < len(vs); i++ {
		if nb < 57 {
			pos, acc, nb = refill(b, pos, acc, nb)
		}
		res, used := peekCode(&d.tc, acc)
		if used <= nb {
			acc <<= used // used == 64 leaves 0
			nb -= used
		} else if res, pos, acc, nb, err = d.slowCode(&d.tc, pos, acc, nb); err != nil {
			break
		}
		delta := pred + uint64(res)
		if tsDOD {
			pred = delta
		}
		next := int64(uint64(t) + delta)
		if next <= t {
			err = errNotAfter(next, t)
			break
		}
		t = next
		ts[i] = t

		if nb < 57 {
			pos, acc, nb = refill(b, pos, acc, nb)
		}
		switch {
		case nb == 0:
			err = errTruncated
		case acc>>63 == 0: // '0': same value
			acc <<= 1
			nb--
			vs[i] = math.Float64frombits(prev)
			continue
		case nb < 2:
			err = errTruncated
		case acc>>62 == 0b11: // '11': a new window, then the bits
			if nb < 13 {
				err = errTruncated
				break
			}
			lead, sig = uint(acc>>57&31), uint(acc>>51&63)
			if sig == 0 {
				sig = 64
			}
			acc <<= 13
			nb -= 13
			if lead+sig > 64 {
				err = fmt.Errorf("%w: XOR window of %d bits after %d leading zeros", ErrCorrupt, sig, lead)
			} else if nb < 57 {
				pos, acc, nb = refill(b, pos, acc, nb)
			}
		default: // '10': the bits, in the current window
			if sig == 0 {
				err = fmt.Errorf("%w: XOR window reused before one was set", ErrCorrupt)
			}
			acc <<= 2
			nb -= 2
		}
		if err != nil {
			break
		}
		var p uint64
		if sig <= nb {
			p = acc >> (64 - sig)
			acc <<= sig // sig == 64 leaves 0
			nb -= sig
		} else {
			var ok bool
			d.r.pos, d.r.acc, d.r.n = pos, acc, nb
			if p, ok = d.r.readBits(sig); !ok {
				err = errTruncated
				break
			}
			pos, acc, nb = d.r.pos, d.r.acc, d.r.n
		}
		prev ^= p << (64 - lead - sig)
		vs[i] = math.Float64frombits(prev)
	}
	d.r.pos, d.r.acc, d.r.n = pos, acc, nb
	d.t, d.pred = t, pred
	d.xor = xorState{prev: prev, lead: lead, sig: sig}
	return i, err
}

// Decode returns all points of a chunk.
func Decode(b []byte) (ts []int64, vs []float64, err error) {
	return AppendDecode(nil, nil, b)
}

// AppendDecode is Decode appending the points to ts and vs, so that a caller
// can reuse them. On error it returns ts and vs as they were.
func AppendDecode(ts []int64, vs []float64, b []byte) ([]int64, []float64, error) {
	var d decoder
	if err := d.reset(b); err != nil {
		return ts, vs, err
	}
	t0, v0 := len(ts), len(vs)
	ts, vs = grow(ts, d.n)[:t0+d.n], grow(vs, d.n)[:v0+d.n]
	if _, err := d.fill(ts[t0:], vs[v0:]); err != nil {
		return ts[:t0], vs[:v0], err
	}
	return ts, vs, nil
}

// batch is how many points an Iterator decodes at a time.
const batch = 64

// Iterator walks the points of a chunk. It decodes them in small batches
// and allocates nothing after NewIterator; Reset reuses it for another
// chunk.
type Iterator struct {
	d       decoder
	i, k    int   // next point in the batch, points in the batch
	pending error // error met after the points of the batch
	err     error
	ts      [batch]int64
	vs      [batch]float64
}

// NewIterator checks the chunk's header and returns an iterator positioned
// before its first point.
func NewIterator(b []byte) (*Iterator, error) {
	it := new(Iterator)
	if err := it.Reset(b); err != nil {
		return nil, err
	}
	return it, nil
}

// Reset points the iterator at another chunk, as NewIterator does.
func (it *Iterator) Reset(b []byte) error {
	it.i, it.k, it.pending, it.err = 0, 0, nil, nil
	if err := it.d.reset(b); err != nil {
		it.d.left, it.err = 0, err
		return err
	}
	return nil
}

// Next advances to the next point and reports whether there is one.
func (it *Iterator) Next() bool {
	it.i++
	if it.i < it.k {
		return true
	}
	if it.err != nil {
		return false
	}
	if it.pending != nil {
		it.err = it.pending
		return false
	}
	if it.d.left == 0 {
		it.i = it.k
		return false
	}
	it.k, it.pending = it.d.fill(it.ts[:], it.vs[:])
	it.i = 0
	if it.k == 0 {
		it.err = it.pending
		return false
	}
	return true
}

// At returns the current point.
func (it *Iterator) At() (int64, float64) {
	i := min(max(it.i, 0), batch-1)
	return it.ts[i], it.vs[i]
}

// Err returns the error that stopped the iteration, if any.
func (it *Iterator) Err() error { return it.err }
