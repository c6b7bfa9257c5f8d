package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Connection limits. Every connection to the MQTT listeners and the
// WebSocket endpoint counts against one per-node cap from accept to close,
// authenticated or not; it must send a complete CONNECT within
// ConnectTimeout of being accepted (TLS handshake included); each write to
// it must complete within WriteTimeout; no packet may be larger than
// MaxPacketSize, and the CONNECT no larger than MaxConnectPacketSize.
const (
	// DefaultConnectTimeout is the time from accept to a complete CONNECT.
	DefaultConnectTimeout = 10 * time.Second
	// DefaultWriteTimeout bounds each write to a client.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultMaxPacketSize is IoT Hub's 256 KiB device-to-cloud message
	// limit plus 16 KiB for the topic (which carries the property bag),
	// MQTT 5 properties and headers. Telemetry payloads over 256 KiB
	// within it are recorded as rejected; larger packets close the
	// connection.
	DefaultMaxPacketSize = 256<<10 + 16<<10
	// maxMQTTPacketSize is the largest packet MQTT can encode: a
	// remaining length of 268,435,455 and its 5-byte header.
	maxMQTTPacketSize = 268435455 + 5
	// minMaxPacketSize is the smallest maximum packet size accepted: a
	// device's twin and method traffic needs a few KiB.
	minMaxPacketSize = 4 << 10
	// MaxConnectPacketSize bounds the CONNECT packet, read before the
	// client is authenticated: device CONNECTs are a few hundred bytes.
	MaxConnectPacketSize = 16 << 10
	// maxPendingWrites bounds the packets queued for one client (mochi's
	// default is 8,192); beyond it mochi drops the publish.
	maxPendingWrites = 256
	// limitLogEvery is the least time between two log lines about the
	// same kind of refusal or failure.
	limitLogEvery = 10 * time.Second
)

// DefaultMaxConnections is the connection cap for a process whose open-file
// limit is nofile: the limit less room for the database, the HTTPS API,
// WebSocket devices and files (a tenth of it, at least 256 and at most
// 4,096 descriptors).
func DefaultMaxConnections(nofile uint64) int {
	if nofile == 0 {
		return 1
	}
	reserve := min(max(nofile/10, 256), 4096)
	if nofile <= 2*reserve {
		return int(max(nofile/2, 1))
	}
	return int(min(nofile-reserve, math.MaxInt32))
}

// connLimits is the node's connection cap and per-connection bounds, shared
// by the listeners and the WebSocket endpoint.
type connLimits struct {
	max            int64
	connectTimeout time.Duration
	writeTimeout   time.Duration
	log            *slog.Logger

	open           atomic.Int64
	refusedCap     prometheus.Counter
	refusedConnect prometheus.Counter // CONNECT over MaxConnectPacketSize
	writeTimeouts  prometheus.Counter

	capLog   rateLog
	writeLog rateLog
}

func newConnLimits(cfg Config, refused *prometheus.CounterVec, log *slog.Logger) *connLimits {
	return &connLimits{
		max:            int64(cfg.MaxConnections),
		connectTimeout: cfg.ConnectTimeout,
		writeTimeout:   cfg.WriteTimeout,
		log:            log,
		refusedCap:     refused.WithLabelValues("connection_cap"),
		refusedConnect: refused.WithLabelValues("connect_too_large"),
		writeTimeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_mqtt_write_timeouts_total",
			Help: "MQTT clients dropped because a write to them did not complete within the write timeout."}),
	}
}

// acquire counts a new connection; false means the cap is reached and the
// connection must be closed at once.
func (l *connLimits) acquire(listener, remote string) bool {
	n := l.open.Add(1)
	if n <= l.max {
		return true
	}
	l.open.Add(-1)
	l.refusedCap.Inc()
	if suppressed, ok := l.capLog.allow(time.Now()); ok {
		l.log.Warn("MQTT connection refused: the node's connection cap is reached; raise --mqtt-max-connections "+
			"(and the open-file limit, ulimit -n) if this node should take more",
			"cap", l.max, "listener", listener, "remote", remote, "refused_since_last_log", suppressed)
	}
	return false
}

func (l *connLimits) release() { l.open.Add(-1) }

