package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/sealing"
)

// metaCompactPending is set in the transaction that replaces plaintext,
// and removed once CompactSealed has rewritten the file: a crash in
// between leaves it set, and the next start compacts.
const metaCompactPending = "sealed_compact_pending"

// SetSealer sets the keyring machine data is sealed with.
func (s *Store) SetSealer(sl keyring.Sealer) {
	s.sealer = sl
	s.Store.SetSealer(sl)
	s.Domains.SetSealer(sl)
}

// sealBatch is how many plaintext rows SealPlaintext seals per transaction.
const sealBatch = 200

// plaintextPass seals one table's plaintext rows: query selects up to
// sealBatch of them, seal turns one row into its UPDATE's arguments.
type plaintextPass struct {
	table  string
	query  string
	update string
	seal   sealing.PlaintextSealer
}

func (s *Store) plaintextPasses() []plaintextPass {
	return []plaintextPass{{
		table: "device_twins",
		query: `SELECT device_id, tenant_id, tags, desired, desired_meta, reported, reported_meta
			FROM device_twins WHERE sealed IS NULL LIMIT ?`,
		update: `UPDATE device_twins SET sealed = ?, tags = '', desired = '', desired_meta = '', reported = '',
			reported_meta = '' WHERE device_id = ? AND sealed IS NULL`,
		seal: sealing.SealPlaintextTwin,
	}, {
		table: "c2d_messages",
		query: `SELECT id, tenant_id, device_id, message_id, properties, payload FROM c2d_messages
			WHERE sealed IS NULL LIMIT ?`,
		update: `UPDATE c2d_messages SET sealed = ?, properties = '', payload = x'' WHERE id = ? AND sealed IS NULL`,
		seal:   sealing.SealPlaintextC2D,
	}, {
		table: "alarms",
		query: `SELECT id, tenant_id, rule_id, device_id, message, value, ack_comment FROM alarms
			WHERE sealed IS NULL LIMIT ?`,
		update: `UPDATE alarms SET sealed = ?, sealed_comment = ?, message = '', value = 0, ack_comment = ''
			WHERE id = ? AND sealed IS NULL`,
		seal: sealing.SealPlaintextAlarm,
	}, {
		table: "deliveries",
		query: `SELECT id, tenant_id, alarm_id, channel, target, event, payload, last_error FROM deliveries
			WHERE sealed IS NULL LIMIT ?`,
		update: `UPDATE deliveries SET sealed = ?, sealed_error = ?, payload = '', last_error = ''
			WHERE id = ? AND sealed IS NULL`,
		seal: sealing.SealPlaintextDelivery,
	}, {
		table:  "maintenance_plans",
		query:  `SELECT tenant_id, model, spec FROM maintenance_plans WHERE sealed IS NULL LIMIT ?`,
		update: `UPDATE maintenance_plans SET sealed = ?, spec = '' WHERE tenant_id = ? AND model = ? AND sealed IS NULL`,
		seal:   sealing.SealPlaintextPlan,
	}, {
		table: "registrations",
		query: `SELECT tenant_id, registration_id, enrollment_kind, enrollment_id, payload, initial_twin FROM registrations
			WHERE sealed IS NULL LIMIT ?`,
		update: `UPDATE registrations SET sealed = ?, payload = NULL, initial_twin = NULL
			WHERE tenant_id = ? AND registration_id = ? AND sealed IS NULL`,
		seal: sealing.SealPlaintextRegistration,
	}, {
		table:  "enrollment_groups",
		query:  `SELECT tenant_id, id, initial_twin FROM enrollment_groups WHERE sealed IS NULL LIMIT ?`,
		update: `UPDATE enrollment_groups SET sealed = ?, initial_twin = NULL WHERE tenant_id = ? AND id = ? AND sealed IS NULL`,
		seal:   sealing.SealPlaintextGroup,
	}, {
		table: "enrollments",
		query: `SELECT tenant_id, registration_id, initial_twin FROM enrollments WHERE sealed IS NULL LIMIT ?`,
		update: `UPDATE enrollments SET sealed = ?, initial_twin = NULL
			WHERE tenant_id = ? AND registration_id = ? AND sealed IS NULL`,
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
	for _, p := range s.plaintextPasses() {
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
	// Read through the readers and seal outside the write transaction: a
	// tenant's first sealing creates its key through the one writer
	// connection. The UPDATE's "sealed IS NULL" makes a row sealed
	// meanwhile stay as it is.
	rows, err := s.r.QueryContext(ctx, p.query, sealBatch)
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
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return 0, err
	}
	if len(updates) == 0 {
		return 0, nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	for _, args := range updates {
		if _, err := tx.ExecContext(ctx, p.update, args...); err != nil {
			return 0, err
		}
	}
	if err := setCompactPending(ctx, tx); err != nil {
		return 0, err
	}
	return len(updates), tx.Commit()
}

func setCompactPending(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, '1') ON CONFLICT (key) DO NOTHING`, metaCompactPending)
	return err
}

// CompactSealed rewrites the database file (VACUUM) and empties the WAL
// if plaintext was replaced since the last compaction.
func (s *Store) CompactSealed(ctx context.Context) error {
	if _, err := s.GetMeta(ctx, metaCompactPending); errors.Is(err, database.ErrNotFound) {
		return nil
	} else if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	if _, err := s.w.ExecContext(ctx, `VACUUM`); err != nil {
		return fmt.Errorf("compact: vacuum: %w", err)
	}
	if _, err := s.w.ExecContext(ctx, `DELETE FROM meta WHERE key = ?`, metaCompactPending); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	if _, err := s.w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return fmt.Errorf("compact: checkpoint: %w", err)
	}
	return nil
}
