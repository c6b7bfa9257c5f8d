package apiv1

import (
	"time"
)

// Metric is a metric's newest value.
type Metric struct {
	Name  string    `json:"name"`
	Value float64   `json:"value"`
	TS    time.Time `json:"ts"`
}

// DeviceLatest is one device of a fleet page.
type DeviceLatest struct {
	DeviceID string   `json:"deviceId"`
	Metrics  []Metric `json:"metrics"`
}

// Sample is one raw point.
type Sample struct {
	TS    time.Time `json:"ts"`
	Value float64   `json:"value"`
}

// Bucket is one downsampled interval.
type Bucket struct {
	Start time.Time `json:"start"`
	Count int       `json:"count"`
	Min   float64   `json:"min"`
	Max   float64   `json:"max"`
	Avg   float64   `json:"avg"`
	Sum   float64   `json:"sum"`
	First float64   `json:"first"`
	Last  float64   `json:"last"`
}

// Series is the answer for one metric: Points for raw queries, Buckets for
// downsampled ones.
type Series struct {
	Metric    string    `json:"metric"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Points    []Sample  `json:"points,omitempty"`
	Truncated bool      `json:"truncated,omitempty"`
	Bucket    string    `json:"bucket,omitempty"`
	Buckets   []Bucket  `json:"buckets,omitempty"`
}

// Rejected is a message Warden could not accept. Only the start of its
// payload is kept: Payload (or PayloadB64) is at most the first 1 KiB,
// Truncated says when it is not the whole, Size and SHA256 describe the
// payload as it was received.
type Rejected struct {
	ID         int64  `json:"id"`
	MessageID  string `json:"messageId,omitempty"`
	Topic      string `json:"topic"`
	Reason     string `json:"reason"`
	Payload    string `json:"payload"` // as text when it is valid UTF-8
	PayloadB64 string `json:"payloadBase64,omitempty"`
	Truncated  bool   `json:"truncated"`
	Size       int64  `json:"size"`
	SHA256     string `json:"sha256"` // hex
	// Unreadable: kept before payloads were cut to a prefix, and found
	// unreadable when it was rewritten (its tenant's keys were destroyed):
	// its payload is gone.
	Unreadable bool      `json:"unreadable,omitempty"`
	ReceivedAt time.Time `json:"receivedAt"`
}

// Message is a recent telemetry message with its properties.
type Message struct {
	MessageID  string            `json:"messageId,omitempty"`
	ReceivedAt time.Time         `json:"receivedAt"`
	System     map[string]string `json:"systemProperties"`
	App        map[string]string `json:"properties"`
	Values     []Metric          `json:"values"`
}
