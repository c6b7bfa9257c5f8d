package commitlog

import (
	"context"
	"testing"
	"time"
)

// BenchmarkAppend: 200 appenders of one record each, the shape of 200
// devices with one message in flight; each b.N is one record. Prints
// records_per_s, MB_per_s and records per fsync (the group size).
func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{300, 2000} {
		b.Run(map[int]string{300: "300B", 2000: "2KB"}[size], func(b *testing.B) {
			l, err := Open(b.TempDir(), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			payload := make([]byte, size)
			b.SetParallelism(100) // ×GOMAXPROCS goroutines
			start := time.Now()
			before, syncs := l.Next(), l.syncs.Load()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := l.Append(context.Background(), payload); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			n := l.Next() - before
			secs := time.Since(start).Seconds()
			b.ReportMetric(float64(n)/secs, "records_per_s")
			b.ReportMetric(float64(n)*float64(size+headerSize)/secs/1e6, "MB_per_s")
			b.ReportMetric(float64(n)/float64(l.syncs.Load()-syncs), "records_per_fsync")
		})
	}
}
