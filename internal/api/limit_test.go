package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/clock"
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

func TestLimitKey(t *testing.T) {
	for _, c := range []struct{ ip, want string }{
		{"203.0.113.7", "203.0.113.7"},
		{"::ffff:203.0.113.7", "203.0.113.7"}, // IPv4-mapped is IPv4
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"not an address", "not an address"},
	} {
		if got := limitKey(c.ip); got != c.want {
			t.Errorf("limitKey(%q) = %q, want %q", c.ip, got, c.want)
		}
	}
}

// One IPv6 /64 is one client: walking its addresses does not reset the
// limit, and an IPv4-mapped address counts as its IPv4 address.
func TestSignInLimitPerIPv6Prefix(t *testing.T) {
	a := &API{signins: newWindowLimiter(MaxSignInFailuresPerIP, SignInWindow), clock: clock.Real()}
	req := func(peer string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/auth/login", nil)
		r.RemoteAddr = peer
		return r
	}
	now := time.Now()
	for i := range MaxSignInFailuresPerIP {
		// Every attempt from another address of the same /64.
		a.signins.add(a.limitKey(req(fmt.Sprintf("[2001:db8:aa:bb::%x]:4000", i+1))), now)
	}
	if over, _ := a.signins.exceeded(a.limitKey(req("[2001:db8:aa:bb:dead:beef:1:2]:4000")), now); !over {
		t.Error("a fresh address of the same /64 is not limited")
	}
	if over, _ := a.signins.exceeded(a.limitKey(req("[2001:db8:aa:bc::1]:4000")), now); over {
		t.Error("the neighbouring /64 is limited")
	}
	for range MaxSignInFailuresPerIP {
		a.signins.add(a.limitKey(req("[::ffff:198.51.100.4]:4000")), now)
	}
	if over, _ := a.signins.exceeded(a.limitKey(req("198.51.100.4:4000")), now); !over {
		t.Error("IPv4 and its IPv4-mapped form are counted apart")
	}
	w := httptest.NewRecorder()
	if a.ipAllowed(w, req("[2001:db8:aa:bb::77]:1")) || w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Errorf("ipAllowed: %d %v", w.Code, w.Header())
	}
}
