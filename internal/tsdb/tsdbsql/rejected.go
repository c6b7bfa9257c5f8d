package tsdbsql

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/tsdb/tsdbstore"
)

// MaxRejectedPerDevice bounds the rejected-message list of one device; the
// oldest entries give way (the rejects counter keeps the total).
const MaxRejectedPerDevice = 1000

// metaCompactPending is the meta key that tells the engine's CompactSealed
// that plaintext was replaced since the last compaction (store/sqlite and
// store/postgres, sealed.go).
const metaCompactPending = "sealed_compact_pending"

// Statements of AddRejected, which each engine sends its own way (in
// PostgreSQL, with the BEGIN and in one round trip, as messages may be
// rejected at the rate they arrive). InsertRejected takes r.TenantID,
// r.DeviceID, r.MessageID, r.Topic, r.Reason, the payload (never nil),
// r.ReceivedAt (Unix ms), r.Size and r.Sealed; TrimRejected, which keeps a
// device's newest MaxRejectedPerDevice entries, the device id twice and
// MaxRejectedPerDevice-1.
const (
	InsertRejected = `INSERT INTO rejected (tenant_id, device_id, message_id, topic, reason, payload, received_at, size, sealed)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// The subquery is NULL, and nothing is deleted, while the device has
	// no more entries than the bound.
	TrimRejected = `DELETE FROM rejected WHERE device_id = ? AND id <
		(SELECT id FROM rejected WHERE device_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`
)

// RejectedArgs are the arguments of InsertRejected and TrimRejected for r.
func RejectedArgs(r tsdbstore.Rejected) (insert, trim []any) {
	payload := r.Payload
	if payload == nil {
		payload = []byte{}
	}
	return []any{r.TenantID, r.DeviceID, r.MessageID, r.Topic, r.Reason, payload, r.ReceivedAt.UnixMilli(), r.Size, r.Sealed},
		[]any{r.DeviceID, r.DeviceID, MaxRejectedPerDevice - 1}
}

// checkDevice returns ErrNotFound unless the device belongs to the tenant.
func (s *Store) checkDevice(ctx context.Context, tenantID, deviceID string) error {
	var one int
	err := s.db.QueryRow(ctx, `SELECT 1 FROM devices WHERE tenant_id = ? AND id = ?`, tenantID, deviceID).Scan(&one)
	if database.NoRows(err) {
		return fmt.Errorf("device %q: %w", deviceID, database.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("device %q: %w", deviceID, err)
	}
	return nil
}

const rejectedColumns = `id, tenant_id, device_id, message_id, topic, reason, payload, received_at, size, sealed`

// scanRejected reads a row of rejectedColumns (see ScanHead).
func scanRejected(rows *sql.Rows) (tsdbstore.Rejected, error) {
	var r tsdbstore.Rejected
	var at int64
	if err := rows.Scan(&r.ID, &r.TenantID, &r.DeviceID, &r.MessageID, &r.Topic, &r.Reason, &r.Payload, &at, &r.Size, &r.Sealed); err != nil {
		return tsdbstore.Rejected{}, err
	}
	r.ReceivedAt = time.UnixMilli(at).UTC()
	return r, nil
}

// ListRejected returns a device's rejected messages, newest first.
func (s *Store) ListRejected(ctx context.Context, tenantID, deviceID string, limit int) ([]tsdbstore.Rejected, error) {
	if err := s.checkDevice(ctx, tenantID, deviceID); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT `+rejectedColumns+`
		FROM rejected WHERE device_id = ? ORDER BY id DESC LIMIT ?`, deviceID, s.db.Dialect.Limit(limit))
	if err != nil {
		return nil, fmt.Errorf("list rejected of %q: %w", deviceID, err)
	}
	out, err := ScanAll(rows, scanRejected)
	if err != nil {
		return nil, fmt.Errorf("list rejected of %q: %w", deviceID, err)
	}
	if out == nil {
		out = []tsdbstore.Rejected{}
	}
	return out, nil
}

// OldRejected returns up to limit rejected messages kept in the old form
// with an id above afterID, in id order, stopping after the one that
// brings their payloads to maxBytes.
func (s *Store) OldRejected(ctx context.Context, afterID int64, limit int, maxBytes int64) ([]tsdbstore.Rejected, error) {
	rows, err := s.db.Query(ctx, `SELECT `+rejectedColumns+`
		FROM rejected WHERE size = ? AND id > ? ORDER BY id LIMIT ?`, tsdbstore.RejectedOld, afterID, s.db.Dialect.Limit(limit))
	if err != nil {
		return nil, fmt.Errorf("old rejected messages: %w", err)
	}
	defer rows.Close()
	var out []tsdbstore.Rejected
	for rows.Next() {
		r, err := scanRejected(rows)
		if err != nil {
			return nil, fmt.Errorf("old rejected messages: %w", err)
		}
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

// UpgradeRejected stores the new form of old rejected messages, each only
// if it is still old (another node may have upgraded it meanwhile).
func (s *Store) UpgradeRejected(ctx context.Context, rs []tsdbstore.Rejected) (int64, error) {
	if len(rs) == 0 {
		return 0, nil
	}
	var n int64
	err := s.db.InTx(ctx, func(tx database.Tx) error {
		for _, r := range rs {
			payload := r.Payload
			if payload == nil {
				payload = []byte{}
			}
			k, err := database.Affected(tx.Exec(ctx, `UPDATE rejected SET payload = ?, size = ?, sealed = ?, topic = '', reason = ''
				WHERE id = ? AND size = ?`, payload, r.Size, r.Sealed, r.ID, tsdbstore.RejectedOld))
			if err != nil {
				return fmt.Errorf("message %d: %w", r.ID, err)
			}
			n += k
		}
		if n > 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO meta (key, value) VALUES (?, '1') ON CONFLICT (key) DO NOTHING`, metaCompactPending); err != nil {
				return fmt.Errorf("note the compaction: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("upgrade rejected messages: %w", err)
	}
	return n, nil
}