// writeTimedOut logs a client dropped for not taking its bytes.
func (l *connLimits) writeTimedOut(remote string) {
	l.writeTimeouts.Inc()
	if suppressed, ok := l.writeLog.allow(time.Now()); ok {
		l.log.Info("dropping MQTT client: a write to it did not complete in time",
			"remote", remote, "write_timeout", l.writeTimeout, "dropped_since_last_log", suppressed)
	}
}

// rateLog lets one log line through per limitLogEvery and counts the ones
// it held back.
type rateLog struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (r *rateLog) allow(now time.Time) (suppressed int, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.last.IsZero() && now.Sub(r.last) < limitLogEvery {
		r.suppressed++
		return 0, false
	}
	suppressed, r.suppressed, r.last = r.suppressed, 0, now
	return suppressed, true
}

// boundedConn is a client's network connection (below TLS) that counts
// against the connection cap until closed and bounds every write: a write
// that does not complete within the write timeout closes the connection,
// so a client that stops reading is dropped instead of holding the
// goroutines (and locks) that write to it. Read deadlines pass through;
// write deadlines set by callers (mochi's keep-alive, TLS close_notify)
// can only shorten the bound.
type boundedConn struct {
	net.Conn
	limits *connLimits
	// writeDeadline is the callers' write deadline in Unix nanoseconds, 0
	// for none.
	writeDeadline atomic.Int64
	closeOnce     sync.Once
	closeErr      error
	onClose       func(*boundedConn)
}

func newBoundedConn(c net.Conn, limits *connLimits, onClose func(*boundedConn)) *boundedConn {
	return &boundedConn{Conn: c, limits: limits, onClose: onClose}
}

func (c *boundedConn) Write(p []byte) (int, error) {
	bound := time.Now().Add(c.limits.writeTimeout)
	d, ours := bound, true
	if w := c.writeDeadline.Load(); w != 0 && w < bound.UnixNano() {
		d, ours = time.Unix(0, w), false
	}
	if err := c.Conn.SetWriteDeadline(d); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		if ours {
			c.limits.writeTimedOut(c.RemoteAddr().String())
		}
		c.Close()
	}
	return n, err
}

// NetConn returns the connection below, for socket options.
func (c *boundedConn) NetConn() net.Conn { return c.Conn }

// SetDeadline sets the read deadline and the callers' write deadline.
func (c *boundedConn) SetDeadline(t time.Time) error {
	c.SetWriteDeadline(t)
	return c.Conn.SetReadDeadline(t)
}

// SetWriteDeadline sets the callers' write deadline; Write applies it.
func (c *boundedConn) SetWriteDeadline(t time.Time) error {
	var ns int64
	if !t.IsZero() {
		ns = t.UnixNano()
	}
	c.writeDeadline.Store(ns)
	return nil
}

// Close closes the connection once and releases its place under the cap.
func (c *boundedConn) Close() error {
	c.closeOnce.Do(func() {
		c.closeErr = c.Conn.Close()
		c.limits.release()
		if c.onClose != nil {
			c.onClose(c)
		}
	})
	return c.closeErr
}

// errConnectTooLarge is a first packet announcing more than
// MaxConnectPacketSize bytes.
var errConnectTooLarge = fmt.Errorf("CONNECT packet larger than %d bytes", MaxConnectPacketSize)

// connectHeader follows the fixed header of a connection's first packet
// as its bytes pass and fails once the header announces more than
// MaxConnectPacketSize bytes, before mochi allocates a buffer of the
// announced size. Later packets are mochi's to check against the maximum
// packet size.
type connectHeader struct {
	checked bool
	header  int    // bytes of the fixed header seen: the type byte and the length
	length  uint32 // remaining length decoded so far
	shift   uint
}

func (g *connectHeader) check(p []byte) error {
	if g.checked {
		return nil
	}
	for _, b := range p {
		if g.header == 0 { // the packet type
			g.header++
			continue
		}
		g.header++
		g.length |= uint32(b&0x7f) << g.shift
		g.shift += 7
		if g.length > MaxConnectPacketSize || (b&0x80 != 0 && g.header == 5) {
			return errConnectTooLarge
		}
		if b&0x80 == 0 {
			g.checked = true
			break
		}
	}
	return nil
}
