package simulate

import "math"

// Random streams. Every random quantity of a machine is a hash of the
// machine's key for one stream and an index (a parameter number, a time in
// seconds, a grid step, a time slot or a day), so it does not depend on the
// order or number of earlier draws.
const (
	sParam = iota // machine parameters, indexed by parameter number
	sWear
	sFault
	sDay // per-day variation, indexed by day ordinal
	sAtm
	sPumpStop
	sPumpProcess
	sPumpTemp
	sPumpInlet
	sPumpOutlet
	sPumpCurrent
	sCoffeeBrew
	sCoffeeTemp
	sHardStep
	sHardNoise
	sHeaterBoiler
	sHeaterFlue
	sHeaterOutdoor
	sHeaterLevel
	sWeatherSlow
	sWeatherFast
	sDHW
	sRefill
	sMeterBurst
	sMeterBurstSize
	sMeterFlush
	sBattery
	sRSSISlow
	sRSSI
	sSNR
	numStreams
)

const (
	golden  = 0x9e3779b97f4a7c15
	golden2 = 0xd1b54a32d192ed03
)

// mix64 is the SplitMix64 finaliser, a fast bijective 64-bit hash.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func (m *Machine) hashAt(stream int, i int64) uint64 {
	return mix64(m.keys[stream] + uint64(i)*golden2)
}

// unitAt is uniform in [0, 1).
func (m *Machine) unitAt(stream int, i int64) float64 {
	return unit(m.hashAt(stream, i))
}

// noiseAt has mean 0 and standard deviation 1, bounded to ±3.46.
func (m *Machine) noiseAt(stream int, i int64) float64 {
	return gauss(m.hashAt(stream, i))
}

// smooth is value noise with mean 0 and standard deviation up to 1 that
// varies smoothly over about period seconds.
func (m *Machine) smooth(stream int, t, period int64) float64 {
	k := floorDiv(t, period)
	f := float64(t-k*period) / float64(period)
	a := m.noiseAt(stream, k)
	b := m.noiseAt(stream, k+1)
	return a + (b-a)*f*f*(3-2*f)
}

func unit(h uint64) float64 { return float64(h>>11) / (1 << 53) }

// gauss turns 64 random bits into an approximately normal variate: the sum
// of four 16-bit uniforms (Irwin–Hall), scaled to unit variance. It is
// bounded, which keeps noisy signals within physical ranges.
func gauss(h uint64) float64 {
	s := float64(h&0xffff) + float64(h>>16&0xffff) + float64(h>>32&0xffff) + float64(h>>48)
	return (s/65536 - 2) * math.Sqrt(3)
}

// rng is a tiny SplitMix64 generator for drawing a few numbers from one seed.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += golden
	return mix64(r.s)
}

// float is uniform in [0, 1).
func (r *rng) float() float64 { return unit(r.next()) }

// between is uniform in [lo, hi).
func (r *rng) between(lo, hi float64) float64 { return lo + (hi-lo)*r.float() }
