package commitlog

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestKillNineLosesNothingAcknowledged runs a writer in a child process:
// eight goroutines append (so groups form), another drops old segments,
// and the child prints each acknowledged record. The test kills it with
// SIGKILL at random moments (mid-write, mid-fsync, mid-roll, mid-drop),
// reopens the log, and checks that every acknowledged record not below a
// drop point is there, whole, at its offset; then it starts the child again
// on the same directory.
func TestKillNineLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test")
	}
	dir := t.TempDir()
	rounds := 12
	acked := map[uint64]string{}
	var dropped uint64 // the highest drop point announced
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
		cmd.Env = append(os.Environ(), "COMMITLOG_CRASH_DIR="+dir, "COMMITLOG_CRASH_ROUND="+strconv.Itoa(round))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		wg.Go(func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) == 3 && f[0] == "ack" {
					off, _ := strconv.ParseUint(f[1], 10, 64)
					mu.Lock()
					acked[off] = f[2]
					mu.Unlock()
				}
				if len(f) == 2 && f[0] == "drop" {
					off, _ := strconv.ParseUint(f[1], 10, 64)
					mu.Lock()
					dropped = max(dropped, off)
					mu.Unlock()
				}
			}
		})
		time.Sleep(time.Duration(150+rand.IntN(400)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		wg.Wait()

		l, err := Open(dir, Options{SegmentBytes: 16 << 10})
		if err != nil {
			t.Fatalf("round %d: open after kill -9: %v", round, err)
		}
		if rec := l.Recovery(); rec.Lost != 0 {
			t.Fatalf("round %d: recovery lost acknowledged records: %+v", round, rec)
		}
		have := map[uint64]string{}
		for _, e := range readAll(t, l, 0) {
			have[e.Offset] = string(e.Payload)
		}
		missing := 0
		for off, p := range acked {
			if off < dropped {
				continue
			}
			if have[off] != p {
				missing++
				if missing < 5 {
					t.Errorf("round %d: acknowledged record %d (%s) is %q after kill -9", round, off, p, have[off])
				}
			}
		}
		if missing > 0 {
			t.Fatalf("round %d: %d acknowledged records lost", round, missing)
		}
		l.Close()
		t.Logf("round %d: %d records acknowledged so far, all there (dropped below %d; torn bytes cut: %d)",
			round, len(acked), dropped, l.Recovery().TornBytes)
	}
	if len(acked) < 1000 {
		t.Fatalf("only %d records acknowledged in %d rounds: the child did not write much", len(acked), rounds)
	}
}

// TestCrashChild is the writer of TestKillNineLosesNothingAcknowledged; it
// runs only in its child process, until killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("COMMITLOG_CRASH_DIR")
	if dir == "" {
		t.Skip("the child process of TestKillNineLosesNothingAcknowledged")
	}
	round := os.Getenv("COMMITLOG_CRASH_ROUND")
	l, err := Open(dir, Options{SegmentBytes: 16 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(3)
	}
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	say := func(format string, args ...any) {
		mu.Lock()
		fmt.Fprintf(w, format, args...)
		w.Flush()
		mu.Unlock()
	}
	for g := range 8 {
		go func() {
			for i := 0; ; i++ {
				p := fmt.Sprintf("r%s-g%d-%d-%s", round, g, i, strings.Repeat("x", rand.IntN(300)))
				off, err := l.Append(context.Background(), []byte(p))
				if err != nil {
					fmt.Fprintln(os.Stderr, "child append:", err)
					os.Exit(3)
				}
				say("ack %d %s\n", off, p)
			}
		}()
	}
	for {
		time.Sleep(20 * time.Millisecond)
		if next := l.Next(); next > 2000 {
			at := next - 2000
			say("drop %d\n", at)
			if _, err := l.DropBefore(at); err != nil {
				fmt.Fprintln(os.Stderr, "child drop:", err)
				os.Exit(3)
			}
		}
	}
}
