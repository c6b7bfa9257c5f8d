package clocktest_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/clock"
	"github.com/warden-iot/warden/internal/clock/clocktest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// received returns what ch holds without waiting.
func received(ch <-chan time.Time) (time.Time, bool) {
	select {
	case v := <-ch:
		return v, true
	default:
		return time.Time{}, false
	}
}

func TestNowAndAdvance(t *testing.T) {
	f := clocktest.New(t0)
	if got := f.Now(); !got.Equal(t0) {
		t.Fatalf("Now = %s, want %s", got, t0)
	}
	f.Advance(90 * time.Second)
	if got, want := f.Now(), t0.Add(90*time.Second); !got.Equal(want) {
		t.Fatalf("Now = %s, want %s", got, want)
	}
	tm := f.NewTimer(time.Minute) // due at t0 + 150s
	f.Set(t0)                     // backwards
	if got := f.Now(); !got.Equal(t0) {
		t.Fatalf("after Set backwards, Now = %s, want %s", got, t0)
	}
	f.Set(t0.Add(150*time.Second - time.Nanosecond))
	if _, ok := received(tm.C()); ok {
		t.Fatal("timer fired before its instant")
	}
	f.Set(t0.Add(150 * time.Second))
	if _, ok := received(tm.C()); !ok {
		t.Fatal("timer did not fire at its instant")
	}
}

func TestTimer(t *testing.T) {
	f := clocktest.New(t0)
	tm := f.NewTimer(time.Minute)
	f.Advance(time.Minute - time.Nanosecond)
	if _, ok := received(tm.C()); ok {
		t.Fatal("timer fired early")
	}
	f.Advance(time.Hour)
	v, ok := received(tm.C())
	if !ok || !v.Equal(t0.Add(time.Minute)) {
		t.Fatalf("timer sent %s, %v; want its due time %s", v, ok, t0.Add(time.Minute))
	}
	if tm.Stop() {
		t.Error("Stop of a fired timer reported it active")
	}
	if tm.Reset(time.Second) {
		t.Error("Reset of a fired timer reported it active")
	}
	if !tm.Stop() {
		t.Error("Stop of a pending timer reported it inactive")
	}
	f.Advance(time.Hour)
	if _, ok := received(tm.C()); ok {
		t.Fatal("stopped timer fired")
	}
	if f.Waiters() != 0 {
		t.Fatalf("Waiters = %d, want 0", f.Waiters())
	}
}

func TestTimerResetDiscardsStaleValue(t *testing.T) {
	f := clocktest.New(t0)
	tm := f.NewTimer(time.Second)
	f.Advance(time.Second) // fires; nobody reads
	tm.Reset(time.Minute)
	if _, ok := received(tm.C()); ok {
		t.Fatal("Reset left the stale value in the channel")
	}
}

func TestTimerDueAtOnce(t *testing.T) {
	f := clocktest.New(t0)
	if _, ok := received(f.NewTimer(0).C()); !ok {
		t.Fatal("a timer of 0 did not fire at once")
	}
	done := make(chan struct{})
	f.AfterFunc(-time.Second, func() { close(done) })
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("AfterFunc of a past duration never ran")
	}
}

func TestTicker(t *testing.T) {
	f := clocktest.New(t0)
	tk := f.NewTicker(10 * time.Second)
	var ticks []time.Time
	for range 3 {
		f.Advance(10 * time.Second)
		v, ok := received(tk.C())
		if !ok {
			t.Fatalf("no tick at %s", f.Now())
		}
		ticks = append(ticks, v)
	}
	for i, v := range ticks {
		if want := t0.Add(time.Duration(i+1) * 10 * time.Second); !v.Equal(want) {
			t.Errorf("tick %d at %s, want %s", i, v, want)
		}
	}
	// A slow reader gets one tick, the first one, the rest are dropped.
	f.Advance(time.Minute)
	if v, ok := received(tk.C()); !ok || !v.Equal(t0.Add(40*time.Second)) {
		t.Errorf("after a minute unread, tick %s, %v; want %s", v, ok, t0.Add(40*time.Second))
	}
	if _, ok := received(tk.C()); ok {
		t.Error("more than one tick buffered")
	}
	tk.Reset(time.Hour)
	f.Advance(59 * time.Minute)
	if _, ok := received(tk.C()); ok {
		t.Error("reset ticker ticked at its old period")
	}
	f.Advance(time.Minute)
	if _, ok := received(tk.C()); !ok {
		t.Error("reset ticker did not tick at its new period")
	}
	tk.Stop()
	f.Advance(24 * time.Hour)
	if _, ok := received(tk.C()); ok {
		t.Error("stopped ticker ticked")
	}
}

