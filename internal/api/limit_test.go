package api

import (
	"testing"
	"time"
)

func TestWindowLimiter(t *testing.T) {
	l := newWindowLimiter(3, time.Minute)
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for i := range 3 {
		if over, _ := l.exceeded("a", t0); over {
			t.Fatalf("exceeded after %d", i)
		}
		l.add("a", t0.Add(time.Duration(i)*time.Second))
	}
	over, until := l.exceeded("a", t0.Add(10*time.Second))
	if !over || !until.Equal(t0.Add(time.Minute)) {
		t.Fatalf("after 3: over=%v until=%v", over, until)
	}
	if over, _ := l.exceeded("b", t0); over {
		t.Error("another key is limited")
	}
	if over, _ := l.exceeded("a", t0.Add(time.Minute)); over {
		t.Error("still limited in the next window")
	}
}
