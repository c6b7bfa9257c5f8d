// Package postgres is the store for several Warden nodes sharing one
// PostgreSQL database. It has the same tables and semantics as store/sqlite:
// timestamps are BIGINT unix milliseconds, keys, hashes and payloads BYTEA.
// It talks to the server through a pgx connection pool.
package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/warden-iot/warden/internal/store"
)

// Store is a store.Store on a PostgreSQL database.
type Store struct {
	pool *pgxpool.Pool
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL or a key=value
// connection string) and checks that it is reachable. Call Migrate before
// use. Errors never quote url, which may hold a password.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		var perr *pgconn.ParseConfigError
		if errors.As(err, &perr) {
			// pgx redacts passwords in parse errors only on a best-effort
			// basis, so say nothing about the string itself.
			return nil, errors.New("open postgres: cannot parse the connection URL (not shown: it may hold a password)")
		}
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	return &Store{pool: pool}, nil
}

// Close closes the connection pool, waiting for connections in use to be
// released.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// migrations are applied in order; the index+1 is the schema version
// recorded in schema_migrations.
var migrations = []string{
	`CREATE TABLE meta (
		key   TEXT PRIMARY KEY,
		value TEXT NOT NULL
	);
	CREATE TABLE tenants (
		id         TEXT PRIMARY KEY,
		parent_id  TEXT REFERENCES tenants(id),
		name       TEXT NOT NULL,
		created_at BIGINT NOT NULL
	);
	CREATE TABLE devices (
		id            TEXT PRIMARY KEY,
		tenant_id     TEXT NOT NULL REFERENCES tenants(id),
		status        TEXT NOT NULL,
		primary_key   BYTEA NOT NULL,
		secondary_key BYTEA NOT NULL,
		created_at    BIGINT NOT NULL,
		last_seen     BIGINT NOT NULL DEFAULT 0,
		last_ip       TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX devices_tenant ON devices(tenant_id, id);
	CREATE TABLE api_tokens (
		id         TEXT PRIMARY KEY,
		tenant_id  TEXT NOT NULL REFERENCES tenants(id),
		name       TEXT NOT NULL,
		role       TEXT NOT NULL,
		hash       BYTEA NOT NULL UNIQUE,
		created_at BIGINT NOT NULL
	);
	CREATE TABLE message_ids (
		device_id   TEXT NOT NULL,
		message_id  TEXT NOT NULL,
		tenant_id   TEXT NOT NULL,
		received_at BIGINT NOT NULL,
		PRIMARY KEY (device_id, message_id)
	);
	CREATE INDEX message_ids_received ON message_ids(received_at);
	CREATE TABLE points (
		device_id TEXT NOT NULL,
		metric    TEXT NOT NULL,
		ts        BIGINT NOT NULL,
		value     DOUBLE PRECISION NOT NULL,
		tenant_id TEXT NOT NULL,
		PRIMARY KEY (device_id, metric, ts)
	);
	CREATE TABLE latest (
		device_id TEXT NOT NULL,
		metric    TEXT NOT NULL,
		ts        BIGINT NOT NULL,
		value     DOUBLE PRECISION NOT NULL,
		tenant_id TEXT NOT NULL,
		PRIMARY KEY (device_id, metric)
	);
	CREATE TABLE rejected (
		id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		tenant_id   TEXT NOT NULL,
		device_id   TEXT NOT NULL,
		message_id  TEXT NOT NULL,
		topic       TEXT NOT NULL,
		reason      TEXT NOT NULL,
		payload     BYTEA NOT NULL,
		received_at BIGINT NOT NULL
	);
	CREATE INDEX rejected_device ON rejected(device_id, id);`,
}

// migrateLock is the pg_advisory_xact_lock key that serialises Migrate
// across nodes starting at the same time ("warden" in ASCII).
const migrateLock int64 = 0x77617264656e

