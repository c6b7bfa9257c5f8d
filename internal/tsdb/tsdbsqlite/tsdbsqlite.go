// Package tsdbsqlite is the telemetry store (tsdbstore.Store) of the
// embedded SQLite engine: the statements both engines accept come from
// tsdbsql; the hot path — WriteHead, SealHead, ReadSeries, ChunksForMerge,
// DeleteTelemetryBefore, AddRejected — is written for SQLite's single writer
// connection, with multi-row statements (a statement's cost in an embedded
// SQLite is its parsing and VM set-up, not its rows).
package tsdbsqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/tsdb/tsdbsql"
	"github.com/warden-iot/warden/internal/tsdb/tsdbstore"
)

// Store is the telemetry store on a SQLite database: its writes go to
// db.W (exactly one connection), its reads to db.R.
type Store struct {
	*tsdbsql.Store // the methods both engines share

	w, r *sql.DB
}

var _ tsdbstore.Store = (*Store)(nil)

// New returns the telemetry store on a SQLite database.
func New(db database.DB) *Store {
	return &Store{Store: tsdbsql.New(db), w: db.W, r: db.R}
}

// WriteHead commits a batch of head records in one transaction. It sends
// multi-row statements, a few per batch rather than several per message:
// with an embedded SQLite the cost of a statement is its parsing and VM
// set-up, not its rows.
func (s *Store) WriteHead(ctx context.Context, recs []tsdbstore.HeadRecord, merge tsdbstore.LatestMerge, mark tsdbstore.LogMark) ([]tsdbstore.WriteResult, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("write head: %w", err)
	}
	defer tx.Rollback()

	results := make([]tsdbstore.WriteResult, len(recs))
	gone, err := goneKeys(ctx, tx, recs)
	if err != nil {
		return nil, fmt.Errorf("write head: %w", err)
	}
	// Message ids: a repeat inside the batch is a duplicate; the others are
	// new unless the table already holds them.
	type key struct{ device, mid string }
	first := map[key]int{}
	var withID []int
	for i, r := range recs {
		if gone[r.KeyID] {
			results[i].KeyGone = true
			continue
		}
		if r.MessageID == "" {
			continue
		}
		k := key{r.DeviceID, r.MessageID}
		if _, seen := first[k]; seen {
			results[i].Duplicate = true
			continue
		}
		first[k] = i
		withID = append(withID, i)
	}
	inserted := map[key]bool{}
	// In key order, the inserts walk the index's pages in one pass instead
	// of jumping between devices.
	slices.SortFunc(withID, func(a, b int) int {
		return cmp.Or(cmp.Compare(recs[a].DeviceID, recs[b].DeviceID), cmp.Compare(recs[a].MessageID, recs[b].MessageID))
	})
	for part := range slices.Chunk(withID, 500) {
		args := make([]any, 0, 4*len(part))
		for _, i := range part {
			r := recs[i]
			args = append(args, r.DeviceID, r.MessageID, r.TenantID, r.ReceivedAt.UnixMilli())
		}
		rows, err := tx.QueryContext(ctx, `INSERT INTO message_ids (device_id, message_id, tenant_id, received_at) VALUES `+
			values(len(part), 4)+` ON CONFLICT DO NOTHING RETURNING device_id, message_id`, args...)
		if err != nil {
			return nil, fmt.Errorf("write head: record ids: %w", err)
		}
		for rows.Next() {
			var k key
			if err := rows.Scan(&k.device, &k.mid); err != nil {
				rows.Close()
				return nil, fmt.Errorf("write head: record ids: %w", err)
			}
			inserted[k] = true
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("write head: record ids: %w", err)
		}
	}
	type deviceBatch struct {
		id       string
		tenantID string
		accepted []int
		oldest   int64
		old      []byte
	}
	var order []*deviceBatch
	devices := map[string]*deviceBatch{}
	var accepted []int
	for i, r := range recs {
		if results[i].KeyGone {
			continue
		}
		if results[i].Duplicate || r.MessageID != "" && !inserted[key{r.DeviceID, r.MessageID}] {
			results[i].Duplicate = true
			continue
		}
		accepted = append(accepted, i)
		at := r.ReceivedAt.UnixMilli()
		d, ok := devices[r.DeviceID]
		if !ok {
			d = &deviceBatch{id: r.DeviceID, tenantID: r.TenantID, oldest: at}
			devices[r.DeviceID] = d
			order = append(order, d)
		}
		d.accepted = append(d.accepted, i)
		d.oldest = min(d.oldest, at)
	}
	for part := range slices.Chunk(accepted, 500) {
		args := make([]any, 0, 7*len(part))
		for _, i := range part {
			r := recs[i]
			args = append(args, r.TenantID, r.DeviceID, r.MessageID, r.ReceivedAt.UnixMilli(), r.MinTS, r.MaxTS, r.Blob)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO head (tenant_id, device_id, message_id, received_at, min_ts, max_ts, blob) VALUES `+
			values(len(part), 7), args...); err != nil {
			return nil, fmt.Errorf("write head: %w", err)
		}
	}
	// Latest values and head statistics, a statement per 500 devices.
	for part := range slices.Chunk(order, 500) {
		args := make([]any, len(part))
		for i, d := range part {
			args[i] = d.id
		}
		rows, err := tx.QueryContext(ctx, `SELECT device_id, blob FROM latest WHERE device_id IN (`+placeholders(len(part))+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("write head: latest: %w", err)
		}
		for rows.Next() {
			var id string
			var blob []byte
			if err := rows.Scan(&id, &blob); err != nil {
				rows.Close()
				return nil, fmt.Errorf("write head: latest: %w", err)
			}
			devices[id].old = blob
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("write head: latest: %w", err)
		}
		latestArgs := make([]any, 0, 3*len(part))
		statsArgs := make([]any, 0, 4*len(part))
		for _, d := range part {
			blob, err := merge(d.tenantID, d.id, d.old, d.accepted)
			if err != nil {
				return nil, err
			}
			latestArgs = append(latestArgs, d.id, d.tenantID, blob)
			statsArgs = append(statsArgs, d.id, d.tenantID, len(d.accepted), d.oldest)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO latest (device_id, tenant_id, blob) VALUES `+values(len(part), 3)+`
			ON CONFLICT (device_id) DO UPDATE SET blob = excluded.blob`, latestArgs...); err != nil {
			return nil, fmt.Errorf("write head: latest: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO head_stats (device_id, tenant_id, rows, oldest) VALUES `+values(len(part), 4)+`
			ON CONFLICT (device_id) DO UPDATE SET rows = rows + excluded.rows, oldest = MIN(oldest, excluded.oldest)`, statsArgs...); err != nil {
			return nil, fmt.Errorf("write head: stats: %w", err)
		}
	}
	if mark.LogID != "" {
		if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, tsdbstore.LogMarkKey(mark.LogID), strconv.FormatUint(mark.Next, 10)); err != nil {
			return nil, fmt.Errorf("write head: log mark: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("write head: commit: %w", err)
	}
	return results, nil
}

// goneKeys returns which of the records' data keys (KeyID, 0 excepted) no
// longer exist: their tenants' keys were destroyed since the records were
// sealed. Read inside the write transaction, it is exact: SQLite has one
// writer.
func goneKeys(ctx context.Context, tx *sql.Tx, recs []tsdbstore.HeadRecord) (map[uint32]bool, error) {
	var ids []any
	seen := map[uint32]bool{}
	for _, r := range recs {
		if r.KeyID != 0 && !seen[r.KeyID] {
			seen[r.KeyID] = true
			ids = append(ids, int64(r.KeyID))
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT id FROM tenant_keys WHERE id IN (`+placeholders(len(ids))+`) AND length(wrapped) > 0`, ids...)
	if err != nil {
		return nil, fmt.Errorf("data keys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("data keys: %w", err)
		}
		delete(seen, uint32(id))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("data keys: %w", err)
	}
	return seen, nil
}

// values returns "(?, …), (?, …), …": rows tuples of cols placeholders.
func values(rows, cols int) string {
	tuple := "(" + placeholders(cols) + ")"
	return strings.Repeat(tuple+", ", rows-1) + tuple
}

// placeholders returns "?, ?, …" with n question marks.
func placeholders(n int) string {
	return strings.Repeat("?, ", n-1) + "?"
}

// ChunksForMerge returns the chunks a sealer must merge new points into.
func (s *Store) ChunksForMerge(ctx context.Context, deviceID, metric string, from, to int64) ([]tsdbstore.ChunkRecord, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+tsdbsql.ChunkColumns+` FROM (
			SELECT * FROM chunks WHERE device_id = ? AND metric = ? AND end_ts < ? ORDER BY end_ts DESC LIMIT 1)
		UNION ALL
		SELECT `+tsdbsql.ChunkColumns+` FROM chunks WHERE device_id = ? AND metric = ? AND end_ts >= ? AND start_ts <= ?
		ORDER BY start_ts`, deviceID, metric, from, deviceID, metric, from, to)
	if err != nil {
		return nil, fmt.Errorf("chunks of %s/%s: %w", deviceID, metric, err)
	}
	out, err := tsdbsql.ScanAll(rows, tsdbsql.ScanChunk)
	if err != nil {
		return nil, fmt.Errorf("chunks of %s/%s: %w", deviceID, metric, err)
	}
	return out, nil
}

// SealHead swaps head records and old chunks for new chunks atomically.
func (s *Store) SealHead(ctx context.Context, deviceID string, headIDs, removeChunks []int64, add []tsdbstore.ChunkRecord) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("seal %s: %w", deviceID, err)
	}
	defer tx.Rollback()
	for _, del := range []struct {
		table string
		ids   []int64
	}{{"head", headIDs}, {"chunks", removeChunks}} {
		for part := range slices.Chunk(del.ids, 500) {
			args := make([]any, 0, len(part)+1)
			args = append(args, deviceID)
			for _, id := range part {
				args = append(args, id)
			}
			res, err := tx.ExecContext(ctx, `DELETE FROM `+del.table+` WHERE device_id = ? AND id IN (`+placeholders(len(part))+`)`, args...)
			if err != nil {
				return fmt.Errorf("seal %s: %w", deviceID, err)
			}
			if n, _ := res.RowsAffected(); n != int64(len(part)) {
				return fmt.Errorf("seal %s: %d of %d %s rows already gone: %w", deviceID, int64(len(part))-n, len(part), del.table, database.ErrConflict)
			}
		}
	}
	for part := range slices.Chunk(add, 200) {
		args := make([]any, 0, 7*len(part))
		for _, c := range part {
			args = append(args, c.TenantID, c.DeviceID, c.Metric, c.StartTS, c.EndTS, c.Count, c.Blob)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO chunks (tenant_id, device_id, metric, start_ts, end_ts, count, blob) VALUES `+
			values(len(part), 7), args...); err != nil {
			return fmt.Errorf("seal %s: add chunks: %w", deviceID, err)
		}
	}
	if len(headIDs) > 0 {
		if err := refreshHeadStats(ctx, tx, `device_id = ?`, deviceID); err != nil {
			return fmt.Errorf("seal %s: %w", deviceID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("seal %s: commit: %w", deviceID, err)
	}
	return nil
}

// refreshHeadStats recomputes head_stats rows matching where.
func refreshHeadStats(ctx context.Context, tx *sql.Tx, where string, arg any) error {
	if _, err := tx.ExecContext(ctx, `UPDATE head_stats SET
			rows = (SELECT COUNT(*) FROM head WHERE head.device_id = head_stats.device_id),
			oldest = COALESCE((SELECT MIN(received_at) FROM head WHERE head.device_id = head_stats.device_id), 0)
		WHERE `+where, arg); err != nil {
		return fmt.Errorf("head stats: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM head_stats WHERE rows = 0 AND `+where, arg); err != nil {
		return fmt.Errorf("head stats: %w", err)
	}
	return nil
}

