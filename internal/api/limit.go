package api

import (
	"net/netip"
	"sync"
	"time"
)

// limitKey is the key the sign-in limit counts a client address under:
// an IPv4 address as it is (also when written as an IPv4-mapped IPv6
// address), an IPv6 address by its /64, the smallest block one subscriber
// is given, so a client cannot dodge the limit by walking its own
// prefix.
func limitKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}

// windowLimiter counts events per key (a client IP) in fixed windows: at
// most max events per window. It guards sign-in and reset requests from
// one address trying many accounts, which the per-account lock does not
// see. State is in memory, per node.
type windowLimiter struct {
	max    int
	window time.Duration

	mu   sync.Mutex
	seen map[string]*windowCount
}

type windowCount struct {
	start time.Time
	n     int
}

// maxLimiterKeys bounds the memory a flood of addresses can take; past it,
// expired windows are dropped.
const maxLimiterKeys = 100_000

func newWindowLimiter(max int, window time.Duration) *windowLimiter {
	return &windowLimiter{max: max, window: window, seen: map[string]*windowCount{}}
}

// exceeded says whether key has used up its window at now, and when the
// window ends.
func (l *windowLimiter) exceeded(key string, now time.Time) (bool, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.seen[key]
	if !ok || now.Sub(c.start) >= l.window {
		return false, time.Time{}
	}
	return c.n >= l.max, c.start.Add(l.window)
}

// add counts one event of key at now.
func (l *windowLimiter) add(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.seen[key]
	if !ok || now.Sub(c.start) >= l.window {
		if len(l.seen) >= maxLimiterKeys {
			for k, v := range l.seen {
				if now.Sub(v.start) >= l.window {
					delete(l.seen, k)
				}
			}
		}
		c = &windowCount{start: now}
		l.seen[key] = c
	}
	c.n++
}