// Migrate applies pending migrations and makes sure the root tenant exists,
// all in one transaction under an advisory lock, so several nodes may
// migrate at once: the first does the work, the others then find nothing
// to do.
func (s *Store) Migrate(ctx context.Context) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLock); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at BIGINT NOT NULL
	)`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	var version int
	if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&version); err != nil {
		return fmt.Errorf("migrate: read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("migrate: database schema version %d is newer than this warden (%d)", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		// Without arguments pgx uses the simple protocol, which allows
		// several statements in one Exec.
		if _, err := tx.Exec(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migrate to version %d: %w", i+1, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`,
			i+1, time.Now().UnixMilli()); err != nil {
			return fmt.Errorf("migrate to version %d: record version: %w", i+1, err)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO tenants (id, parent_id, name, created_at) VALUES ($1, NULL, 'Operator', $2)
		ON CONFLICT (id) DO NOTHING`, store.RootTenantID, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("migrate: create root tenant: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}

// GetMeta reads a server setting.
func (s *Store) GetMeta(ctx context.Context, key string) (string, error) {
	var v string
	err := s.pool.QueryRow(ctx, `SELECT value FROM meta WHERE key = $1`, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("meta %q: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("meta %q: %w", key, err)
	}
	return v, nil
}

// SetMeta writes a server setting.
func (s *Store) SetMeta(ctx context.Context, key, value string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO meta (key, value) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("set meta %q: %w", key, err)
	}
	return nil
}

// CreateDevice registers a device.
func (s *Store) CreateDevice(ctx context.Context, d store.Device) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO devices (id, tenant_id, status, primary_key, secondary_key, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, d.ID, d.TenantID, string(d.Status), d.PrimaryKey, d.SecondaryKey, d.CreatedAt.UnixMilli())
	if isUniqueViolation(err) {
		return fmt.Errorf("device %q: %w", d.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create device %q: %w", d.ID, err)
	}
	return nil
}

const deviceColumns = `id, tenant_id, status, primary_key, secondary_key, created_at, last_seen, last_ip`

func scanDevice(row pgx.Row) (store.Device, error) {
	var d store.Device
	var status string
	var created, seen int64
	if err := row.Scan(&d.ID, &d.TenantID, &status, &d.PrimaryKey, &d.SecondaryKey, &created, &seen, &d.LastIP); err != nil {
		return store.Device{}, err
	}
	d.Status = store.DeviceStatus(status)
	d.CreatedAt = time.UnixMilli(created).UTC()
	if seen != 0 {
		d.LastSeen = time.UnixMilli(seen).UTC()
	}
	return d, nil
}

// GetDevice looks a device up by id.
func (s *Store) GetDevice(ctx context.Context, id string) (store.Device, error) {
	d, err := scanDevice(s.pool.QueryRow(ctx, `SELECT `+deviceColumns+` FROM devices WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Device{}, fmt.Errorf("device %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Device{}, fmt.Errorf("get device %q: %w", id, err)
	}
	return d, nil
}

