package tsdb

import (
	"context"
	"fmt"

	"github.com/warden-iot/warden/internal/store"
)

func rejectedAAD(deviceID string) []byte { return []byte("rejected\x00" + deviceID) }

// AddRejected keeps a message that could not be parsed; its payload is
// telemetry too, so it is stored encrypted like everything else.
func (e *Engine) AddRejected(ctx context.Context, r store.Rejected) error {
	blob, err := e.keys.Seal(ctx, r.TenantID, r.Payload, rejectedAAD(r.DeviceID))
	if err != nil {
		return fmt.Errorf("seal rejected message of %s: %w", r.DeviceID, err)
	}
	r.Payload = blob
	return e.store.AddRejected(ctx, r)
}

// ListRejected returns a device's rejected messages, newest first, with
// their payloads decrypted.
func (e *Engine) ListRejected(ctx context.Context, tenantID, deviceID string, limit int) ([]store.Rejected, error) {
	rs, err := e.store.ListRejected(ctx, tenantID, deviceID, limit)
	if err != nil {
		return nil, err
	}
	for i := range rs {
		if rs[i].Payload, err = e.keys.Open(ctx, rs[i].TenantID, rs[i].Payload, rejectedAAD(deviceID)); err != nil {
			return nil, fmt.Errorf("rejected message %d of %s: %w", rs[i].ID, deviceID, err)
		}
	}
	return rs, nil
}
