package broker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// logBuffer collects log output safely across goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) count(s string) int { return strings.Count(b.String(), s) }

func testLimits(t *testing.T, cfg Config, out io.Writer) *connLimits {
	t.Helper()
	if cfg.MaxConnections == 0 {
		cfg.MaxConnections = 1000
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = time.Minute
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = time.Minute
	}
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "refused"}, []string{"reason"})
	return newConnLimits(cfg, refused, slog.New(slog.NewTextHandler(out, nil)))
}

// flakyListener fails its first accepts with the errors of a process out
// of file descriptors, then behaves.
type flakyListener struct {
	net.Listener
	failures atomic.Int64
}

func (f *flakyListener) Accept() (net.Conn, error) {
	if f.failures.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: f.Addr(), Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return f.Listener.Accept()
}

// TestListenerSurvivesAcceptErrors: accepts failing with EMFILE do not end
// the accept loop; they are logged (not once per failure), Health reports
// them while they last, and the listener serves connections afterwards.
func TestListenerSurvivesAcceptErrors(t *testing.T) {
	var logs logBuffer
	limits := testLimits(t, Config{}, &logs)
	l := newListener("tcp", "127.0.0.1:0", nil, limits, slog.New(slog.NewTextHandler(&logs, nil)))
	if err := l.Init(nil); err != nil {
		t.Fatal(err)
	}
	flaky := &flakyListener{Listener: l.ln}
	const failures = 12 // 5 ms, 10, 20 … 640 ms, then 1 s each: about 5 s of failing accepts
	flaky.failures.Store(failures)
	l.ln = flaky
	served := make(chan string, 1)
	go l.Serve(func(id string, c net.Conn) error {
		b := make([]byte, 5)
		if _, err := io.ReadFull(c, b); err != nil {
			return err
		}
		served <- string(b)
		return nil
	})
	t.Cleanup(func() { l.Close(func(string) {}) })

	// While the accepts fail, the listener is unhealthy.
	deadline := time.Now().Add(5 * time.Second)
	for l.Health() == nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := l.Health(); err == nil || !strings.Contains(err.Error(), "too many open files") {
		t.Fatalf("health while accepts fail = %v, want the accept error", err)
	}
	c, err := net.Dial("tcp", l.Address())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("hello"))
	select {
	case got := <-served:
		if got != "hello" {
			t.Fatalf("served %q", got)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no connection served after the accept errors")
	}
	if n := flaky.failures.Load(); n >= 0 {
		t.Fatalf("%d failures left: the loop did not retry", n+1)
	}
	if err := l.Health(); err != nil {
		t.Fatalf("health after recovery = %v", err)
	}
	text := logs.String()
	if n := logs.count("MQTT listener cannot accept connections"); n < 1 || n > 5 {
		t.Errorf("%d warnings for %d failures, want a few (rate-limited):\n%s", n, failures, text)
	}
	if !strings.Contains(text, "too many open files") || !strings.Contains(text, "MQTT listener accepting connections again") {
		t.Errorf("log lacks the error or the recovery:\n%s", text)
	}
}

// TestListenerDeadReported: if the socket goes away under the accept loop,
// the listener is reported dead, not silently gone.
func TestListenerDeadReported(t *testing.T) {
	var logs logBuffer
	limits := testLimits(t, Config{}, &logs)
	l := newListener("tls", "127.0.0.1:0", nil, limits, slog.New(slog.NewTextHandler(&logs, nil)))
	if err := l.Init(nil); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		l.Serve(func(string, net.Conn) error { return nil })
		close(done)
	}()
	l.ln.Close() // not through Close: as if the socket failed
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("accept loop still running on a closed socket")
	}
	err := l.Health()
	if err == nil || !strings.Contains(err.Error(), "MQTT listener tls") || !strings.Contains(err.Error(), "stopped") {
		t.Fatalf("health = %v, want the listener reported stopped", err)
	}
	if !strings.Contains(logs.String(), "MQTT listener stopped") {
		t.Errorf("not logged:\n%s", logs.String())
	}
	l.Close(func(string) {})
	if err := l.Health(); err != nil {
		t.Errorf("health after Close = %v, want nil (closed on purpose)", err)
	}
}

