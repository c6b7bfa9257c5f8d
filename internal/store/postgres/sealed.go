package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/sealing"
)

// sealedTables are the tables whose plaintext SealPlaintext (and the
// telemetry engine's upgrade of old rejected messages) replaces, for
// CompactSealed.
const sealedTables = `device_twins, c2d_messages, alarms, deliveries, maintenance_plans, monitor_state,
	registrations, enrollment_groups, enrollments, rejected`

// metaCompactPending is set in the transaction that replaces plaintext,
// and removed once CompactSealed has rewritten the tables.
const metaCompactPending = "sealed_compact_pending"

// SetSealer sets the keyring machine data is sealed with.
func (s *Store) SetSealer(sl keyring.Sealer) {
	s.sealer = sl
	s.Store.SetSealer(sl)
	s.Domains.SetSealer(sl)
}

const sealBatch = 200

type plaintextPass struct {
	table  string
	query  string
	update string
	seal   sealing.PlaintextSealer
}

func plaintextPasses() []plaintextPass {
	return []plaintextPass{{
		table: "device_twins",
		query: `SELECT device_id, tenant_id, tags, desired, desired_meta, reported, reported_meta
			FROM device_twins WHERE sealed IS NULL LIMIT $1`,
		update: `UPDATE device_twins SET sealed = $1, tags = '', desired = '', desired_meta = '', reported = '',
			reported_meta = '' WHERE device_id = $2 AND sealed IS NULL`,
		seal: sealing.SealPlaintextTwin,
	}, {
		table: "c2d_messages",
		query: `SELECT id, tenant_id, device_id, message_id, properties, payload FROM c2d_messages
			WHERE sealed IS NULL LIMIT $1`,
		update: `UPDATE c2d_messages SET sealed = $1, properties = '', payload = ''::bytea WHERE id = $2 AND sealed IS NULL`,
		seal:   sealing.SealPlaintextC2D,
	}, {
		table: "alarms",
		query: `SELECT id, tenant_id, rule_id, device_id, message, value, ack_comment FROM alarms
			WHERE sealed IS NULL LIMIT $1`,
		update: `UPDATE alarms SET sealed = $1, sealed_comment = $2, message = '', value = 0, ack_comment = ''
			WHERE id = $3 AND sealed IS NULL`,
		seal: sealing.SealPlaintextAlarm,
	}, {
		table: "deliveries",
		query: `SELECT id, tenant_id, alarm_id, channel, target, event, payload, last_error FROM deliveries
			WHERE sealed IS NULL LIMIT $1`,
		update: `UPDATE deliveries SET sealed = $1, sealed_error = $2, payload = '', last_error = ''
			WHERE id = $3 AND sealed IS NULL`,
		seal: sealing.SealPlaintextDelivery,
	}, {
		table:  "maintenance_plans",
		query:  `SELECT tenant_id, model, spec FROM maintenance_plans WHERE sealed IS NULL LIMIT $1`,
		update: `UPDATE maintenance_plans SET sealed = $1, spec = '' WHERE tenant_id = $2 AND model = $3 AND sealed IS NULL`,
		seal:   sealing.SealPlaintextPlan,
	}, {
		table: "registrations",
		query: `SELECT tenant_id, registration_id, enrollment_kind, enrollment_id, payload, initial_twin FROM registrations
			WHERE sealed IS NULL LIMIT $1`,
		update: `UPDATE registrations SET sealed = $1, payload = NULL, initial_twin = NULL
			WHERE tenant_id = $2 AND registration_id = $3 AND sealed IS NULL`,
		seal: sealing.SealPlaintextRegistration,
	}, {
		table:  "enrollment_groups",
		query:  `SELECT tenant_id, id, initial_twin FROM enrollment_groups WHERE sealed IS NULL LIMIT $1`,
		update: `UPDATE enrollment_groups SET sealed = $1, initial_twin = NULL WHERE tenant_id = $2 AND id = $3 AND sealed IS NULL`,
		seal:   sealing.SealPlaintextGroup,
	}, {
		table: "enrollments",
		query: `SELECT tenant_id, registration_id, initial_twin FROM enrollments WHERE sealed IS NULL LIMIT $1`,
		update: `UPDATE enrollments SET sealed = $1, initial_twin = NULL
			WHERE tenant_id = $2 AND registration_id = $3 AND sealed IS NULL`,
		seal: sealing.SealPlaintextEnrollment,
	}}
}

// SealPlaintext seals the rows written before sealing existed, in batches
// of one transaction each (a crash loses at most the batch, which the next
// run seals again).
func (s *Store) SealPlaintext(ctx context.Context) (int64, error) {
	if s.sealer == nil {
		return 0, sealing.ErrNoSealer
	}
	var total int64
	for _, p := range plaintextPasses() {
		for {
			n, err := s.sealPlaintextBatch(ctx, p)
			if err != nil {
				return total, fmt.Errorf("seal plaintext rows of %s: %w", p.table, err)
			}
			total += int64(n)
			if n < sealBatch {
				break
			}
		}
	}
	return total, nil
}

func (s *Store) sealPlaintextBatch(ctx context.Context, p plaintextPass) (int, error) {
	rows, err := s.pool.Query(ctx, p.query, sealBatch)
	if err != nil {
		return 0, err
	}
	var updates [][]any
	for rows.Next() {
		args, err := p.seal(ctx, s.sealer, rows)
		if err != nil {
			rows.Close()
			return 0, err
		}
		updates = append(updates, args)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if len(updates) == 0 {
		return 0, nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	for _, args := range updates {
		if _, err := tx.Exec(ctx, p.update, args...); err != nil {
			return 0, err
		}
	}
	if err := setCompactPending(ctx, tx); err != nil {
		return 0, err
	}
	return len(updates), tx.Commit(ctx)
}

func setCompactPending(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `INSERT INTO meta (key, value) VALUES ($1, '1') ON CONFLICT (key) DO NOTHING`, metaCompactPending)
	return err
}

// CompactSealed rewrites the tables whose plaintext was replaced (VACUUM
// FULL writes new files without the dead tuples) if that happened since
// the last compaction.
func (s *Store) CompactSealed(ctx context.Context) error {
	if _, err := s.GetMeta(ctx, metaCompactPending); errors.Is(err, database.ErrNotFound) {
		return nil
	} else if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	if err := s.waitOlderSnapshots(ctx); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `VACUUM FULL `+sealedTables); err != nil {
		return fmt.Errorf("compact: vacuum: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM meta WHERE key = $1`, metaCompactPending); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	return nil
}

// waitOlderSnapshots waits until no transaction, snapshot or replication
// slot older than now holds back the horizon of this database (see
// database.DB.WaitForHorizon; a transaction still running in another database counts,
// since this one's snapshots must treat it as in progress): VACUUM FULL
// keeps the row versions such a snapshot may still see, plaintext included.
func (s *Store) waitOlderSnapshots(ctx context.Context) error {
	var now string
	if err := s.pool.QueryRow(ctx, `SELECT pg_current_xact_id()::text`).Scan(&now); err != nil {
		return err
	}
	if err := s.ddb.WaitForHorizon(ctx, now, compactWait); err != nil {
		return fmt.Errorf("%w; compaction runs again at the next start", err)
	}
	return nil
}

// compactWait bounds waitOlderSnapshots.
const compactWait = time.Minute
