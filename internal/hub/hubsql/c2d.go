package hubsql

import (
	"context"
	"fmt"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/hub"
	"github.com/warden-iot/warden/internal/sealing"
)

const c2dColumns = `id, tenant_id, device_id, message_id, correlation_id, properties, payload, state,
	created_at, expires_at, delivered_at, completed_at, expired_at, delivery_count, sealed`

// sealedC2D is a message as read, with its sealed part not yet opened.
type sealedC2D struct {
	m      hub.C2DMessage
	sealed []byte
}

// scanC2D reads a message without opening its sealed part.
func scanC2D(row database.Scanner) (sealedC2D, error) {
	var m hub.C2DMessage
	var props, state string
	var created, expires, delivered, completed, expired int64
	var sealed []byte
	if err := row.Scan(&m.ID, &m.TenantID, &m.DeviceID, &m.MessageID, &m.CorrelationID, &props, &m.Payload, &state,
		&created, &expires, &delivered, &completed, &expired, &m.DeliveryCount, &sealed); err != nil {
		return sealedC2D{}, err
	}
	if sealed == nil {
		var err error
		if m.Properties, err = hub.DecodeC2DProperties(props); err != nil {
			return sealedC2D{}, err
		}
	}
	m.State = hub.C2DState(state)
	m.CreatedAt = time.UnixMilli(created).UTC()
	m.ExpiresAt = time.UnixMilli(expires).UTC()
	m.DeliveredAt = database.Time(delivered)
	m.CompletedAt = database.Time(completed)
	m.ExpiredAt = database.Time(expired)
	return sealedC2D{m: m, sealed: sealed}, nil
}

func (s *Store) expireC2D(ctx context.Context, deviceID string, now time.Time) error {
	if _, err := s.db.Exec(ctx, `UPDATE c2d_messages SET state = 'expired', expired_at = ?
		WHERE device_id = ? AND state IN ('queued', 'delivered') AND expires_at <= ?`,
		now.UnixMilli(), deviceID, now.UnixMilli()); err != nil {
		return fmt.Errorf("expire messages of %q: %w", deviceID, err)
	}
	return nil
}

