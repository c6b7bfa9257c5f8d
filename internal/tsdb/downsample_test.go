package tsdb

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestDownsampleBuckets(t *testing.T) {
	d, err := NewDownsampler(t0, t0.Add(time.Hour), 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// Points at minutes 0, 5, 9 (bucket 0), 25 (bucket 2), 59 (bucket 5),
	// and two outside the range.
	d.Add(t0.Add(-time.Second), 100)
	for _, p := range []struct {
		min int
		v   float64
	}{{0, 3}, {5, -1}, {9, 4}, {25, 7}, {59, 2}} {
		d.Add(t0.Add(time.Duration(p.min)*time.Minute), p.v)
	}
	d.Add(t0.Add(time.Hour), 100)
	got := d.Buckets()
	want := []Bucket{
		{Start: t0, Count: 3, Min: -1, Max: 4, Sum: 6, First: 3, Last: 4},
		{Start: t0.Add(20 * time.Minute), Count: 1, Min: 7, Max: 7, Sum: 7, First: 7, Last: 7},
		{Start: t0.Add(50 * time.Minute), Count: 1, Min: 2, Max: 2, Sum: 2, First: 2, Last: 2},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d buckets %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("bucket %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if avg := got[0].Avg(); avg != 2 {
		t.Errorf("avg = %v, want 2", avg)
	}
}

func TestBucketWidth(t *testing.T) {
	w, err := BucketWidth(t0, t0.Add(24*time.Hour), 1000)
	if err != nil || w != 86400*time.Millisecond {
		t.Fatalf("BucketWidth(1 day, 1000) = %v, %v; want 1m26.4s", w, err)
	}
	w, err = BucketWidth(t0, t0.Add(10*time.Millisecond), 3)
	if err != nil || w != 4*time.Millisecond {
		t.Fatalf("BucketWidth(10ms, 3) = %v, %v; want 4ms (rounded up)", w, err)
	}
	for _, n := range []int{0, -1, MaxBuckets + 1} {
		if _, err := BucketWidth(t0, t0.Add(time.Hour), n); err == nil {
			t.Errorf("BucketWidth(n=%d) accepted", n)
		}
	}
	if _, err := BucketWidth(t0, t0, 10); err == nil {
		t.Error("empty range accepted")
	}
}

func TestNewDownsamplerRefuses(t *testing.T) {
	for name, c := range map[string]struct {
		to    time.Time
		width time.Duration
	}{
		"empty range":     {t0, time.Minute},
		"reversed range":  {t0.Add(-time.Hour), time.Minute},
		"sub-millisecond": {t0.Add(time.Hour), time.Microsecond},
		"too many":        {t0.Add(365 * 24 * time.Hour), time.Second},
	} {
		if _, err := NewDownsampler(t0, c.to, c.width); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
