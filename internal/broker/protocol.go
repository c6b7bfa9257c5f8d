package broker

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Protocol checks that mochi does not make, or makes too leniently, for a
// broker whose clients are all potentially hostile devices.
//
//   - Wills. IoT Hub has no will messages, and a will is a PUBLISH the
//     server sends on the client's behalf, after the client is gone, on a
//     topic of the client's choosing, which no ACL check sees. A CONNECT
//     with the will flag is refused, for every identity (device or
//     provisioning client), before authentication; the will is cleared and
//     an OnWill hook empties any will that would still be sent.
//   - Topic names. A PUBLISH topic name with '+' or '#' is malformed
//     (MQTT-3.3.2-2), however it arrives: directly, or through an MQTT 5
//     topic alias (an alias is bound by a PUBLISH that carries the name,
//     which is checked). The connection is closed, with DISCONNECT 0x90
//     (Topic Name invalid) on MQTT 5. mochi would close it too, with 0x82,
//     and log the whole packet, payload included, at warn level (which
//     Warden discards): Warden logs the refusal itself, without the
//     payload. mochi resolves an alias only after its ACL check, so Warden
//     keeps each connection's aliases and gives the ACL and telemetry
//     hooks the name an alias stands for; an alias never bound is a
//     protocol error (0x82).
//   - Receive Maximum. An MQTT 5 CONNECT with the Receive Maximum property
//     present and 0 is a protocol error (MQTT 5, 3.1.2.11.3: "It is a
//     Protocol Error to include the Receive Maximum value more than once or
//     for it to have the value 0"): CONNACK 0x82. mochi decodes an absent
//     property and a 0 alike, so the CONNECT's bytes are read as they
//     arrive (connectScanner).

// Why a connection is refused: metric labels of warden_connections_refused_total.
const (
	reasonWill           = "will-not-supported"
	reasonReceiveMaximum = "receive-maximum-zero"
)

// willRefusal: MQTT 5 has no reason code for "wills are not supported";
// 0x83 Implementation specific error is the code the specification gives
// for a CONNECT that is valid but not accepted by this server. MQTT 3.1.1
// has only five return codes; 5 (not authorized) is the fitting one: the
// client is not allowed what it asked for. (0x9A Retain not supported
// and 0x9B QoS not supported are about the will's retain flag and QoS,
// not about having a will.)
func willRefusal() *refusal {
	return refuse(reasonWill, packets.ErrBadUsernameOrPassword, packets.ErrImplementationSpecificError,
		errors.New("will messages are not supported (IoT Hub has none)"))
}

func receiveMaximumRefusal() *refusal {
	return refuse(reasonReceiveMaximum, packets.ErrProtocolViolation, packets.ErrProtocolViolation,
		errors.New("a Receive Maximum of 0 is a protocol error"))
}

// checkConnect refuses what no identity may ask for. It runs before
// authentication.
func checkConnect(cl *mqtt.Client, pk packets.Packet) *refusal {
	if pk.Connect.WillFlag || atomic.LoadUint32(&cl.Properties.Will.Flag) != 0 {
		clearWill(cl)
		return willRefusal()
	}
	if pk.ProtocolVersion >= 5 {
		if sc, ok := cl.Net.Conn.(*firstPacketConn); ok && sc.zeroReceiveMaximum() {
			return receiveMaximumRefusal()
		}
	}
	return nil
}

func clearWill(cl *mqtt.Client) {
	atomic.StoreUint32(&cl.Properties.Will.Flag, 0)
	cl.Properties.Will = mqtt.Will{}
}

// protocolHook checks every PUBLISH a client sends before mochi sees it,
// and makes sure no will is ever sent.
type protocolHook struct {
	mqtt.HookBase
	b         *Broker
	maxPacket uint32 // announced in CONNACKs

	mu       sync.Mutex
	byClient map[*mqtt.Client]*topicAliases // MQTT 5 connections that bound an alias
}

func (h *protocolHook) ID() string { return "warden-protocol" }

func (h *protocolHook) Provides(b byte) bool {
	switch b {
	case mqtt.OnPacketRead, mqtt.OnPacketEncode, mqtt.OnWill, mqtt.OnWillSent, mqtt.OnDisconnect:
		return true
	}
	return false
}

var errTopicName = errors.New("topic name invalid")

