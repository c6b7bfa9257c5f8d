package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/store"
)

// alarmTables are the tables of migrationAlarm, for Reset.
const alarmTables = `alarm_rules, alarms, notification_prefs, webhooks, escalations, deliveries, maintenance_plans, monitor_state, monitor_states`

// ---- Alarms ----

const alarmColumns = `id, tenant_id, rule_id, device_id, site_id, kind, severity, message, value, state,
	raised_at, last_at, retriggers, acked_at, acked_by, ack_comment, cleared_at, cleared_by, sealed, sealed_comment`

// sealedAlarm is an alarm as stored, its sealed parts not opened yet.
type sealedAlarm struct {
	store.Alarm
	sealed, comment []byte
}

func scanSealedAlarm(row pgx.Row) (sealedAlarm, error) {
	var a sealedAlarm
	var raised, last, acked, cleared int64
	var retriggers int32
	if err := row.Scan(&a.ID, &a.TenantID, &a.RuleID, &a.DeviceID, &a.SiteID, &a.Kind, &a.Severity, &a.Message, &a.Value,
		&a.State, &raised, &last, &retriggers, &acked, &a.AckedBy, &a.AckComment, &cleared, &a.ClearedBy,
		&a.sealed, &a.comment); err != nil {
		return sealedAlarm{}, err
	}
	a.Retriggers = int(retriggers)
	a.RaisedAt, a.LastAt, a.AckedAt, a.ClearedAt = database.Time(raised), database.Time(last), database.Time(acked), database.Time(cleared)
	return a, nil
}

// Alarm change kinds (store.AlarmChange.Kind).
const (
	changeRaised      = "raised"
	changeRetriggered = "retriggered"
	changeCleared     = "cleared"
)

// raiseAlarm inserts an active alarm or, if one is active for the rule
// and device, counts a retrigger on it.
const raiseAlarm = `INSERT INTO alarms (tenant_id, rule_id, device_id, site_id, kind, severity, message, value, state, raised_at,
		last_at, sealed)
	VALUES ($1, $2, $3, $4, $5, $6, '', 0, 'active', $7, $7, $8)
	ON CONFLICT (rule_id, device_id) WHERE state = 'active' DO UPDATE SET retriggers = alarms.retriggers + 1,
		last_at = excluded.last_at, value = 0, message = '', sealed = excluded.sealed
	RETURNING ` + alarmColumns

// clearAlarm clears the active alarm of a rule and device, if any.
const clearAlarm = `UPDATE alarms SET state = 'cleared', cleared_at = $1, cleared_by = $2
	WHERE rule_id = $3 AND device_id = $4 AND state = 'active'
	RETURNING ` + alarmColumns

// Retryable SQLSTATEs of ApplyAlarmChanges: a deadlock with another
// writer of the alarms (such as DeleteDevice), should one happen; a retry
// then succeeds.
const (
	deadlockDetected     = "40P01"
	serializationFailure = "40001"
)

func isRetryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) &&
		(pgErr.Code == deadlockDetected || pgErr.Code == serializationFailure || pgErr.Code == uniqueViolation)
}

// ApplyAlarmChanges applies the changes in order in one transaction and
// one round trip (a batch), one statement each: a raise or retrigger is an
// upsert against the partial unique index of active alarms (so a
// retrigger without an active alarm raises one, and a raise of an active
// one retriggers it); a clear without an active alarm touches nothing and
// gives a zero Alarm. pgx prepares and caches the two statements per
// connection. Changes run sorted by alarm so that concurrent calls cannot
// deadlock each other; a deadlock or conflict is retried all the same.
func (s *Store) ApplyAlarmChanges(ctx context.Context, changes []store.AlarmChange) ([]store.Alarm, error) {
	if len(changes) == 0 {
		return []store.Alarm{}, nil
	}
	for _, c := range changes {
		if c.Kind != changeRaised && c.Kind != changeRetriggered && c.Kind != changeCleared {
			return nil, fmt.Errorf("apply alarm changes: unknown change %q", c.Kind)
		}
	}
	// Seal before the batch holds a connection of the pool (the keyring
	// may need one).
	sealed := make([][]byte, len(changes))
	for i, c := range changes {
		if c.Kind == changeCleared {
			continue
		}
		var err error
		if sealed[i], err = store.SealAlarm(ctx, s.sealer, c.TenantID, c.RuleID, c.DeviceID, c.Message, c.Value); err != nil {
			return nil, fmt.Errorf("alarm %s of rule %q on %q: %w", c.Kind, c.RuleID, c.DeviceID, err)
		}
	}
	for attempt := 1; ; attempt++ {
		out, err := s.applyAlarmChanges(ctx, changes, sealed)
		if err == nil || attempt == 5 || !isRetryable(err) || ctx.Err() != nil {
			return out, err
		}
	}
}

func (s *Store) applyAlarmChanges(ctx context.Context, changes []store.AlarmChange, sealed [][]byte) ([]store.Alarm, error) {
	got := make([]sealedAlarm, len(changes))
	// Changes of different alarms commute, so they run sorted by rule and
	// device (stably: those of one alarm keep their order). Concurrent
	// calls then lock alarms in the same order and cannot deadlock.
	order := make([]int, len(changes))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int {
		return cmp.Or(strings.Compare(changes[i].RuleID, changes[j].RuleID), strings.Compare(changes[i].DeviceID, changes[j].DeviceID))
	})
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	for _, i := range order {
		c := changes[i]
		var q *pgx.QueuedQuery
		if c.Kind == changeCleared {
			q = b.Queue(clearAlarm, database.Millis(c.At), c.By, c.RuleID, c.DeviceID)
		} else {
			kind := c.Alarm
			if kind == "" {
				kind = store.AlarmKindRule
			}
			q = b.Queue(raiseAlarm, c.TenantID, c.RuleID, c.DeviceID, c.SiteID, kind, c.Severity, database.Millis(c.At), sealed[i])
		}
		q.QueryRow(func(row pgx.Row) error {
			a, err := scanSealedAlarm(row)
			switch {
			case c.Kind == changeCleared && errors.Is(err, pgx.ErrNoRows):
			case isForeignKeyViolation(err):
				return fmt.Errorf("alarm %s of rule %q on %q: tenant %q: %w", c.Kind, c.RuleID, c.DeviceID, c.TenantID, store.ErrNotFound)
			case err != nil:
				return fmt.Errorf("alarm %s of rule %q on %q: %w", c.Kind, c.RuleID, c.DeviceID, err)
			default:
				got[i] = a
			}
			return nil
		})
	}
	br := s.pool.SendBatch(ctx, b)
	tx := br.Tx()
	defer tx.Rollback(ctx)
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("apply alarm changes: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("apply alarm changes: commit: %w", err)
	}
	// Opened after the batch gave its connection back.
	out := make([]store.Alarm, len(changes))
	for i, a := range got {
		if a.ID == 0 {
			continue
		}
		if err := store.OpenAlarmRow(ctx, s.sealer, &a.Alarm, a.sealed, a.comment); err != nil {
			return nil, fmt.Errorf("apply alarm changes: %w", err)
		}
		out[i] = a.Alarm
	}
	return out, nil
}

// ---- Deliveries ----
