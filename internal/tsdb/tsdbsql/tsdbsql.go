// Package tsdbsql holds the part of the telemetry store (tsdbstore.Store)
// whose SQL both engines accept, written once with ? placeholders on a
// database.DB. The engines' telemetry stores, tsdbsqlite and tsdbpg, embed
// a Store and add the hot path, which each writes its own way (SQLite's
// single writer, PostgreSQL's row locks and pgx batches): WriteHead,
// SealHead, ReadSeries, ChunksForMerge, DeleteTelemetryBefore and
// AddRejected (on statements of this package).
package tsdbsql

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/tsdb/tsdbstore"
)

// Store runs the shared telemetry methods on a database.
type Store struct {
	db database.DB
}

// New returns a Store on db.
func New(db database.DB) *Store { return &Store{db: db} }

// HeadColumns are the columns ScanHead reads, in its order.
const HeadColumns = `id, tenant_id, device_id, message_id, received_at, min_ts, max_ts, blob`

// ScanHead reads a head row of HeadColumns. It takes *sql.Rows, not an
// interface: through an interface, the record scanned into would escape to
// the heap, an allocation per row on the read path.
func ScanHead(rows *sql.Rows) (tsdbstore.HeadRecord, error) {
	var r tsdbstore.HeadRecord
	var at int64
	if err := rows.Scan(&r.ID, &r.TenantID, &r.DeviceID, &r.MessageID, &at, &r.MinTS, &r.MaxTS, &r.Blob); err != nil {
		return tsdbstore.HeadRecord{}, err
	}
	r.ReceivedAt = time.UnixMilli(at).UTC()
	return r, nil
}

// ChunkColumns are the columns ScanChunk reads, in its order.
const ChunkColumns = `id, tenant_id, device_id, metric, start_ts, end_ts, count, blob`

// ScanChunk reads a chunk row of ChunkColumns (see ScanHead).
func ScanChunk(rows *sql.Rows) (tsdbstore.ChunkRecord, error) {
	var c tsdbstore.ChunkRecord
	if err := rows.Scan(&c.ID, &c.TenantID, &c.DeviceID, &c.Metric, &c.StartTS, &c.EndTS, &c.Count, &c.Blob); err != nil {
		return tsdbstore.ChunkRecord{}, err
	}
	return c, nil
}

