package chunkenc

import (
	"fmt"
	"testing"
)

// Each benchmark runs this package and the Gorilla reference of
// reference_test.go (the Prometheus XOR layout on the same bit reader and
// writer) back to back on the same series, so that their ratio means
// something on a busy machine.

func benchShapes() []shape {
	return append(shapes[:len(shapes):len(shapes)], extraShapes[5]) // + float-average, XOR mode
}

func reportPoints(b *testing.B, perOp int) {
	b.ReportMetric(float64(perOp)*float64(b.N)/b.Elapsed().Seconds(), "points/s")
}

func BenchmarkEncode(b *testing.B) {
	for _, s := range benchShapes() {
		for _, n := range []int{240, 1000} {
			ts, vs := s.gen(n, 1)
			b.Run(fmt.Sprintf("%s/n=%d/chunkenc", s.name, n), func(b *testing.B) {
				for b.Loop() {
					if _, err := Encode(ts, vs); err != nil {
						b.Fatal(err)
					}
				}
				reportPoints(b, n)
			})
			b.Run(fmt.Sprintf("%s/n=%d/gorilla-ref", s.name, n), func(b *testing.B) {
				for b.Loop() {
					refEncode(ts, vs)
				}
				reportPoints(b, n)
			})
		}
	}
}

// BenchmarkAppendEncode encodes into a reused buffer: no allocation.
func BenchmarkAppendEncode(b *testing.B) {
	for _, s := range benchShapes() {
		ts, vs := s.gen(240, 1)
		buf := make([]byte, 0, 4096)
		b.Run(s.name, func(b *testing.B) {
			for b.Loop() {
				buf, _ = AppendEncode(buf[:0], ts, vs)
			}
			reportPoints(b, len(ts))
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, s := range benchShapes() {
		for _, n := range []int{240, 1000} {
			ts, vs := s.gen(n, 1)
			c, err := Encode(ts, vs)
			if err != nil {
				b.Fatal(err)
			}
			ref := refEncode(ts, vs)
			b.Run(fmt.Sprintf("%s/n=%d/chunkenc", s.name, n), func(b *testing.B) {
				for b.Loop() {
					if _, _, err := Decode(c); err != nil {
						b.Fatal(err)
					}
				}
				reportPoints(b, n)
			})
			gt, gv := make([]int64, 0, n), make([]float64, 0, n)
			b.Run(fmt.Sprintf("%s/n=%d/chunkenc-reuse", s.name, n), func(b *testing.B) {
				for b.Loop() {
					gt, gv, _ = AppendDecode(gt[:0], gv[:0], c)
				}
				reportPoints(b, n)
			})
			b.Run(fmt.Sprintf("%s/n=%d/gorilla-ref-reuse", s.name, n), func(b *testing.B) {
				gt, gv := gt[:n], gv[:n]
				for b.Loop() {
					refDecode(ref, gt, gv)
				}
				reportPoints(b, n)
			})
		}
	}
}

// BenchmarkIterate walks a chunk with a reused Iterator: no allocation.
func BenchmarkIterate(b *testing.B) {
	for _, s := range benchShapes() {
		ts, vs := s.gen(240, 1)
		c, err := Encode(ts, vs)
		if err != nil {
			b.Fatal(err)
		}
		var it Iterator
		b.Run(s.name, func(b *testing.B) {
			var sum float64
			for b.Loop() {
				_ = it.Reset(c)
				for it.Next() {
					_, v := it.At()
					sum += v
				}
			}
			reportPoints(b, len(ts))
			_ = sum
		})
	}
}
