package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/store"
)

const c2dColumns = `id, tenant_id, device_id, message_id, correlation_id, properties, payload, state,
	created_at, expires_at, delivered_at, completed_at, expired_at, delivery_count, sealed`

// scanC2D reads a message without opening its sealed part (returned).
func scanC2D(row interface{ Scan(...any) error }) (store.C2DMessage, []byte, error) {
	var m store.C2DMessage
	var props, state string
	var created, expires, delivered, completed, expired int64
	var sealed []byte
	if err := row.Scan(&m.ID, &m.TenantID, &m.DeviceID, &m.MessageID, &m.CorrelationID, &props, &m.Payload, &state,
		&created, &expires, &delivered, &completed, &expired, &m.DeliveryCount, &sealed); err != nil {
		return store.C2DMessage{}, nil, err
	}
	if sealed == nil {
		var err error
		if m.Properties, err = store.DecodeC2DProperties(props); err != nil {
			return store.C2DMessage{}, nil, err
		}
	}
	m.State = store.C2DState(state)
	m.CreatedAt = time.UnixMilli(created).UTC()
	m.ExpiresAt = time.UnixMilli(expires).UTC()
	m.DeliveredAt = database.Time(delivered)
	m.CompletedAt = database.Time(completed)
	m.ExpiredAt = database.Time(expired)
	return m, sealed, nil
}

func (s *Store) expireC2D(ctx context.Context, deviceID string, now time.Time) error {
	if _, err := s.db.Exec(ctx, `UPDATE c2d_messages SET state = 'expired', expired_at = ?
		WHERE device_id = ? AND state IN ('queued', 'delivered') AND expires_at <= ?`,
		now.UnixMilli(), deviceID, now.UnixMilli()); err != nil {
		return fmt.Errorf("expire messages of %q: %w", deviceID, err)
	}
	return nil
}

func (s *Store) queryC2D(ctx context.Context, deviceID, query string, args ...any) ([]store.C2DMessage, error) {
	rows, err := s.db.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("messages of %q: %w", deviceID, err)
	}
	defer rows.Close()
	out := []store.C2DMessage{}
	var sealed [][]byte
	for rows.Next() {
		m, blob, err := scanC2D(rows)
		if err != nil {
			return nil, fmt.Errorf("messages of %q: %w", deviceID, err)
		}
		out = append(out, m)
		sealed = append(sealed, blob)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("messages of %q: %w", deviceID, err)
	}
	// Opened with the rows closed: the keyring may need a connection.
	for i := range out {
		if err := store.OpenC2DRow(ctx, s.sealer, &out[i], sealed[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// PendingC2D returns the device's queued and delivered messages. It
// writes only when some of them have expired, so that the check every
// device connection makes costs a read when there is nothing to expire.
func (s *Store) PendingC2D(ctx context.Context, deviceID string, now time.Time) ([]store.C2DMessage, error) {
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
	res, err := s.db.Exec(ctx, `UPDATE c2d_messages SET state = 'delivered', delivered_at = ?, delivery_count = delivery_count + 1
		WHERE id = ? AND device_id = ? AND state IN ('queued', 'delivered') AND expires_at > ?`,
		at.UnixMilli(), id, deviceID, at.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("mark message %d of %q delivered: %w", id, deviceID, err)
	}
	n, err := res.RowsAffected()
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
func (s *Store) ListC2D(ctx context.Context, tenantID, deviceID string, now time.Time, limit int) ([]store.C2DMessage, error) {
	if err := s.checkDevice(ctx, tenantID, deviceID); err != nil {
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
	return store.DecodeSubscriptions(subs)
}

// SetSessionSubscriptions saves (or, if empty, deletes) them.
func (s *Store) SetSessionSubscriptions(ctx context.Context, deviceID string, subs map[string]byte, at time.Time) error {
	if len(subs) == 0 {
		if _, err := s.db.Exec(ctx, `DELETE FROM device_sessions WHERE device_id = ?`, deviceID); err != nil {
			return fmt.Errorf("session of %q: %w", deviceID, err)
		}
		return nil
	}
	return s.execOne(ctx, "save session of", deviceID, `INSERT INTO device_sessions (device_id, subscriptions, updated_at)
		SELECT id, ?, ? FROM devices WHERE id = ?
		ON CONFLICT (device_id) DO UPDATE SET subscriptions = excluded.subscriptions, updated_at = excluded.updated_at`,
		store.EncodeSubscriptions(subs), at.UnixMilli(), deviceID)
}
