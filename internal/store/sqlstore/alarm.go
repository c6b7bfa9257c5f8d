package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/store"
)

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

const alarmRuleColumns = `id, tenant_id, name, enabled, spec, created_by, created_at, updated_at`

func scanAlarmRule(row database.Scanner) (store.AlarmRule, error) {
	var r store.AlarmRule
	var spec string
	var created, updated int64
	if err := row.Scan(&r.ID, &r.TenantID, &r.Name, &r.Enabled, &spec, &r.CreatedBy, &created, &updated); err != nil {
		return store.AlarmRule{}, err
	}
	r.Spec = specJSON(spec)
	r.CreatedAt, r.UpdatedAt = database.Time(created), database.Time(updated)
	return r, nil
}

// CreateAlarmRule stores a rule; its tenant must exist.
func (s *Store) CreateAlarmRule(ctx context.Context, r store.AlarmRule) error {
	spec, err := specText("alarm rule "+r.ID, r.Spec)
	if err != nil {
		return err
	}
	_, err = s.db.Exec(ctx, `INSERT INTO alarm_rules (`+alarmRuleColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.TenantID, r.Name, r.Enabled, spec, r.CreatedBy, database.Millis(r.CreatedAt), database.Millis(r.UpdatedAt))
	switch {
	case s.isUnique(err):
		return fmt.Errorf("alarm rule %q: %w", r.ID, store.ErrConflict)
	case s.isForeignKey(err):
		return fmt.Errorf("alarm rule %q: tenant %q: %w", r.ID, r.TenantID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create alarm rule %q: %w", r.ID, err)
	}
	return nil
}

// GetAlarmRule returns one rule.
func (s *Store) GetAlarmRule(ctx context.Context, id string) (store.AlarmRule, error) {
	r, err := scanAlarmRule(s.db.QueryRow(ctx, `SELECT `+alarmRuleColumns+` FROM alarm_rules WHERE id = ?`, id))
	if database.NoRows(err) {
		return r, fmt.Errorf("alarm rule %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("get alarm rule %q: %w", id, err)
	}
	return r, nil
}

// ListAlarmRules returns the rules of the given tenants (nil: all) in id
// order.
func (s *Store) ListAlarmRules(ctx context.Context, tenantIDs []string) ([]store.AlarmRule, error) {
	w := s.filter()
	w.In("tenant_id", tenantIDs)
	out := []store.AlarmRule{}
	if w.None {
		return out, nil
	}
	rows, err := s.db.Query(ctx, `SELECT `+alarmRuleColumns+` FROM alarm_rules`+w.Where()+` ORDER BY id`, w.Args...)
	if err != nil {
		return nil, fmt.Errorf("list alarm rules: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanAlarmRule(rows)
		if err != nil {
			return nil, fmt.Errorf("list alarm rules: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list alarm rules: %w", err)
	}
	return out, nil
}

// UpdateAlarmRule replaces a rule's name, enabled flag, spec and update
// time (not its tenant or creation).
func (s *Store) UpdateAlarmRule(ctx context.Context, r store.AlarmRule) error {
	spec, err := specText("alarm rule "+r.ID, r.Spec)
	if err != nil {
		return err
	}
	return s.updateOne(ctx, "alarm rule", r.ID, `UPDATE alarm_rules SET name = ?, enabled = ?, spec = ?, updated_at = ? WHERE id = ?`,
		r.Name, r.Enabled, spec, database.Millis(r.UpdatedAt), r.ID)
}

// DeleteAlarmRule removes a rule; its alarms stay.
func (s *Store) DeleteAlarmRule(ctx context.Context, id string) error {
	res, err := s.db.Exec(ctx, `DELETE FROM alarm_rules WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete alarm rule %q: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("alarm rule %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// ---- Alarms ----

const alarmColumns = `id, tenant_id, rule_id, device_id, site_id, kind, severity, message, value, state,
	raised_at, last_at, retriggers, acked_at, acked_by, ack_comment, cleared_at, cleared_by, sealed, sealed_comment`

// sealedAlarm is an alarm as stored, its sealed parts not opened yet.
type sealedAlarm struct {
	store.Alarm
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

// scanAlarm reads one alarm (a single row: nothing else is open) and opens
// its sealed parts; one that cannot be opened is marked Unreadable.
func (s *Store) scanAlarm(ctx context.Context, row database.Scanner) (store.Alarm, error) {
	a, err := scanSealedAlarm(row)
	if err != nil {
		return store.Alarm{}, err
	}
	if err := store.OpenAlarmRow(ctx, s.sealer, &a.Alarm, a.sealed, a.comment); err != nil {
		return store.Alarm{}, err
	}
	return a.Alarm, nil
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
	VALUES (?, ?, ?, ?, ?, ?, '', 0, 'active', ?, ?, ?)
	ON CONFLICT (rule_id, device_id) WHERE state = 'active' DO UPDATE SET retriggers = retriggers + 1,
		last_at = excluded.last_at, value = 0, message = '', sealed = excluded.sealed
	RETURNING ` + alarmColumns

// clearAlarm clears the active alarm of a rule and device, if any.
const clearAlarm = `UPDATE alarms SET state = 'cleared', cleared_at = ?, cleared_by = ?
	WHERE rule_id = ? AND device_id = ? AND state = 'active'
	RETURNING ` + alarmColumns

// ApplyAlarmChanges applies the changes in order in one transaction, one
// statement each: a raise or retrigger is an upsert against the partial
// unique index of active alarms (so a retrigger without an active alarm
// raises one, and a raise of an active one retriggers it); a clear without
// an active alarm touches nothing and gives a zero Alarm.
func (s *Store) ApplyAlarmChanges(ctx context.Context, changes []store.AlarmChange) ([]store.Alarm, error) {
	out := make([]store.Alarm, len(changes))
	if len(changes) == 0 {
		return out, nil
	}
	for _, c := range changes {
		if c.Kind != changeRaised && c.Kind != changeRetriggered && c.Kind != changeCleared {
			return nil, fmt.Errorf("apply alarm changes: unknown change %q", c.Kind)
		}
	}
	// Seal before the transaction: a tenant's first sealing creates its key.
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
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("apply alarm changes: %w", err)
	}
	defer tx.Rollback()
	var raise, clear *sql.Stmt
	for i, c := range changes {
		var row *sql.Row
		if c.Kind == changeCleared {
			if clear == nil {
				if clear, err = tx.Prepare(ctx, clearAlarm); err != nil {
					return nil, fmt.Errorf("apply alarm changes: %w", err)
				}
				defer clear.Close()
			}
			row = clear.QueryRowContext(ctx, database.Millis(c.At), c.By, c.RuleID, c.DeviceID)
		} else {
			if raise == nil {
				if raise, err = tx.Prepare(ctx, raiseAlarm); err != nil {
					return nil, fmt.Errorf("apply alarm changes: %w", err)
				}
				defer raise.Close()
			}
			kind := c.Alarm
			if kind == "" {
				kind = store.AlarmKindRule
			}
			at := database.Millis(c.At)
			row = raise.QueryRowContext(ctx, c.TenantID, c.RuleID, c.DeviceID, c.SiteID, kind, c.Severity, at, at, sealed[i])
		}
		a, err := s.scanAlarm(ctx, row)
		switch {
		case c.Kind == changeCleared && database.NoRows(err):
		case s.isForeignKey(err):
			return nil, fmt.Errorf("alarm %s of rule %q on %q: tenant %q: %w", c.Kind, c.RuleID, c.DeviceID, c.TenantID, store.ErrNotFound)
		case err != nil:
			return nil, fmt.Errorf("alarm %s of rule %q on %q: %w", c.Kind, c.RuleID, c.DeviceID, err)
		default:
			out[i] = a
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("apply alarm changes: %w", err)
	}
	return out, nil
}

// GetAlarm returns one alarm.
func (s *Store) GetAlarm(ctx context.Context, id int64) (store.Alarm, error) {
	a, err := s.scanAlarm(ctx, s.db.QueryRow(ctx, `SELECT `+alarmColumns+` FROM alarms WHERE id = ?`, id))
	if database.NoRows(err) {
		return a, fmt.Errorf("alarm %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return a, fmt.Errorf("get alarm %d: %w", id, err)
	}
	return a, nil
}

// ListAlarms returns the alarms matching f in id order, up to f.Limit
// (default 1000).
func (s *Store) ListAlarms(ctx context.Context, f store.AlarmFilter) ([]store.Alarm, error) {
	w := s.filter()
	w.In("tenant_id", f.TenantIDs)
	w.In("device_id", f.DeviceIDs)
	w.In("site_id", f.SiteIDs)
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
	out := []store.Alarm{}
	if w.None {
		return out, nil
	}
	rows, err := s.db.Query(ctx, `SELECT `+alarmColumns+` FROM alarms`+w.Where()+` ORDER BY id LIMIT ?`,
		append(w.Args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list alarms: %w", err)
	}
	defer rows.Close()
	var got []sealedAlarm
	for rows.Next() {
		a, err := scanSealedAlarm(rows)
		if err != nil {
			return nil, fmt.Errorf("list alarms: %w", err)
		}
		got = append(got, a)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("list alarms: %w", err)
	}
	// Opened with the rows closed: the keyring may need a connection.
	for _, a := range got {
		if err := store.OpenAlarmRow(ctx, s.sealer, &a.Alarm, a.sealed, a.comment); err != nil {
			return nil, fmt.Errorf("list alarms: %w", err)
		}
		out = append(out, a.Alarm)
	}
	return out, nil
}

// AckAlarm acknowledges an alarm, once.
func (s *Store) AckAlarm(ctx context.Context, id int64, by, comment string, at time.Time) (store.Alarm, error) {
	if at.IsZero() {
		return store.Alarm{}, fmt.Errorf("ack alarm %d: no time given", id)
	}
	var tenantID string
	var ackedAt int64
	err := s.db.Primary().QueryRow(ctx, `SELECT tenant_id, acked_at FROM alarms WHERE id = ?`, id).Scan(&tenantID, &ackedAt)
	if database.NoRows(err) {
		return store.Alarm{}, fmt.Errorf("alarm %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Alarm{}, fmt.Errorf("ack alarm %d: %w", id, err)
	}
	if ackedAt != 0 {
		return store.Alarm{}, fmt.Errorf("alarm %d: already acknowledged: %w", id, store.ErrConflict)
	}
	sealed, err := store.SealAckComment(ctx, s.sealer, tenantID, id, comment)
	if err != nil {
		return store.Alarm{}, fmt.Errorf("ack alarm %d: %w", id, err)
	}
	a, err := s.scanAlarm(ctx, s.db.Primary().QueryRow(ctx, `UPDATE alarms SET acked_at = ?, acked_by = ?, ack_comment = '',
		sealed_comment = ? WHERE id = ? AND acked_at = 0 RETURNING `+alarmColumns, at.UnixMilli(), by, sealed, id))
	if database.NoRows(err) {
		return store.Alarm{}, fmt.Errorf("alarm %d: already acknowledged: %w", id, store.ErrConflict)
	}
	if err != nil {
		return store.Alarm{}, fmt.Errorf("ack alarm %d: %w", id, err)
	}
	return a, nil
}

// ---- Notification settings ----

// GetNotificationPrefs returns a user's preferences, or the defaults (no
// e-mail) if the user has set none.
func (s *Store) GetNotificationPrefs(ctx context.Context, userID string) (store.NotificationPrefs, error) {
	p := store.NotificationPrefs{UserID: userID}
	var sev, sites string
	err := s.db.QueryRow(ctx, `SELECT email, severities, site_ids FROM notification_prefs WHERE user_id = ?`, userID).
		Scan(&p.Email, &sev, &sites)
	if database.NoRows(err) {
		return p, nil
	}
	if err != nil {
		return p, fmt.Errorf("notification prefs of %q: %w", userID, err)
	}
	if err := FromJSON(sev, &p.Severities); err != nil {
		return p, fmt.Errorf("notification prefs of %q: %w", userID, err)
	}
	if err := FromJSON(sites, &p.SiteIDs); err != nil {
		return p, fmt.Errorf("notification prefs of %q: %w", userID, err)
	}
	return p, nil
}

// SetNotificationPrefs stores a user's preferences; the user must exist.
func (s *Store) SetNotificationPrefs(ctx context.Context, p store.NotificationPrefs) error {
	sev, err := ToJSON(p.Severities)
	if err != nil {
		return fmt.Errorf("set notification prefs of %q: %w", p.UserID, err)
	}
	sites, err := ToJSON(p.SiteIDs)
	if err != nil {
		return fmt.Errorf("set notification prefs of %q: %w", p.UserID, err)
	}
	_, err = s.db.Exec(ctx, `INSERT INTO notification_prefs (user_id, email, severities, site_ids) VALUES (?, ?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET email = excluded.email, severities = excluded.severities, site_ids = excluded.site_ids`,
		p.UserID, p.Email, sev, sites)
	if s.isForeignKey(err) {
		return fmt.Errorf("user %q: %w", p.UserID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("set notification prefs of %q: %w", p.UserID, err)
	}
	return nil
}

const webhookColumns = `id, tenant_id, url, secret, severities, enabled, created_at`

// CreateWebhook stores a webhook; its tenant must exist.
func (s *Store) CreateWebhook(ctx context.Context, w store.Webhook) error {
	sev, err := ToJSON(w.Severities)
	if err != nil {
		return fmt.Errorf("create webhook %q: %w", w.ID, err)
	}
	secret := w.Secret
	if secret == nil {
		secret = []byte{}
	}
	_, err = s.db.Exec(ctx, `INSERT INTO webhooks (`+webhookColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		w.ID, w.TenantID, w.URL, secret, sev, w.Enabled, database.Millis(w.CreatedAt))
	switch {
	case s.isUnique(err):
		return fmt.Errorf("webhook %q: %w", w.ID, store.ErrConflict)
	case s.isForeignKey(err):
		return fmt.Errorf("webhook %q: tenant %q: %w", w.ID, w.TenantID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create webhook %q: %w", w.ID, err)
	}
	return nil
}

// ListWebhooks returns the webhooks of the given tenants (nil: all) in id
// order.
func (s *Store) ListWebhooks(ctx context.Context, tenantIDs []string) ([]store.Webhook, error) {
	f := s.filter()
	f.In("tenant_id", tenantIDs)
	out := []store.Webhook{}
	if f.None {
		return out, nil
	}
	rows, err := s.db.Query(ctx, `SELECT `+webhookColumns+` FROM webhooks`+f.Where()+` ORDER BY id`, f.Args...)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var w store.Webhook
		var sev string
		var created int64
		if err := rows.Scan(&w.ID, &w.TenantID, &w.URL, &w.Secret, &sev, &w.Enabled, &created); err != nil {
			return nil, fmt.Errorf("list webhooks: %w", err)
		}
		if err := FromJSON(sev, &w.Severities); err != nil {
			return nil, fmt.Errorf("list webhooks: %q: %w", w.ID, err)
		}
		w.CreatedAt = database.Time(created)
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	return out, nil
}

// DeleteWebhook removes a webhook.
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	res, err := s.db.Exec(ctx, `DELETE FROM webhooks WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete webhook %q: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("webhook %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// GetEscalation returns a tenant's escalation (ErrNotFound if none).
func (s *Store) GetEscalation(ctx context.Context, tenantID string) (store.Escalation, error) {
	e := store.Escalation{TenantID: tenantID}
	var delay int64
	err := s.db.QueryRow(ctx, `SELECT delay_ms, email FROM escalations WHERE tenant_id = ?`, tenantID).Scan(&delay, &e.Email)
	if database.NoRows(err) {
		return store.Escalation{}, fmt.Errorf("escalation of tenant %q: %w", tenantID, store.ErrNotFound)
	}
	if err != nil {
		return store.Escalation{}, fmt.Errorf("escalation of tenant %q: %w", tenantID, err)
	}
	e.Delay = time.Duration(delay) * time.Millisecond
	return e, nil
}

// SetEscalation stores a tenant's escalation; a Delay of 0 (or less)
// removes it.
func (s *Store) SetEscalation(ctx context.Context, e store.Escalation) error {
	if e.Delay <= 0 {
		if _, err := s.db.Exec(ctx, `DELETE FROM escalations WHERE tenant_id = ?`, e.TenantID); err != nil {
			return fmt.Errorf("remove escalation of tenant %q: %w", e.TenantID, err)
		}
		return nil
	}
	_, err := s.db.Exec(ctx, `INSERT INTO escalations (tenant_id, delay_ms, email) VALUES (?, ?, ?)
		ON CONFLICT (tenant_id) DO UPDATE SET delay_ms = excluded.delay_ms, email = excluded.email`,
		e.TenantID, e.Delay.Milliseconds(), e.Email)
	if s.isForeignKey(err) {
		return fmt.Errorf("escalation: tenant %q: %w", e.TenantID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("set escalation of tenant %q: %w", e.TenantID, err)
	}
	return nil
}

// ---- Deliveries ----

const deliveryColumns = `id, tenant_id, alarm_id, channel, target, event, payload, state, attempts, next_at, last_error,
	created_at, sent_at, sealed, sealed_error`

// sealedDelivery is a delivery as stored, its sealed parts not opened yet.
type sealedDelivery struct {
	store.Delivery
	sealed, lastErr []byte
}

// scanDelivery reads a delivery without opening its sealed parts.
func scanDelivery(row database.Scanner) (sealedDelivery, error) {
	var d sealedDelivery
	var payload string
	var next, created, sent int64
	if err := row.Scan(&d.ID, &d.TenantID, &d.AlarmID, &d.Channel, &d.Target, &d.Event, &payload, &d.State, &d.Attempts,
		&next, &d.LastError, &created, &sent, &d.sealed, &d.lastErr); err != nil {
		return sealedDelivery{}, err
	}
	d.NextAt, d.CreatedAt, d.SentAt = database.Time(next), database.Time(created), database.Time(sent)
	if d.sealed == nil {
		d.Payload = specJSON(payload)
	}
	return d, nil
}

// EnqueueDeliveries adds deliveries to the outbox in one transaction; the
// database assigns their ids (their IDs are ignored), and a delivery
// without a state is pending.
func (s *Store) EnqueueDeliveries(ctx context.Context, ds []store.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	// Seal before the transaction: a tenant's first sealing creates its key.
	type sealedParts struct{ payload, lastErr []byte }
	parts := make([]sealedParts, len(ds))
	for i, d := range ds {
		if _, err := specText("delivery payload", d.Payload); err != nil {
			return fmt.Errorf("enqueue deliveries: %w", err)
		}
		p, e, err := store.SealDeliveryRow(ctx, s.sealer, d)
		if err != nil {
			return fmt.Errorf("enqueue deliveries: %w", err)
		}
		parts[i] = sealedParts{p, e}
	}
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("enqueue deliveries: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.Prepare(ctx, `INSERT INTO deliveries (tenant_id, alarm_id, channel, target, event, payload, state,
		attempts, next_at, last_error, created_at, sent_at, sealed, sealed_error)
		VALUES (?, ?, ?, ?, ?, '', ?, ?, ?, '', ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("enqueue deliveries: %w", err)
	}
	defer stmt.Close()
	for i, d := range ds {
		state := d.State
		if state == "" {
			state = store.DeliveryPending
		}
		_, err := stmt.ExecContext(ctx, d.TenantID, d.AlarmID, d.Channel, d.Target, d.Event, state, d.Attempts,
			database.Millis(d.NextAt), database.Millis(d.CreatedAt), database.Millis(d.SentAt), parts[i].payload, parts[i].lastErr)
		if s.isForeignKey(err) {
			return fmt.Errorf("enqueue deliveries: tenant %q: %w", d.TenantID, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("enqueue deliveries: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("enqueue deliveries: %w", err)
	}
	return nil
}

func (s *Store) queryDeliveries(ctx context.Context, query string, args ...any) ([]store.Delivery, error) {
	rows, err := s.db.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var got []sealedDelivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		got = append(got, d)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, err
	}
	// Opened with the rows closed: the keyring may need a connection.
	out := make([]store.Delivery, 0, len(got))
	for _, d := range got {
		if err := store.OpenDeliveryRow(ctx, s.sealer, &d.Delivery, d.sealed, d.lastErr); err != nil {
			return nil, err
		}
		out = append(out, d.Delivery)
	}
	return out, nil
}

// DueDeliveries returns up to limit pending deliveries due at now, the
// earliest first.
func (s *Store) DueDeliveries(ctx context.Context, now time.Time, limit int) ([]store.Delivery, error) {
	out, err := s.queryDeliveries(ctx, `SELECT `+deliveryColumns+` FROM deliveries
		WHERE state = 'pending' AND next_at <= ? ORDER BY next_at, id LIMIT ?`, now.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("due deliveries: %w", err)
	}
	return out, nil
}

// UpdateDelivery stores a delivery's state, attempts, next time, error and
// sent time.
func (s *Store) UpdateDelivery(ctx context.Context, d store.Delivery) error {
	// The error is sealed bound to the stored delivery, whatever the
	// caller's copy says.
	err := s.db.Primary().QueryRow(ctx, `SELECT tenant_id, alarm_id, channel, target, event FROM deliveries WHERE id = ?`, d.ID).
		Scan(&d.TenantID, &d.AlarmID, &d.Channel, &d.Target, &d.Event)
	if database.NoRows(err) {
		return fmt.Errorf("delivery %d: %w", d.ID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("update delivery %d: %w", d.ID, err)
	}
	sealedErr, err := store.SealDeliveryError(ctx, s.sealer, d)
	if err != nil {
		return fmt.Errorf("update delivery %d: %w", d.ID, err)
	}
	return s.updateOne(ctx, "delivery", fmt.Sprint(d.ID), `UPDATE deliveries SET state = ?, attempts = ?, next_at = ?,
		last_error = '', sealed_error = ?, sent_at = ? WHERE id = ?`, d.State, d.Attempts, database.Millis(d.NextAt), sealedErr,
		database.Millis(d.SentAt), d.ID)
}

// ListDeliveries returns the deliveries matching f, newest first, up to
// f.Limit (default 100).
func (s *Store) ListDeliveries(ctx context.Context, f store.DeliveryFilter) ([]store.Delivery, error) {
	w := s.filter()
	w.In("tenant_id", f.TenantIDs)
	if f.AlarmID != 0 {
		w.Add("alarm_id = ?", f.AlarmID)
	}
	if f.State != "" {
		w.Add("state = ?", f.State)
	}
	if w.None {
		return []store.Delivery{}, nil
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	out, err := s.queryDeliveries(ctx, `SELECT `+deliveryColumns+` FROM deliveries`+w.Where()+` ORDER BY id DESC LIMIT ?`,
		append(w.Args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return out, nil
}

// ---- Maintenance plans ----

// SetMaintenancePlan stores a tenant's plan for a model in place of the
// previous one; the tenant must exist.
func (s *Store) SetMaintenancePlan(ctx context.Context, p store.MaintenancePlan) error {
	if _, err := specText("maintenance plan "+p.Model, p.Spec); err != nil {
		return err
	}
	sealed, err := store.SealPlan(ctx, s.sealer, p)
	if err != nil {
		return fmt.Errorf("set maintenance plan %q of tenant %q: %w", p.Model, p.TenantID, err)
	}
	_, err = s.db.Exec(ctx, `INSERT INTO maintenance_plans (tenant_id, model, spec, updated_at, sealed) VALUES (?, ?, '', ?, ?)
		ON CONFLICT (tenant_id, model) DO UPDATE SET spec = '', updated_at = excluded.updated_at, sealed = excluded.sealed`,
		p.TenantID, p.Model, database.Millis(p.UpdatedAt), sealed)
	if s.isForeignKey(err) {
		return fmt.Errorf("maintenance plan %q: tenant %q: %w", p.Model, p.TenantID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("set maintenance plan %q of tenant %q: %w", p.Model, p.TenantID, err)
	}
	return nil
}

// ListMaintenancePlans returns the plans of the given tenants (nil: all),
// by tenant and model.
func (s *Store) ListMaintenancePlans(ctx context.Context, tenantIDs []string) ([]store.MaintenancePlan, error) {
	f := s.filter()
	f.In("tenant_id", tenantIDs)
	out := []store.MaintenancePlan{}
	if f.None {
		return out, nil
	}
	rows, err := s.db.Query(ctx, `SELECT tenant_id, model, spec, updated_at, sealed FROM maintenance_plans`+f.Where()+
		` ORDER BY tenant_id, model`, f.Args...)
	if err != nil {
		return nil, fmt.Errorf("list maintenance plans: %w", err)
	}
	defer rows.Close()
	var got []store.MaintenancePlan
	var sealed [][]byte
	for rows.Next() {
		var p store.MaintenancePlan
		var spec string
		var updated int64
		var blob []byte
		if err := rows.Scan(&p.TenantID, &p.Model, &spec, &updated, &blob); err != nil {
			return nil, fmt.Errorf("list maintenance plans: %w", err)
		}
		p.Spec, p.UpdatedAt = specJSON(spec), database.Time(updated)
		got, sealed = append(got, p), append(sealed, blob)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("list maintenance plans: %w", err)
	}
	return store.OpenPlans(ctx, s.sealer, got, sealed)
}

// DeleteMaintenancePlan removes a tenant's plan for a model.
func (s *Store) DeleteMaintenancePlan(ctx context.Context, tenantID, model string) error {
	res, err := s.db.Exec(ctx, `DELETE FROM maintenance_plans WHERE tenant_id = ? AND model = ?`, tenantID, model)
	if err != nil {
		return fmt.Errorf("delete maintenance plan %q of tenant %q: %w", model, tenantID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("maintenance plan %q of tenant %q: %w", model, tenantID, store.ErrNotFound)
	}
	return nil
}
