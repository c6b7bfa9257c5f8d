package sqlstore

import (
	"context"
	"fmt"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/store"
)

// GetMeta reads a server setting.
func (s *Store) GetMeta(ctx context.Context, key string) (string, error) {
	var v string
	err := s.db.QueryRow(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if database.NoRows(err) {
		return "", fmt.Errorf("meta %q: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("meta %q: %w", key, err)
	}
	return v, nil
}

// SetMeta writes a server setting.
func (s *Store) SetMeta(ctx context.Context, key, value string) error {
	_, err := s.db.Exec(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("set meta %q: %w", key, err)
	}
	return nil
}

// APITokenByHash finds a token by its hash, expired or not.
func (s *Store) APITokenByHash(ctx context.Context, hash []byte) (store.APIToken, error) {
	t, err := ScanAPIToken(s.db.QueryRow(ctx, `SELECT `+APITokenColumns+` FROM api_tokens WHERE hash = ?`, hash))
	if database.NoRows(err) {
		return store.APIToken{}, fmt.Errorf("api token: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.APIToken{}, fmt.Errorf("api token: %w", err)
	}
	return t, nil
}

// ForgetMessageIDs drops old dedup records.
func (s *Store) ForgetMessageIDs(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.Exec(ctx, `DELETE FROM message_ids WHERE received_at < ?`, before.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("forget message ids: %w", err)
	}
	return res.RowsAffected()
}

// checkDevice returns ErrNotFound unless the device belongs to the tenant.
func (s *Store) checkDevice(ctx context.Context, tenantID, deviceID string) error {
	var one int
	err := s.db.QueryRow(ctx, `SELECT 1 FROM devices WHERE tenant_id = ? AND id = ?`, tenantID, deviceID).Scan(&one)
	if database.NoRows(err) {
		return fmt.Errorf("device %q: %w", deviceID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("device %q: %w", deviceID, err)
	}
	return nil
}

// ListRejected returns a device's rejected messages, newest first.
func (s *Store) ListRejected(ctx context.Context, tenantID, deviceID string, limit int) ([]store.Rejected, error) {
	if err := s.checkDevice(ctx, tenantID, deviceID); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT id, tenant_id, device_id, message_id, topic, reason, payload, received_at, size, sealed
		FROM rejected WHERE device_id = ? ORDER BY id DESC LIMIT ?`, deviceID, s.db.Dialect.Limit(limit))
	if err != nil {
		return nil, fmt.Errorf("list rejected of %q: %w", deviceID, err)
	}
	defer rows.Close()
	out := []store.Rejected{}
	for rows.Next() {
		var r store.Rejected
		var at int64
		if err := rows.Scan(&r.ID, &r.TenantID, &r.DeviceID, &r.MessageID, &r.Topic, &r.Reason, &r.Payload, &at, &r.Size, &r.Sealed); err != nil {
			return nil, fmt.Errorf("list rejected of %q: %w", deviceID, err)
		}
		r.ReceivedAt = time.UnixMilli(at).UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list rejected of %q: %w", deviceID, err)
	}
	return out, nil
}

// OldRejected returns up to limit rejected messages kept in the old form
// with an id above afterID, in id order, stopping after the one that
// brings their payloads to maxBytes.
func (s *Store) OldRejected(ctx context.Context, afterID int64, limit int, maxBytes int64) ([]store.Rejected, error) {
	rows, err := s.db.Query(ctx, `SELECT id, tenant_id, device_id, message_id, topic, reason, payload, received_at, size, sealed
		FROM rejected WHERE size = ? AND id > ? ORDER BY id LIMIT ?`, store.RejectedOld, afterID, s.db.Dialect.Limit(limit))
	if err != nil {
		return nil, fmt.Errorf("old rejected messages: %w", err)
	}
	defer rows.Close()
	var out []store.Rejected
	for rows.Next() {
		var r store.Rejected
		var at int64
		if err := rows.Scan(&r.ID, &r.TenantID, &r.DeviceID, &r.MessageID, &r.Topic, &r.Reason, &r.Payload, &at, &r.Size, &r.Sealed); err != nil {
			return nil, fmt.Errorf("old rejected messages: %w", err)
		}
		r.ReceivedAt = time.UnixMilli(at).UTC()
		out = append(out, r)
		if maxBytes -= int64(len(r.Payload)); maxBytes <= 0 {
			break
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("old rejected messages: %w", err)
	}
	return out, nil
}
