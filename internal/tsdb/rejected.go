package tsdb

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/tsdb/tsdbstore"
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
// tsdbstore.RejectedPrefixBytes are kept (r.Size and r.SHA256 describe it whole,
// and are filled in here if the caller left them empty).
func (e *Engine) AddRejected(ctx context.Context, r tsdbstore.Rejected) error {
	if r.SHA256 == nil {
		sum := sha256.Sum256(r.Payload)
		r.SHA256 = sum[:]
	}
	if r.Size <= 0 {
		r.Size = int64(len(r.Payload))
	}
	if len(r.Payload) > tsdbstore.RejectedPrefixBytes {
		r.Payload = r.Payload[:tsdbstore.RejectedPrefixBytes]
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
// decrypted. Entries still in the old form have their payload whole; their
// size and hash are computed here. Entries the upgrade could not open come
// marked Unreadable, without payload.
func (e *Engine) ListRejected(ctx context.Context, tenantID, deviceID string, limit int) ([]tsdbstore.Rejected, error) {
	rs, err := e.store.ListRejected(ctx, tenantID, deviceID, limit)
	if err != nil {
		return nil, err
	}
	for i := range rs {
		r := &rs[i]
		if r.Size == tsdbstore.RejectedUnreadable {
			r.Payload, r.Size, r.Unreadable = nil, 0, true
		} else if r.Payload, err = e.keys.Open(ctx, r.TenantID, r.Payload, rejectedAAD(deviceID)); err != nil {
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
		if r.Size == tsdbstore.RejectedOld {
			sum := sha256.Sum256(r.Payload)
			r.Size, r.SHA256 = int64(len(r.Payload)), sum[:]
		}
	}
	return rs, nil
}

// UpgradeRejected rewrites up to upgradeBatch old rejected messages per
// transaction, fewer if their payloads (kept whole, however large) add up
// to upgradeBatchBytes.
const (
	upgradeBatch      = 200
	upgradeBatchBytes = 32 << 20
)

// UpgradeRejected rewrites the rejected messages kept in the old form
// (whole payload, topic and reason in clear) into the form AddRejected
// writes: size and hash of the payload, its first tsdbstore.RejectedPrefixBytes
// sealed, topic, reason and hash sealed, the clear columns emptied. An
// entry whose tenant's keys were destroyed, or which does not open, loses
// its payload (and its topic and reason, unless they can be sealed) and is
// marked tsdbstore.RejectedUnreadable so that it is not tried again.
//
// It works in batches of one transaction each (bounded in rows and
// bytes), and a batch only replaces
// entries still in the old form, so it can be interrupted, and run by
// several nodes at once. The store notes that the database must be
// compacted (store.Store.CompactSealed), which removes the old bytes: run
// it before the compaction at start. It returns how many entries it
// rewrote.
func (e *Engine) UpgradeRejected(ctx context.Context) (int64, error) {
	var total, after int64
	unreadable := 0
	for {
		rs, err := e.store.OldRejected(ctx, after, upgradeBatch, upgradeBatchBytes)
		if err != nil {
			return total, fmt.Errorf("upgrade rejected messages: %w", err)
		}
		if len(rs) == 0 {
			break
		}
		for i := range rs {
			after = rs[i].ID
			if err := e.upgradeRejected(ctx, &rs[i]); err != nil {
				return total, fmt.Errorf("upgrade rejected messages: %w", err)
			}
			if rs[i].Size == tsdbstore.RejectedUnreadable {
				unreadable++
			}
		}
		n, err := e.store.UpgradeRejected(ctx, rs)
		total += n
		if err != nil {
			return total, err
		}
	}
	if unreadable > 0 {
		e.log.Warn("rejected messages that could not be opened lost their payload in the upgrade", "count", unreadable)
	}
	return total, nil
}

// upgradeRejected turns r, in the old form, into its new form.
func (e *Engine) upgradeRejected(ctx context.Context, r *tsdbstore.Rejected) error {
	payload, err := e.keys.Open(ctx, r.TenantID, r.Payload, rejectedAAD(r.DeviceID))
	switch {
	case errors.Is(err, keyring.ErrShredded):
		// Sealing anything would make the tenant a new key: drop it all.
		r.Payload, r.Size, r.Sealed, r.Topic, r.Reason = nil, tsdbstore.RejectedUnreadable, nil, "", ""
		return nil
	case errors.Is(err, keyring.ErrCorrupt):
		r.Payload, r.Size = nil, tsdbstore.RejectedUnreadable
	case err != nil:
		return fmt.Errorf("rejected message %d of %s: %w", r.ID, r.DeviceID, err)
	default:
		sum := sha256.Sum256(payload)
		r.Size, r.SHA256 = int64(len(payload)), sum[:]
		if len(payload) > tsdbstore.RejectedPrefixBytes {
			payload = payload[:tsdbstore.RejectedPrefixBytes]
		}
		if r.Payload, err = e.keys.Seal(ctx, r.TenantID, payload, rejectedAAD(r.DeviceID)); err != nil {
			return fmt.Errorf("seal rejected message %d of %s: %w", r.ID, r.DeviceID, err)
		}
	}
	meta, err := json.Marshal(rejectedMeta{Topic: r.Topic, Reason: r.Reason, SHA256: r.SHA256})
	if err != nil {
		return fmt.Errorf("rejected message %d of %s: %w", r.ID, r.DeviceID, err)
	}
	if r.Sealed, err = e.keys.Seal(ctx, r.TenantID, meta, rejectedMetaAAD(r.DeviceID)); err != nil {
		return fmt.Errorf("seal rejected message %d of %s: %w", r.ID, r.DeviceID, err)
	}
	r.Topic, r.Reason, r.SHA256 = "", "", nil
	return nil
}
