// Package postgres is the store for several Warden nodes sharing one
// PostgreSQL database. It has the same tables and semantics as store/sqlite:
// timestamps are BIGINT unix milliseconds; keys, hashes, payloads and the
// encrypted telemetry blobs are BYTEA. It talks to the server through a pgx
// connection pool. Its telemetry store is tsdbpg's, which it embeds.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/sqlstore"
	"github.com/warden-iot/warden/internal/tsdb/tsdbpg"
)

// Store is a store.Store on a PostgreSQL database.
type Store struct {
	*sqlstore.Store  // the methods both engines share
	sqlstore.Domains // the domain stores
	*telemetry       // the telemetry store

	pool *pgxpool.Pool
	db   *sql.DB // pool behind database/sql, for the shared methods
	ddb  database.DB

	sealer keyring.Sealer // set once by SetSealer, before use
}

var _ store.Store = (*Store)(nil)

// telemetry is the telemetry store the engine embeds, under a name of its
// own (sqlstore.Store is embedded as Store).
type telemetry = tsdbpg.Store

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
	db := stdlib.OpenDBFromPool(pool)
	ddb := database.DB{Dialect: database.Postgres, W: db, R: db}
	return &Store{
		Store:     sqlstore.New(ddb),
		Domains:   sqlstore.NewDomains(ddb),
		telemetry: tsdbpg.New(ddb, pool),
		ddb:       ddb,
		pool:      pool,
		db:        db,
	}, nil
}

// DB is the database the domain stores run on.
func (s *Store) DB() database.DB { return s.ddb }

// Close closes the connection pool, waiting for connections in use to be
// released.
func (s *Store) Close() error {
	err := s.db.Close()
	s.pool.Close()
	return err
}

// CreateDevice registers a device with its metadata; a site must be one of
// the device's tenant.
func (s *Store) CreateDevice(ctx context.Context, d store.Device) error {
	args := append([]any{d.ID, d.TenantID, string(d.Status), d.PrimaryKey, d.SecondaryKey, d.CreatedAt.UnixMilli()},
		deviceInfoArgs(d.Info)...)
	tag, err := s.pool.Exec(ctx, `INSERT INTO devices (id, tenant_id, status, primary_key, secondary_key, created_at,
			site_id, name, serial_number, meter_number, measurement_location, installation_place, model, firmware_version)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 WHERE `+siteInTenant("$7", "$2"), args...)
	if isUniqueViolation(err) {
		return fmt.Errorf("device %q: %w", d.ID, database.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create device %q: %w", d.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("device %q: site %q of tenant %q: %w", d.ID, d.Info.SiteID, d.TenantID, database.ErrNotFound)
	}
	return nil
}

const deviceColumns = `id, tenant_id, status, primary_key, secondary_key, created_at, last_seen, last_ip,
	site_id, name, serial_number, meter_number, measurement_location, installation_place, model, firmware_version`

func scanDevice(row pgx.Row) (store.Device, error) {
	var d store.Device
	var status string
	var created, seen int64
	var site *string
	i := &d.Info
	if err := row.Scan(&d.ID, &d.TenantID, &status, &d.PrimaryKey, &d.SecondaryKey, &created, &seen, &d.LastIP,
		&site, &i.Name, &i.SerialNumber, &i.MeterNumber, &i.MeasurementLocation, &i.InstallationPlace, &i.Model, &i.FirmwareVersion); err != nil {
		return store.Device{}, err
	}
	if site != nil {
		i.SiteID = *site
	}
	d.Status = store.DeviceStatus(status)
	d.CreatedAt = time.UnixMilli(created).UTC()
	if seen != 0 {
		d.LastSeen = time.UnixMilli(seen).UTC()
	}
	return d, nil
}

// TouchDevices records devices' latest activity in one statement.
func (s *Store) TouchDevices(ctx context.Context, seen []store.DeviceSeen) error {
	if len(seen) == 0 {
		return nil
	}
	ids := make([]string, len(seen))
	ats := make([]int64, len(seen))
	ips := make([]string, len(seen))
	for i, d := range seen {
		ids[i], ats[i], ips[i] = d.ID, d.At.UnixMilli(), d.IP
	}
	_, err := s.pool.Exec(ctx, `UPDATE devices d SET last_seen = u.at, last_ip = u.ip
		FROM unnest($1::text[], $2::bigint[], $3::text[]) AS u(id, at, ip) WHERE d.id = u.id`, ids, ats, ips)
	if err != nil {
		return fmt.Errorf("touch devices: %w", err)
	}
	return nil
}

// DeleteDevice removes a device and everything recorded for it, including
// the grants on it (deleted, not revoked), in one transaction and one round
// trip for the deletes. The device row goes first: a CreateGrant holding it
// finishes before, and its grant is then deleted too. The tables come in the
// order in which WriteHead locks their rows (latest before head_stats), so
// the two cannot deadlock; a WriteHead of the device that runs at the same
// time ends up wholly before or wholly after the delete.
func (s *Store) DeleteDevice(ctx context.Context, tenantID, id string) error {
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	var found bool
	b.Queue(`DELETE FROM devices WHERE tenant_id = $1 AND id = $2`, tenantID, id).Exec(func(tag pgconn.CommandTag) error {
		found = tag.RowsAffected() > 0
		return nil
	})
	for _, table := range []string{"latest", "head_stats", "head", "chunks", "message_ids", "rejected", "grants"} {
		b.Queue(`DELETE FROM `+table+` WHERE device_id = $1`, id)
	}
	queueDeleteDeviceAlarms(b, id)
	br := s.pool.SendBatch(ctx, b)
	tx := br.Tx()
	defer tx.Rollback(ctx)
	if err := br.Close(); err != nil {
		return fmt.Errorf("delete device %q: %w", id, err)
	}
	if !found {
		return fmt.Errorf("device %q: %w", id, database.ErrNotFound)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("delete device %q: commit: %w", id, err)
	}
	return nil
}

// checkDevice returns ErrNotFound unless the device belongs to the tenant.
func (s *Store) checkDevice(ctx context.Context, tenantID, deviceID string) error {
	var one int
	err := s.pool.QueryRow(ctx, `SELECT 1 FROM devices WHERE tenant_id = $1 AND id = $2`, tenantID, deviceID).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("device %q: %w", deviceID, database.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("device %q: %w", deviceID, err)
	}
	return nil
}

// limitArg turns a limit into a LIMIT parameter: as in SQLite, a negative
// limit means none, which is LIMIT NULL in PostgreSQL.
func limitArg(limit int) any {
	if limit < 0 {
		return nil
	}
	return int64(limit)
}

func isUniqueViolation(err error) bool { return database.Postgres.IsUniqueViolation(err) }

// foreignKeyViolation is PostgreSQL's SQLSTATE for foreign_key_violation.
const foreignKeyViolation = "23503"

// Reset drops every Warden table, leaving an empty database for Migrate.
// It destroys all data: only `warden bench storage --database` uses it, on a
// database made for the benchmark.
func (s *Store) Reset(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `DROP TABLE IF EXISTS meta, tenants, tenant_keys, devices, api_tokens, message_ids,
		head, head_stats, chunks, latest, rejected, device_twins, c2d_messages, device_sessions,
		id_scopes, enrollment_groups, enrollments, registrations, audit_log,
		sites, users, sessions, user_tokens, grants, sign_in_failures, retired_ids,
		sites, users, sessions, user_tokens, grants, staff_credentials,
		`+alarmTables+`,
		schema_migrations CASCADE`)
	if err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	return nil
}
