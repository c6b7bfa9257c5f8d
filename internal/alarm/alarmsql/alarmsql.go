// Package alarmsql is alarm.Store on SQLite and PostgreSQL: alarm rules,
// alarms, maintenance plans and the evaluators' state, in SQL written once
// for both dialects (package database rebinds it). Machine data is sealed
// with its tenant's key before a transaction begins and opened after it
// ends, so that the keyring (which may need a connection of its own, or
// SQLite's single writer, to create a key) is never called inside one.
package alarmsql

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/sealing"
)

// Store is alarm.Store on a database.
type Store struct {
	db     database.DB
	sealer keyring.Sealer // set once by SetSealer, before use
}

var _ alarm.Store = (*Store)(nil)

// New returns a Store on db. Call SetSealer before use.
func New(db database.DB) *Store { return &Store{db: db} }

// SetSealer sets what seals and opens machine data; the engines' SetSealer
// forwards to it.
func (s *Store) SetSealer(sl keyring.Sealer) { s.sealer = sl }

func (s *Store) filter() *database.Filter { return &database.Filter{Dialect: s.db.Dialect} }

// specText is an opaque JSON document for a TEXT column: "" for none.
func specText(what string, spec json.RawMessage) (string, error) {
	if len(spec) == 0 {
		return "", nil
	}
	if !json.Valid(spec) {
		return "", fmt.Errorf("%s: invalid JSON", what)
	}
	return string(spec), nil
}

// specJSON is specText's inverse.
func specJSON(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}

// ---- Alarm rules ----

const ruleColumns = `id, tenant_id, name, enabled, spec, created_by, created_at, updated_at`

func scanRule(row database.Scanner) (alarm.StoredRule, error) {
	var r alarm.StoredRule
	var spec string
	var created, updated int64
	if err := row.Scan(&r.ID, &r.TenantID, &r.Name, &r.Enabled, &spec, &r.CreatedBy, &created, &updated); err != nil {
		return alarm.StoredRule{}, err
	}
	r.Spec = specJSON(spec)
	r.CreatedAt, r.UpdatedAt = database.Time(created), database.Time(updated)
	return r, nil
}

