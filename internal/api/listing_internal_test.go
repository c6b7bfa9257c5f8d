package api

import (
	"context"
	"slices"
	"testing"
)

// TestMergedPages: several queries read a page at a time come out as one
// sequence in key order, a key two queries select once, across page
// boundaries of every size.
func TestMergedPages(t *testing.T) {
	a := []int64{1, 3, 4, 7, 9, 10, 12}
	b := []int64{2, 3, 7, 8, 12, 13}
	query := func(rows []int64, pageSize int, calls *int) func(context.Context, int64) ([]int64, error) {
		return func(_ context.Context, after int64) ([]int64, error) {
			*calls++
			i, _ := slices.BinarySearch(rows, after+1)
			return rows[i:min(i+pageSize, len(rows))], nil
		}
	}
	want := []int64{4, 7, 8, 9, 10, 12, 13}
	for pageSize := 1; pageSize <= 8; pageSize++ {
		var ca, cb int
		m := newMerged(func(k int64) int64 { return k }, 3, pageSize, query(a, pageSize, &ca), query(b, pageSize, &cb))
		var got []int64
		for {
			k, ok, err := m.next(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			got = append(got, k)
		}
		if !slices.Equal(got, want) {
			t.Errorf("page size %d: %v, want %v", pageSize, got, want)
		}
		if max(ca, cb) > len(a)/pageSize+2 {
			t.Errorf("page size %d: %d and %d queries", pageSize, ca, cb)
		}
	}
	// No queries (a supporter without grants): nothing.
	if _, ok, err := newMerged(func(k int64) int64 { return k }, 0, 10).next(t.Context()); ok || err != nil {
		t.Errorf("no queries: %v %v", ok, err)
	}
}
