package chunkenc

import (
	"encoding/binary"
	"math/bits"
)

// bitWriter appends bits, most significant first, to a byte slice. Bits
// gather in a 64-bit accumulator and reach the slice eight bytes at a time,
// so writing costs no allocation once the slice has room.
type bitWriter struct {
	out []byte
	acc uint64 // pending bits, left-aligned
	n   uint   // number of pending bits, always < 64
}

// writeBits appends the low nbits of v (nbits ≤ 64). Bits of v above nbits
// must be zero.
func (w *bitWriter) writeBits(v uint64, nbits uint) {
	w.out, w.acc, w.n = emit(w.out, w.acc, w.n, v, nbits)
}

// emit is writeBits for a writer held in local variables, which the
// compiler can keep in registers: it appends the low nbits (≤ 64) of v to
// the accumulator acc holding n bits, flushing full words to out.
func emit(out []byte, acc uint64, n uint, v uint64, nbits uint) ([]byte, uint64, uint) {
	free := 64 - n
	if nbits < free {
		return out, acc | v<<(free-nbits), n + nbits
	}
	rest := nbits - free
	// A shift by 64 gives 0 in Go, so rest == 0 leaves an empty accumulator.
	return binary.BigEndian.AppendUint64(out, acc|v>>rest), v << (64 - rest), rest
}

// writeBit appends one bit.
func (w *bitWriter) writeBit(bit bool) {
	var v uint64
	if bit {
		v = 1
	}
	w.writeBits(v, 1)
}

// writeByte appends eight bits.
func (w *bitWriter) writeByte(b byte) { w.writeBits(uint64(b), 8) }

// finish flushes the pending bits, zero-padded to a whole byte, and returns
// the slice.
func (w *bitWriter) finish() []byte {
	for w.n > 0 {
		w.out = append(w.out, byte(w.acc>>56))
		w.acc <<= 8
		w.n -= min(w.n, 8)
	}
	return w.out
}

// bitReader reads bits, most significant first, from a byte slice. Reads
// past the end report failure instead of panicking.
type bitReader struct {
	b   []byte
	pos int    // next byte of b not yet counted in n
	acc uint64 // unread bits, left-aligned; bits past n are zero or equal to the stream's
	n   uint   // number of valid bits in acc
}

func (r *bitReader) reset(b []byte) { *r = bitReader{b: b} }

// refill tops acc up to at least 57 valid bits, or to the end of the input.
func (r *bitReader) refill() { r.pos, r.acc, r.n = refill(r.b, r.pos, r.acc, r.n) }

// refill is the reader's refill for state held in local variables: it tops
// acc, holding nb valid bits, up to at least 57 from b at pos, or to the end
// of b. A whole 8-byte load puts more bits into acc than it counts in nb;
// they are the stream's next bits, so loading them again later is harmless.
func refill(b []byte, pos int, acc uint64, nb uint) (int, uint64, uint) {
	if pos+8 <= len(b) {
		acc |= binary.BigEndian.Uint64(b[pos:]) >> nb
		k := (64 - nb) >> 3
		return pos + int(k), acc, nb + k<<3
	}
	for nb <= 56 && pos < len(b) {
		acc |= uint64(b[pos]) << (56 - nb)
		pos++
		nb += 8
	}
	return pos, acc, nb
}

// bitsLeft reports how many unread bits remain.
func (r *bitReader) bitsLeft() int { return int(r.n) + 8*(len(r.b)-r.pos) }

// readBits reads nbits (≤ 64) bits as the low bits of the result.
func (r *bitReader) readBits(nbits uint) (uint64, bool) {
	if nbits > 56 {
		hi, ok1 := r.readBits(nbits - 32)
		lo, ok2 := r.readBits(32)
		return hi<<32 | lo, ok1 && ok2
	}
	if r.n < nbits {
		r.refill()
		if r.n < nbits {
			return 0, false
		}
	}
	v := r.acc >> (64 - nbits) // a shift by 64 gives 0, so nbits == 0 reads nothing
	r.acc <<= nbits
	r.n -= nbits
	return v, true
}

// readBit reads one bit.
func (r *bitReader) readBit() (bool, bool) {
	if r.n == 0 {
		r.refill()
		if r.n == 0 {
			return false, false
		}
	}
	bit := r.acc>>63 != 0
	r.acc <<= 1
	r.n--
	return bit, true
}

// leadingOnes counts the run of 1 bits at the read position, at most limit,
// without consuming them. It may look past the end of the input, where the
// bits read as 0; callers then fail on the read that follows.
func (r *bitReader) leadingOnes(limit int) int {
	if r.n < 57 {
		r.refill()
	}
	return min(bits.LeadingZeros64(^r.acc), limit)
}

// skip consumes nbits bits that leadingOnes has already seen.
func (r *bitReader) skip(nbits uint) bool {
	if nbits > r.n {
		return false
	}
	r.acc <<= nbits
	r.n -= nbits
	return true
}

// atCleanEnd reports whether every byte has been read and the unread bits
// are fewer than eight and all zero: the padding of the last byte.
func (r *bitReader) atCleanEnd() bool {
	return r.pos == len(r.b) && r.n < 8 && r.acc == 0
}
