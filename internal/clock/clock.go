// Package clock is the server's one source of time: the current instant,
// timers and tickers. Production code takes a Clock instead of calling the
// time package, so that tests can drive time with the fake in
// internal/clock/clocktest instead of sleeping.
//
// What stays on the time package: network deadlines (the kernel keeps them
// on the wall clock), durations measured for metrics and logs, back-offs
// after errors, and the pause before answering a failed sign-in. They are
// about the machine and the people at it, not about the server's record of
// time, and a test's fake clock must not stall them.
package clock

import "time"

// Clock tells the time and runs timers. Real returns the wall clock;
// clocktest.Fake is a clock that moves only when a test advances it.
type Clock interface {
	// Now is the current instant.
	Now() time.Time
	// NewTimer starts a timer that delivers the time on its channel once d
	// has passed, like time.NewTimer.
	NewTimer(d time.Duration) Timer
	// NewTicker starts a ticker that delivers the time on its channel every
	// d, dropping ticks for a slow reader, like time.NewTicker. d must be
	// positive.
	NewTicker(d time.Duration) Ticker
	// AfterFunc calls f once d has passed, like time.AfterFunc; the
	// returned Timer's channel is nil and Stop cancels the call.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a single event in the future, like *time.Timer.
type Timer interface {
	// C is the channel the time is delivered on (nil for AfterFunc).
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it did so
	// (false: it had already fired or been stopped).
	Stop() bool
	// Reset makes the timer fire d from now; it reports whether the timer
	// was active.
	Reset(d time.Duration) bool
}

// Ticker delivers ticks at intervals, like *time.Ticker.
type Ticker interface {
	// C is the channel the ticks are delivered on.
	C() <-chan time.Time
	// Stop turns the ticker off; no more ticks are sent.
	Stop()
	// Reset stops the ticker and restarts it with period d.
	Reset(d time.Duration)
}

// Real returns the wall clock, backed by the time package.
func Real() Clock { return realClock{} }

// OrReal returns c, or the wall clock if c is nil: the default of a
// configuration's Clock field.
func OrReal(c Clock) Clock {
	if c == nil {
		return Real()
	}
	return c
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

func (realClock) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

func (realClock) AfterFunc(d time.Duration, f func()) Timer {
	return realTimer{time.AfterFunc(d, f)}
}

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time        { return t.t.C }
func (t realTimer) Stop() bool                 { return t.t.Stop() }
func (t realTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }

type realTicker struct{ t *time.Ticker }

func (t realTicker) C() <-chan time.Time   { return t.t.C }
func (t realTicker) Stop()                 { t.t.Stop() }
func (t realTicker) Reset(d time.Duration) { t.t.Reset(d) }