// TestListenerConnectionCap: connections beyond the cap are closed at once,
// counted and logged (rate-limited), and a place frees when a connection
// closes.
func TestListenerConnectionCap(t *testing.T) {
	var logs logBuffer
	limits := testLimits(t, Config{MaxConnections: 3}, &logs)
	l := newListener("tcp", "127.0.0.1:0", nil, limits, slog.New(slog.NewTextHandler(&logs, nil)))
	if err := l.Init(nil); err != nil {
		t.Fatal(err)
	}
	go l.Serve(func(_ string, c net.Conn) error {
		_, err := io.Copy(io.Discard, c) // idle until the client goes
		return err
	})
	t.Cleanup(func() { l.Close(func(string) {}) })
	dial := func() net.Conn {
		c, err := net.Dial("tcp", l.Address())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	var held []net.Conn
	for range 3 {
		held = append(held, dial())
	}
	waitFor(t, "3 connections open", func() bool { return limits.open.Load() == 3 })
	for i := range 5 {
		c := dial()
		if !closedSoon(c, 3*time.Second) {
			t.Fatalf("connection %d beyond the cap stays open", i+4)
		}
	}
	if got := counterValue(limits.refusedCap); got != 5 {
		t.Errorf("refused counter = %v, want 5", got)
	}
	if n := logs.count("connection cap is reached"); n != 1 {
		t.Errorf("%d log lines for 5 refusals, want 1 (rate-limited):\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "cap=3") || !strings.Contains(logs.String(), "--mqtt-max-connections") {
		t.Errorf("log line lacks the cap or how to raise it:\n%s", logs.String())
	}
	// A place frees when a connection ends.
	held[0].Close()
	waitFor(t, "2 connections open", func() bool { return limits.open.Load() == 2 })
	c := dial()
	if closedSoon(c, 500*time.Millisecond) {
		t.Fatal("connection under the cap closed")
	}
}

// TestBoundedConnWriteTimeout: a write the peer does not take within the
// bound fails and closes the connection; a peer that reads is unaffected
// by a deadline set earlier by a caller (mochi's keep-alive 0 clears it).
func TestBoundedConnWriteTimeout(t *testing.T) {
	var logs logBuffer
	limits := testLimits(t, Config{WriteTimeout: 300 * time.Millisecond}, &logs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	limits.open.Add(1)
	closed := make(chan struct{})
	c := newBoundedConn(raw, limits, func(*boundedConn) { close(closed) })
	c.SetDeadline(time.Time{}) // keep-alive 0: no deadline from mochi
	chunk := make([]byte, 64<<10)
	start := time.Now()
	var werr error
	for time.Since(start) < 30*time.Second {
		if _, werr = c.Write(chunk); werr != nil {
			break
		}
	}
	if !errors.Is(werr, os.ErrDeadlineExceeded) {
		t.Fatalf("write to a peer that does not read: %v", werr)
	}
	select {
	case <-closed:
	default:
		t.Fatal("connection not closed after the write timeout")
	}
	if limits.open.Load() != 0 {
		t.Errorf("open = %d after close, want 0", limits.open.Load())
	}
	if got := counterValue(limits.writeTimeouts); got != 1 {
		t.Errorf("write timeouts = %v, want 1", got)
	}
	if !strings.Contains(logs.String(), "dropping MQTT client") {
		t.Errorf("not logged:\n%s", logs.String())
	}
}

func TestConnectGuard(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header []byte
		ok     bool
	}{
		{"small", []byte{0x10, 0x20}, true},
		{"at the limit", append([]byte{0x10}, varint(MaxConnectPacketSize)...), true},
		{"one over", append([]byte{0x10}, varint(MaxConnectPacketSize+1)...), false},
		{"256 MiB", []byte{0x10, 0xff, 0xff, 0xff, 0x7f}, false},
		{"5-byte length", []byte{0x10, 0x80, 0x80, 0x80, 0x80, 0x01}, false},
	} {
		for _, step := range []int{1, 64} { // byte by byte, and all at once
			t.Run(fmt.Sprintf("%s/%d", tc.name, step), func(t *testing.T) {
				a, b := net.Pipe()
				defer a.Close()
				go func() {
					for i := 0; i < len(tc.header); i += step {
						b.Write(tc.header[i:min(i+step, len(tc.header))])
					}
					b.Write(make([]byte, 8)) // then part of a body
					b.Close()
				}()
				g := &firstPacketConn{Conn: a}
				got, err := io.ReadAll(g)
				if tc.ok && (err != nil || len(got) != len(tc.header)+8) {
					t.Fatalf("read %d bytes, %v; want everything", len(got), err)
				}
				if !tc.ok {
					if !errors.Is(err, errConnectTooLarge) {
						t.Fatalf("err = %v, want errConnectTooLarge", err)
					}
					if len(got) >= len(tc.header) {
						t.Fatalf("the whole header (%d bytes) got through", len(got))
					}
				}
			})
		}
	}
}

func varint(n int) []byte {
	var b []byte
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

func TestDefaultMaxConnections(t *testing.T) {
	for nofile, want := range map[uint64]int{
		20000:        18000,   // a tenth kept for the database, HTTPS, files
		1024:         768,     // at least 256 kept
		1 << 20:      1044480, // at most 4,096 kept
		300:          150,     // tiny limits: half
		1:            1,
		^uint64(0):   2147483647,
		1<<32 + 4096: 2147483647,
	} {
		if got := DefaultMaxConnections(nofile); got != want {
			t.Errorf("DefaultMaxConnections(%d) = %d, want %d", nofile, got, want)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// closedSoon reports whether the server closes c within d.
func closedSoon(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}
