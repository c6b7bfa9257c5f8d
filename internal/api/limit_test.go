package api

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
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

func TestClientIP(t *testing.T) {
	a := &API{cfg: Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}}}
	for _, c := range []struct {
		peer, xff, want string
	}{
		{"203.0.113.7:5000", "", "203.0.113.7"},
		{"203.0.113.7:5000", "1.2.3.4", "203.0.113.7"}, // not a proxy: its header is ignored
		{"10.1.1.1:443", "", "10.1.1.1"},
		{"10.1.1.1:443", "198.51.100.9", "198.51.100.9"},
		{"10.1.1.1:443", "6.6.6.6, 198.51.100.9, 10.2.2.2", "198.51.100.9"}, // a client-supplied first hop is skipped
		{"[::1]:443", "2001:db8::5", "2001:db8::5"},
		{"10.1.1.1:443", "garbage", "10.1.1.1"},
		{"10.1.1.1:443", "10.3.3.3", "10.1.1.1"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = c.peer
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := a.clientIP(r); got != c.want {
			t.Errorf("peer %s, X-Forwarded-For %q: %s, want %s", c.peer, c.xff, got, c.want)
		}
	}
}
