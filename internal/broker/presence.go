package broker

import (
	mqtt "github.com/mochi-mqtt/server/v2"
)

// presenceHook forgets a connection when it ends.
type presenceHook struct {
	mqtt.HookBase
	b *Broker
}

func (h *presenceHook) ID() string { return "warden-presence" }

func (h *presenceHook) Provides(b byte) bool { return b == mqtt.OnDisconnect }

func (h *presenceHook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	h.b.detach(cl)
}