// ScanAll scans every row of rows with scan and closes them; the result is
// nil if there is none.
func ScanAll[T any](rows *sql.Rows, scan func(*sql.Rows) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// ForgetMessageIDs drops old dedup records.
func (s *Store) ForgetMessageIDs(ctx context.Context, before time.Time) (int64, error) {
	n, err := database.Affected(s.db.Exec(ctx, `DELETE FROM message_ids WHERE received_at < ?`, before.UnixMilli()))
	if err != nil {
		return 0, fmt.Errorf("forget message ids: %w", err)
	}
	return n, nil
}

// HeadRecords returns a device's head in arrival order.
func (s *Store) HeadRecords(ctx context.Context, deviceID string) ([]tsdbstore.HeadRecord, error) {
	rows, err := s.db.Query(ctx, `SELECT `+HeadColumns+` FROM head WHERE device_id = ? ORDER BY id`, deviceID)
	if err != nil {
		return nil, fmt.Errorf("head of %s: %w", deviceID, err)
	}
	out, err := ScanAll(rows, ScanHead)
	if err != nil {
		return nil, fmt.Errorf("head of %s: %w", deviceID, err)
	}
	return out, nil
}

// DevicesToSeal lists devices whose head is due for sealing.
func (s *Store) DevicesToSeal(ctx context.Context, minRows int, receivedBefore time.Time, limit int) ([]tsdbstore.DeviceRef, error) {
	rows, err := s.db.Query(ctx, `SELECT tenant_id, device_id FROM head_stats
		WHERE rows >= ? OR (rows > 0 AND oldest < ?) ORDER BY device_id LIMIT ?`,
		int64(minRows), receivedBefore.UnixMilli(), s.db.Dialect.Limit(limit))
	if err != nil {
		return nil, fmt.Errorf("devices to seal: %w", err)
	}
	out, err := ScanAll(rows, func(rows *sql.Rows) (tsdbstore.DeviceRef, error) {
		var d tsdbstore.DeviceRef
		err := rows.Scan(&d.TenantID, &d.DeviceID)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("devices to seal: %w", err)
	}
	return out, nil
}

// LatestBlob returns a device's latest blob: nil if the device has none,
// ErrNotFound if the tenant has no such device.
func (s *Store) LatestBlob(ctx context.Context, tenantID, deviceID string) ([]byte, error) {
	var blob []byte
	var present bool
	err := s.db.QueryRow(ctx, `SELECT l.blob, l.device_id IS NOT NULL FROM devices d
		LEFT JOIN latest l ON l.device_id = d.id WHERE d.tenant_id = ? AND d.id = ?`, tenantID, deviceID).Scan(&blob, &present)
	if database.NoRows(err) {
		return nil, fmt.Errorf("device %q: %w", deviceID, database.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("latest of %s: %w", deviceID, err)
	}
	if !present {
		return nil, nil
	}
	return blob, nil
}

// LatestBlobs returns a page of a tenant's devices with their latest blobs.
func (s *Store) LatestBlobs(ctx context.Context, tenantID, after string, limit int) ([]tsdbstore.DeviceBlob, error) {
	rows, err := s.db.Query(ctx, `SELECT d.id, l.blob FROM devices d LEFT JOIN latest l ON l.device_id = d.id
		WHERE d.tenant_id = ? AND d.id > ? ORDER BY d.id LIMIT ?`, tenantID, after, s.db.Dialect.Limit(limit))
	if err != nil {
		return nil, fmt.Errorf("latest of tenant %s: %w", tenantID, err)
	}
	out, err := ScanAll(rows, func(rows *sql.Rows) (tsdbstore.DeviceBlob, error) {
		b := tsdbstore.DeviceBlob{TenantID: tenantID}
		err := rows.Scan(&b.DeviceID, &b.Blob)
		return b, err
	})
	if err != nil {
		return nil, fmt.Errorf("latest of tenant %s: %w", tenantID, err)
	}
	return out, nil
}

// SetLatestBlob replaces a device's latest blob, if it has one, or deletes
// it (blob nil).
func (s *Store) SetLatestBlob(ctx context.Context, deviceID string, blob []byte) error {
	var err error
	if blob == nil {
		_, err = s.db.Exec(ctx, `DELETE FROM latest WHERE device_id = ?`, deviceID)
	} else {
		_, err = s.db.Exec(ctx, `UPDATE latest SET blob = ? WHERE device_id = ?`, blob, deviceID)
	}
	if err != nil {
		return fmt.Errorf("set latest of %s: %w", deviceID, err)
	}
	return nil
}

// ChunksSpanning returns a tenant's chunks across the cutoff.
func (s *Store) ChunksSpanning(ctx context.Context, tenantID string, cutoff int64) ([]tsdbstore.ChunkRecord, error) {
	rows, err := s.db.Query(ctx, `SELECT `+ChunkColumns+` FROM chunks
		WHERE tenant_id = ? AND end_ts >= ? AND start_ts < ? ORDER BY id`, tenantID, cutoff, cutoff)
	if err != nil {
		return nil, fmt.Errorf("chunks spanning: %w", err)
	}
	out, err := ScanAll(rows, ScanChunk)
	if err != nil {
		return nil, fmt.Errorf("chunks spanning: %w", err)
	}
	return out, nil
}

// LogApplied is how far the commit log logID is applied (see
// tsdbstore.LogMark); 0 if it never was.
func (s *Store) LogApplied(ctx context.Context, logID string) (uint64, error) {
	var v string
	err := s.db.QueryRow(ctx, `SELECT value FROM meta WHERE key = ?`, tsdbstore.LogMarkKey(logID)).Scan(&v)
	if database.NoRows(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("commit log mark: %w", err)
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("commit log mark %q: %w", v, err)
	}
	return n, nil
}