// ReadSeries reads a series' head records and chunks in one snapshot.
func (s *Store) ReadSeries(ctx context.Context, tenantID, deviceID, metric string, from, to int64) ([]tsdbstore.HeadRecord, []tsdbstore.ChunkRecord, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, nil, fmt.Errorf("read %s/%s: %w", deviceID, metric, err)
	}
	defer tx.Rollback()
	var one int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM devices WHERE tenant_id = ? AND id = ?`, tenantID, deviceID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, fmt.Errorf("device %q: %w", deviceID, database.ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read %s/%s: %w", deviceID, metric, err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+tsdbsql.HeadColumns+` FROM head
		WHERE device_id = ? AND max_ts >= ? AND min_ts < ? ORDER BY id`, deviceID, from, to)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s/%s: %w", deviceID, metric, err)
	}
	head, err := tsdbsql.ScanAll(rows, tsdbsql.ScanHead)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s/%s: %w", deviceID, metric, err)
	}
	rows, err = tx.QueryContext(ctx, `SELECT `+tsdbsql.ChunkColumns+` FROM chunks
		WHERE device_id = ? AND metric = ? AND end_ts >= ? AND start_ts < ? ORDER BY start_ts`, deviceID, metric, from, to)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s/%s: %w", deviceID, metric, err)
	}
	chunks, err := tsdbsql.ScanAll(rows, tsdbsql.ScanChunk)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s/%s: %w", deviceID, metric, err)
	}
	return head, chunks, nil
}

// DeleteTelemetryBefore deletes a tenant's expired chunks, head records
// and rejected messages.
func (s *Store) DeleteTelemetryBefore(ctx context.Context, tenantID string, cutoff int64) (int64, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("delete before: %w", err)
	}
	defer tx.Rollback()
	var total int64
	for _, q := range []string{
		`DELETE FROM chunks WHERE tenant_id = ? AND end_ts < ?`,
		`DELETE FROM head WHERE tenant_id = ? AND max_ts < ?`,
	} {
		res, err := tx.ExecContext(ctx, q, tenantID, cutoff)
		if err != nil {
			return 0, fmt.Errorf("delete before: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM rejected WHERE tenant_id = ? AND received_at < ?`, tenantID, cutoff); err != nil {
		return 0, fmt.Errorf("delete before: %w", err)
	}
	if err := refreshHeadStats(ctx, tx, `tenant_id = ?`, tenantID); err != nil {
		return 0, err
	}
	return total, tx.Commit()
}

// AddRejected keeps a message that could not be accepted, and trims the
// device's list to the newest tsdbsql.MaxRejectedPerDevice, in one
// transaction.
func (s *Store) AddRejected(ctx context.Context, r tsdbstore.Rejected) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add rejected: %w", err)
	}
	defer tx.Rollback()
	insert, trim := tsdbsql.RejectedArgs(r)
	if _, err := tx.ExecContext(ctx, tsdbsql.InsertRejected, insert...); err != nil {
		return fmt.Errorf("add rejected: %w", err)
	}
	if _, err := tx.ExecContext(ctx, tsdbsql.TrimRejected, trim...); err != nil {
		return fmt.Errorf("add rejected: trim: %w", err)
	}
	return tx.Commit()
}
