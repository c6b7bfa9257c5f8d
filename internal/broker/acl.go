package broker

import (
	"strings"
	"sync"
	"unicode/utf8"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/warden-iot/warden/internal/iothub"
)

// maxLoggedTopic is how much of a refused topic is logged, in bytes.
const maxLoggedTopic = 200

// aclHook confines a device to its own topics, as IoT Hub does. A device
// may publish only its telemetry and subscribe only to its cloud-to-device
// messages and the $iothub twin and method topics, which the server answers
// to that device alone. A refused publish is logged with its reason, at
// most once per limitLogEvery for each connection.
type aclHook struct {
	mqtt.HookBase
	b *Broker

	mu   sync.Mutex
	logs map[*mqtt.Client]*rateLog // connections that were refused a publish
}

func (h *aclHook) ID() string { return "warden-device-acl" }

func (h *aclHook) Provides(b byte) bool { return b == mqtt.OnACLCheck || b == mqtt.OnDisconnect }

// OnACLCheck is asked with write=true for a publish and false for a
// subscription filter.
func (h *aclHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if isDPSClient(cl) { // a provisioning client is not a device: DPS topics only
		if write {
			if dpsMayPublish(cl, topic) {
				return true
			}
			h.refused(cl, topic, "a provisioning connection may publish only to $dps/registrations/")
			return false
		}
		return dpsMaySubscribe(cl, topic)
	}
	if write {
		if _, ok := iothub.TelemetryBag(topic, cl.ID); ok {
			return true
		}
		if hubMayPublish(cl, topic) {
			return true
		}
		h.refused(cl, topic, publishRefusal(cl.ID, topic))
		return false
	}
	return deviceMaySubscribe(cl.ID, topic)
}

// OnDisconnect forgets the connection's log limit.
func (h *aclHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	h.mu.Lock()
	delete(h.logs, cl)
	h.mu.Unlock()
}

// refused logs a publish refused to a connection, unless one was logged
// for it within limitLogEvery. The payload is never logged.
func (h *aclHook) refused(cl *mqtt.Client, topic, reason string) {
	h.mu.Lock()
	if h.logs == nil {
		h.logs = map[*mqtt.Client]*rateLog{}
	}
	rl, ok := h.logs[cl]
	if !ok {
		rl = &rateLog{}
		h.logs[cl] = rl
	}
	h.mu.Unlock()
	suppressed, ok := rl.allow(h.b.now())
	if !ok {
		return
	}
	h.b.log.Warn("publish refused: the topic is not one this client may publish to",
		"device", cl.ID, "tenant", h.b.tenantOf(cl.ID), "topic", truncateTopic(topic), "reason", reason,
		"remote", cl.Net.Remote, "not_logged", suppressed)
}

// publishRefusal says why a device may not publish to topic.
func publishRefusal(deviceID, topic string) string {
	switch {
	case strings.HasPrefix(topic, "devices/"):
		owner, rest, _ := strings.Cut(strings.TrimPrefix(topic, "devices/"), "/")
		if owner != deviceID {
			return "topic belongs to device " + truncateTopic(owner)
		}
		if strings.HasPrefix(rest, "messages/devicebound") {
			return "cloud-to-device topic: devices receive on it, they do not publish"
		}
		return "not a telemetry topic: devices publish to devices/" + deviceID + "/messages/events/"
	case strings.HasPrefix(topic, "$iothub/"):
		return "not a topic devices publish to: $iothub/twin/GET/, $iothub/twin/PATCH/properties/reported/ and $iothub/methods/res/ are"
	case strings.HasPrefix(topic, "$dps/"):
		return "provisioning topic: only for provisioning connections"
	case strings.HasPrefix(topic, "$"):
		return "reserved for the service"
	default:
		return "not a device topic"
	}
}

// truncateTopic shortens s to at most maxLoggedTopic bytes, on a character
// boundary.
func truncateTopic(s string) string {
	if len(s) <= maxLoggedTopic {
		return s
	}
	cut := maxLoggedTopic
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
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

// tenantOf is the tenant of a connected client's session, or "".
func (b *Broker) tenantOf(clientID string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s, ok := b.sessions[clientID]; ok {
		return s.tenantID
	}
	return ""
}
