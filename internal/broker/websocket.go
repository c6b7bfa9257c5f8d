package broker

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// WebSocketPath is where IoT Hub devices find MQTT over WebSockets:
// wss://{host}:443/$iothub/websocket, for boxes behind firewalls that pass
// only HTTPS.
const WebSocketPath = "/$iothub/websocket"

// wsListener lets the HTTPS server hand MQTT-over-WebSocket connections to
// mochi. It is registered with mochi as a listener so that mochi closes its
// clients on shutdown; it opens no socket of its own.
type wsListener struct {
	mu        sync.Mutex
	establish listeners.EstablishFn
	closed    bool
	upgrader  websocket.Upgrader
	limits    *connLimits
	log       *slog.Logger
}

const wsListenerID = "wss"

func newWSListener(log *slog.Logger, limits *connLimits) *wsListener {
	return &wsListener{
		log: log, limits: limits,
		upgrader: websocket.Upgrader{
			Subprotocols:     []string{"mqtt"},
			HandshakeTimeout: 30 * time.Second,
			// Devices are not browsers: there is no origin to check, and
			// the connection is authenticated by its MQTT CONNECT.
			CheckOrigin: func(*http.Request) bool { return true },
		},
	}
}

func (l *wsListener) ID() string              { return wsListenerID }
func (l *wsListener) Address() string         { return WebSocketPath }
func (l *wsListener) Protocol() string        { return "wss" }
func (l *wsListener) Init(*slog.Logger) error { return nil }
func (l *wsListener) Serve(establish listeners.EstablishFn) {
	l.mu.Lock()
	l.establish = establish
	l.mu.Unlock()
}

func (l *wsListener) Close(closeClients listeners.CloseFn) {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	closeClients(wsListenerID)
}

// ServeHTTP upgrades the request and runs the MQTT connection on it until
// it ends.
func (l *wsListener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	establish, closed := l.establish, l.closed
	l.mu.Unlock()
	if establish == nil || closed {
		http.Error(w, "MQTT over WebSocket is not available", http.StatusServiceUnavailable)
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "this endpoint speaks MQTT over WebSocket (subprotocol mqtt)", http.StatusUpgradeRequired)
		return
	}
	// The connection counts against the node's MQTT connection cap until
	// it ends.
	if !l.limits.acquire(wsListenerID, r.RemoteAddr) {
		http.Error(w, "MQTT connection limit reached", http.StatusServiceUnavailable)
		return
	}
	defer l.limits.release()
	c, err := l.upgrader.Upgrade(w, r, nil) // writes its own error answer
	if err != nil {
		l.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	// The CONNECT must arrive within the connect timeout; mochi then sets
	// the keep-alive deadline.
	c.NetConn().SetReadDeadline(time.Now().Add(l.limits.connectTimeout))
	conn := &wsConn{Conn: c.NetConn(), ws: c, limits: l.limits}
	err = establish(wsListenerID, newFirstPacketConn(conn))
	if errors.Is(err, errConnectTooLarge) {
		l.limits.refusedConnect.Inc()
	}
	if err != nil && !errors.Is(err, io.EOF) {
		l.log.Debug("websocket MQTT connection ended", "remote", r.RemoteAddr, "err", err)
	}
	c.Close()
}

// wsConn is an MQTT byte stream over WebSocket binary messages: a message
// may hold part of a packet or several packets.
type wsConn struct {
	net.Conn // deadlines, addresses and Close of the underlying connection
	ws       *websocket.Conn
	r        io.Reader // the message being read, if any
	limits   *connLimits
}

var errTextFrame = errors.New("MQTT over WebSocket needs binary messages")

func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			kind, r, err := c.ws.NextReader()
			if err != nil {
				return 0, err
			}
			if kind != websocket.BinaryMessage {
				return 0, errTextFrame
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n == 0 {
				continue // an empty or finished message: take the next
			}
			err = nil
		}
		return n, err
	}
}

// Write sends p as one binary message; a message that cannot be written
// within the write timeout drops the client.
func (c *wsConn) Write(p []byte) (int, error) {
	c.ws.SetWriteDeadline(time.Now().Add(c.limits.writeTimeout))
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		// gorilla hides the deadline error behind its own net.Error.
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			c.limits.writeTimedOut(c.RemoteAddr().String())
			c.ws.Close()
		}
		return 0, err
	}
	return len(p), nil
}

// SetDeadline sets the read deadline (mochi's keep-alive); writes have
// their own bound.
func (c *wsConn) SetDeadline(t time.Time) error { return c.Conn.SetReadDeadline(t) }

func (c *wsConn) Close() error { return c.ws.Close() }

// NetConn returns the connection under the WebSocket.
func (c *wsConn) NetConn() net.Conn { return c.Conn }
