package chunkenc

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// Version is the format version written as the first byte of every chunk.
const Version = 1

// MaxPoints is the most points one chunk holds.
const MaxPoints = 65535

// Value modes, the second byte of a chunk.
const (
	ModeXOR          = 0 // Gorilla XOR of the float64 bits
	ModeDecimalDelta = 1 // decimal mantissas, deltas
	ModeDecimalDOD   = 2 // decimal mantissas, deltas of deltas
)

// Timestamp modes.
const (
	tsDOD   = 0 // predict each interval by the one before
	tsFixed = 1 // predict each interval by the chunk's reference interval
)

// maxExp is the largest decimal exponent; maxMantissa bounds decimal
// mantissas so that float64(m) is exact.
const (
	maxExp      = 9
	maxMantissa = 1 << 53
)

var pow10 = [maxExp + 1]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}

var (
	// ErrCorrupt is wrapped by every error about bytes that are not a valid
	// chunk.
	ErrCorrupt = errors.New("chunkenc: corrupt chunk")
	// ErrUnsorted is wrapped by Encode when timestamps do not strictly
	// increase.
	ErrUnsorted = errors.New("chunkenc: timestamps not strictly increasing")
)

// decimalMantissa returns m with float64(m)/10^e == v bit for bit, if there
// is one with |m| ≤ 2^53. It fails for NaN, ±Inf and -0.0.
func decimalMantissa(v float64, e int) (int64, bool) {
	f := v * pow10[e]
	if !(f >= -maxMantissa && f <= maxMantissa) {
		return 0, false
	}
	m := int64(math.RoundToEven(f))
	return m, math.Float64bits(float64(m)/pow10[e]) == math.Float64bits(v)
}

// decimalExponent returns the smallest e ≥ from for which v is a decimal
// with e digits after the point.
func decimalExponent(v float64, from int) (int, bool) {
	for e := from; e <= maxExp; e++ {
		if _, ok := decimalMantissa(v, e); ok {
			return e, true
		}
	}
	return 0, false
}

// xorState carries the Gorilla XOR encoder and decoder state: the previous
// value's bits and the current window of meaningful bits.
type xorState struct {
	prev uint64
	lead uint // leading zeros of the window
	sig  uint // width of the window; 0 until the first window is written
}

// XOR control codes.
const (
	xorSame   = 0 // '0'
	xorReuse  = 1 // '10', payload in the current window
	xorWindow = 2 // '11', 5 bits leading zeros, 6 bits width (64 as 0), payload
)

// step moves the encoder to value v and says how to write it: the control
// code, and the payload (in x.sig bits) for the other two codes.
func (x *xorState) step(v uint64) (ctrl int, payload uint64) {
	d := v ^ x.prev
	x.prev = v
	if d == 0 {
		return xorSame, 0
	}
	lead := min(uint(bits.LeadingZeros64(d)), 31)
	trail := uint(bits.TrailingZeros64(d))
	sig := 64 - lead - trail
	// Reuse the window when the bits fit in it and it is not much wider
	// than a fresh one: a fresh window costs 11 bits of description.
	if x.sig != 0 && lead >= x.lead && trail >= 64-x.lead-x.sig && x.sig <= sig+11 {
		return xorReuse, d >> (64 - x.lead - x.sig)
	}
	x.lead, x.sig = lead, sig
	return xorWindow, d >> trail
}

// xorCost is the number of bits XOR mode spends after the first value. It
// gives up, returning false, once the count passes limit.
func xorCost(vs []float64, limit int) (int, bool) {
	x := xorState{prev: math.Float64bits(vs[0])}
	total := 0
	for i, v := range vs[1:] {
		if i&31 == 0 && total > limit {
			return 0, false
		}
		switch ctrl, _ := x.step(math.Float64bits(v)); ctrl {
		case xorSame:
			total++
		case xorReuse:
			total += 2 + int(x.sig)
		default:
			total += 13 + int(x.sig)
		}
	}
	return total, total < limit
}

var errTruncated = fmt.Errorf("%w: truncated", ErrCorrupt)
