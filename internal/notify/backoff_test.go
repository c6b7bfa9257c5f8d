package notify

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	cfg := Config{BaseBackoff: 30 * time.Second}
	for attempts, want := range map[int]time.Duration{
		1: 30 * time.Second, 2: time.Minute, 3: 2 * time.Minute, 8: 64 * time.Minute,
		10: 256 * time.Minute, 11: 6 * time.Hour, 1000: 6 * time.Hour,
	} {
		if got := cfg.backoff(attempts); got != want {
			t.Errorf("backoff(%d) = %s, want %s", attempts, got, want)
		}
	}
}

func TestTransportError(t *testing.T) {
	if got := transportError(errors.New("tls: handshake failure"), time.Second); got != "tls: handshake failure" {
		t.Errorf("transportError = %q", got)
	}
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	_, err := newHTTPClient(50*time.Millisecond, true).Post(srv.URL+"/hook?token=secret", "application/json", nil)
	if got := transportError(err, 50*time.Millisecond); got != "timeout after 50ms" {
		t.Errorf("transportError(%v) = %q, want a timeout", err, got)
	}
}
