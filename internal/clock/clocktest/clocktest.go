// Package clocktest provides Fake, the one simulated clock of Warden's tests:
// time stands still until the test advances it, and then due timers, tickers
// and AfterFunc calls fire in order of their due time.
package clocktest

import (
	"context"
	"sync"
	"time"

	"github.com/warden-iot/warden/internal/clock"
)

// Fake is a clock.Clock that moves only when Advance or Set is called. It is
// safe for concurrent use. The zero value is not usable; call New.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	target  time.Time     // where the Advance and Set calls under way are taking now
	waiters []*waiter     // the active timers, tickers and AfterFunc calls
	seq     uint64        // creation order, which breaks ties between equal due times
	changed chan struct{} // closed (and replaced) whenever waiters changes
}

var _ clock.Clock = (*Fake)(nil)

// New returns a fake clock that reads now.
func New(now time.Time) *Fake {
	return &Fake{now: now, changed: make(chan struct{})}
}

// Now is the fake's current instant.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// NewTimer returns a timer that fires when the fake has been advanced by d
// (at once if d <= 0).
func (f *Fake) NewTimer(d time.Duration) clock.Timer {
	w := &waiter{f: f, ch: make(chan time.Time, 1)}
	w.Reset(d)
	return w
}

// NewTicker returns a ticker of period d; it panics if d <= 0, like
// time.NewTicker. A tick that finds the channel full is dropped.
func (f *Fake) NewTicker(d time.Duration) clock.Ticker {
	if d <= 0 {
		panic("clocktest: non-positive interval for NewTicker")
	}
	w := &waiter{f: f, ch: make(chan time.Time, 1)}
	w.resetTicker(d)
	return tickerOf{w}
}

// AfterFunc returns a timer that calls fn when the fake has been advanced by
// d. fn runs synchronously inside Advance, so its effects are visible when
// Advance returns; if d <= 0 it runs at once in its own goroutine.
func (f *Fake) AfterFunc(d time.Duration, fn func()) clock.Timer {
	w := &waiter{f: f, fn: fn}
	w.Reset(d)
	return w
}

// Advance moves the fake forward by d, firing every timer and ticker that
// falls due on the way, in order of due time; Now reads each one's due time
// while it fires. It returns when all of them have fired (a tick or timer
// value sent, an AfterFunc call returned). Concurrent calls add up.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	if f.target.Before(f.now) {
		f.target = f.now
	}
	f.target = f.target.Add(d)
	target := f.target
	f.mu.Unlock()
	f.advanceTo(target)
}

// Set moves the fake to t, firing what falls due on the way like Advance.
// A t before the fake's time steps the clock back, like a wall clock being
// corrected, and fires nothing; what is pending stays due at its instant.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	if t.Before(f.now) {
		f.now, f.target = t, t
		f.mu.Unlock()
		return
	}
	if t.After(f.target) {
		f.target = t
	}
	f.mu.Unlock()
	f.advanceTo(t)
}

func (f *Fake) advanceTo(target time.Time) {
	for {
		f.mu.Lock()
		var next *waiter
		for _, w := range f.waiters {
			if w.at.After(target) {
				continue
			}
			if next == nil || w.at.Before(next.at) || (w.at.Equal(next.at) && w.seq < next.seq) {
				next = w
			}
		}
		if next == nil {
			if target.After(f.now) {
				f.now = target
			}
			f.mu.Unlock()
			return
		}
		if next.at.After(f.now) {
			f.now = next.at
		}
		now := f.now
		if next.period > 0 {
			next.at = next.at.Add(next.period)
		} else {
			f.removeLocked(next)
		}
		f.mu.Unlock()
		next.fire(now)
	}
}

// Waiters is the number of timers, tickers and AfterFunc calls that are
// active on the fake.
func (f *Fake) Waiters() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiters)
}

// BlockUntil waits until at least n timers, tickers or AfterFunc calls are
// active on the fake, so that a test advances the clock only once the
// goroutines it means to wake are waiting on it. It returns ctx's error if
// ctx ends first.
func (f *Fake) BlockUntil(ctx context.Context, n int) error {
	for {
		f.mu.Lock()
		got, changed := len(f.waiters), f.changed
		f.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (f *Fake) addLocked(w *waiter) {
	for _, o := range f.waiters {
		if o == w {
			return
		}
	}
	f.seq++
	w.seq = f.seq
	f.waiters = append(f.waiters, w)
	f.signalLocked()
}

// removeLocked drops w from the active waiters and reports whether it was
// active.
func (f *Fake) removeLocked(w *waiter) bool {
	for i, o := range f.waiters {
		if o == w {
			f.waiters = append(f.waiters[:i], f.waiters[i+1:]...)
			f.signalLocked()
			return true
		}
	}
	return false
}

func (f *Fake) signalLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// waiter is one timer, ticker (period > 0) or AfterFunc call (fn != nil).
type waiter struct {
	f      *Fake
	ch     chan time.Time
	fn     func()
	period time.Duration

	// guarded by f.mu
	at  time.Time
	seq uint64
}

func (w *waiter) fire(now time.Time) {
	if w.fn != nil {
		w.fn()
		return
	}
	select {
	case w.ch <- now:
	default: // the reader is behind: drop, like time.Ticker
	}
}

func (w *waiter) C() <-chan time.Time { return w.ch }

// Stop deactivates w and, like the time package since Go 1.23, discards a
// value sent but not yet received.
func (w *waiter) Stop() bool {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	w.drain()
	return w.f.removeLocked(w)
}

func (w *waiter) drain() {
	select {
	case <-w.ch:
	default:
	}
}

func (w *waiter) Reset(d time.Duration) bool {
	w.f.mu.Lock()
	w.drain()
	active := w.f.removeLocked(w)
	now := w.f.now
	if d > 0 {
		w.at = now.Add(d)
		w.f.addLocked(w)
		w.f.mu.Unlock()
		return active
	}
	w.f.mu.Unlock()
	// Due already: fire now, as the time package does.
	if w.fn != nil {
		go w.fn()
	} else {
		w.fire(now)
	}
	return active
}

func (w *waiter) resetTicker(d time.Duration) {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	w.drain()
	w.f.removeLocked(w)
	w.period = d
	w.at = w.f.now.Add(d)
	w.f.addLocked(w)
}

// tickerOf is a waiter seen as a clock.Ticker.
type tickerOf struct{ w *waiter }

func (t tickerOf) C() <-chan time.Time { return t.w.ch }
func (t tickerOf) Stop()               { t.w.Stop() }

func (t tickerOf) Reset(d time.Duration) {
	if d <= 0 {
		panic("clocktest: non-positive interval for Ticker.Reset")
	}
	t.w.resetTicker(d)
}
