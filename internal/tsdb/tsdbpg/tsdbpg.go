// Package tsdbpg is the telemetry store (tsdbstore.Store) of the
// PostgreSQL engine, for several nodes sharing one database: the statements
// both engines accept come from tsdbsql; the hot path — WriteHead,
// SealHead, ReadSeries, ChunksForMerge, DeleteTelemetryBefore, AddRejected —
// talks to the server through a pgx pool, in batches that save round trips,
// and takes row locks in one global order (see below).
package tsdbpg

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/tsdb/tsdbsql"
	"github.com/warden-iot/warden/internal/tsdb/tsdbstore"
)

// Store is the telemetry store on a PostgreSQL database.
type Store struct {
	*tsdbsql.Store // the methods both engines share

	pool *pgxpool.Pool
}

var _ tsdbstore.Store = (*Store)(nil)

// New returns the telemetry store on a PostgreSQL database: db for the
// shared methods, pool (the connections behind db) for the hot path.
func New(db database.DB, pool *pgxpool.Pool) *Store {
	return &Store{Store: tsdbsql.New(db), pool: pool}
}

// collectHead reads head rows of tsdbsql.HeadColumns and closes them.
func collectHead(rows pgx.Rows) ([]tsdbstore.HeadRecord, error) {
	defer rows.Close()
	var out []tsdbstore.HeadRecord
	for rows.Next() {
		var r tsdbstore.HeadRecord
		var at int64
		if err := rows.Scan(&r.ID, &r.TenantID, &r.DeviceID, &r.MessageID, &at, &r.MinTS, &r.MaxTS, &r.Blob); err != nil {
			return nil, err
		}
		r.ReceivedAt = time.UnixMilli(at).UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}

// collectChunks reads chunk rows of tsdbsql.ChunkColumns and closes them.
func collectChunks(rows pgx.Rows) ([]tsdbstore.ChunkRecord, error) {
	defer rows.Close()
	var out []tsdbstore.ChunkRecord
	for rows.Next() {
		var c tsdbstore.ChunkRecord
		if err := rows.Scan(&c.ID, &c.TenantID, &c.DeviceID, &c.Metric, &c.StartTS, &c.EndTS, &c.Count, &c.Blob); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Concurrency. Several nodes write at once, so, unlike SQLite, PostgreSQL
// does not serialise writers; these methods take row locks in one global
// order so that they cannot deadlock, and each produces the result of some
// serial order of the transactions:
//
//   - WriteHead locks, in this order: the tenants of the data keys its
//     records were sealed with (sorted, shared), those keys (sorted,
//     shared), the message ids it inserts (sorted by
//     device and id), the latest rows of its devices (sorted by device id),
//     and their head_stats rows (sorted by device id). Two batches that
//     share a device thus run one after the other from the latest lock on,
//     and the second one merges into the blob the first one committed. A
//     device without a latest row gets an empty placeholder row first
//     (INSERT … ON CONFLICT DO NOTHING), which a concurrent first writer of
//     the device waits on, then finds.
//   - SealHead and DeleteTelemetryBefore lock the head_stats rows they
//     recompute before they read the head, in a statement of their own, so
//     that the recount sees every head record committed by a WriteHead
//     holding that row before (under READ COMMITTED each statement takes a
//     new snapshot). Recounting in a single UPDATE would not: PostgreSQL
//     re-evaluates a row updated concurrently against the new row version
//     but the statement's old snapshot, and could drop the stats of a head
//     that is not empty, which would then never be sealed.
//   - DeleteDevice and DeleteTenant (the engine's, store/postgres) delete
//     latest before head_stats, the order of WriteHead.
//
// No advisory locks are used: PostgreSQL keeps those in its fixed-size lock
// table, which batches of a thousand devices would soon fill; row locks live
// in the rows.

// lockDevicesLimit bounds the attempts of WriteHead to lock the latest
// rows of its devices; each failed attempt means that a concurrent
// transaction deleted one of them in the meantime.
const lockDevicesLimit = 100

// Statements of WriteHead. Each takes whole columns as arrays, so one
// statement writes any number of rows; rows are written in array order.
const (
	// lockTenants and lockKeys hold, until the commit, the tenants of the
	// batch's data keys, then the keys that still exist (which lockKeys
	// returns), in the order DeleteTenant takes them (tenant first, keys
	// later): DeleteTenant and DeleteTenantKeys wait for the commit, or
	// the commit for them, and then finds the keys gone.
	lockTenants = `SELECT 1 FROM tenants WHERE id = ANY($1::text[]) ORDER BY id FOR KEY SHARE`
	lockKeys    = `SELECT id FROM tenant_keys WHERE id = ANY($1::bigint[]) AND length(wrapped) > 0
		ORDER BY id FOR SHARE`
	insertMessageIDs = `INSERT INTO message_ids (device_id, message_id, tenant_id, received_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
		ON CONFLICT DO NOTHING
		RETURNING device_id, message_id`
	insertHead = `INSERT INTO head (tenant_id, device_id, message_id, received_at, min_ts, max_ts, blob)
		SELECT t, d, m, r, lo, hi, b
		FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bytea[])
			WITH ORDINALITY AS u(t, d, m, r, lo, hi, b, n)
		ORDER BY n`
	// insertPlaceholders creates, locked, the latest rows that do not exist
	// yet, and returns their devices: a concurrent first writer of the same
	// device waits on the row until this transaction ends, then finds it.
	insertPlaceholders = `INSERT INTO latest (device_id, tenant_id, blob)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[])
		ON CONFLICT (device_id) DO NOTHING
		RETURNING device_id`
	lockLatest = `SELECT device_id, blob FROM latest WHERE device_id = ANY($1::text[])
		ORDER BY device_id FOR UPDATE`
	upsertLatest = `INSERT INTO latest (device_id, tenant_id, blob)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[])
		ON CONFLICT (device_id) DO UPDATE SET blob = excluded.blob`
	upsertHeadStats = `INSERT INTO head_stats AS s (device_id, tenant_id, rows, oldest)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])
		ON CONFLICT (device_id) DO UPDATE SET rows = s.rows + excluded.rows, oldest = LEAST(s.oldest, excluded.oldest)`
)

// writeTx is a write transaction begun by the first batch sent, which
// saves the round trip of a BEGIN of its own.
type writeTx struct {
	pool *pgxpool.Pool
	tx   pgx.Tx
}

// batch returns a new batch to send on w.
func (w *writeTx) batch() *pgx.Batch {
	b := &pgx.Batch{}
	if w.tx == nil {
		b.BeginTx(pgx.TxOptions{})
	}
	return b
}

// send sends a batch made by w.batch and reads all its results.
func (w *writeTx) send(ctx context.Context, b *pgx.Batch) error {
	if w.tx != nil {
		return w.tx.SendBatch(ctx, b).Close()
	}
	br := w.pool.SendBatch(ctx, b)
	w.tx = br.Tx()
	return br.Close()
}

func (w *writeTx) commit(ctx context.Context) error {
	if w.tx == nil {
		return nil
	}
	return w.tx.Commit(ctx)
}

func (w *writeTx) rollback(ctx context.Context) {
	if w.tx != nil {
		w.tx.Rollback(ctx)
	}
}

// msgKey identifies a message for deduplication.
type msgKey struct{ device, id string }

// WriteHead commits a batch of head records in one transaction and, without
// contention, four round trips: BEGIN with the insert of the message ids,
// which returns those not seen before; the insert of the accepted records
// with the locking of their devices' latest rows; the new latest blobs with
// the head statistics; COMMIT.
//
// The result is that of the SQLite store (tsdbsqlite): a repeated id, also inside the
// batch, is a duplicate; merge is called once per device with accepted
// records, in the order of their first records in the batch, with the
// committed blob or nil. Locks are taken in device order (see the top of
// this file); merge runs in between, inside the transaction.
func (s *Store) WriteHead(ctx context.Context, recs []tsdbstore.HeadRecord, merge tsdbstore.LatestMerge, mark tsdbstore.LogMark) ([]tsdbstore.WriteResult, error) {
	results := make([]tsdbstore.WriteResult, len(recs))
	if len(recs) == 0 && mark.LogID == "" {
		return results, nil
	}
	w := &writeTx{pool: s.pool}
	defer w.rollback(ctx)

	// Check the data keys and record the ids, in one round trip. The first
	// occurrence of an id in the batch is inserted, later ones are
	// duplicates already. A record whose key is gone is not stored, nor
	// its id (deleted again below): its tenant's keys were destroyed since
	// it was sealed.
	var keyIDs []int64
	var keyTenants []string
	seenKey, seenTenant := map[uint32]bool{}, map[string]bool{}
	first := make(map[msgKey]int) // record index by key
	var keys []msgKey
	for i, r := range recs {
		if r.KeyID != 0 && !seenKey[r.KeyID] {
			seenKey[r.KeyID] = true
			keyIDs = append(keyIDs, int64(r.KeyID))
			if !seenTenant[r.TenantID] {
				seenTenant[r.TenantID] = true
				keyTenants = append(keyTenants, r.TenantID)
			}
		}
		if r.MessageID == "" {
			continue
		}
		k := msgKey{r.DeviceID, r.MessageID}
		if _, seen := first[k]; seen {
			results[i].Duplicate = true
			continue
		}
		first[k] = i
		keys = append(keys, k)
	}
	live := map[uint32]bool{}
	b := w.batch()
	if len(keyIDs) > 0 {
		b.Queue(lockTenants, keyTenants)
		b.Queue(lockKeys, keyIDs).Query(func(rows pgx.Rows) error {
			var id int64
			_, err := pgx.ForEachRow(rows, []any{&id}, func() error {
				live[uint32(id)] = true
				return nil
			})
			return err
		})
	}
	if len(keys) > 0 {
		slices.SortFunc(keys, func(a, b msgKey) int {
			return cmp.Or(strings.Compare(a.device, b.device), strings.Compare(a.id, b.id))
		})
		devices := make([]string, len(keys))
		ids := make([]string, len(keys))
		tenants := make([]string, len(keys))
		received := make([]int64, len(keys))
		for j, k := range keys {
			r := recs[first[k]]
			devices[j], ids[j], tenants[j], received[j] = r.DeviceID, r.MessageID, r.TenantID, r.ReceivedAt.UnixMilli()
		}
		b.Queue(insertMessageIDs, devices, ids, tenants, received).Query(func(rows pgx.Rows) error {
			inserted := make(map[msgKey]bool, len(keys))
			var k msgKey
			_, err := pgx.ForEachRow(rows, []any{&k.device, &k.id}, func() error {
				inserted[k] = true
				return nil
			})
			if err != nil {
				return err
			}
			for _, k := range keys {
				if !inserted[k] {
					results[first[k]].Duplicate = true
				}
			}
			return nil
		})
	}
	if len(keyIDs) > 0 || len(keys) > 0 {
		if err := w.send(ctx, b); err != nil {
			return nil, fmt.Errorf("write head: record ids: %w", err)
		}
	}
	var forget struct{ devices, ids []string }
	for i, r := range recs {
		if r.KeyID == 0 || live[r.KeyID] {
			continue
		}
		if r.MessageID != "" && first[msgKey{r.DeviceID, r.MessageID}] == i && !results[i].Duplicate {
			forget.devices = append(forget.devices, r.DeviceID)
			forget.ids = append(forget.ids, r.MessageID)
		}
		results[i] = tsdbstore.WriteResult{KeyGone: true}
	}

	// The accepted records, by device.
	type deviceBatch struct {
		tenantID string
		accepted []int
		oldest   int64
		old      []byte
		blob     []byte
	}
	var order []string // devices in the order of their first records
	devices := map[string]*deviceBatch{}
	var head struct {
		tenants, devices, ids []string
		received, min, max    []int64
		blobs                 [][]byte
	}
	for i, r := range recs {
		if results[i].Duplicate || results[i].KeyGone {
			continue
		}
		at := r.ReceivedAt.UnixMilli()
		head.tenants = append(head.tenants, r.TenantID)
		head.devices = append(head.devices, r.DeviceID)
		head.ids = append(head.ids, r.MessageID)
		head.received = append(head.received, at)
		head.min = append(head.min, r.MinTS)
		head.max = append(head.max, r.MaxTS)
		head.blobs = append(head.blobs, r.Blob)
		d, ok := devices[r.DeviceID]
		if !ok {
			d = &deviceBatch{tenantID: r.TenantID, oldest: at}
			devices[r.DeviceID] = d
			order = append(order, r.DeviceID)
		}
		d.accepted = append(d.accepted, i)
		d.oldest = min(d.oldest, at)
	}
	if len(forget.ids) > 0 {
		b = w.batch()
		b.Queue(`DELETE FROM message_ids WHERE (device_id, message_id) IN
			(SELECT * FROM unnest($1::text[], $2::text[]))`, forget.devices, forget.ids)
		if err := w.send(ctx, b); err != nil {
			return nil, fmt.Errorf("write head: record ids: %w", err)
		}
	}
	if len(order) == 0 {
		if mark.LogID != "" {
			b = w.batch()
			queueMark(b, mark)
			if err := w.send(ctx, b); err != nil {
				return nil, fmt.Errorf("write head: log mark: %w", err)
			}
		}
		if err := w.commit(ctx); err != nil {
			return nil, fmt.Errorf("write head: commit: %w", err)
		}
		return results, nil
	}
	sorted := slices.Sorted(maps.Keys(devices))

	// Insert the records and lock the devices' latest rows, creating those
	// that do not exist. A row that existed when the placeholders were
	// inserted but was deleted (DeleteDevice, SetLatestBlob) before it could
	// be locked is neither created nor locked. Then roll back to before the
	// locks, releasing them, and take them all again: taking only the
	// missing ones after the others would break the lock order.
	b = w.batch()
	b.Queue(insertHead, head.tenants, head.devices, head.ids, head.received, head.min, head.max, head.blobs)
	b.Queue(`SAVEPOINT lock_latest`)
	tenants := make([]string, len(sorted))
	empty := make([][]byte, len(sorted))
	for j, id := range sorted {
		tenants[j], empty[j] = devices[id].tenantID, []byte{}
	}
	for attempt := 0; ; attempt++ {
		if attempt == lockDevicesLimit {
			return nil, fmt.Errorf("write head: could not lock the latest values of %d devices", len(sorted))
		}
		if attempt > 0 {
			b = w.batch()
			b.Queue(`ROLLBACK TO SAVEPOINT lock_latest`)
		}
		created := map[string]bool{}
		locked := map[string][]byte{}
		b.Queue(insertPlaceholders, sorted, tenants, empty).Query(func(rows pgx.Rows) error {
			var id string
			_, err := pgx.ForEachRow(rows, []any{&id}, func() error {
				created[id] = true
				return nil
			})
			return err
		})
		b.Queue(lockLatest, sorted).Query(func(rows pgx.Rows) error {
			var id string
			var blob []byte
			_, err := pgx.ForEachRow(rows, []any{&id, &blob}, func() error {
				locked[id] = blob
				return nil
			})
			return err
		})
		if err := w.send(ctx, b); err != nil {
			return nil, fmt.Errorf("write head: %w", err)
		}
		missing := false
		for _, id := range sorted {
			if created[id] {
				devices[id].old = nil
			} else if blob, ok := locked[id]; ok {
				devices[id].old = blob
			} else {
				missing = true
			}
		}
		if !missing {
			break
		}
	}

	for _, id := range order {
		d := devices[id]
		blob, err := merge(d.tenantID, id, d.old, d.accepted)
		if err != nil {
			return nil, err
		}
		d.blob = blob
	}

	n := len(sorted)
	blobs, rows, oldest := make([][]byte, n), make([]int64, n), make([]int64, n)
	for j, id := range sorted {
		d := devices[id]
		blobs[j], rows[j], oldest[j] = d.blob, int64(len(d.accepted)), d.oldest
	}
	b = w.batch()
	b.Queue(upsertLatest, sorted, tenants, blobs)
	b.Queue(upsertHeadStats, sorted, tenants, rows, oldest)
	queueMark(b, mark)
	if err := w.send(ctx, b); err != nil {
		return nil, fmt.Errorf("write head: latest values: %w", err)
	}
	if err := w.commit(ctx); err != nil {
		return nil, fmt.Errorf("write head: commit: %w", err)
	}
	return results, nil
}

// queueMark queues the statement that records mark, if it names a log.
func queueMark(b *pgx.Batch, mark tsdbstore.LogMark) {
	if mark.LogID == "" {
		return
	}
	b.Queue(`INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
		tsdbstore.LogMarkKey(mark.LogID), strconv.FormatUint(mark.Next, 10))
}

// ChunksForMerge returns the chunks a sealer must merge new points into:
// the last one ending before from, and those overlapping [from, to].
func (s *Store) ChunksForMerge(ctx context.Context, deviceID, metric string, from, to int64) ([]tsdbstore.ChunkRecord, error) {
	rows, err := s.pool.Query(ctx, `(SELECT `+tsdbsql.ChunkColumns+` FROM chunks
			WHERE device_id = $1 AND metric = $2 AND end_ts < $3 ORDER BY end_ts DESC, id DESC LIMIT 1)
		UNION ALL
		(SELECT `+tsdbsql.ChunkColumns+` FROM chunks WHERE device_id = $1 AND metric = $2 AND end_ts >= $3 AND start_ts <= $4)
		ORDER BY start_ts, id`, deviceID, metric, from, to)
	if err != nil {
		return nil, fmt.Errorf("chunks of %s/%s: %w", deviceID, metric, err)
	}
	out, err := collectChunks(rows)
	if err != nil {
		return nil, fmt.Errorf("chunks of %s/%s: %w", deviceID, metric, err)
	}
	return out, nil
}

// lockHeadStats locks head_stats rows before refreshHeadStats recounts
// them (see the top of this file), in device order, and returns their
// devices.
const lockHeadStats = `SELECT device_id FROM head_stats WHERE %s ORDER BY device_id FOR UPDATE`

// queueRefreshHeadStats queues the recount of the head_stats rows of the
// given devices, and the deletion of those left without head records.
func queueRefreshHeadStats(b *pgx.Batch, devices []string) {
	b.Queue(`UPDATE head_stats SET
			rows = (SELECT COUNT(*) FROM head WHERE head.device_id = head_stats.device_id),
			oldest = COALESCE((SELECT MIN(received_at) FROM head WHERE head.device_id = head_stats.device_id), 0)
		WHERE device_id = ANY($1::text[])`, devices)
	b.Queue(`DELETE FROM head_stats WHERE rows = 0 AND device_id = ANY($1::text[])`, devices)
}

// SealHead swaps head records and old chunks for new chunks atomically, in
// one round trip and the COMMIT. If a record or chunk is gone, nothing
// changes and the error wraps ErrConflict.
func (s *Store) SealHead(ctx context.Context, deviceID string, headIDs, removeChunks []int64, add []tsdbstore.ChunkRecord) error {
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	// Lock the device's stats first: another sealer of the device waits
	// here, then finds its records gone.
	b.Queue(fmt.Sprintf(lockHeadStats, `device_id = $1`), deviceID)
	var conflict error
	for _, del := range []struct {
		table string
		ids   []int64
	}{{"head", headIDs}, {"chunks", removeChunks}} {
		if len(del.ids) == 0 {
			continue
		}
		// A repeated id deletes one row only: a conflict, as in SQLite.
		b.Queue(`DELETE FROM `+del.table+` WHERE device_id = $1 AND id = ANY($2::bigint[])`, deviceID, del.ids).
			Exec(func(tag pgconn.CommandTag) error {
				if n := tag.RowsAffected(); n != int64(len(del.ids)) && conflict == nil {
					conflict = fmt.Errorf("seal %s: %d of %d %s rows already gone: %w",
						deviceID, int64(len(del.ids))-n, len(del.ids), del.table, database.ErrConflict)
				}
				return nil
			})
	}
	if len(add) > 0 {
		n := len(add)
		tenants, devices, metrics := make([]string, n), make([]string, n), make([]string, n)
		starts, ends, counts := make([]int64, n), make([]int64, n), make([]int64, n)
		blobs := make([][]byte, n)
		for j, c := range add {
			tenants[j], devices[j], metrics[j] = c.TenantID, c.DeviceID, c.Metric
			starts[j], ends[j], counts[j], blobs[j] = c.StartTS, c.EndTS, int64(c.Count), c.Blob
		}
		b.Queue(`INSERT INTO chunks (tenant_id, device_id, metric, start_ts, end_ts, count, blob)
			SELECT t, d, m, st, e, c, bl
			FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bytea[])
				WITH ORDINALITY AS u(t, d, m, st, e, c, bl, n)
			ORDER BY n`, tenants, devices, metrics, starts, ends, counts, blobs)
	}
	if len(headIDs) > 0 {
		queueRefreshHeadStats(b, []string{deviceID})
	}
	br := s.pool.SendBatch(ctx, b)
	tx := br.Tx()
	defer tx.Rollback(ctx)
	if err := br.Close(); err != nil {
		return fmt.Errorf("seal %s: %w", deviceID, err)
	}
	if conflict != nil {
		return conflict
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("seal %s: commit: %w", deviceID, err)
	}
	return nil
}

// ReadSeries reads a series' head records and chunks from one snapshot: a
// read-only REPEATABLE READ transaction, in one round trip and the end.
func (s *Store) ReadSeries(ctx context.Context, tenantID, deviceID, metric string, from, to int64) ([]tsdbstore.HeadRecord, []tsdbstore.ChunkRecord, error) {
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	var found bool
	var head []tsdbstore.HeadRecord
	var chunks []tsdbstore.ChunkRecord
	b.Queue(`SELECT EXISTS (SELECT 1 FROM devices WHERE tenant_id = $1 AND id = $2)`, tenantID, deviceID).
		QueryRow(func(row pgx.Row) error { return row.Scan(&found) })
	b.Queue(`SELECT `+tsdbsql.HeadColumns+` FROM head WHERE device_id = $1 AND max_ts >= $2 AND min_ts < $3 ORDER BY id`,
		deviceID, from, to).Query(func(rows pgx.Rows) (err error) {
		head, err = collectHead(rows)
		return err
	})
	b.Queue(`SELECT `+tsdbsql.ChunkColumns+` FROM chunks
		WHERE device_id = $1 AND metric = $2 AND end_ts >= $3 AND start_ts < $4 ORDER BY start_ts, id`,
		deviceID, metric, from, to).Query(func(rows pgx.Rows) (err error) {
		chunks, err = collectChunks(rows)
		return err
	})
	br := s.pool.SendBatch(ctx, b)
	tx := br.Tx()
	defer tx.Rollback(ctx)
	if err := br.Close(); err != nil {
		return nil, nil, fmt.Errorf("read %s/%s: %w", deviceID, metric, err)
	}
	if !found {
		return nil, nil, fmt.Errorf("device %q: %w", deviceID, database.ErrNotFound)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, nil, fmt.Errorf("read %s/%s: %w", deviceID, metric, err)
	}
	return head, chunks, nil
}

// DeleteTelemetryBefore deletes a tenant's expired chunks, head records
// and rejected messages, in two round trips and the COMMIT.
func (s *Store) DeleteTelemetryBefore(ctx context.Context, tenantID string, cutoff int64) (int64, error) {
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	// The stats of devices whose first records commit after this lock are
	// not recounted; at worst they overcount, and the device is sealed
	// early.
	var locked []string
	b.Queue(fmt.Sprintf(lockHeadStats, `tenant_id = $1`), tenantID).Query(func(rows pgx.Rows) (err error) {
		locked, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	var total int64
	count := func(tag pgconn.CommandTag) error {
		total += tag.RowsAffected()
		return nil
	}
	// head before chunks, the order of SealHead.
	b.Queue(`DELETE FROM head WHERE tenant_id = $1 AND max_ts < $2`, tenantID, cutoff).Exec(count)
	b.Queue(`DELETE FROM chunks WHERE tenant_id = $1 AND end_ts < $2`, tenantID, cutoff).Exec(count)
	b.Queue(`DELETE FROM rejected WHERE tenant_id = $1 AND received_at < $2`, tenantID, cutoff)
	br := s.pool.SendBatch(ctx, b)
	tx := br.Tx()
	defer tx.Rollback(ctx)
	if err := br.Close(); err != nil {
		return 0, fmt.Errorf("delete before: %w", err)
	}
	if len(locked) > 0 {
		b := &pgx.Batch{}
		queueRefreshHeadStats(b, locked)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return 0, fmt.Errorf("delete before: head stats: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("delete before: commit: %w", err)
	}
	return total, nil
}

// AddRejected keeps a message that could not be accepted, and trims the
// device's list to the newest tsdbsql.MaxRejectedPerDevice, in one
// transaction and one round trip.
func (s *Store) AddRejected(ctx context.Context, r tsdbstore.Rejected) error {
	insert, trim := tsdbsql.RejectedArgs(r)
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	b.Queue(database.Postgres.Rebind(tsdbsql.InsertRejected), insert...)
	b.Queue(database.Postgres.Rebind(tsdbsql.TrimRejected), trim...)
	br := s.pool.SendBatch(ctx, b)
	tx := br.Tx()
	defer tx.Rollback(ctx)
	if err := br.Close(); err != nil {
		return fmt.Errorf("add rejected: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("add rejected: commit: %w", err)
	}
	return nil
}