// queryC2D runs a query of messages and opens them once its rows are
// closed (the keyring may need a connection).
func (s *Store) queryC2D(ctx context.Context, deviceID, query string, args ...any) ([]hub.C2DMessage, error) {
	rows, err := s.db.Query(ctx, query, args...)
	read, err := database.Collect(rows, err, scanC2D)
	if err != nil {
		return nil, fmt.Errorf("messages of %q: %w", deviceID, err)
	}
	out := make([]hub.C2DMessage, len(read))
	for i, r := range read {
		out[i] = r.m
		if err := sealing.OpenC2DRow(ctx, s.sealer, &out[i], r.sealed); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// EnqueueC2D queues a cloud-to-device message. Its payload is sealed
// before the transaction; in the transaction the device row is locked
// (PostgreSQL) so that concurrent sends count the queue one after the
// other.
func (s *Store) EnqueueC2D(ctx context.Context, m hub.C2DMessage, maxPending int) (hub.C2DMessage, error) {
	if m.Payload == nil {
		m.Payload = []byte{}
	}
	sealed, err := sealing.SealC2D(ctx, s.sealer, m)
	if err != nil {
		return hub.C2DMessage{}, fmt.Errorf("queue message for %q: %w", m.DeviceID, err)
	}
	m.State = hub.C2DQueued
	m.CreatedAt = m.CreatedAt.Truncate(time.Millisecond)
	m.ExpiresAt = m.ExpiresAt.Truncate(time.Millisecond)
	err = s.db.InTx(ctx, func(tx database.Tx) error {
		if err := s.checkDevice(ctx, tx, m.TenantID, m.DeviceID, true); err != nil {
			return err
		}
		var pending int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM c2d_messages
			WHERE device_id = ? AND state IN ('queued', 'delivered') AND expires_at > ?`,
			m.DeviceID, m.CreatedAt.UnixMilli()).Scan(&pending); err != nil {
			return err
		}
		if pending >= maxPending {
			return fmt.Errorf("device %q has %d undelivered messages: %w", m.DeviceID, pending, hub.ErrQueueFull)
		}
		err := tx.QueryRow(ctx, `INSERT INTO c2d_messages (tenant_id, device_id, message_id, correlation_id, properties,
				payload, state, created_at, expires_at, sealed)
			VALUES (?, ?, ?, ?, '', ?, ?, ?, ?, ?) RETURNING id`,
			m.TenantID, m.DeviceID, m.MessageID, m.CorrelationID, []byte{},
			string(m.State), m.CreatedAt.UnixMilli(), m.ExpiresAt.UnixMilli(), sealed).Scan(&m.ID)
		if s.db.Dialect.IsUniqueViolation(err) {
			return fmt.Errorf("message id %q of device %q: %w", m.MessageID, m.DeviceID, database.ErrConflict)
		}
		if err != nil {
			return err
		}
		// Nothing is deleted while the device has no more finished
		// messages than the bound (the subquery is NULL).
		if _, err := tx.Exec(ctx, `DELETE FROM c2d_messages WHERE device_id = ? AND state IN ('completed', 'expired') AND id <=
			(SELECT id FROM c2d_messages WHERE device_id = ? AND state IN ('completed', 'expired')
				ORDER BY id DESC LIMIT 1 OFFSET ?)`, m.DeviceID, m.DeviceID, hub.C2DHistory); err != nil {
			return fmt.Errorf("trim history: %w", err)
		}
		return nil
	})
	if err != nil {
		return hub.C2DMessage{}, fmt.Errorf("queue message for %q: %w", m.DeviceID, err)
	}
	return m, nil
}

// PendingC2D returns the device's queued and delivered messages. It
// writes only when some of them have expired, so that the check every
// device connection makes costs a read when there is nothing to expire.
func (s *Store) PendingC2D(ctx context.Context, deviceID string, now time.Time) ([]hub.C2DMessage, error) {
	ms, err := s.queryC2D(ctx, deviceID, `SELECT `+c2dColumns+` FROM c2d_messages
		WHERE device_id = ? AND state IN ('queued', 'delivered') ORDER BY id`, deviceID)
	if err != nil {
		return nil, err
	}
	live := ms[:0]
	for _, m := range ms {
		if m.ExpiresAt.After(now) && !m.Unreadable {
			live = append(live, m)
		}
	}
	if len(live) < len(ms) {
		if err := s.expireC2D(ctx, deviceID, now); err != nil {
			return nil, err
		}
	}
	return live, nil
}

// MarkC2DDelivered records a (re)delivery.
func (s *Store) MarkC2DDelivered(ctx context.Context, deviceID string, id int64, at time.Time) (bool, error) {
	n, err := database.Affected(s.db.Exec(ctx, `UPDATE c2d_messages SET state = 'delivered', delivered_at = ?, delivery_count = delivery_count + 1
		WHERE id = ? AND device_id = ? AND state IN ('queued', 'delivered') AND expires_at > ?`,
		at.UnixMilli(), id, deviceID, at.UnixMilli()))
	if err != nil {
		return false, fmt.Errorf("mark message %d of %q delivered: %w", id, deviceID, err)
	}
	return n > 0, nil
}

// CompleteC2D records the device's acknowledgement.
func (s *Store) CompleteC2D(ctx context.Context, deviceID string, id int64, at time.Time) error {
	if _, err := s.db.Exec(ctx, `UPDATE c2d_messages SET state = 'completed', completed_at = ?, expired_at = 0
		WHERE id = ? AND device_id = ? AND delivered_at > 0 AND state IN ('delivered', 'expired')`,
		at.UnixMilli(), id, deviceID); err != nil {
		return fmt.Errorf("complete message %d of %q: %w", id, deviceID, err)
	}
	return nil
}

// ListC2D returns a device's messages, newest first.
func (s *Store) ListC2D(ctx context.Context, tenantID, deviceID string, now time.Time, limit int) ([]hub.C2DMessage, error) {
	if err := s.checkDevice(ctx, s.db, tenantID, deviceID, false); err != nil {
		return nil, err
	}
	if err := s.expireC2D(ctx, deviceID, now); err != nil {
		return nil, err
	}
	return s.queryC2D(ctx, deviceID, `SELECT `+c2dColumns+` FROM c2d_messages
		WHERE device_id = ? ORDER BY id DESC LIMIT ?`, deviceID, s.db.Dialect.Limit(limit))
}

// SessionSubscriptions returns the saved subscriptions of a device's session.
func (s *Store) SessionSubscriptions(ctx context.Context, deviceID string) (map[string]byte, error) {
	var subs string
	err := s.db.QueryRow(ctx, `SELECT subscriptions FROM device_sessions WHERE device_id = ?`, deviceID).Scan(&subs)
	if database.NoRows(err) {
		return map[string]byte{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("session of %q: %w", deviceID, err)
	}
	return hub.DecodeSubscriptions(subs)
}

// SetSessionSubscriptions saves (or, if empty, deletes) them.
func (s *Store) SetSessionSubscriptions(ctx context.Context, deviceID string, subs map[string]byte, at time.Time) error {
	if len(subs) == 0 {
		if _, err := s.db.Exec(ctx, `DELETE FROM device_sessions WHERE device_id = ?`, deviceID); err != nil {
			return fmt.Errorf("session of %q: %w", deviceID, err)
		}
		return nil
	}
	n, err := database.Affected(s.db.Exec(ctx, `INSERT INTO device_sessions (device_id, subscriptions, updated_at)
		SELECT id, ?, ? FROM devices WHERE id = ?
		ON CONFLICT (device_id) DO UPDATE SET subscriptions = excluded.subscriptions, updated_at = excluded.updated_at`,
		hub.EncodeSubscriptions(subs), at.UnixMilli(), deviceID))
	if err != nil {
		return fmt.Errorf("save session of %q: %w", deviceID, err)
	}
	if n == 0 {
		return fmt.Errorf("device %q: %w", deviceID, database.ErrNotFound)
	}
	return nil
}
