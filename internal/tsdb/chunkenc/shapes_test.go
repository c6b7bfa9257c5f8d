package chunkenc

import (
	"math"
	"math/rand/v2"
)

// Synthetic series shaped like the telemetry Warden stores. Each generator
// is deterministic for a given seed.

const t0 = 1_763_900_000_000 // 2025-11-23, Unix ms

type shape struct {
	name string
	desc string
	gen  func(n int, seed uint64) ([]int64, []float64)
}

// jitterTS is a schedule of one point every interval ms, each stamped up
// to ±jitter ms off its slot (a uniform error, as from network latency or a
// device's wake-up).
func jitterTS(r *rand.Rand, n int, interval, jitter int64) []int64 {
	ts := make([]int64, n)
	for i := range ts {
		ts[i] = t0 + int64(i)*interval
		if jitter > 0 {
			ts[i] += r.Int64N(2*jitter+1) - jitter
		}
	}
	return ts
}

var shapes = []shape{
	{
		name: "sensor-walk",
		desc: "10 s ±20 ms jitter; random walk, steps N(0, 0.03), 2 decimals",
		gen: func(n int, seed uint64) ([]int64, []float64) {
			r := rand.New(rand.NewPCG(seed, 1))
			ts := jitterTS(r, n, 10_000, 20)
			vs := make([]float64, n)
			x := 21.5
			for i := range vs {
				x += r.NormFloat64() * 0.03
				vs[i] = math.Round(x*100) / 100
			}
			return ts, vs
		},
	},
	{
		name: "counter",
		desc: "60 s exact; integer counter, +90..110 per step",
		gen: func(n int, seed uint64) ([]int64, []float64) {
			r := rand.New(rand.NewPCG(seed, 2))
			ts := jitterTS(r, n, 60_000, 0)
			vs := make([]float64, n)
			c := 1_234_567.0
			for i := range vs {
				c += float64(90 + r.IntN(21))
				vs[i] = c
			}
			return ts, vs
		},
	},
	{
		name: "constant",
		desc: "60 s exact; the value 22.5",
		gen: func(n int, seed uint64) ([]int64, []float64) {
			r := rand.New(rand.NewPCG(seed, 3))
			ts := jitterTS(r, n, 60_000, 0)
			vs := make([]float64, n)
			for i := range vs {
				vs[i] = 22.5
			}
			return ts, vs
		},
	},
	{
		name: "temperature",
		desc: "60 s ±20 ms jitter; 20 + 4·sin(day) + N(0, 0.05), 1 decimal",
		gen: func(n int, seed uint64) ([]int64, []float64) {
			r := rand.New(rand.NewPCG(seed, 4))
			ts := jitterTS(r, n, 60_000, 20)
			vs := make([]float64, n)
			for i := range vs {
				day := float64(ts[i]%86_400_000) / 86_400_000
				x := 20 + 4*math.Sin(2*math.Pi*day) + r.NormFloat64()*0.05
				vs[i] = math.Round(x*10) / 10
			}
			return ts, vs
		},
	},
}

// extraShapes show how the codec behaves around the main ones.
var extraShapes = []shape{
	{
		name: "walk-exact-ts",
		desc: "sensor-walk on exact 10 s timestamps",
		gen: func(n int, seed uint64) ([]int64, []float64) {
			ts, vs := shapes[0].gen(n, seed)
			for i := range ts {
				ts[i] = t0 + int64(i)*10_000
			}
			return ts, vs
		},
	},
	{
		name: "walk-jitter-1ms",
		desc: "sensor-walk with ±1 ms jitter",
		gen: func(n int, seed uint64) ([]int64, []float64) {
			r := rand.New(rand.NewPCG(seed, 5))
			_, vs := shapes[0].gen(n, seed)
			return jitterTS(r, n, 10_000, 1), vs
		},
	},
	{
		name: "walk-jitter-50ms",
		desc: "sensor-walk with ±50 ms jitter",
		gen: func(n int, seed uint64) ([]int64, []float64) {
			r := rand.New(rand.NewPCG(seed, 6))
			_, vs := shapes[0].gen(n, seed)
			return jitterTS(r, n, 10_000, 50), vs
		},
	},
	{
		name: "walk-drift",
		desc: "sensor-walk, each interval 10 s ±20 ms (errors accumulate)",
		gen: func(n int, seed uint64) ([]int64, []float64) {
			r := rand.New(rand.NewPCG(seed, 7))
			_, vs := shapes[0].gen(n, seed)
			ts := make([]int64, n)
			t := int64(t0)
			for i := range ts {
				ts[i] = t
				t += 10_000 + r.Int64N(41) - 20
			}
			return ts, vs
		},
	},
	{
		name: "counter-jitter",
		desc: "counter with ±20 ms jitter",
		gen: func(n int, seed uint64) ([]int64, []float64) {
			r := rand.New(rand.NewPCG(seed, 8))
			_, vs := shapes[1].gen(n, seed)
			return jitterTS(r, n, 60_000, 20), vs
		},
	},
	{
		name: "float-average",
		desc: "10 s exact; running mean of a noisy signal (full float64, XOR mode)",
		gen: func(n int, seed uint64) ([]int64, []float64) {
			r := rand.New(rand.NewPCG(seed, 9))
			ts := jitterTS(r, n, 10_000, 0)
			vs := make([]float64, n)
			sum := 0.0
			for i := range vs {
				sum += 20 + r.NormFloat64()
				vs[i] = sum / float64(i+1)
			}
			return ts, vs
		},
	},
	{
		name: "gappy",
		desc: "sensor-walk with a 1 h outage every 100 points",
		gen: func(n int, seed uint64) ([]int64, []float64) {
			ts, vs := shapes[0].gen(n, seed)
			for i := range ts {
				ts[i] += int64(i/100) * 3_600_000
			}
			return ts, vs
		},
	},
}
