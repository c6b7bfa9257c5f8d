// Package iothub reads Azure IoT Hub's device-to-cloud wire format, the
// way a device publishes telemetry over MQTT: the topic
// devices/{id}/messages/events/{property bag} and its property bag
// ($.mid, $.ct, $.ce, $.ctime and application properties). It turns such a
// publish into a telemetry.Message for ingest; the broker calls it.
package iothub

import (
	"fmt"
	"strings"
	"time"

	"github.com/warden-iot/warden/internal/telemetry"
)

// Protocol is the telemetry.Message.Protocol of the messages of this
// adapter (MQTT over TCP or WebSocket).
const Protocol = "iothub-mqtt"

// TelemetryBag returns the property bag of a device-to-cloud telemetry topic
// of the given device, and whether the topic is one.
func TelemetryBag(topic, deviceID string) (string, bool) {
	rest, ok := strings.CutPrefix(topic, "devices/")
	if !ok {
		return "", false
	}
	rest, ok = strings.CutPrefix(rest, deviceID)
	if !ok {
		return "", false
	}
	bag, ok := strings.CutPrefix(rest, "/messages/events/")
	if !ok {
		if rest == "/messages/events" {
			return "", true
		}
		return "", false
	}
	return strings.TrimSuffix(bag, "/"), true
}

// Publish is a device's telemetry publish as it arrived.
type Publish struct {
	TenantID   string
	DeviceID   string
	Topic      string
	Bag        string // the property bag from the topic (TelemetryBag)
	Body       []byte
	ReceivedAt time.Time
}

// Message turns a telemetry publish into the message ingest takes: the
// property bag gives the message id, the system and application
// properties, the content type and encoding and the device's creation
// time. A bag that cannot be read makes the message Invalid (ingest keeps
// it as rejected); its message id is then unknown.
func Message(p Publish) telemetry.Message {
	msg := telemetry.Message{
		TenantID: p.TenantID, DeviceID: p.DeviceID, ReceivedAt: p.ReceivedAt,
		Protocol: Protocol, Topic: p.Topic, Payload: p.Body,
	}
	props, err := ParseProperties(p.Bag)
	if err != nil {
		msg.Invalid = fmt.Errorf("property bag: %w", err)
		return msg
	}
	msg.MessageID = props.MessageID
	msg.System, msg.App = props.System, props.App
	msg.ContentType, msg.ContentEncoding = props.ContentType, props.ContentEncoding
	msg.CreatedAt = props.CreatedAt
	return msg
}
