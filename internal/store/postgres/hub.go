package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/store"
)

// loadTwin reads a device's twin (the empty one if none is stored) and
// whether a row exists. With lock, the device row is first locked against
// other twin changes (FOR NO KEY UPDATE: foreign-key checks of other tables
// still pass) until the transaction ends; the twin is read by a later
// statement, so under READ COMMITTED it sees what the previous holder of
// the lock committed.
func (s *Store) loadTwin(ctx context.Context, q pgx.Tx, tenantID, deviceID string, lock bool) (store.Twin, bool, error) {
	tw, exists, sealed, err := loadSealedTwin(ctx, q, tenantID, deviceID, lock)
	if err != nil || sealed == nil {
		return tw, exists, err
	}
	if err := store.OpenTwin(ctx, s.sealer, &tw, sealed); err != nil {
		return store.Twin{}, false, err
	}
	return tw, exists, nil
}

// loadSealedTwin is loadTwin without opening the sealed documents: it
// returns them (nil for a twin not stored, or stored before sealing).
func loadSealedTwin(ctx context.Context, q pgx.Tx, tenantID, deviceID string, lock bool) (store.Twin, bool, []byte, error) {
	query := `SELECT created_at FROM devices WHERE id = $1 AND tenant_id = $2`
	if lock {
		query += ` FOR NO KEY UPDATE`
	}
	var created int64
	err := q.QueryRow(ctx, query, deviceID, tenantID).Scan(&created)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Twin{}, false, nil, fmt.Errorf("device %q: %w", deviceID, database.ErrNotFound)
	}
	if err != nil {
		return store.Twin{}, false, nil, fmt.Errorf("twin of %q: %w", deviceID, err)
	}
	tw := store.NewTwin(tenantID, deviceID, time.UnixMilli(created).UTC())
	var tags, desired, dmeta, reported, rmeta string
	var updated int64
	var sealed []byte
	err = q.QueryRow(ctx, `SELECT version, tags, desired, desired_version, desired_meta,
			reported, reported_version, reported_meta, updated_at, sealed
		FROM device_twins WHERE device_id = $1`, deviceID).
		Scan(&tw.Version, &tags, &desired, &tw.Desired.Version, &dmeta, &reported, &tw.Reported.Version, &rmeta, &updated, &sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return tw, false, nil, nil
	}
	if err != nil {
		return store.Twin{}, false, nil, fmt.Errorf("twin of %q: %w", deviceID, err)
	}
	tw.UpdatedAt = time.UnixMilli(updated).UTC()
	if sealed != nil {
		return tw, true, sealed, nil
	}
	// Written before sealing: SealPlaintext has not reached it yet.
	tw.Tags = json.RawMessage(tags)
	tw.Desired.Doc, tw.Desired.Metadata = json.RawMessage(desired), json.RawMessage(dmeta)
	tw.Reported.Doc, tw.Reported.Metadata = json.RawMessage(reported), json.RawMessage(rmeta)
	return tw, true, nil, nil
}

// GetTwin returns a device's twin.
func (s *Store) GetTwin(ctx context.Context, tenantID, deviceID string) (store.Twin, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return store.Twin{}, fmt.Errorf("twin of %q: %w", deviceID, err)
	}
	defer tx.Rollback(ctx)
	tw, _, sealed, err := loadSealedTwin(ctx, tx, tenantID, deviceID, false)
	if err != nil || sealed == nil {
		return tw, err
	}
	// Opened with the connection given back: the keyring may need one.
	if err := tx.Rollback(ctx); err != nil {
		return store.Twin{}, fmt.Errorf("twin of %q: %w", deviceID, err)
	}
	if err := store.OpenTwin(ctx, s.sealer, &tw, sealed); err != nil {
		return store.Twin{}, err
	}
	return tw, nil
}