// ListDevices returns a tenant's devices in id order.
func (s *Store) ListDevices(ctx context.Context, tenantID string) ([]store.Device, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deviceColumns+` FROM devices WHERE tenant_id = $1 ORDER BY id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	defer rows.Close()
	var out []store.Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("list devices: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	return out, nil
}

// execOne runs an UPDATE of one device and reports ErrNotFound if it
// matched no row.
func (s *Store) execOne(ctx context.Context, what, id, query string, args ...any) error {
	tag, err := s.pool.Exec(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s %q: %w", what, id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("device %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// SetDeviceStatus enables or disables a device.
func (s *Store) SetDeviceStatus(ctx context.Context, tenantID, id string, st store.DeviceStatus) error {
	return s.execOne(ctx, "set status of device", id,
		`UPDATE devices SET status = $1 WHERE tenant_id = $2 AND id = $3`, string(st), tenantID, id)
}

// SetDeviceKeys replaces a device's symmetric keys.
func (s *Store) SetDeviceKeys(ctx context.Context, tenantID, id string, primary, secondary []byte) error {
	return s.execOne(ctx, "set keys of device", id,
		`UPDATE devices SET primary_key = $1, secondary_key = $2 WHERE tenant_id = $3 AND id = $4`, primary, secondary, tenantID, id)
}

// TouchDevice records when and from where a device was last seen.
func (s *Store) TouchDevice(ctx context.Context, id string, seen time.Time, ip string) error {
	return s.execOne(ctx, "touch device", id,
		`UPDATE devices SET last_seen = $1, last_ip = $2 WHERE id = $3`, seen.UnixMilli(), ip, id)
}

// DeleteDevice removes a device and everything recorded for it, in one
// transaction and one round trip for the deletes.
func (s *Store) DeleteDevice(ctx context.Context, tenantID, id string) error {
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	var found bool
	b.Queue(`DELETE FROM devices WHERE tenant_id = $1 AND id = $2`, tenantID, id).Exec(func(tag pgconn.CommandTag) error {
		found = tag.RowsAffected() > 0
		return nil
	})
	// The same table order as WriteMessages, so the two cannot deadlock.
	tables := []string{"message_ids", "points", "latest", "rejected"}
	for _, table := range tables {
		b.Queue(`DELETE FROM `+table+` WHERE device_id = $1`, id)
	}
	br := s.pool.SendBatch(ctx, b)
	tx := br.Tx()
	defer tx.Rollback(ctx)
	if err := br.Close(); err != nil {
		return fmt.Errorf("delete device %q: %w", id, err)
	}
	if !found {
		return fmt.Errorf("device %q: %w", id, store.ErrNotFound)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("delete device %q: commit: %w", id, err)
	}
	return nil
}

// CreateAPIToken stores a token's hash.
func (s *Store) CreateAPIToken(ctx context.Context, t store.APIToken) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO api_tokens (id, tenant_id, name, role, hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		t.ID, t.TenantID, t.Name, string(t.Role), t.Hash, t.CreatedAt.UnixMilli())
	if isUniqueViolation(err) {
		return fmt.Errorf("api token %q: %w", t.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create api token %q: %w", t.ID, err)
	}
	return nil
}

// APITokenByHash finds a token by its hash.
func (s *Store) APITokenByHash(ctx context.Context, hash []byte) (store.APIToken, error) {
	var t store.APIToken
	var role string
	var created int64
	err := s.pool.QueryRow(ctx, `SELECT id, tenant_id, name, role, hash, created_at FROM api_tokens WHERE hash = $1`, hash).
		Scan(&t.ID, &t.TenantID, &t.Name, &role, &t.Hash, &created)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.APIToken{}, fmt.Errorf("api token: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.APIToken{}, fmt.Errorf("api token: %w", err)
	}
	t.Role = store.TokenRole(role)
	t.CreatedAt = time.UnixMilli(created).UTC()
	return t, nil
}

// Statements of WriteMessages. Each takes whole columns as arrays, so one
// statement writes any number of rows.
const (
	insertMessageIDs = `INSERT INTO message_ids (device_id, message_id, tenant_id, received_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
		ON CONFLICT DO NOTHING
		RETURNING device_id, message_id`
	upsertPoints = `INSERT INTO points (device_id, metric, ts, value, tenant_id)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::float8[], $5::text[])
		ON CONFLICT (device_id, metric, ts) DO UPDATE SET value = excluded.value`
	upsertLatest = `INSERT INTO latest AS l (device_id, metric, ts, value, tenant_id)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::float8[], $5::text[])
		ON CONFLICT (device_id, metric) DO UPDATE SET ts = excluded.ts, value = excluded.value
		WHERE excluded.ts >= l.ts`
)

// msgKey identifies a message for deduplication.
type msgKey struct{ device, id string }

// pointKey identifies a stored point; a latest row is the same without ts.
type pointKey struct {
	device, metric string
	ts             int64
}

// row is one point or latest row to upsert.
type row struct {
	pointKey
	value  float64
	tenant string
}

// columns holds rows as the arrays the upsert statements take.
type columns struct {
	devices, metrics, tenants []string
	ts                        []int64
	values                    []float64
}

func toColumns(rows []row) columns {
	c := columns{
		devices: make([]string, len(rows)),
		metrics: make([]string, len(rows)),
		tenants: make([]string, len(rows)),
		ts:      make([]int64, len(rows)),
		values:  make([]float64, len(rows)),
	}
	for i, r := range rows {
		c.devices[i], c.metrics[i], c.ts[i], c.values[i], c.tenants[i] = r.device, r.metric, r.ts, r.value, r.tenant
	}
	return c
}

func comparePoints(a, b row) int {
	return cmp.Or(strings.Compare(a.device, b.device), strings.Compare(a.metric, b.metric), cmp.Compare(a.ts, b.ts))
}

// WriteMessages commits a batch in one transaction and three round trips:
// BEGIN with the insert of all message ids, which returns those not seen
// before; the upserts of the points and latest values of the new messages;
// COMMIT.
//
// The result is that of the SQLite store, which writes message by message:
// a repeated id, also inside the batch, is a duplicate; of several points
// with the same device, metric and timestamp the last one's value is kept;
// latest keeps the newest point, the last one among equal timestamps. Rows
// are merged in Go first, since one INSERT cannot update a row twice, and
// written sorted by key, so that concurrent batches lock rows in the same
// order and do not deadlock.
func (s *Store) WriteMessages(ctx context.Context, msgs []store.Message) ([]store.WriteResult, error) {
	results := make([]store.WriteResult, len(msgs))
	if len(msgs) == 0 {
		return results, nil
	}

	// Phase 1: record the ids. The first occurrence of an id in the batch
	// is inserted, later ones are duplicates already.
	first := make(map[msgKey]int) // message index by key
	var keys []msgKey
	for i, m := range msgs {
		if m.MessageID == "" {
			continue
		}
		k := msgKey{m.DeviceID, m.MessageID}
		if _, seen := first[k]; seen {
			results[i].Duplicate = true
			continue
		}
		first[k] = i
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b msgKey) int {
		return cmp.Or(strings.Compare(a.device, b.device), strings.Compare(a.id, b.id))
	})
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	if len(keys) > 0 {
		devices := make([]string, len(keys))
		ids := make([]string, len(keys))
		tenants := make([]string, len(keys))
		received := make([]int64, len(keys))
		for j, k := range keys {
			m := msgs[first[k]]
			devices[j], ids[j], tenants[j], received[j] = m.DeviceID, m.MessageID, m.TenantID, m.ReceivedAt.UnixMilli()
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
	br := s.pool.SendBatch(ctx, b)
	tx := br.Tx()
	defer tx.Rollback(ctx)
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("write messages: record ids: %w", err)
	}

	// Phase 2: the points of the new messages, merged.
	var points, latest []row
	pointAt := make(map[pointKey]int)
	latestAt := make(map[pointKey]int) // ts is zero in these keys
	for i, m := range msgs {
		if results[i].Duplicate {
			continue
		}
		for _, p := range m.Points {
			r := row{pointKey{m.DeviceID, p.Metric, p.TS.UnixMilli()}, p.Value, m.TenantID}
			if j, ok := pointAt[r.pointKey]; ok {
				points[j].value = r.value
			} else {
				pointAt[r.pointKey] = len(points)
				points = append(points, r)
			}
			lk := pointKey{device: m.DeviceID, metric: p.Metric}
			if j, ok := latestAt[lk]; !ok {
				latestAt[lk] = len(latest)
				latest = append(latest, r)
			} else if r.ts >= latest[j].ts {
				latest[j].ts, latest[j].value = r.ts, r.value
			}
		}
	}
	if len(points) > 0 {
		slices.SortFunc(points, comparePoints)
		slices.SortFunc(latest, comparePoints)
		pc, lc := toColumns(points), toColumns(latest)
		b := &pgx.Batch{}
		b.Queue(upsertPoints, pc.devices, pc.metrics, pc.ts, pc.values, pc.tenants)
		b.Queue(upsertLatest, lc.devices, lc.metrics, lc.ts, lc.values, lc.tenants)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return nil, fmt.Errorf("write messages: points: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("write messages: commit: %w", err)
	}
	return results, nil
}

// ForgetMessageIDs drops old dedup records.
func (s *Store) ForgetMessageIDs(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM message_ids WHERE received_at < $1`, before.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("forget message ids: %w", err)
	}
	return tag.RowsAffected(), nil
}