// OnPacketRead runs in the client's read loop, after decoding. An error
// ends the connection.
func (h *protocolHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Type == packets.Connect && pk.Connect.WillFlag {
		// mochi refuses some wills itself, before any hook, with codes
		// that 3.1.1 does not have (0x9A for a retained will, 0x9B for
		// QoS 2) or for a will that MQTT allows (an empty payload). Every
		// will is refused by checkConnect instead, with one code and
		// counted, so only the flag is kept.
		pk.Connect.WillRetain, pk.Connect.WillQos = false, 0
		pk.Connect.WillTopic, pk.Connect.WillPayload = "-", []byte{0}
		return pk, nil
	}
	if pk.FixedHeader.Type != packets.Publish || cl.Net.Inline {
		return pk, nil
	}
	if strings.ContainsAny(pk.TopicName, "+#\x00") {
		return pk, h.closeWith(cl, pk, packets.ErrTopicNameInvalid, "topic name with a wildcard")
	}
	if !pk.Properties.TopicAliasFlag {
		if pk.TopicName == "" {
			return pk, h.closeWith(cl, pk, packets.ErrProtocolViolationNoTopic, "empty topic name")
		}
		return pk, nil
	}
	if pk.Properties.TopicAlias == 0 || pk.Properties.TopicAlias > maxTopicAlias {
		return pk, h.closeWith(cl, pk, packets.ErrTopicAliasInvalid, "topic alias out of range")
	}
	aliases := h.aliases(cl)
	if pk.TopicName != "" { // binds the alias (mochi binds it too)
		aliases.set(pk.Properties.TopicAlias, pk.TopicName)
		return pk, nil
	}
	name, ok := aliases.get(pk.Properties.TopicAlias)
	if !ok {
		return pk, h.closeWith(cl, pk, packets.ErrProtocolViolationNoTopic, "topic alias never bound")
	}
	// The ACL and telemetry hooks then see the real name: mochi resolves
	// aliases only after its ACL check.
	pk.TopicName = name
	return pk, nil
}

// maxTopicAlias is the Topic Alias Maximum announced to MQTT 5 clients:
// each alias holds a topic name of up to 64 KiB, so there are few.
const maxTopicAlias = 16

// topicAliases is the inbound alias table of one connection.
type topicAliases struct {
	mu    sync.Mutex
	names map[uint16]string
}

func (a *topicAliases) set(id uint16, name string) {
	a.mu.Lock()
	a.names[id] = name
	a.mu.Unlock()
}

func (a *topicAliases) get(id uint16) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	name, ok := a.names[id]
	return name, ok
}

func (h *protocolHook) aliases(cl *mqtt.Client) *topicAliases {
	h.mu.Lock()
	defer h.mu.Unlock()
	a, ok := h.byClient[cl]
	if !ok {
		a = &topicAliases{names: map[uint16]string{}}
		h.byClient[cl] = a
	}
	return a
}

func (h *protocolHook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	h.mu.Lock()
	delete(h.byClient, cl)
	h.mu.Unlock()
}

// OnPacketEncode announces in an MQTT 5 CONNACK what mochi enforces but
// does not announce: the maximum packet size, and the Topic Alias Maximum
// so that clients know they may use aliases.
func (h *protocolHook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type == packets.Connack && pk.ReasonCode == 0 {
		pk.Properties.MaximumPacketSize = h.maxPacket
		pk.Properties.TopicAliasMaximum = maxTopicAlias
	}
	return pk
}

// closeWith logs a refused PUBLISH (never its payload) and closes the
// connection, with a DISCONNECT carrying code on MQTT 5.
func (h *protocolHook) closeWith(cl *mqtt.Client, pk packets.Packet, code packets.Code, what string) error {
	h.b.log.Info("malformed publish; closing connection", "client", cl.ID, "remote", cl.Net.Remote,
		"problem", what, "topic", truncateForLog(pk.TopicName), "payload_bytes", len(pk.Payload))
	if cl.Properties.ProtocolVersion >= 5 {
		_ = h.b.mqtt.DisconnectClient(cl, code) // writes DISCONNECT and stops the client
	}
	cl.Stop(code)
	return fmt.Errorf("%w: %s", errTopicName, what)
}

// OnWill: no will can be set (checkConnect), so none should ever be about
// to be sent; if one is, it goes out empty, to no topic, and is logged.
func (h *protocolHook) OnWill(cl *mqtt.Client, will mqtt.Will) (mqtt.Will, error) {
	h.b.log.Error("will message suppressed", "client", cl.ID, "topic", truncateForLog(will.TopicName))
	return mqtt.Will{}, nil
}

func (h *protocolHook) OnWillSent(cl *mqtt.Client, pk packets.Packet) {
	h.b.log.Error("a will was sent despite the will checks", "client", cl.ID, "topic", truncateForLog(pk.TopicName))
}

// truncateForLog bounds what a client controls in a log line.
func truncateForLog(s string) string {
	const max = 256
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}

// sendBufferBytes is the kernel send buffer of a device connection. Left
// to itself, Linux grows it to 4 MiB: 150,000 PUBACKs that a device which
// does not read would take before its writes block and its outbox fills
// (outbox.go). What Warden sends a device (acknowledgements, answers,
// C2D messages of at most 64 KiB) needs far less.
const sendBufferBytes = 16 << 10

// limitSendBuffer sets the send buffer of the TCP connection under c,
// found through wrappers that have a NetConn method (as *tls.Conn has).
func limitSendBuffer(c net.Conn) {
	for range 8 {
		switch x := c.(type) {
		case *net.TCPConn:
			_ = x.SetWriteBuffer(sendBufferBytes) // best effort
			return
		case interface{ NetConn() net.Conn }:
			c = x.NetConn()
		default:
			return
		}
	}
}