// changeTwin runs a read-modify-write of a twin in one transaction, with
// the device row locked. change returns false if there is nothing to write.
func (s *Store) changeTwin(ctx context.Context, tenantID, deviceID string, change func(tw *store.Twin, exists bool) (bool, error)) (store.Twin, error) {
	// Before the transaction: the keyring may need a connection of the
	// pool to load (or create) the tenant's key, and concurrent changes
	// each holding one must not wait for it.
	sealer, err := store.PinSealer(ctx, s.sealer, tenantID)
	if err != nil {
		return store.Twin{}, fmt.Errorf("twin of %q: %w", deviceID, err)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return store.Twin{}, fmt.Errorf("twin of %q: %w", deviceID, err)
	}
	defer tx.Rollback(ctx)
	tw, exists, err := s.loadTwin(ctx, tx, tenantID, deviceID, true)
	if err != nil {
		return store.Twin{}, err
	}
	write, err := change(&tw, exists)
	if err != nil || !write {
		return tw, err
	}
	sealed, err := store.SealTwin(ctx, sealer, tw)
	if err != nil {
		return store.Twin{}, fmt.Errorf("save twin of %q: %w", deviceID, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO device_twins (device_id, tenant_id, version, tags, desired, desired_version,
			desired_meta, reported, reported_version, reported_meta, updated_at, sealed)
		VALUES ($1, $2, $3, '', '', $4, '', '', $5, '', $6, $7)
		ON CONFLICT (device_id) DO UPDATE SET version = excluded.version, tags = '',
			desired = '', desired_version = excluded.desired_version, desired_meta = '',
			reported = '', reported_version = excluded.reported_version,
			reported_meta = '', updated_at = excluded.updated_at, sealed = excluded.sealed`,
		tw.DeviceID, tw.TenantID, tw.Version, tw.Desired.Version, tw.Reported.Version, tw.UpdatedAt.UnixMilli(), sealed); err != nil {
		return store.Twin{}, fmt.Errorf("save twin of %q: %w", deviceID, err)
	}
	if err := tx.Commit(ctx); err != nil {
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

// EnqueueC2D queues a cloud-to-device message. The device row is locked so
// that concurrent sends count the queue one after the other.
func (s *Store) EnqueueC2D(ctx context.Context, m store.C2DMessage, maxPending int) (store.C2DMessage, error) {
	if m.Payload == nil {
		m.Payload = []byte{}
	}
	sealed, err := store.SealC2D(ctx, s.sealer, m)
	if err != nil {
		return store.C2DMessage{}, fmt.Errorf("queue message for %q: %w", m.DeviceID, err)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return store.C2DMessage{}, fmt.Errorf("queue message for %q: %w", m.DeviceID, err)
	}
	defer tx.Rollback(ctx)
	var one int
	err = tx.QueryRow(ctx, `SELECT 1 FROM devices WHERE id = $1 AND tenant_id = $2 FOR NO KEY UPDATE`, m.DeviceID, m.TenantID).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.C2DMessage{}, fmt.Errorf("device %q: %w", m.DeviceID, database.ErrNotFound)
	}
	if err != nil {
		return store.C2DMessage{}, fmt.Errorf("queue message for %q: %w", m.DeviceID, err)
	}
	var pending int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM c2d_messages
		WHERE device_id = $1 AND state IN ('queued', 'delivered') AND expires_at > $2`,
		m.DeviceID, m.CreatedAt.UnixMilli()).Scan(&pending); err != nil {
		return store.C2DMessage{}, fmt.Errorf("queue message for %q: %w", m.DeviceID, err)
	}
	if pending >= maxPending {
		return store.C2DMessage{}, fmt.Errorf("device %q has %d undelivered messages: %w", m.DeviceID, pending, store.ErrQueueFull)
	}
	m.State = store.C2DQueued
	m.CreatedAt = m.CreatedAt.Truncate(time.Millisecond)
	m.ExpiresAt = m.ExpiresAt.Truncate(time.Millisecond)
	err = tx.QueryRow(ctx, `INSERT INTO c2d_messages (tenant_id, device_id, message_id, correlation_id, properties,
			payload, state, created_at, expires_at, sealed)
		VALUES ($1, $2, $3, $4, '', ''::bytea, $5, $6, $7, $8) RETURNING id`,
		m.TenantID, m.DeviceID, m.MessageID, m.CorrelationID,
		string(m.State), m.CreatedAt.UnixMilli(), m.ExpiresAt.UnixMilli(), sealed).Scan(&m.ID)
	if isUniqueViolation(err) {
		return store.C2DMessage{}, fmt.Errorf("message id %q of device %q: %w", m.MessageID, m.DeviceID, database.ErrConflict)
	}
	if err != nil {
		return store.C2DMessage{}, fmt.Errorf("queue message for %q: %w", m.DeviceID, err)
	}
	// Nothing is deleted while the device has no more finished messages
	// than the bound (the subquery is NULL).
	if _, err := tx.Exec(ctx, `DELETE FROM c2d_messages WHERE device_id = $1 AND state IN ('completed', 'expired') AND id <=
		(SELECT id FROM c2d_messages WHERE device_id = $1 AND state IN ('completed', 'expired')
			ORDER BY id DESC OFFSET $2 LIMIT 1)`, m.DeviceID, store.C2DHistory); err != nil {
		return store.C2DMessage{}, fmt.Errorf("queue message for %q: trim history: %w", m.DeviceID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return store.C2DMessage{}, fmt.Errorf("queue message for %q: commit: %w", m.DeviceID, err)
	}
	return m, nil
}
