package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/store"
)

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// loadTwin reads a device's twin (the empty one if none is stored) and
// whether a row exists.
func (s *Store) loadTwin(ctx context.Context, q queryer, tenantID, deviceID string) (store.Twin, bool, error) {
	var created int64
	var version, dv, rv, updated sql.NullInt64
	var tags, desired, dmeta, reported, rmeta sql.NullString
	var sealed []byte
	err := q.QueryRowContext(ctx, `SELECT d.created_at, t.version, t.tags, t.desired, t.desired_version, t.desired_meta,
			t.reported, t.reported_version, t.reported_meta, t.updated_at, t.sealed
		FROM devices d LEFT JOIN device_twins t ON t.device_id = d.id
		WHERE d.id = ? AND d.tenant_id = ?`, deviceID, tenantID).
		Scan(&created, &version, &tags, &desired, &dv, &dmeta, &reported, &rv, &rmeta, &updated, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Twin{}, false, fmt.Errorf("device %q: %w", deviceID, database.ErrNotFound)
	}
	if err != nil {
		return store.Twin{}, false, fmt.Errorf("twin of %q: %w", deviceID, err)
	}
	tw := store.NewTwin(tenantID, deviceID, time.UnixMilli(created).UTC())
	if !version.Valid {
		return tw, false, nil
	}
	tw.Version = version.Int64
	tw.Desired.Version, tw.Reported.Version = dv.Int64, rv.Int64
	tw.UpdatedAt = time.UnixMilli(updated.Int64).UTC()
	if sealed != nil {
		if err := store.OpenTwin(ctx, s.sealer, &tw, sealed); err != nil {
			return store.Twin{}, false, err
		}
		return tw, true, nil
	}
	// Written before sealing: SealPlaintext has not reached it yet.
	tw.Tags = json.RawMessage(tags.String)
	tw.Desired.Doc, tw.Desired.Metadata = json.RawMessage(desired.String), json.RawMessage(dmeta.String)
	tw.Reported.Doc, tw.Reported.Metadata = json.RawMessage(reported.String), json.RawMessage(rmeta.String)
	return tw, true, nil
}