// firstPacketConn is a client's connection as mochi reads it. It watches
// the bytes of the first packet: it fails a CONNECT announcing more than
// MaxConnectPacketSize bytes before mochi allocates it (connectHeader), and
// notes what the decoded packet cannot tell: whether an MQTT 5 CONNECT
// carried Receive Maximum = 0. After the CONNECT's properties it only
// passes reads through.
type firstPacketConn struct {
	net.Conn
	header connectHeader // used by Read only: mochi's one reader
	mu     sync.Mutex
	scan   connectScanner
}

// newFirstPacketConn wraps a client's connection for mochi and bounds its
// kernel send buffer.
func newFirstPacketConn(c net.Conn) *firstPacketConn {
	limitSendBuffer(c)
	return &firstPacketConn{Conn: c}
}

// NetConn returns the connection below, for socket options.
func (c *firstPacketConn) NetConn() net.Conn { return c.Conn }

func (c *firstPacketConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		if herr := c.header.check(p[:n]); herr != nil {
			return 0, herr
		}
		c.mu.Lock()
		c.scan.feed(p[:n])
		c.mu.Unlock()
	}
	return n, err
}

func (c *firstPacketConn) zeroReceiveMaximum() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.scan.zeroReceiveMax
}

// connectScanner parses the start of a CONNECT, up to the end of its
// properties, from bytes fed in any pieces. It keeps at most
// maxScannedConnect bytes: a CONNECT whose properties end later is not
// scanned (mochi still parses it fully).
type connectScanner struct {
	buf            []byte
	done           bool
	zeroReceiveMax bool
}

const maxScannedConnect = 4096

func (s *connectScanner) feed(p []byte) {
	if s.done {
		return
	}
	room := maxScannedConnect - len(s.buf)
	if len(p) > room {
		p = p[:room]
	}
	s.buf = append(s.buf, p...)
	complete, zero := scanConnectProperties(s.buf)
	if complete || len(s.buf) >= maxScannedConnect {
		s.done, s.zeroReceiveMax = true, zero
		s.buf = nil
	}
}

// scanConnectProperties reads a CONNECT from its first byte. complete is
// false while more bytes are needed; it is true once the properties were
// read, or the bytes are not an MQTT 5 CONNECT, or are malformed (mochi
// reports those).
func scanConnectProperties(b []byte) (complete, zeroReceiveMax bool) {
	r := byteReader{b: b}
	first, ok := r.byte()
	if !ok {
		return false, false
	}
	if first != packets.Connect<<4 {
		return true, false
	}
	if _, ok, bad := r.varint(); !ok || bad {
		return bad, false
	}
	nameLen, ok := r.uint16()
	if !ok || !r.skip(int(nameLen)) {
		return false, false
	}
	version, ok := r.byte()
	if !ok {
		return false, false
	}
	if version != 5 {
		return true, false
	}
	if !r.skip(3) { // connect flags, keep alive
		return false, false
	}
	propLen, ok, bad := r.varint()
	if !ok || bad {
		return bad, false
	}
	end := r.off + propLen
	for r.off < end {
		id, ok := r.byte()
		if !ok {
			return false, false
		}
		var good bool
		switch id {
		case 0x21: // Receive Maximum
			v, ok := r.uint16()
			if !ok {
				return false, false
			}
			if v == 0 {
				zeroReceiveMax = true
			}
			good = true
		case 0x17, 0x19: // Request Problem / Response Information
			good = r.skip(1)
		case 0x22: // Topic Alias Maximum
			good = r.skip(2)
		case 0x11, 0x27: // Session Expiry Interval, Maximum Packet Size
			good = r.skip(4)
		case 0x15, 0x16: // Authentication Method, Authentication Data
			n, ok := r.uint16()
			good = ok && r.skip(int(n))
		case 0x26: // User Property: a string pair
			n, ok := r.uint16()
			good = ok && r.skip(int(n))
			if good {
				n, ok = r.uint16()
				good = ok && r.skip(int(n))
			}
		default: // not a CONNECT property: malformed, mochi refuses it
			return true, zeroReceiveMax
		}
		if !good {
			return false, false
		}
	}
	return true, zeroReceiveMax
}

// byteReader reads big-endian MQTT fields; ok is false when b ends first.
type byteReader struct {
	b   []byte
	off int
}

func (r *byteReader) byte() (byte, bool) {
	if r.off >= len(r.b) {
		return 0, false
	}
	r.off++
	return r.b[r.off-1], true
}

func (r *byteReader) uint16() (uint16, bool) {
	if r.off+2 > len(r.b) {
		return 0, false
	}
	r.off += 2
	return uint16(r.b[r.off-2])<<8 | uint16(r.b[r.off-1]), true
}

func (r *byteReader) skip(n int) bool {
	if r.off+n > len(r.b) {
		return false
	}
	r.off += n
	return true
}

// varint reads a variable byte integer; bad reports one of more than 4
// bytes.
func (r *byteReader) varint() (v int, ok, bad bool) {
	for i := range 4 {
		c, ok := r.byte()
		if !ok {
			return 0, false, false
		}
		v |= int(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return v, true, false
		}
	}
	return 0, false, true
}
