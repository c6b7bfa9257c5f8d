package broker

import (
	"context"
	"slices"
	"strings"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/warden-iot/warden/internal/hub"
)

// Cloud-to-device delivery.
//
// The queue is in the store, so it outlives connections and restarts. A
// message is sent as a QoS 1 PUBLISH when the device is connected and
// subscribed to devices/{id}/messages/devicebound/#: at once when it is
// queued, else when the device subscribes or connects again (a
// clean-session-0 device keeps its subscription, so it need not
// subscribe again). It is "delivered" once written and "completed" when
// the device's PUBACK comes. One not acknowledged on a connection is sent
// again, with DUP set, on the device's next connection.
//
// These PUBLISHes do not go through mochi's inflight store: mochi mixes
// the packet ids of both directions there (a device's own QoS 1 publish
// or SUBSCRIBE with the same id as a server message in flight would drop
// or refuse it). Warden keeps its own packet ids per connection and sees
// the PUBACKs with an OnPacketRead hook (mochi ignores PUBACKs for ids it
// does not know).

// hubConn is the C2D state of one connection.
type hubConn struct {
	inflight map[uint16]int64 // packet id → message (store id) awaiting PUBACK
	sent     map[int64]bool   // messages written on this connection
	lastID   uint16
}

// c2dPump is a delivery run of one device; again asks it for one more
// pass when something changed while it ran.
type c2dPump struct {
	again bool
}

func c2dFilter(deviceID string) string { return "devices/" + deviceID + "/messages/devicebound/#" }

// c2dTopic is devices/{id}/messages/devicebound/{bag}, the bag holding the
// system properties as IoT Hub sends them and then the application
// properties, each key=value with both percent-encoded.
func c2dTopic(m hub.C2DMessage) string {
	var sb strings.Builder
	sb.WriteString("devices/" + m.DeviceID + "/messages/devicebound/")
	sb.WriteString("%24.mid=" + encodeURIComponent(m.MessageID))
	sb.WriteString("&%24.to=" + encodeURIComponent("/devices/"+m.DeviceID+"/messages/deviceBound"))
	if m.CorrelationID != "" {
		sb.WriteString("&%24.cid=" + encodeURIComponent(m.CorrelationID))
	}
	keys := make([]string, 0, len(m.Properties))
	for k := range m.Properties {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		sb.WriteString("&" + encodeURIComponent(k) + "=" + encodeURIComponent(m.Properties[k]))
	}
	return sb.String()
}

// DeliverC2D sends a device's pending cloud-to-device messages if it is
// connected here and subscribed; call it after queueing one.
func (b *Broker) DeliverC2D(deviceID string) { b.hub.kickC2D(deviceID) }

// kickC2D starts a delivery run for the device, or asks the running one
// for another pass.
func (h *hubState) kickC2D(deviceID string) {
	h.mu.Lock()
	if p, ok := h.pumps[deviceID]; ok {
		p.again = true
		h.mu.Unlock()
		return
	}
	h.pumps[deviceID] = &c2dPump{}
	h.mu.Unlock()
	go func() {
		for {
			h.deliverC2D(deviceID)
			h.mu.Lock()
			p := h.pumps[deviceID]
			if !p.again {
				delete(h.pumps, deviceID)
				h.mu.Unlock()
				return
			}
			p.again = false
			h.mu.Unlock()
		}
	}()
}

// conn returns the C2D state of a live connection (nil once it closed).
func (h *hubState) conn(cl *mqtt.Client) *hubConn {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c, ok := h.conns[cl]; ok {
		return c
	}
	if cl.Closed() { // closed connections are forgotten by dropConn
		return nil
	}
	c := &hubConn{inflight: map[uint16]int64{}, sent: map[int64]bool{}}
	h.conns[cl] = c
	return c
}

// dropConn forgets a closed connection: what it had in flight stays
// "delivered" in the store and goes out again on the next connection.
func (h *hubState) dropConn(cl *mqtt.Client) {
	h.mu.Lock()
	delete(h.conns, cl)
	h.mu.Unlock()
	h.failCalls(cl)
}

// nextPacketID picks a packet id free on this connection (under h.mu).
func (c *hubConn) nextPacketID(cl *mqtt.Client) (uint16, bool) {
	for range 65535 {
		c.lastID++
		if c.lastID == 0 {
			c.lastID = 1
		}
		if _, busy := c.inflight[c.lastID]; busy {
			continue
		}
		if _, busy := cl.State.Inflight.Get(c.lastID); busy {
			continue
		}
		return c.lastID, true
	}
	return 0, false
}

func (h *hubState) deliverC2D(deviceID string) {
	b := h.b
	select {
	case <-b.stop:
		return
	default:
	}
	s, ok := b.deviceSession(deviceID)
	if !ok {
		return
	}
	cl := s.client
	sub, ok := subscribed(cl, c2dFilter(deviceID))
	if !ok {
		return
	}
	conn := h.conn(cl)
	if conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msgs, err := b.store.PendingC2D(ctx, deviceID, b.now())
	if err != nil {
		b.log.Warn("cloud-to-device messages not read", "device", deviceID, "err", err)
		return
	}
	qos := min(sub.Qos, 1)
	for _, m := range msgs {
		h.mu.Lock()
		if conn.sent[m.ID] {
			h.mu.Unlock()
			continue
		}
		pid, ok := conn.nextPacketID(cl)
		h.mu.Unlock()
		if !ok || cl.Closed() {
			return
		}
		marked, err := b.store.MarkC2DDelivered(ctx, deviceID, m.ID, b.now())
		if err != nil {
			b.log.Warn("cloud-to-device message not delivered", "device", deviceID, "message", m.MessageID, "err", err)
			return
		}
		if !marked {
			continue // expired or completed meanwhile
		}
		pk := packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos, Dup: qos > 0 && m.DeliveryCount > 0},
			TopicName:   c2dTopic(m),
			Payload:     m.Payload,
		}
		h.mu.Lock()
		conn.sent[m.ID] = true
		if qos > 0 {
			pk.PacketID = pid
			conn.inflight[pid] = m.ID
		}
		h.mu.Unlock()
		if !b.send(cl, pk) {
			h.mu.Lock()
			delete(conn.inflight, pid)
			h.mu.Unlock()
			b.log.Debug("cloud-to-device message not written; it goes out on the next connection", "device", deviceID)
			return
		}
		b.log.Debug("cloud-to-device message delivered", "device", deviceID, "message", m.MessageID, "attempt", m.DeliveryCount+1)
		if qos == 0 { // nothing will acknowledge it
			if err := b.store.CompleteC2D(ctx, deviceID, m.ID, b.now()); err != nil {
				b.log.Warn("cloud-to-device message not completed", "device", deviceID, "err", err)
			}
		}
	}
}

// c2dAck completes the message a PUBACK acknowledges, if it is one.
func (h *hubState) c2dAck(cl *mqtt.Client, packetID uint16) {
	h.mu.Lock()
	var id int64
	var ok bool
	if c := h.conns[cl]; c != nil {
		if id, ok = c.inflight[packetID]; ok {
			delete(c.inflight, packetID)
		}
	}
	h.mu.Unlock()
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.b.store.CompleteC2D(ctx, cl.ID, id, h.b.now()); err != nil {
		h.b.log.Warn("cloud-to-device message not marked completed", "device", cl.ID, "err", err)
	}
}
