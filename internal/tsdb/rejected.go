package tsdb

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"

	"github.com/warden-iot/warden/internal/store"
)

func rejectedAAD(deviceID string) []byte { return []byte("rejected\x00" + deviceID) }

func rejectedMetaAAD(deviceID string) []byte { return []byte("rejected-meta\x00" + deviceID) }

// rejectedMeta is what of a rejected message is sealed apart from its
// payload: where it was sent, why it was refused, its hash.
type rejectedMeta struct {
	Topic  string `json:"topic"`
	Reason string `json:"reason"`
	SHA256 []byte `json:"sha256"`
}

// AddRejected keeps a message that could not be accepted. Its payload,
// topic, reason and hash are telemetry too, so they are stored encrypted
// with the tenant's key; of the payload only the first
// store.RejectedPrefixBytes are kept (r.Size and r.SHA256 describe it whole,
// and are filled in here if the caller left them empty).
func (e *Engine) AddRejected(ctx context.Context, r store.Rejected) error {
	if r.SHA256 == nil {
		sum := sha256.Sum256(r.Payload)
		r.SHA256 = sum[:]
	}
	if r.Size <= 0 {
		r.Size = int64(len(r.Payload))
	}
	if len(r.Payload) > store.RejectedPrefixBytes {
		r.Payload = r.Payload[:store.RejectedPrefixBytes]
	}
	meta, err := json.Marshal(rejectedMeta{Topic: r.Topic, Reason: r.Reason, SHA256: r.SHA256})
	if err != nil {
		return fmt.Errorf("rejected message of %s: %w", r.DeviceID, err)
	}
	if r.Sealed, err = e.keys.Seal(ctx, r.TenantID, meta, rejectedMetaAAD(r.DeviceID)); err != nil {
		return fmt.Errorf("seal rejected message of %s: %w", r.DeviceID, err)
	}
	blob, err := e.keys.Seal(ctx, r.TenantID, r.Payload, rejectedAAD(r.DeviceID))
	if err != nil {
		return fmt.Errorf("seal rejected message of %s: %w", r.DeviceID, err)
	}
	r.Payload, r.Topic, r.Reason, r.SHA256 = blob, "", "", nil
	return e.store.AddRejected(ctx, r)
}

// ListRejected returns a device's rejected messages, newest first,
// decrypted. Entries kept before sizes were recorded have their payload
// whole; their size and hash are computed here.
func (e *Engine) ListRejected(ctx context.Context, tenantID, deviceID string, limit int) ([]store.Rejected, error) {
	rs, err := e.store.ListRejected(ctx, tenantID, deviceID, limit)
	if err != nil {
		return nil, err
	}
	for i := range rs {
		r := &rs[i]
		if r.Payload, err = e.keys.Open(ctx, r.TenantID, r.Payload, rejectedAAD(deviceID)); err != nil {
			return nil, fmt.Errorf("rejected message %d of %s: %w", r.ID, deviceID, err)
		}
		if r.Sealed != nil {
			plain, err := e.keys.Open(ctx, r.TenantID, r.Sealed, rejectedMetaAAD(deviceID))
			if err != nil {
				return nil, fmt.Errorf("rejected message %d of %s: %w", r.ID, deviceID, err)
			}
			var m rejectedMeta
			if err := json.Unmarshal(plain, &m); err != nil {
				return nil, fmt.Errorf("rejected message %d of %s: %w", r.ID, deviceID, err)
			}
			r.Topic, r.Reason, r.SHA256, r.Sealed = m.Topic, m.Reason, m.SHA256, nil
		}
		if r.Size < 0 {
			sum := sha256.Sum256(r.Payload)
			r.Size, r.SHA256 = int64(len(r.Payload)), sum[:]
		}
	}
	return rs, nil
}
