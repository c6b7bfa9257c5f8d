package broker

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// dpsState is the broker's state for provisioning.
type dpsState struct {
	b *Broker
}

func newDPSState(b *Broker) *dpsState { return &dpsState{b: b} }

// dpsPublish handles a provisioning client's publish on a $dps/ topic.
// (Issue 4.)
func (b *Broker) dpsPublish(cl *mqtt.Client, s *session, pk packets.Packet) {
	if pk.FixedHeader.Qos > 0 {
		cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID})
	}
}

// dpsMayPublish says whether a provisioning client may publish on topic.
func dpsMayPublish(cl *mqtt.Client, topic string) bool { return false }

// dpsMaySubscribe says whether a provisioning client may subscribe to filter.
func dpsMaySubscribe(cl *mqtt.Client, filter string) bool { return false }
