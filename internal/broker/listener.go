package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Accept back-off after a failed accept (out of file descriptors, a
// connection aborted before it was accepted…): from acceptBackoffMin,
// doubling, to acceptBackoffMax.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// listener is Warden's MQTT listener for TLS and plain TCP. Unlike mochi's
// own, its accept loop survives failed accepts (it backs off and logs) and
// ends only on Close; it counts every connection against the node's cap,
// does the TLS handshake itself under the CONNECT deadline, bounds writes,
// and reports its health.
type listener struct {
	id     string
	addr   string
	tls    *tls.Config // nil: plain TCP
	limits *connLimits
	log    *slog.Logger

	ln     net.Listener
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc

	mu       sync.Mutex
	closed   bool
	conns    map[*boundedConn]struct{} // open connections, for Close
	failures int                       // accepts failed in a row
	failedAt time.Time                 // the first of them
	lastErr  error
	dead     error // why Serve stopped while not closed
	errLog   rateLog
}

func newListener(id, addr string, tlsConfig *tls.Config, limits *connLimits, log *slog.Logger) *listener {
	ctx, cancel := context.WithCancel(context.Background())
	return &listener{id: id, addr: addr, tls: tlsConfig, limits: limits, log: log.With("listener", id),
		ctx: ctx, cancel: cancel, conns: map[*boundedConn]struct{}{}}
}

func (l *listener) ID() string       { return l.id }
func (l *listener) Protocol() string { return "tcp" }

// Address is the bound address once Init succeeded.
func (l *listener) Address() string {
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.addr
}

// Init opens the socket, unless it was handed over already bound.
func (l *listener) Init(*slog.Logger) error {
	if l.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		return err
	}
	l.ln = ln
	return nil
}

// Serve accepts connections until Close. A failed accept is retried after
// a back-off; if the loop ever ends otherwise, the listener is dead and
// Health says so.
func (l *listener) Serve(establish listeners.EstablishFn) {
	defer func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if !l.closed && l.dead == nil {
			l.dead = errors.New("accept loop ended")
		}
	}()
	var backoff time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if l.isClosed() {
				return
			}
			if errors.Is(err, net.ErrClosed) { // the socket is gone: nothing to retry
				l.mu.Lock()
				l.dead = err
				l.mu.Unlock()
				l.log.Error("MQTT listener stopped: its socket was closed", "addr", l.Address(), "err", err)
				return
			}
			backoff = min(max(2*backoff, acceptBackoffMin), acceptBackoffMax)
			l.acceptFailed(err, backoff)
			select {
			case <-time.After(backoff):
			case <-l.ctx.Done():
				return
			}
			continue
		}
		backoff = 0
		l.acceptSucceeded()
		go l.handle(c, establish)
	}
}

func (l *listener) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

func (l *listener) acceptFailed(err error, retry time.Duration) {
	now := time.Now()
	l.mu.Lock()
	if l.failures == 0 {
		l.failedAt = now
	}
	l.failures++
	l.lastErr = err
	failures, since := l.failures, l.failedAt
	suppressed, ok := l.errLog.allow(now)
	l.mu.Unlock()
	if ok {
		l.log.Warn("MQTT listener cannot accept connections; retrying", "addr", l.Address(), "err", err,
			"failures", failures, "since", since, "retry_in", retry, "not_logged", suppressed)
	}
}

func (l *listener) acceptSucceeded() {
	l.mu.Lock()
	failures, since := l.failures, l.failedAt
	l.failures, l.lastErr = 0, nil
	l.mu.Unlock()
	if failures > 0 {
		l.log.Warn("MQTT listener accepting connections again", "addr", l.Address(),
			"failures", failures, "after", time.Since(since).Round(time.Millisecond))
	}
}

// Health is nil while the listener accepts connections, or says why it
// does not.
func (l *listener) Health() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return nil
	case l.dead != nil:
		return fmt.Errorf("MQTT listener %s (%s) stopped: %v", l.id, l.Address(), l.dead)
	case l.failures > 0:
		return fmt.Errorf("MQTT listener %s (%s) cannot accept connections since %s (%d failures): %v",
			l.id, l.Address(), l.failedAt.UTC().Format(time.RFC3339), l.failures, l.lastErr)
	}
	return nil
}

// handle runs one accepted connection: the cap, the TLS handshake and the
// CONNECT under one deadline from accept, then mochi.
func (l *listener) handle(c net.Conn, establish listeners.EstablishFn) {
	deadline := time.Now().Add(l.limits.connectTimeout)
	remote := c.RemoteAddr().String()
	if !l.limits.acquire(l.id, remote) {
		c.Close()
		return
	}
	bc := newBoundedConn(c, l.limits, l.forget)
	if !l.track(bc) {
		bc.Close()
		return
	}
	defer bc.Close()
	// mochi replaces this deadline with the keep-alive one once it has
	// read the CONNECT.
	bc.SetDeadline(deadline)
	var conn net.Conn = bc
	if l.tls != nil {
		tc := tls.Server(bc, l.tls)
		if err := tc.HandshakeContext(l.ctx); err != nil {
			l.log.Debug("TLS handshake failed", "remote", remote, "err", err)
			return
		}
		conn = tc
	}
	err := establish(l.id, newFirstPacketConn(conn))
	conn.Close()
	switch {
	case err == nil, errors.Is(err, io.EOF):
	case errors.Is(err, errConnectTooLarge):
		l.limits.refusedConnect.Inc()
		l.log.Debug("closed an MQTT connection: CONNECT too large", "remote", remote)
	case errors.Is(err, packets.ErrPacketTooLarge):
		l.log.Info("closed an MQTT connection: packet larger than the maximum packet size", "remote", remote)
	default:
		l.log.Debug("MQTT connection ended", "remote", remote, "err", err)
	}
}

func (l *listener) track(c *boundedConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.conns[c] = struct{}{}
	return true
}

func (l *listener) forget(c *boundedConn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

// Close stops accepting, closes mochi's clients of this listener and every
// other open connection (handshaking or waiting for CONNECT); the accept
// loop ends on its own.
func (l *listener) Close(closeClients listeners.CloseFn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()
	l.cancel()
	if l.ln != nil {
		l.ln.Close()
	}
	closeClients(l.id)
	l.mu.Lock()
	open := make([]*boundedConn, 0, len(l.conns))
	for c := range l.conns {
		open = append(open, c)
	}
	l.mu.Unlock()
	for _, c := range open {
		c.Close()
	}
}
