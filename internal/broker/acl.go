package broker

import (
	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/warden-iot/warden/internal/ingest"
)

// aclHook confines a device to its own topics, as IoT Hub does. A device
// may publish only its telemetry and subscribe only to its cloud-to-device
// messages and the $iothub twin and method topics, which the server answers
// to that device alone.
type aclHook struct {
	mqtt.HookBase
}

func (h *aclHook) ID() string { return "warden-device-acl" }

func (h *aclHook) Provides(b byte) bool { return b == mqtt.OnACLCheck }

// OnACLCheck is asked with write=true for a publish and false for a
// subscription filter.
func (h *aclHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if isDPSClient(cl) { // a provisioning client is not a device: DPS topics only
		if write {
			return dpsMayPublish(cl, topic)
		}
		return dpsMaySubscribe(cl, topic)
	}
	if write {
		if _, ok := ingest.TelemetryBag(topic, cl.ID); ok {
			return true
		}
		return hubMayPublish(cl, topic)
	}
	return deviceMaySubscribe(cl.ID, topic)
}

func deviceMaySubscribe(deviceID, filter string) bool {
	switch filter {
	case "devices/" + deviceID + "/messages/devicebound/#",
		"$iothub/twin/res/#",
		"$iothub/twin/PATCH/properties/desired/#",
		"$iothub/methods/POST/#":
		return true
	}
	return false
}
