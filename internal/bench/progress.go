package bench

import (
	"fmt"
	"io"
	"math"
	"sync"
	"time"
)

// progressEvery is how often a long step says how far it is.
const progressEvery = 3 * time.Second

// ticker prints "bench: what: status (elapsed)" every progressEvery until
// stop is called; status may be nil. It prints nothing for a step that
// ends sooner.
func ticker(w io.Writer, what string, status func() string) (stop func()) {
	if w == nil || w == io.Discard {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	wg.Go(func() {
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			s := ""
			if status != nil {
				s = ": " + status()
			}
			fmt.Fprintf(w, "bench: %s%s (%s)\n", what, s, time.Since(start).Round(time.Second))
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() { close(done); wg.Wait() })
	}
}

// reachedFraction is the share of the asked load under which a
// benchmark warns that it did not reach it.
const reachedFraction = 0.95

// shortfall writes the figure line "name: ratio ratio" (reached/asked) to
// out and, when the asked load was not reached, a warning to warn.
func shortfall(out, warn io.Writer, name, what string, asked, reached float64, unit string) {
	if asked <= 0 || math.IsNaN(reached) {
		return
	}
	ratio := reached / asked
	fmt.Fprintf(out, "%s: %.3f ratio\n", name, ratio)
	if ratio < reachedFraction {
		fmt.Fprintf(warn, "warning: %s: asked %s %s, reached %s %s (%.0f%%); the figures describe the lower load\n",
			what, fmtNum(asked), unit, fmtNum(reached), unit, ratio*100)
	}
}

func fmtNum(v float64) string {
	if v == math.Trunc(v) || v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}