// CreateAlarmRule stores a rule; its tenant must exist.
func (s *Store) CreateAlarmRule(ctx context.Context, r alarm.StoredRule) error {
	spec, err := specText("alarm rule "+r.ID, r.Spec)
	if err != nil {
		return err
	}
	_, err = s.db.Exec(ctx, `INSERT INTO alarm_rules (`+ruleColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.TenantID, r.Name, r.Enabled, spec, r.CreatedBy, database.Millis(r.CreatedAt), database.Millis(r.UpdatedAt))
	switch {
	case s.db.Dialect.IsUniqueViolation(err):
		return fmt.Errorf("alarm rule %q: %w", r.ID, database.ErrConflict)
	case s.db.Dialect.IsForeignKeyViolation(err):
		return fmt.Errorf("alarm rule %q: tenant %q: %w", r.ID, r.TenantID, database.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create alarm rule %q: %w", r.ID, err)
	}
	return nil
}

// GetAlarmRule returns one rule.
func (s *Store) GetAlarmRule(ctx context.Context, id string) (alarm.StoredRule, error) {
	r, err := scanRule(s.db.QueryRow(ctx, `SELECT `+ruleColumns+` FROM alarm_rules WHERE id = ?`, id))
	if database.NoRows(err) {
		return r, fmt.Errorf("alarm rule %q: %w", id, database.ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("get alarm rule %q: %w", id, err)
	}
	return r, nil
}

// ListAlarmRules returns the rules of the given tenants (nil: all) in id
// order.
func (s *Store) ListAlarmRules(ctx context.Context, tenantIDs []string) ([]alarm.StoredRule, error) {
	w := s.filter()
	w.In("tenant_id", tenantIDs)
	if w.None {
		return []alarm.StoredRule{}, nil
	}
	rows, err := s.db.Query(ctx, `SELECT `+ruleColumns+` FROM alarm_rules`+w.Where()+` ORDER BY id`, w.Args...)
	out, err := database.Collect(rows, err, scanRule)
	if err != nil {
		return nil, fmt.Errorf("list alarm rules: %w", err)
	}
	return out, nil
}

// ListAlarmRulesUnder returns the rules of the tenant and the tenants
// below it (the subtree found in the query) in id order.
func (s *Store) ListAlarmRulesUnder(ctx context.Context, tenantID string) ([]alarm.StoredRule, error) {
	w := s.filter()
	w.Under("tenant_id", tenantID)
	rows, err := s.db.Query(ctx, `SELECT `+ruleColumns+` FROM alarm_rules`+w.Where()+` ORDER BY id`, w.Args...)
	out, err := database.Collect(rows, err, scanRule)
	if err != nil {
		return nil, fmt.Errorf("list alarm rules under %q: %w", tenantID, err)
	}
	return out, nil
}

// UpdateAlarmRule replaces a rule's name, enabled flag, spec and update
// time (not its tenant or creation).
func (s *Store) UpdateAlarmRule(ctx context.Context, r alarm.StoredRule) error {
	spec, err := specText("alarm rule "+r.ID, r.Spec)
	if err != nil {
		return err
	}
	n, err := database.Affected(s.db.Exec(ctx, `UPDATE alarm_rules SET name = ?, enabled = ?, spec = ?, updated_at = ? WHERE id = ?`,
		r.Name, r.Enabled, spec, database.Millis(r.UpdatedAt), r.ID))
	if err != nil {
		return fmt.Errorf("update alarm rule %q: %w", r.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("alarm rule %q: %w", r.ID, database.ErrNotFound)
	}
	return nil
}

// DeleteAlarmRule removes a rule; its alarms stay.
func (s *Store) DeleteAlarmRule(ctx context.Context, id string) error {
	n, err := database.Affected(s.db.Exec(ctx, `DELETE FROM alarm_rules WHERE id = ?`, id))
	if err != nil {
		return fmt.Errorf("delete alarm rule %q: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("alarm rule %q: %w", id, database.ErrNotFound)
	}
	return nil
}

// ---- Alarms ----

const alarmColumns = `id, tenant_id, rule_id, device_id, site_id, kind, severity, message, value, state,
	raised_at, last_at, retriggers, acked_at, acked_by, ack_comment, cleared_at, cleared_by, sealed, sealed_comment`

// sealedAlarm is an alarm as stored, its sealed parts not opened yet.
type sealedAlarm struct {
	alarm.Record
	sealed, comment []byte
}

func scanSealedAlarm(row database.Scanner) (sealedAlarm, error) {
	var a sealedAlarm
	var raised, last, acked, cleared int64
	if err := row.Scan(&a.ID, &a.TenantID, &a.RuleID, &a.DeviceID, &a.SiteID, &a.Kind, &a.Severity, &a.Message, &a.Value,
		&a.State, &raised, &last, &a.Retriggers, &acked, &a.AckedBy, &a.AckComment, &cleared, &a.ClearedBy,
		&a.sealed, &a.comment); err != nil {
		return sealedAlarm{}, err
	}
	a.RaisedAt, a.LastAt, a.AckedAt, a.ClearedAt = database.Time(raised), database.Time(last), database.Time(acked), database.Time(cleared)
	return a, nil
}

// open opens an alarm's sealed parts; one that cannot be opened is marked
// Unreadable. Never call it inside a transaction or with rows open.
func (s *Store) open(ctx context.Context, a sealedAlarm) (alarm.Record, error) {
	if err := sealing.OpenAlarmRow(ctx, s.sealer, &a.Record, a.sealed, a.comment); err != nil {
		return alarm.Record{}, err
	}
	return a.Record, nil
}

// getAlarm reads one alarm (a single row: nothing else is open) and opens
// its sealed parts.
func (s *Store) getAlarm(ctx context.Context, row database.Scanner) (alarm.Record, error) {
	a, err := scanSealedAlarm(row)
	if err != nil {
		return alarm.Record{}, err
	}
	return s.open(ctx, a)
}

// Alarm change kinds (alarm.Change.Kind).
const (
	changeRaised      = "raised"
	changeRetriggered = "retriggered"
	changeCleared     = "cleared"
)

// raiseAlarm inserts an active alarm or, if one is active for the rule
// and device, counts a retrigger on it.
const raiseAlarm = `INSERT INTO alarms (tenant_id, rule_id, device_id, site_id, kind, severity, message, value, state, raised_at,
		last_at, sealed)
	VALUES (?, ?, ?, ?, ?, ?, '', 0, 'active', ?, ?, ?)
	ON CONFLICT (rule_id, device_id) WHERE state = 'active' DO UPDATE SET retriggers = alarms.retriggers + 1,
		last_at = excluded.last_at, value = 0, message = '', sealed = excluded.sealed
	RETURNING ` + alarmColumns

// clearAlarm clears the active alarm of a rule and device, if any.
const clearAlarm = `UPDATE alarms SET state = 'cleared', cleared_at = ?, cleared_by = ?
	WHERE rule_id = ? AND device_id = ? AND state = 'active'
	RETURNING ` + alarmColumns

// applyAttempts bounds how often ApplyAlarmChanges runs its transaction
// when PostgreSQL reports a conflict with a concurrent writer.
const applyAttempts = 5

// PostgreSQL's codes of a conflict with a concurrent transaction that a
// retry resolves: a deadlock with another writer of the alarms (such as
// DeleteDevice), a serialization failure, or two raises of one alarm
// inserting at once (the loser's retry then sees the winner's row).
const (
	pgDeadlockDetected     = "40P01"
	pgSerializationFailure = "40001"
	pgUniqueViolation      = "23505"
)

// isRetryable reports whether err is such a conflict.
func (s *Store) isRetryable(err error) bool {
	var pgErr *pgconn.PgError
	return s.db.Dialect == database.Postgres && errors.As(err, &pgErr) &&
		(pgErr.Code == pgDeadlockDetected || pgErr.Code == pgSerializationFailure || pgErr.Code == pgUniqueViolation)
}

// ApplyAlarmChanges applies the changes in order in one transaction, one
// statement each: a raise or retrigger is an upsert against the partial
// unique index of active alarms (so a retrigger without an active alarm
// raises one, and a raise of an active one retriggers it); a clear without
// an active alarm touches nothing and gives a zero Record. The changes are
// sealed before the transaction and the alarms opened after it.
//
// In PostgreSQL, where several nodes write at once, changes run sorted by
// alarm so that concurrent calls lock alarms in the same order and cannot
// deadlock each other; a deadlock or conflict is retried all the same.
// SQLite's single writer runs them as given.
func (s *Store) ApplyAlarmChanges(ctx context.Context, changes []alarm.Change) ([]alarm.Record, error) {
	out := make([]alarm.Record, len(changes))
	if len(changes) == 0 {
		return out, nil
	}
	for _, c := range changes {
		if c.Kind != changeRaised && c.Kind != changeRetriggered && c.Kind != changeCleared {
			return nil, fmt.Errorf("apply alarm changes: unknown change %q", c.Kind)
		}
	}
	sealed := make([][]byte, len(changes))
	for i, c := range changes {
		if c.Kind == changeCleared {
			continue
		}
		var err error
		if sealed[i], err = sealing.SealAlarm(ctx, s.sealer, c.TenantID, c.RuleID, c.DeviceID, c.Message, c.Value); err != nil {
			return nil, fmt.Errorf("alarm %s of rule %q on %q: %w", c.Kind, c.RuleID, c.DeviceID, err)
		}
	}
	order := make([]int, len(changes))
	for i := range order {
		order[i] = i
	}
	if s.db.Dialect == database.Postgres {
		// Changes of different alarms commute; those of one alarm keep
		// their order (a stable sort).
		slices.SortStableFunc(order, func(i, j int) int {
			return cmp.Or(strings.Compare(changes[i].RuleID, changes[j].RuleID), strings.Compare(changes[i].DeviceID, changes[j].DeviceID))
		})
	}
	var got []sealedAlarm
	for attempt := 1; ; attempt++ {
		var err error
		got, err = s.applyAlarmChanges(ctx, changes, sealed, order)
		if err == nil {
			break
		}
		if attempt == applyAttempts || !s.isRetryable(err) || ctx.Err() != nil {
			return nil, err
		}
	}
	for i, a := range got {
		if a.ID == 0 {
			continue
		}
		var err error
		if out[i], err = s.open(ctx, a); err != nil {
			return nil, fmt.Errorf("apply alarm changes: %w", err)
		}
	}
	return out, nil
}

// applyAlarmChanges runs the changes in the given order in one
// transaction and returns the alarms they touched, by change, unopened.
func (s *Store) applyAlarmChanges(ctx context.Context, changes []alarm.Change, sealed [][]byte, order []int) ([]sealedAlarm, error) {
	got := make([]sealedAlarm, len(changes))
	err := s.db.InTx(ctx, func(tx database.Tx) error {
		// Each statement is prepared once per call, when first needed.
		stmts := map[string]*sql.Stmt{}
		defer func() {
			for _, st := range stmts {
				st.Close()
			}
		}()
		queryRow := func(query string, args ...any) (*sql.Row, error) {
			st := stmts[query]
			if st == nil {
				var err error
				if st, err = tx.Prepare(ctx, query); err != nil {
					return nil, err
				}
				stmts[query] = st
			}
			return st.QueryRowContext(ctx, args...), nil
		}
		for _, i := range order {
			c := changes[i]
			at := database.Millis(c.At)
			var row *sql.Row
			var err error
			if c.Kind == changeCleared {
				row, err = queryRow(clearAlarm, at, c.By, c.RuleID, c.DeviceID)
			} else {
				row, err = queryRow(raiseAlarm, c.TenantID, c.RuleID, c.DeviceID, c.SiteID, cmp.Or(c.Alarm, alarm.KindRule), c.Severity,
					at, at, sealed[i])
			}
			if err != nil {
				return err
			}
			a, err := scanSealedAlarm(row)
			switch {
			case c.Kind == changeCleared && database.NoRows(err):
			case s.db.Dialect.IsForeignKeyViolation(err):
				return fmt.Errorf("alarm %s of rule %q on %q: tenant %q: %w", c.Kind, c.RuleID, c.DeviceID, c.TenantID, database.ErrNotFound)
			case err != nil:
				return fmt.Errorf("alarm %s of rule %q on %q: %w", c.Kind, c.RuleID, c.DeviceID, err)
			default:
				got[i] = a
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("apply alarm changes: %w", err)
	}
	return got, nil
}

// GetAlarm returns one alarm.
func (s *Store) GetAlarm(ctx context.Context, id int64) (alarm.Record, error) {
	a, err := s.getAlarm(ctx, s.db.QueryRow(ctx, `SELECT `+alarmColumns+` FROM alarms WHERE id = ?`, id))
	if database.NoRows(err) {
		return a, fmt.Errorf("alarm %d: %w", id, database.ErrNotFound)
	}
	if err != nil {
		return a, fmt.Errorf("get alarm %d: %w", id, err)
	}
	return a, nil
}

// ListAlarms returns the alarms matching f in id order, up to f.Limit
// (default 1000).
func (s *Store) ListAlarms(ctx context.Context, f alarm.Filter) ([]alarm.Record, error) {
	w := s.filter()
	w.In("tenant_id", f.TenantIDs)
	w.In("device_id", f.DeviceIDs)
	w.In("site_id", f.SiteIDs)
	w.Under("tenant_id", f.Under)
	if f.DeviceSiteIDs != nil {
		// The devices' own filter, for the list of the devices now there.
		d := s.filter()
		if d.In("site_id", f.DeviceSiteIDs); d.None {
			w.None = true
		} else {
			w.Add("device_id IN (SELECT id FROM devices"+d.Where()+")", d.Args...)
		}
	}
	if f.FactoryAccess {
		w.Add("device_id IN (SELECT id FROM devices WHERE site_id IN (SELECT id FROM sites WHERE factory_access))")
	}
	if f.RuleID != "" {
		w.Add("rule_id = ?", f.RuleID)
	}
	if f.State != "" {
		w.Add("state = ?", f.State)
	}
	if f.Severity != "" {
		w.Add("severity = ?", f.Severity)
	}
	if !f.Since.IsZero() {
		w.Add("(state = 'active' OR cleared_at >= ?)", f.Since.UnixMilli())
	}
	if !f.Until.IsZero() {
		w.Add("raised_at < ?", f.Until.UnixMilli())
	}
	if f.Unacked {
		w.Add("acked_at = 0")
	}
	if f.After != 0 {
		w.Add("id > ?", f.After)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	out := []alarm.Record{}
	if w.None {
		return out, nil
	}
	rows, err := s.db.Query(ctx, `SELECT `+alarmColumns+` FROM alarms`+w.Where()+` ORDER BY id LIMIT ?`, append(w.Args, limit)...)
	got, err := database.Collect(rows, err, scanSealedAlarm)
	if err != nil {
		return nil, fmt.Errorf("list alarms: %w", err)
	}
	// Opened with the rows closed: the keyring may need a connection.
	for _, a := range got {
		r, err := s.open(ctx, a)
		if err != nil {
			return nil, fmt.Errorf("list alarms: %w", err)
		}
		out = append(out, r)
	}
	return out, nil
}

// AckAlarm acknowledges an alarm, once.
func (s *Store) AckAlarm(ctx context.Context, id int64, by, comment string, at time.Time) (alarm.Record, error) {
	if at.IsZero() {
		return alarm.Record{}, fmt.Errorf("ack alarm %d: no time given", id)
	}
	var tenantID string
	var ackedAt int64
	err := s.db.Primary().QueryRow(ctx, `SELECT tenant_id, acked_at FROM alarms WHERE id = ?`, id).Scan(&tenantID, &ackedAt)
	if database.NoRows(err) {
		return alarm.Record{}, fmt.Errorf("alarm %d: %w", id, database.ErrNotFound)
	}
	if err != nil {
		return alarm.Record{}, fmt.Errorf("ack alarm %d: %w", id, err)
	}
	if ackedAt != 0 {
		return alarm.Record{}, fmt.Errorf("alarm %d: already acknowledged: %w", id, database.ErrConflict)
	}
	sealed, err := sealing.SealAckComment(ctx, s.sealer, tenantID, id, comment)
	if err != nil {
		return alarm.Record{}, fmt.Errorf("ack alarm %d: %w", id, err)
	}
	a, err := s.getAlarm(ctx, s.db.Primary().QueryRow(ctx, `UPDATE alarms SET acked_at = ?, acked_by = ?, ack_comment = '',
		sealed_comment = ? WHERE id = ? AND acked_at = 0 RETURNING `+alarmColumns, at.UnixMilli(), by, sealed, id))
	if database.NoRows(err) {
		return alarm.Record{}, fmt.Errorf("alarm %d: already acknowledged: %w", id, database.ErrConflict)
	}
	if err != nil {
		return alarm.Record{}, fmt.Errorf("ack alarm %d: %w", id, err)
	}
	return a, nil
}
