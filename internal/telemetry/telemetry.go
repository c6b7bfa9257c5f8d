// Package telemetry holds what a device said, whatever protocol it said it
// in: the one message type that every protocol adapter (IoT Hub MQTT in
// internal/broker with internal/iothub; later LoRaWAN and HTTP) hands to the
// one ingest entry (ingest.Pipeline.Submit), and that the telemetry engine
// commits and the message log carries once ingest has decoded it.
package telemetry

import "time"

// Point is one value of one metric at one instant.
type Point struct {
	Metric string
	TS     time.Time
	Value  float64
}

// Message is one telemetry message of one device.
//
// An adapter fills in who sent it, when it arrived, its properties and the
// wire fields below (Payload, ContentType, ContentEncoding, CreatedAt, Topic,
// Protocol, Invalid); ingest decodes Payload into Points, drops Payload and
// commits the rest. The telemetry engine stores TenantID, DeviceID,
// MessageID, ReceivedAt, Points, System and App.
type Message struct {
	TenantID   string
	DeviceID   string
	MessageID  string // empty: the message cannot be deduplicated
	ReceivedAt time.Time
	// Points are set by ingest from Payload; an adapter leaves them empty.
	Points []Point
	// System holds the message's system properties ($.mid, $.cid, $.ct,
	// $.ce, $.ctime…, without "$."); App its application properties. An
	// adapter of a protocol without such a split puts what its device
	// sent as metadata in App.
	System map[string]string
	App    map[string]string

	// Protocol names the adapter the message came through (for example
	// "iothub-mqtt"), for diagnostics.
	Protocol string
	// Topic is where the message was sent (an MQTT topic; an HTTP path):
	// kept with a rejected message.
	Topic string
	// ContentType and ContentEncoding describe Payload; empty means JSON
	// in UTF-8, the only form ingest reads (application/json or a +json
	// type, charset and encoding utf-8).
	ContentType     string
	ContentEncoding string
	// CreatedAt is when the device says it made the message; zero if it
	// did not say. Ingest stamps the payload's values that carry no time
	// of their own with it, or with ReceivedAt when it is zero.
	CreatedAt time.Time
	// Payload is the body as received. Ingest decodes it and keeps only a
	// prefix, size and hash of it if it is rejected; the committed message
	// does not hold it.
	Payload []byte
	// Invalid is set by an adapter that could not read the message's
	// envelope (an IoT Hub property bag, say): ingest keeps the message as
	// rejected with this reason and does not decode Payload. MessageID is
	// then empty.
	Invalid error
}
