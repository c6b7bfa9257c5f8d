package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warden-iot/warden/internal/store"
)

// migrationHub creates the tables of device twins, cloud-to-device
// messages and the subscriptions of devices' persistent MQTT sessions (as
// in store/sqlite). All go with their device (ON DELETE CASCADE):
// DeleteDevice and DeleteTenant need not know them. Twin documents are
// TEXT, not JSONB, so that they come back as written.
const migrationHub = `CREATE TABLE device_twins (
		device_id        TEXT COLLATE "C" PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
		tenant_id        TEXT COLLATE "C" NOT NULL,
		version          BIGINT NOT NULL,
		tags             TEXT NOT NULL,
		desired          TEXT NOT NULL,
		desired_version  BIGINT NOT NULL,
		desired_meta     TEXT NOT NULL,
		reported         TEXT NOT NULL,
		reported_version BIGINT NOT NULL,
		reported_meta    TEXT NOT NULL,
		updated_at       BIGINT NOT NULL
	);
	CREATE TABLE c2d_messages (
		id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		tenant_id      TEXT COLLATE "C" NOT NULL,
		device_id      TEXT COLLATE "C" NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
		message_id     TEXT COLLATE "C" NOT NULL,
		correlation_id TEXT NOT NULL,
		properties     TEXT NOT NULL,
		payload        BYTEA NOT NULL,
		state          TEXT NOT NULL,
		created_at     BIGINT NOT NULL,
		expires_at     BIGINT NOT NULL,
		delivered_at   BIGINT NOT NULL DEFAULT 0,
		completed_at   BIGINT NOT NULL DEFAULT 0,
		expired_at     BIGINT NOT NULL DEFAULT 0,
		delivery_count INTEGER NOT NULL DEFAULT 0,
		UNIQUE (device_id, message_id)
	);
	CREATE INDEX c2d_device_state ON c2d_messages(device_id, state, id);
	CREATE TABLE device_sessions (
		device_id     TEXT COLLATE "C" PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
		subscriptions TEXT NOT NULL,
		updated_at    BIGINT NOT NULL
	);`

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
		return store.Twin{}, false, nil, fmt.Errorf("device %q: %w", deviceID, store.ErrNotFound)
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

const c2dColumns = `id, tenant_id, device_id, message_id, correlation_id, properties, payload, state,
	created_at, expires_at, delivered_at, completed_at, expired_at, delivery_count, sealed`

// scanC2D reads a message without opening its sealed part (returned).
func scanC2D(row pgx.Row) (store.C2DMessage, []byte, error) {
	var m store.C2DMessage
	var props, state string
	var created, expires, delivered, completed, expired int64
	var count int32
	var sealed []byte
	if err := row.Scan(&m.ID, &m.TenantID, &m.DeviceID, &m.MessageID, &m.CorrelationID, &props, &m.Payload, &state,
		&created, &expires, &delivered, &completed, &expired, &count, &sealed); err != nil {
		return store.C2DMessage{}, nil, err
	}
	if sealed == nil {
		var err error
		if m.Properties, err = store.DecodeC2DProperties(props); err != nil {
			return store.C2DMessage{}, nil, err
		}
	}
	m.DeliveryCount = int(count)
	m.State = store.C2DState(state)
	m.CreatedAt = time.UnixMilli(created).UTC()
	m.ExpiresAt = time.UnixMilli(expires).UTC()
	m.DeliveredAt = optTime(delivered)
	m.CompletedAt = optTime(completed)
	m.ExpiredAt = optTime(expired)
	return m, sealed, nil
}

func optTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
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
		return store.C2DMessage{}, fmt.Errorf("device %q: %w", m.DeviceID, store.ErrNotFound)
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
		return store.C2DMessage{}, fmt.Errorf("message id %q of device %q: %w", m.MessageID, m.DeviceID, store.ErrConflict)
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

func (s *Store) expireC2D(ctx context.Context, deviceID string, now time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE c2d_messages SET state = 'expired', expired_at = $1
		WHERE device_id = $2 AND state IN ('queued', 'delivered') AND expires_at <= $1`,
		now.UnixMilli(), deviceID); err != nil {
		return fmt.Errorf("expire messages of %q: %w", deviceID, err)
	}
	return nil
}

func (s *Store) queryC2D(ctx context.Context, deviceID, query string, args ...any) ([]store.C2DMessage, error) {
	rows, err := s.pool.Query(ctx, query, args...)
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
	rows.Close()
	if err := rows.Err(); err != nil {
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
		WHERE device_id = $1 AND state IN ('queued', 'delivered') ORDER BY id`, deviceID)
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
	tag, err := s.pool.Exec(ctx, `UPDATE c2d_messages SET state = 'delivered', delivered_at = $1, delivery_count = delivery_count + 1
		WHERE id = $2 AND device_id = $3 AND state IN ('queued', 'delivered') AND expires_at > $1`,
		at.UnixMilli(), id, deviceID)
	if err != nil {
		return false, fmt.Errorf("mark message %d of %q delivered: %w", id, deviceID, err)
	}
	return tag.RowsAffected() > 0, nil
}

// CompleteC2D records the device's acknowledgement.
func (s *Store) CompleteC2D(ctx context.Context, deviceID string, id int64, at time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE c2d_messages SET state = 'completed', completed_at = $1, expired_at = 0
		WHERE id = $2 AND device_id = $3 AND delivered_at > 0 AND state IN ('delivered', 'expired')`,
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
		WHERE device_id = $1 ORDER BY id DESC LIMIT $2`, deviceID, limitArg(limit))
}

// SessionSubscriptions returns the saved subscriptions of a device's session.
func (s *Store) SessionSubscriptions(ctx context.Context, deviceID string) (map[string]byte, error) {
	var subs string
	err := s.pool.QueryRow(ctx, `SELECT subscriptions FROM device_sessions WHERE device_id = $1`, deviceID).Scan(&subs)
	if errors.Is(err, pgx.ErrNoRows) {
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
		if _, err := s.pool.Exec(ctx, `DELETE FROM device_sessions WHERE device_id = $1`, deviceID); err != nil {
			return fmt.Errorf("session of %q: %w", deviceID, err)
		}
		return nil
	}
	return s.execOne(ctx, "save session of", deviceID, `INSERT INTO device_sessions (device_id, subscriptions, updated_at)
		SELECT id, $1, $2 FROM devices WHERE id = $3
		ON CONFLICT (device_id) DO UPDATE SET subscriptions = excluded.subscriptions, updated_at = excluded.updated_at`,
		store.EncodeSubscriptions(subs), at.UnixMilli(), deviceID)
}
