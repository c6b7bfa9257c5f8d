package broker

import (
	"context"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// hubHook keeps devices' sessions (subscriptions) across server restarts,
// drives C2D delivery and cleans up after connections.
type hubHook struct {
	mqtt.HookBase
	b *Broker
}

func (h *hubHook) ID() string { return "warden-hub" }

func (h *hubHook) Provides(b byte) bool {
	switch b {
	case mqtt.OnSessionEstablished, mqtt.OnSubscribed, mqtt.OnUnsubscribed, mqtt.OnPacketRead, mqtt.OnDisconnect:
		return true
	}
	return false
}

// deviceClient reports whether cl is the live connection of a device (not
// a provisioning client).
func (h *hubHook) deviceClient(cl *mqtt.Client) bool {
	s, ok := h.b.session(cl)
	return ok && s.registration == ""
}

// OnSessionEstablished runs after the CONNACK, before the device's first
// packet is read. mochi has already carried over the subscriptions of a
// session it still holds; after a server restart it holds none, so those
// saved in the store are restored (the Azure SDK never subscribes to its
// twin topics again). Then what was queued meanwhile goes out.
func (h *hubHook) OnSessionEstablished(cl *mqtt.Client, pk packets.Packet) {
	if !h.deviceClient(cl) {
		return
	}
	h.b.restoreSession(cl)
	h.b.hub.kickC2D(cl.ID)
}

func (h *hubHook) OnSubscribed(cl *mqtt.Client, pk packets.Packet, reasonCodes []byte) {
	if !h.deviceClient(cl) {
		return
	}
	h.b.saveSession(cl)
	for i, f := range pk.Filters {
		if f.Filter == c2dFilter(cl.ID) && i < len(reasonCodes) && reasonCodes[i] <= 2 {
			h.b.hub.kickC2D(cl.ID)
			return
		}
	}
}

func (h *hubHook) OnUnsubscribed(cl *mqtt.Client, pk packets.Packet) {
	if h.deviceClient(cl) {
		h.b.saveSession(cl)
	}
}

func (h *hubHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Type == packets.Puback {
		h.b.hub.c2dAck(cl, pk.PacketID)
	}
	return pk, nil
}

func (h *hubHook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	h.b.hub.dropConn(cl)
}

// saveSession writes a persistent session's subscriptions to the store
// (only the device filters the ACL allows can be there).
func (b *Broker) saveSession(cl *mqtt.Client) {
	if cl.Properties.Clean {
		return
	}
	subs := map[string]byte{}
	for f, sub := range cl.State.Subscriptions.GetAll() {
		subs[f] = sub.Qos
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.store.SetSessionSubscriptions(ctx, cl.ID, subs, b.now()); err != nil {
		b.log.Warn("session subscriptions not saved", "device", cl.ID, "err", err)
	}
}

// restoreSession gives a clean-session-0 connection without subscriptions
// those saved for its device; a clean-session connection starts empty and
// forgets them.
func (b *Broker) restoreSession(cl *mqtt.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !cl.Properties.Clean && cl.State.Subscriptions.Len() > 0 {
		return // mochi resumed the session it held
	}
	subs, err := b.store.SessionSubscriptions(ctx, cl.ID)
	if err != nil {
		b.log.Warn("session subscriptions not restored", "device", cl.ID, "err", err)
		return
	}
	if cl.Properties.Clean {
		if len(subs) > 0 {
			if err := b.store.SetSessionSubscriptions(ctx, cl.ID, nil, b.now()); err != nil {
				b.log.Warn("session subscriptions not cleared", "device", cl.ID, "err", err)
			}
		}
		return
	}
	for filter, qos := range subs {
		if !deviceMaySubscribe(cl.ID, filter) {
			continue
		}
		sub := packets.Subscription{Filter: filter, Qos: min(qos, 1)}
		b.mqtt.Topics.Subscribe(cl.ID, sub)
		cl.State.Subscriptions.Add(filter, sub)
	}
	if len(subs) > 0 {
		b.log.Debug("session subscriptions restored", "device", cl.ID, "count", len(subs))
	}
}