func (s *Store) saveTwin(ctx context.Context, tx *sql.Tx, sealer keyring.Sealer, tw store.Twin) error {
	sealed, err := store.SealTwin(ctx, sealer, tw)
	if err != nil {
		return fmt.Errorf("save twin of %q: %w", tw.DeviceID, err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO device_twins (device_id, tenant_id, version, tags, desired, desired_version,
			desired_meta, reported, reported_version, reported_meta, updated_at, sealed)
		VALUES (?, ?, ?, '', '', ?, '', '', ?, '', ?, ?)
		ON CONFLICT (device_id) DO UPDATE SET version = excluded.version, tags = '',
			desired = '', desired_version = excluded.desired_version, desired_meta = '',
			reported = '', reported_version = excluded.reported_version,
			reported_meta = '', updated_at = excluded.updated_at, sealed = excluded.sealed`,
		tw.DeviceID, tw.TenantID, tw.Version, tw.Desired.Version, tw.Reported.Version, tw.UpdatedAt.UnixMilli(), sealed)
	if err != nil {
		return fmt.Errorf("save twin of %q: %w", tw.DeviceID, err)
	}
	return nil
}

// GetTwin returns a device's twin.
func (s *Store) GetTwin(ctx context.Context, tenantID, deviceID string) (store.Twin, error) {
	tw, _, err := s.loadTwin(ctx, s.r, tenantID, deviceID)
	return tw, err
}

// changeTwin runs a read-modify-write of a twin in one write transaction
// (SQLite has one writer, so nothing else changes it meanwhile). change
// returns false if there is nothing to write.
func (s *Store) changeTwin(ctx context.Context, tenantID, deviceID string, change func(tw *store.Twin, exists bool) (bool, error)) (store.Twin, error) {
	// The tenant's key is obtained before the transaction: making one is
	// a write, which would wait for ever on the single writer this
	// transaction holds.
	sealer, err := store.PinSealer(ctx, s.sealer, tenantID)
	if err != nil {
		return store.Twin{}, fmt.Errorf("twin of %q: %w", deviceID, err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return store.Twin{}, fmt.Errorf("twin of %q: %w", deviceID, err)
	}
	defer tx.Rollback()
	tw, exists, err := s.loadTwin(ctx, tx, tenantID, deviceID)
	if err != nil {
		return store.Twin{}, err
	}
	write, err := change(&tw, exists)
	if err != nil || !write {
		return tw, err
	}
	if err := s.saveTwin(ctx, tx, sealer, tw); err != nil {
		return store.Twin{}, err
	}
	if err := tx.Commit(); err != nil {
		return store.Twin{}, fmt.Errorf("twin of %q: commit: %w", deviceID, err)
	}
	return tw, nil
}

// UpdateTwin applies an operator's change of tags and desired properties.
func (s *Store) UpdateTwin(ctx context.Context, tenantID, deviceID string, u store.TwinUpdate, at time.Time) (store.Twin, error) {
	return s.changeTwin(ctx, tenantID, deviceID, func(tw *store.Twin, _ bool) (bool, error) {
		return tw.ApplyUpdate(u, at)
	})
}

// UpdateReported applies a device's reported-properties patch.
func (s *Store) UpdateReported(ctx context.Context, tenantID, deviceID string, patch json.RawMessage, at time.Time) (store.Twin, error) {
	return s.changeTwin(ctx, tenantID, deviceID, func(tw *store.Twin, _ bool) (bool, error) {
		return true, tw.ApplyReported(patch, at)
	})
}

// SetInitialTwin gives a device without a stored twin its first one.
func (s *Store) SetInitialTwin(ctx context.Context, tenantID, deviceID string, tags, desired json.RawMessage, at time.Time) error {
	_, err := s.changeTwin(ctx, tenantID, deviceID, func(tw *store.Twin, exists bool) (bool, error) {
		if exists {
			return false, nil
		}
		return true, tw.ApplyInitial(tags, desired, at)
	})
	return err
}

// EnqueueC2D queues a cloud-to-device message.
func (s *Store) EnqueueC2D(ctx context.Context, m store.C2DMessage, maxPending int) (store.C2DMessage, error) {
	if m.Payload == nil {
		m.Payload = []byte{}
	}
	sealed, err := store.SealC2D(ctx, s.sealer, m)
	if err != nil {
		return store.C2DMessage{}, fmt.Errorf("queue message for %q: %w", m.DeviceID, err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return store.C2DMessage{}, fmt.Errorf("queue message for %q: %w", m.DeviceID, err)
	}
	defer tx.Rollback()
	var one int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM devices WHERE id = ? AND tenant_id = ?`, m.DeviceID, m.TenantID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return store.C2DMessage{}, fmt.Errorf("device %q: %w", m.DeviceID, database.ErrNotFound)
	}
	if err != nil {
		return store.C2DMessage{}, fmt.Errorf("queue message for %q: %w", m.DeviceID, err)
	}
	var pending int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM c2d_messages
		WHERE device_id = ? AND state IN ('queued', 'delivered') AND expires_at > ?`,
		m.DeviceID, m.CreatedAt.UnixMilli()).Scan(&pending); err != nil {
		return store.C2DMessage{}, fmt.Errorf("queue message for %q: %w", m.DeviceID, err)
	}
	if pending >= maxPending {
		return store.C2DMessage{}, fmt.Errorf("device %q has %d undelivered messages: %w", m.DeviceID, pending, store.ErrQueueFull)
	}
	m.State = store.C2DQueued
	m.CreatedAt = m.CreatedAt.Truncate(time.Millisecond)
	m.ExpiresAt = m.ExpiresAt.Truncate(time.Millisecond)
	err = tx.QueryRowContext(ctx, `INSERT INTO c2d_messages (tenant_id, device_id, message_id, correlation_id, properties,
			payload, state, created_at, expires_at, sealed)
		VALUES (?, ?, ?, ?, '', x'', ?, ?, ?, ?) RETURNING id`,
		m.TenantID, m.DeviceID, m.MessageID, m.CorrelationID,
		string(m.State), m.CreatedAt.UnixMilli(), m.ExpiresAt.UnixMilli(), sealed).Scan(&m.ID)
	if isUniqueViolation(err) {
		return store.C2DMessage{}, fmt.Errorf("message id %q of device %q: %w", m.MessageID, m.DeviceID, database.ErrConflict)
	}
	if err != nil {
		return store.C2DMessage{}, fmt.Errorf("queue message for %q: %w", m.DeviceID, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM c2d_messages WHERE device_id = ? AND state IN ('completed', 'expired')
		AND id NOT IN (SELECT id FROM c2d_messages WHERE device_id = ? AND state IN ('completed', 'expired')
			ORDER BY id DESC LIMIT ?)`, m.DeviceID, m.DeviceID, store.C2DHistory); err != nil {
		return store.C2DMessage{}, fmt.Errorf("queue message for %q: trim history: %w", m.DeviceID, err)
	}
	if err := tx.Commit(); err != nil {
		return store.C2DMessage{}, fmt.Errorf("queue message for %q: %w", m.DeviceID, err)
	}
	return m, nil
}
