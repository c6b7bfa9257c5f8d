package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func testConfig(dataDir string) Config {
	return Config{DataDir: dataDir, MQTTListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", AdminToken: "wdn_test", Out: io.Discard}
}

func shutdownWithin(t *testing.T, s *Server, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("shutdown: %v", err)
		}
	case <-time.After(d + time.Second):
		t.Fatalf("shutdown took more than %v", d)
	}
}

// TestNewListenErrorLeavesNothing: a taken port fails New with the flag,
// address and cause, before certificates or a database are made, and
// releases the data directory.
func TestNewListenErrorLeavesNothing(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.MQTTTCPListen = busy.Addr().String()
	_, err = New(t.Context(), cfg, slog.New(slog.DiscardHandler))
	var le *ListenError
	if !errors.As(err, &le) || le.Flag != "--mqtt-tcp-listen" || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("New: %v; want a ListenError of --mqtt-tcp-listen with EADDRINUSE", err)
	}
	if want := "--mqtt-tcp-listen " + busy.Addr().String() + ": address already in use"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != lockFileName {
			t.Errorf("%s made by a start that failed on its listeners", e.Name())
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, lockFileName)); len(b) != 0 {
		t.Errorf("the lock file still names a holder: %s", b)
	}
	// The directory is free again: New works.
	s, err := New(t.Context(), testConfig(dir), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	shutdownWithin(t, s, 5*time.Second)
}

// TestShutdownAfterPartialStart: Shutdown works after New alone and after
// a Start cut short, and frees the data directory and the ports.
func TestShutdownAfterPartialStart(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	s, err := New(t.Context(), testConfig(dir), log)
	if err != nil {
		t.Fatal(err)
	}
	addr := s.HTTPAddr()
	shutdownWithin(t, s, 5*time.Second)
	if ln, err := net.Listen("tcp", addr); err != nil {
		t.Errorf("the HTTPS port is still taken after Shutdown: %v", err)
	} else {
		ln.Close()
	}

	s, err = New(t.Context(), testConfig(dir), log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // a signal during start-up
	if err := s.Start(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Start with its context ended: %v", err)
	}
	shutdownWithin(t, s, 5*time.Second)

	// Nothing was marked done: the next start makes the token.
	s, err = New(t.Context(), testConfig(dir), log)
	if err != nil {
		t.Fatal(err)
	}
	if s.operator == nil {
		t.Error("the operator token is marked made by a start that never ran")
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	shutdownWithin(t, s, 10*time.Second)
}

// TestLockHolder: the lock file names its holder as a second start reports
// it.
func TestLockHolder(t *testing.T) {
	dir := t.TempDir()
	since := time.Date(2026, 12, 7, 17, 2, 11, 0, time.Local)
	l, err := lockDataDir(dir, since)
	if err != nil {
		t.Fatal(err)
	}
	defer l.release()
	l.info.Host = "x"
	if err := l.setListen(map[string]string{"https": "127.0.0.1:8443", "mqtts": "127.0.0.1:8883"}); err != nil {
		t.Fatal(err)
	}
	_, err = lockDataDir(dir, since.Add(time.Hour))
	want := "data directory " + dir + " is in use by warden pid " + strconv.Itoa(os.Getpid()) + " on host x since 17:02:11 (https 127.0.0.1:8443, mqtts 127.0.0.1:8883)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("second lock: %v\nwant %q", err, want)
	}
	// Another day: with the date.
	if _, err = lockDataDir(dir, since.Add(48*time.Hour)); err == nil || !strings.Contains(err.Error(), "since 2026-12-07 17:02:11") {
		t.Errorf("second lock two days later: %v", err)
	}
}