// checkDevice returns ErrNotFound unless the device belongs to the tenant.
func (s *Store) checkDevice(ctx context.Context, tenantID, deviceID string) error {
	var one int
	err := s.pool.QueryRow(ctx, `SELECT 1 FROM devices WHERE tenant_id = $1 AND id = $2`, tenantID, deviceID).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("device %q: %w", deviceID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("device %q: %w", deviceID, err)
	}
	return nil
}

// LatestValues returns the newest value of each metric of a device.
func (s *Store) LatestValues(ctx context.Context, tenantID, deviceID string) ([]store.Latest, error) {
	if err := s.checkDevice(ctx, tenantID, deviceID); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT metric, ts, value FROM latest WHERE device_id = $1 ORDER BY metric`, deviceID)
	if err != nil {
		return nil, fmt.Errorf("latest values of %q: %w", deviceID, err)
	}
	defer rows.Close()
	out := []store.Latest{}
	for rows.Next() {
		var l store.Latest
		var ts int64
		if err := rows.Scan(&l.Metric, &ts, &l.Value); err != nil {
			return nil, fmt.Errorf("latest values of %q: %w", deviceID, err)
		}
		l.TS = time.UnixMilli(ts).UTC()
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("latest values of %q: %w", deviceID, err)
	}
	return out, nil
}

// limitArg turns a limit into a LIMIT parameter: as in SQLite, a negative
// limit means none, which is LIMIT NULL in PostgreSQL.
func limitArg(limit int) any {
	if limit < 0 {
		return nil
	}
	return int64(limit)
}

// Samples streams one series' points in [from, to).
func (s *Store) Samples(ctx context.Context, tenantID, deviceID, metric string, from, to time.Time, limit int, fn func(store.Sample) bool) error {
	if err := s.checkDevice(ctx, tenantID, deviceID); err != nil {
		return err
	}
	if limit <= 0 {
		limit = -1 // no limit
	}
	rows, err := s.pool.Query(ctx, `SELECT ts, value FROM points WHERE device_id = $1 AND metric = $2 AND ts >= $3 AND ts < $4
		ORDER BY ts LIMIT $5`, deviceID, metric, from.UnixMilli(), to.UnixMilli(), limitArg(limit))
	if err != nil {
		return fmt.Errorf("samples of %q %q: %w", deviceID, metric, err)
	}
	defer rows.Close()
	for rows.Next() {
		var ts int64
		var v float64
		if err := rows.Scan(&ts, &v); err != nil {
			return fmt.Errorf("samples of %q %q: %w", deviceID, metric, err)
		}
		if !fn(store.Sample{TS: time.UnixMilli(ts).UTC(), Value: v}) {
			return nil
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("samples of %q %q: %w", deviceID, metric, err)
	}
	return nil
}

// maxRejectedPerDevice bounds the rejected-message list of one device; the
// oldest entries give way (the rejects counter keeps the total).
const maxRejectedPerDevice = 1000

// AddRejected keeps a message that could not be accepted, and trims the
// device's list to the newest maxRejectedPerDevice, in one transaction and
// one round trip.
func (s *Store) AddRejected(ctx context.Context, r store.Rejected) error {
	payload := r.Payload
	if payload == nil {
		payload = []byte{}
	}
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	b.Queue(`INSERT INTO rejected (tenant_id, device_id, message_id, topic, reason, payload, received_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, r.TenantID, r.DeviceID, r.MessageID, r.Topic, r.Reason, payload, r.ReceivedAt.UnixMilli())
	// The subquery is NULL, and nothing is deleted, while the device has
	// no more entries than the bound.
	b.Queue(`DELETE FROM rejected WHERE device_id = $1 AND id <
		(SELECT id FROM rejected WHERE device_id = $1 ORDER BY id DESC OFFSET $2 LIMIT 1)`,
		r.DeviceID, maxRejectedPerDevice-1)
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

// ListRejected returns a device's rejected messages, newest first.
func (s *Store) ListRejected(ctx context.Context, tenantID, deviceID string, limit int) ([]store.Rejected, error) {
	if err := s.checkDevice(ctx, tenantID, deviceID); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT id, tenant_id, device_id, message_id, topic, reason, payload, received_at
		FROM rejected WHERE device_id = $1 ORDER BY id DESC LIMIT $2`, deviceID, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("list rejected of %q: %w", deviceID, err)
	}
	defer rows.Close()
	out := []store.Rejected{}
	for rows.Next() {
		var r store.Rejected
		var at int64
		if err := rows.Scan(&r.ID, &r.TenantID, &r.DeviceID, &r.MessageID, &r.Topic, &r.Reason, &r.Payload, &at); err != nil {
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

// uniqueViolation is PostgreSQL's SQLSTATE for unique_violation.
const uniqueViolation = "23505"

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == uniqueViolation
}
