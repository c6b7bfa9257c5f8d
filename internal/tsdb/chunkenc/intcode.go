package chunkenc

import (
	"fmt"
	"math/bits"
)

// The integer code writes the residuals of timestamps and of decimal
// mantissas. It is a prefix code over classes chosen per chunk by a scale k
// and an optional zero class; doc.go gives the layout.

const (
	maxK        = 40   // largest scale the code byte may carry
	codeAllZero = 0xFF // code byte: every residual is 0, no bits are written
	codeZeroBit = 0x40 // code byte flag: a '0' class for the residual 0
	numClasses  = 9    // classes of the plain table, the escape included
	escapeClass = numClasses - 1
)

// intCode is one parameterisation of the integer code, ready for writing and
// reading.
type intCode struct {
	allZero bool
	zero    bool // table starts with the one-bit class for 0
	k       uint
	// Per class, in table order (the zero class first when present). A
	// reader indexes them by the run of leading ones, capped at 15: every
	// entry from the escape class on is the escape class.
	plen   [16]uint8  // prefix length in bits
	width  [16]uint8  // payload width in bits
	prefix [16]uint64 // prefix bits, right-aligned
	base   [16]uint64 // zigzag value of payload 0
	// For writers: the code of zigzag values z with z>>k = q < 16 is
	// small[q].hi | (z - small[q].base) in small[q].nbits bits; small[16]
	// is the code of 0.
	small [32]smallCode
}

// smallCode is the start of a class's code as a writer needs it.
type smallCode struct {
	hi, base uint64
	nbits    uint8
}

// newIntCode builds the tables for a code byte, rejecting invalid ones.
func newIntCode(param byte) (intCode, error) {
	var c intCode
	if param == codeAllZero {
		c.allZero = true // all entries zero: no bits, residual 0
		return c, nil
	}
	if param&0x80 != 0 || uint(param&0x3F) > maxK {
		return c, fmt.Errorf("%w: bad integer code byte %#x", ErrCorrupt, param)
	}
	c.k = uint(param & 0x3F)
	c.zero = param&codeZeroBit != 0
	k := c.k
	widths := [numClasses]uint{k, k, k, k, k + 2, k + 3, k + 8, k + 16, 64}
	bases := [numClasses]uint64{0, 1 << k, 2 << k, 3 << k, 4 << k, 8 << k, 0, 0, 0}
	i := 0
	if c.zero {
		c.plen[0], c.width[0], c.prefix[0], c.base[0] = 1, 0, 0, 0
		i = 1
	}
	for cls := range numClasses {
		j := i + cls
		ones := uint(j) // class j of the table starts with j ones
		if cls == escapeClass {
			c.plen[j] = uint8(ones)
			c.prefix[j] = 1<<ones - 1
		} else {
			c.plen[j] = uint8(ones + 1)
			c.prefix[j] = (1<<ones - 1) << 1
		}
		c.width[j] = uint8(min(widths[cls], 64))
		c.base[j] = bases[cls]
	}
	for j := i + numClasses; j < len(c.plen); j++ {
		c.plen[j], c.width[j], c.prefix[j], c.base[j] = c.plen[j-1], c.width[j-1], c.prefix[j-1], c.base[j-1]
	}
	for q := range 17 {
		z := max(uint64(q)<<k, 1) // q = 0 stands for the values 1 to 2^k-1
		if q == 16 {
			z = 0
		}
		j := c.class(z)
		c.small[q] = smallCode{hi: c.prefix[j] << c.width[j], base: c.base[j], nbits: c.plen[j] + c.width[j]}
	}
	return c, nil
}

// leadingOnes15 counts the leading ones of acc, at most 15.
func leadingOnes15(acc uint64) int {
	return bits.LeadingZeros64(^acc|1<<48) & 15
}

func zigzag(v int64) uint64   { return uint64(v<<1) ^ uint64(v>>63) }
func unzigzag(z uint64) int64 { return int64(z>>1) ^ -int64(z&1) }

// class returns the table index for a zigzag value.
func (c *intCode) class(z uint64) int {
	off := 0
	if c.zero {
		if z == 0 {
			return 0
		}
		off = 1
	}
	switch q := z >> c.k; {
	case q < 4:
		return off + int(q)
	case q < 8:
		return off + 4
	case q < 16:
		return off + 5
	}
	switch l := uint(bits.Len64(z)); {
	case l <= c.k+8:
		return off + 6
	case l <= c.k+16:
		return off + 7
	}
	return off + escapeClass
}

// cost returns the bits the code spends on zigzag value z.
func (c *intCode) cost(z uint64) int {
	if c.allZero {
		return 0
	}
	j := c.class(z) & 15
	return int(c.plen[j]) + int(c.width[j])
}

// code returns the bits that write residual v, right-aligned, and their
// number, for the common residuals below 16<<k in zigzag form (at most 50
// bits with k ≤ maxK); for others it returns false and the caller uses put.
func (c *intCode) code(v int64) (uint64, uint, bool) {
	z := zigzag(v)
	q := z >> c.k
	if q >= 16 {
		return 0, 0, false
	}
	if z == 0 {
		q = 16
	}
	e := &c.small[q&31]
	return e.hi | (z - e.base), uint(e.nbits), true
}