// Advance fires what falls due in order of due time, with Now reading each
// one's due time, and AfterFunc calls have run when it returns.
func TestAdvanceOrder(t *testing.T) {
	f := clocktest.New(t0)
	var order []string
	var seen []time.Time
	at := func(name string) func() {
		return func() { order = append(order, name); seen = append(seen, f.Now()) }
	}
	f.AfterFunc(3*time.Second, at("c"))
	f.AfterFunc(time.Second, at("a"))
	f.AfterFunc(2*time.Second, at("b1"))
	f.AfterFunc(2*time.Second, at("b2"))
	stopped := f.AfterFunc(2*time.Second, at("never"))
	if !stopped.Stop() {
		t.Fatal("Stop of a pending AfterFunc reported it inactive")
	}
	f.Advance(5 * time.Second)
	if got, want := order, []string{"a", "b1", "b2", "c"}; !equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	for i, d := range []time.Duration{1, 2, 2, 3} {
		if want := t0.Add(d * time.Second); !seen[i].Equal(want) {
			t.Errorf("%s saw Now = %s, want %s", order[i], seen[i], want)
		}
	}
	if got, want := f.Now(), t0.Add(5*time.Second); !got.Equal(want) {
		t.Errorf("Now = %s, want %s", got, want)
	}
}

// An AfterFunc that arms a new timer within the advanced span sees it fire in
// the same Advance.
func TestAfterFuncRearms(t *testing.T) {
	f := clocktest.New(t0)
	var n int
	var tm clock.Timer
	tm = f.AfterFunc(time.Second, func() {
		n++
		tm.Reset(time.Second)
	})
	f.Advance(5 * time.Second)
	if n != 5 {
		t.Fatalf("fired %d times, want 5", n)
	}
}

func TestBlockUntil(t *testing.T) {
	f := clocktest.New(t0)
	got := make(chan time.Time)
	go func() {
		tm := f.NewTimer(time.Minute)
		got <- <-tm.C()
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := f.BlockUntil(ctx, 1); err != nil {
		t.Fatal(err)
	}
	f.Advance(time.Minute)
	if v := <-got; !v.Equal(t0.Add(time.Minute)) {
		t.Fatalf("woke at %s, want %s", v, t0.Add(time.Minute))
	}

	short, cancel2 := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel2()
	if err := f.BlockUntil(short, 1); err == nil {
		t.Fatal("BlockUntil returned with no waiter")
	}
}

// The fake is safe for concurrent use (run with -race).
func TestConcurrent(t *testing.T) {
	f := clocktest.New(t0)
	var fired atomic.Int64
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			tk := f.NewTicker(time.Duration(i+1) * time.Millisecond)
			defer tk.Stop()
			tm := f.AfterFunc(time.Duration(i+1)*time.Millisecond, func() { fired.Add(1) })
			defer tm.Stop()
			for range 50 {
				_ = f.Now()
				f.Advance(time.Millisecond)
				select {
				case <-tk.C():
				default:
				}
				tm.Reset(time.Millisecond)
			}
		})
	}
	wg.Wait()
	if fired.Load() == 0 {
		t.Fatal("no AfterFunc fired")
	}
	if want := t0.Add(400 * time.Millisecond); !f.Now().Equal(want) {
		t.Fatalf("Now = %s, want %s", f.Now(), want)
	}
}

func TestReal(t *testing.T) {
	c := clock.Real()
	before := time.Now()
	if now := c.Now(); now.Before(before) {
		t.Fatalf("Real().Now() = %s, before %s", now, before)
	}
	if _, ok := <-c.NewTimer(time.Millisecond).C(); !ok {
		t.Fatal("real timer channel closed")
	}
	tk := c.NewTicker(time.Millisecond)
	<-tk.C()
	tk.Stop()
	done := make(chan struct{})
	c.AfterFunc(time.Millisecond, func() { close(done) })
	<-done
	if clock.OrReal(nil) == nil {
		t.Fatal("OrReal(nil) is nil")
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
