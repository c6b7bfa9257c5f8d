package hub

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/warden-iot/warden/internal/clock"
	"github.com/warden-iot/warden/internal/event"
)

// Cloud-to-device limits.
const (
	MaxC2DQueued    = 50             // messages waiting for one device
	MaxC2DPayload   = 64 * 1024      // bytes, as IoT Hub
	MaxC2DPropsSize = 8 * 1024       // bytes of encoded application properties
	DefaultC2DTTL   = time.Hour      // as IoT Hub
	MaxC2DTTL       = 48 * time.Hour // as IoT Hub
	MaxC2DMessageID = 128            // characters of a message or correlation id
)

var (
	// ErrInvalidMessage is wrapped by the errors that refuse a
	// cloud-to-device message as invalid; their text says what is wrong,
	// for the caller.
	ErrInvalidMessage = errors.New("invalid cloud-to-device message")
	// ErrMessageTooLarge is wrapped by the error that refuses a
	// cloud-to-device payload over MaxC2DPayload.
	ErrMessageTooLarge = errors.New("cloud-to-device message too large")
)

// refusal is an error wrapping kind whose text is only its message.
type refusal struct {
	kind error
	msg  string
}

func (e refusal) Error() string        { return e.msg }
func (e refusal) Is(target error) bool { return target == e.kind }

func invalidMessagef(format string, args ...any) error {
	return refusal{ErrInvalidMessage, fmt.Sprintf(format, args...)}
}

// Outgoing is a cloud-to-device message to queue.
type Outgoing struct {
	TenantID string
	DeviceID string
	// MessageID is at most MaxC2DMessageID printable ASCII characters
	// without spaces; "" for a random UUID.
	MessageID string
	// CorrelationID is at most MaxC2DMessageID characters.
	CorrelationID string
	// Properties are the application properties: names neither empty nor
	// starting with '$', valid UTF-8, at most MaxC2DPropsSize in all.
	Properties map[string]string
	// Payload is at most MaxC2DPayload bytes.
	Payload []byte
	// TTLSeconds is how long the message may wait, 1 to MaxC2DTTL in
	// seconds; nil for DefaultC2DTTL.
	TTLSeconds *int64
	// Caller names who sent it, for the log.
	Caller string
}

// check returns o's time to live, or why o is refused (wrapping
// ErrMessageTooLarge or ErrInvalidMessage).
func (o Outgoing) check() (time.Duration, error) {
	if len(o.Payload) > MaxC2DPayload {
		return 0, refusal{ErrMessageTooLarge, fmt.Sprintf("payload is %d bytes; the limit is %d", len(o.Payload), MaxC2DPayload)}
	}
	ttl := DefaultC2DTTL
	if o.TTLSeconds != nil {
		ttl = time.Duration(*o.TTLSeconds) * time.Second
		if ttl < time.Second || ttl > MaxC2DTTL {
			return 0, invalidMessagef("ttlSeconds must be from 1 to %d", int64(MaxC2DTTL.Seconds()))
		}
	}
	propsSize := 0
	for k, v := range o.Properties {
		if k == "" || k[0] == '$' {
			return 0, invalidMessagef("property name %q: must not be empty or start with '$' (system properties have fields of their own)", k)
		}
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return 0, invalidMessagef("property %q: not valid UTF-8", k)
		}
		propsSize += len(k) + len(v) + 2
	}
	if propsSize > MaxC2DPropsSize {
		return 0, invalidMessagef("properties take %d bytes; the limit is %d", propsSize, MaxC2DPropsSize)
	}
	if err := validMessageID(o.MessageID); err != nil {
		return 0, err
	}
	if len(o.CorrelationID) > MaxC2DMessageID {
		return 0, invalidMessagef("correlationId must be at most %d characters", MaxC2DMessageID)
	}
	return ttl, nil
}

func validMessageID(id string) error {
	if len(id) > MaxC2DMessageID {
		return invalidMessagef("messageId must be at most %d characters", MaxC2DMessageID)
	}
	for _, c := range []byte(id) {
		if c < 0x21 || c > 0x7e {
			return invalidMessagef("messageId %q: only printable ASCII without spaces is allowed", id)
		}
	}
	return nil
}

// newMessageID is a random UUID (version 4), as IoT Hub makes them.
func newMessageID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("make message id: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// Queue is where cloud-to-device messages wait for their device.
type Queue interface {
	EnqueueC2D(ctx context.Context, m C2DMessage, maxPending int) (C2DMessage, error)
}

// Messages queues cloud-to-device messages: it checks them against IoT
// Hub's limits, queues them (at most MaxC2DQueued waiting per device),
// logs them and publishes event.CloudToDeviceQueued, on which the device
// endpoint delivers to a connected device. Whether the device exists and
// who may send to it is the caller's business.
type Messages struct {
	q      Queue
	events event.Publisher
	clock  clock.Clock
	log    *slog.Logger
}

// NewMessages makes the service on q, publishing on events, at the time of
// clk (nil: the wall clock).
func NewMessages(q Queue, events event.Publisher, clk clock.Clock, log *slog.Logger) *Messages {
	return &Messages{q: q, events: events, clock: clock.OrReal(clk), log: log}
}

// Send queues o and returns the queued message. A refused message wraps
// ErrMessageTooLarge or ErrInvalidMessage; a full queue ErrQueueFull; a
// message id already used for the device database.ErrConflict (store
// errors are returned as the store gave them).
func (s *Messages) Send(ctx context.Context, o Outgoing) (C2DMessage, error) {
	ttl, err := o.check()
	if err != nil {
		return C2DMessage{}, err
	}
	if o.MessageID == "" {
		if o.MessageID, err = newMessageID(); err != nil {
			return C2DMessage{}, err
		}
	}
	now := s.clock.Now().UTC()
	m, err := s.q.EnqueueC2D(ctx, C2DMessage{
		TenantID: o.TenantID, DeviceID: o.DeviceID, MessageID: o.MessageID, CorrelationID: o.CorrelationID,
		Properties: o.Properties, Payload: o.Payload, CreatedAt: now, ExpiresAt: now.Add(ttl),
	}, MaxC2DQueued)
	if err != nil {
		return C2DMessage{}, err
	}
	s.log.Info("cloud-to-device message queued", "device", o.DeviceID, "message", m.MessageID, "ttl", ttl,
		"caller", o.Caller)
	// A reaction that did not finish is logged by the bus; the fact stands.
	_ = s.events.Publish(ctx, event.CloudToDeviceQueued{TenantID: o.TenantID, DeviceID: o.DeviceID, MessageID: m.MessageID, At: now})
	return m, nil
}