// put writes residual v.
func (c *intCode) put(w *bitWriter, v int64) {
	if c.allZero {
		return
	}
	z := zigzag(v)
	j := c.class(z) & 15
	pl, wd := uint(c.plen[j]), uint(c.width[j])
	payload := z - c.base[j]
	if pl+wd <= 64 {
		w.writeBits(c.prefix[j]<<wd|payload, pl+wd)
		return
	}
	w.writeBits(c.prefix[j], pl)
	w.writeBits(payload, wd)
}

// get reads one residual.
func (c *intCode) get(r *bitReader) (int64, bool) {
	if c.allZero {
		return 0, true
	}
	if r.n < 57 {
		r.refill()
	}
	j := leadingOnes15(r.acc) // j ones select class j
	pl, w := uint(c.plen[j]), uint(c.width[j])
	if tot := pl + w; tot <= r.n {
		p := r.acc << pl >> (64 - w) // w == 0 shifts by 64: p = 0
		r.acc <<= tot
		r.n -= tot
		return unzigzag(c.base[j] + p), true
	}
	// The escape class, or the end of the input.
	if !r.skip(pl) {
		return 0, false
	}
	p, ok := r.readBits(w)
	return unzigzag(c.base[j] + p), ok
}

// minBits is the fewest bits one residual can take.
func (c *intCode) minBits() int {
	if c.allZero {
		return 0
	}
	return 1
}

// histogram counts residuals by half-octave of their zigzag value: every
// class boundary of every table is a half-octave boundary, so the cost of
// any table follows exactly from the counts.
type histogram struct {
	count [128]uint32
}

// key maps a zigzag value to its half-octave: 0, 1, then two keys per
// octave split by the bit below the leading one.
func key(z uint64) int {
	if z < 2 {
		return int(z)
	}
	l := bits.Len64(z)
	return 2*(l-1) + int(z>>(l-2)&1)
}

func (h *histogram) add(v int64) {
	h.count[key(zigzag(v))&127]++
}

// keyCost is what one residual in half-octave key costs in the table of
// scale k, with or without the zero class; it agrees with intCode.cost.
func keyCost(key, k int, zero bool) int {
	z := 0
	if zero {
		if key == 0 {
			return 1
		}
		z = 1
	}
	// A key ≥ 1 holds values of bit length key/2+1 (key 1 is the value 1);
	// how far that length is above k picks the class.
	dl := key/2 + 1 - k
	if key == 0 || dl <= 0 {
		return z + 1 + k // q = 0
	}
	if dl > 16 {
		return z + 8 + 64 // escape
	}
	return z + k + int(classExtra[dl]) + key&1*b2i(dl == 2)
}

// classExtra[dl] is the cost less k of a value whose bit length is k+dl:
// prefix plus payload beyond k bits.
var classExtra = [17]uint8{
	1,                          // q = 0
	2,                          // q = 1
	3,                          // q = 2; q = 3 (key's low bit set) costs one more
	5 + 2,                      // q in [4, 8)
	6 + 3,                      // q in [8, 16)
	7 + 8, 7 + 8, 7 + 8, 7 + 8, // up to k+8 bits
	8 + 16, 8 + 16, 8 + 16, 8 + 16, 8 + 16, 8 + 16, 8 + 16, 8 + 16, // up to k+16 bits
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// best picks the code byte that spends the fewest bits on the counted
// residuals and returns it with that number of bits.
func (h *histogram) best() (byte, int) {
	// The keys in use, in order.
	var keys [128]uint8
	nk, n := 0, 0
	for k, c := range h.count {
		if c != 0 {
			keys[nk] = uint8(k)
			nk++
			n += int(c)
		}
	}
	if n == int(h.count[0]) {
		return codeAllZero, 0
	}
	used := keys[:nk]
	k, nbits := h.climb(used, n, false)
	param := byte(k)
	// A zero class costs every other residual a bit and saves the zeros k
	// bits: worth pricing only when zeros are common enough.
	if zeros := int(h.count[0]); zeros*(k+1) > n-zeros {
		if kz, c := h.climb(used, n, true); c < nbits {
			param, nbits = byte(kz)|codeZeroBit, c
		}
	}
	return param, nbits
}

// climb finds the cheapest scale k for the table with or without the zero
// class. The price is close to convex in k: it starts a little below the
// median bit length and walks downhill.
func (h *histogram) climb(used []uint8, n int, zero bool) (k, cost int) {
	k = min(max(0, h.medianLen(used, n, zero)-1), maxK)
	cost = h.price(used, k, zero)
	for k > 0 {
		c := h.price(used, k-1, zero)
		if c > cost {
			break
		}
		k, cost = k-1, c
	}
	for k < maxK {
		c := h.price(used, k+1, zero)
		if c >= cost {
			break
		}
		k, cost = k+1, c
	}
	return k, cost
}

// price is the number of bits the counted residuals take in one table.
func (h *histogram) price(used []uint8, k int, zero bool) int {
	total := 0
	for _, key := range used {
		total += int(h.count[key]) * keyCost(int(key), k, zero)
	}
	return total
}

// medianLen is the bit length of the median zigzag value, over all counted
// residuals or over the non-zero ones.
func (h *histogram) medianLen(used []uint8, n int, nonZero bool) int {
	if nonZero {
		n -= int(h.count[0])
	}
	seen := 0
	for _, key := range used {
		if nonZero && key == 0 {
			continue
		}
		seen += int(h.count[key])
		if 2*seen >= n {
			return int(key)/2 + 1
		}
	}
	return 0
}
