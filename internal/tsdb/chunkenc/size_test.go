package chunkenc

import (
	"fmt"
	"strings"
	"testing"
)

// TestBytesPerPoint logs the chunk size per point for each data shape, next
// to the same series in a Prometheus XOR chunk and in a Gorilla block, and
// holds the main shapes to their budgets. "ts b" and "val b" are the bits
// per point of the two streams (the rest is the header); "ratio" is
// Prometheus's size over ours.
func TestBytesPerPoint(t *testing.T) {
	const seeds = 10
	budget := map[string]float64{ // bytes per point at 240 points
		"sensor-walk": 1.45,
		"counter":     1.0,
		"constant":    0.15,
		"temperature": 1.2,
	}
	var report strings.Builder
	fmt.Fprintf(&report, "\n%-17s %5s %7s %6s %6s %8s %8s %6s %6s  %s\n",
		"shape", "n", "B/pt", "ts b", "val b", "prom", "gorilla", "ratio", "modes", "series")
	for _, s := range append(shapes[:len(shapes):len(shapes)], extraShapes...) {
		for _, n := range []int{240, 1000} {
			var ours, prom, gor, tsBits, valBits int
			var modes string
			for seed := range uint64(seeds) {
				ts, vs := s.gen(n, seed)
				b, err := Encode(ts, vs)
				if err != nil {
					t.Fatal(err)
				}
				ours += len(b)
				tsBits += planTimestamps(ts).bits
				valBits += planValues(vs).bits
				prom += prometheusBytes(ts, vs)
				gor += gorillaBytes(ts, vs)
				if seed == 0 {
					modes = modeNames(b)
				}
			}
			per := float64(ours) / float64(seeds*n)
			fmt.Fprintf(&report, "%-17s %5d %7.3f %6.2f %6.2f %8.3f %8.3f %6.2f %6s  %s\n", s.name, n, per,
				float64(tsBits)/float64(seeds*(n-1)), float64(valBits)/float64(seeds*(n-1)),
				float64(prom)/float64(seeds*n), float64(gor)/float64(seeds*n), float64(prom)/float64(ours), modes, s.desc)
			if max, ok := budget[s.name]; ok && n == 240 && per > max {
				t.Errorf("%s: %.3f bytes per point, budget %.2f", s.name, per, max)
			}
		}
	}
	t.Log(report.String())
}

// modeNames describes a chunk's modes: timestamp mode then value mode.
func modeNames(b []byte) string {
	ts := "-"
	var it Iterator
	if it.Reset(b) == nil && it.d.n > 1 {
		ts = "F"
		if it.d.tsDOD {
			ts = "D"
		}
	}
	return ts + "/" + [...]string{"xor", "dec", "dod"}[b[1]]
}
