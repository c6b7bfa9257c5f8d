package broker

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// hubState is the broker's state for twins, methods and C2D.
type hubState struct {
	b *Broker
}

func newHubState(b *Broker) *hubState { return &hubState{b: b} }

// hubPublish handles a device's publish on a $iothub/ topic: twin GET,
// reported-properties PATCH, direct-method replies. (Issue 4.)
func (b *Broker) hubPublish(cl *mqtt.Client, s *session, pk packets.Packet) {
	if pk.FixedHeader.Qos > 0 {
		cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID})
	}
}

// hubMayPublish says whether a device may publish on a $iothub/ topic.
func hubMayPublish(cl *mqtt.Client, topic string) bool { return false }
