package broker

import (
	"context"
	"strings"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/warden-iot/warden/internal/ingest"
	"github.com/warden-iot/warden/internal/iothub"
)

// maxPendingPerConn bounds the telemetry messages of one connection in the
// ingest pipeline (parsed, not yet committed). The pipeline's queue is
// shared by all devices: without the bound, one device publishing as fast
// as it can would fill it, and every other device's message would wait
// behind thousands of its own. With it, a device that sends more waits
// (its connection is not read) while the others go on.
const maxPendingPerConn = 64

// telemetryHook takes every device publish away from mochi's fan-out and
// gives telemetry to the ingest pipeline, turned into a telemetry.Message
// by the IoT Hub adapter (package iothub). A QoS 1 message is acknowledged
// only when the pipeline reports its outcome durable; if the commit fails,
// the connection is closed without an acknowledgement so the device sends
// the message again.
type telemetryHook struct {
	mqtt.HookBase
	b *Broker
}

func (h *telemetryHook) ID() string { return "warden-telemetry" }

func (h *telemetryHook) Provides(b byte) bool { return b == mqtt.OnPublish }

func (h *telemetryHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil // the server's own deliveries
	}
	s, ok := h.b.session(cl)
	if !ok {
		cl.Stop(errDeviceRevoked)
		return pk, packets.ErrRejectPacket
	}
	switch {
	case strings.HasPrefix(pk.TopicName, "$iothub/"):
		h.b.hubPublish(cl, s, pk) // twin and method replies: hub.go
		return pk, packets.ErrRejectPacket
	case strings.HasPrefix(pk.TopicName, "$dps/"):
		h.b.dpsPublish(cl, s, pk) // provisioning requests: dps.go
		return pk, packets.ErrRejectPacket
	}
	bag, ok := iothub.TelemetryBag(pk.TopicName, cl.ID)
	if !ok || s.pending == nil { // the ACL hook lets nothing else through
		return pk, packets.ErrRejectPacket
	}
	h.b.touch(cl.ID, s.ip)
	// The IoT Hub wire format becomes the protocol's neutral message here:
	// ingest knows nothing of topics and property bags.
	msg := iothub.Message(iothub.Publish{
		TenantID: s.tenantID, DeviceID: cl.ID, Topic: pk.TopicName, Bag: bag,
		Body: pk.Payload, ReceivedAt: h.b.now(),
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	select {
	case s.pending <- struct{}{}:
	case <-ctx.Done():
		h.b.log.Warn("telemetry not accepted: the device's earlier messages are not committed", "device", cl.ID)
		cl.Stop(ctx.Err())
		return pk, packets.ErrRejectPacket
	}
	qos, packetID := pk.FixedHeader.Qos, pk.PacketID
	done := func(_ ingest.Outcome, err error) {
		<-s.pending
		if err != nil {
			h.b.log.Error("telemetry not committed; closing connection so the device resends", "device", cl.ID, "err", err)
			cl.Stop(err)
			return
		}
		if qos > 0 {
			// Queued, not written: this runs on the committer goroutine,
			// which must never wait for one device's socket (outbox.go).
			h.b.send(cl, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: packetID})
		}
	}
	if err := h.b.ingest.Submit(ctx, msg, done); err != nil {
		<-s.pending
		h.b.log.Warn("telemetry not accepted", "device", cl.ID, "err", err)
		cl.Stop(err)
	}
	return pk, packets.ErrRejectPacket // acknowledged by done, never fanned out
}
