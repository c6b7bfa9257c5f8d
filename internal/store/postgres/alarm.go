package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/warden-iot/warden/internal/store"
)

// alarmTables are the tables of migrationAlarm, for Reset.
const alarmTables = `alarm_rules, alarms, notification_prefs, webhooks, escalations, deliveries, maintenance_plans, monitor_state, monitor_states`

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

func scanAlarmRule(row pgx.Row) (store.AlarmRule, error) {
	var r store.AlarmRule
	var spec string
	var created, updated int64
	if err := row.Scan(&r.ID, &r.TenantID, &r.Name, &r.Enabled, &spec, &r.CreatedBy, &created, &updated); err != nil {
		return store.AlarmRule{}, err
	}
	r.Spec = specJSON(spec)
	r.CreatedAt, r.UpdatedAt = optTime(created), optTime(updated)
	return r, nil
}

// CreateAlarmRule stores a rule; its tenant must exist.
func (s *Store) CreateAlarmRule(ctx context.Context, r store.AlarmRule) error {
	spec, err := specText("alarm rule "+r.ID, r.Spec)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO alarm_rules (`+alarmRuleColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		r.ID, r.TenantID, r.Name, r.Enabled, spec, r.CreatedBy, optMillis(r.CreatedAt), optMillis(r.UpdatedAt))
	switch {
	case isUniqueViolation(err):
		return fmt.Errorf("alarm rule %q: %w", r.ID, store.ErrConflict)
	case isForeignKeyViolation(err):
		return fmt.Errorf("alarm rule %q: tenant %q: %w", r.ID, r.TenantID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create alarm rule %q: %w", r.ID, err)
	}
	return nil
}

// GetAlarmRule returns one rule.
func (s *Store) GetAlarmRule(ctx context.Context, id string) (store.AlarmRule, error) {
	r, err := scanAlarmRule(s.pool.QueryRow(ctx, `SELECT `+alarmRuleColumns+` FROM alarm_rules WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
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
	var w filter
	w.in("tenant_id", tenantIDs)
	if w.none {
		return []store.AlarmRule{}, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+alarmRuleColumns+` FROM alarm_rules`+w.where()+` ORDER BY id`, w.args...)
	out, err := collect(rows, err, scanAlarmRule)
	if err != nil {
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
	return s.updateOne(ctx, "alarm rule", r.ID, `UPDATE alarm_rules SET name = $1, enabled = $2, spec = $3, updated_at = $4
		WHERE id = $5`, r.Name, r.Enabled, spec, optMillis(r.UpdatedAt), r.ID)
}

// DeleteAlarmRule removes a rule; its alarms stay.
func (s *Store) DeleteAlarmRule(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM alarm_rules WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete alarm rule %q: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
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
	a.RaisedAt, a.LastAt, a.AckedAt, a.ClearedAt = optTime(raised), optTime(last), optTime(acked), optTime(cleared)
	return a, nil
}

// scanAlarm reads an alarm and opens its sealed parts; one that cannot be
// opened is marked Unreadable.
func (s *Store) scanAlarm(ctx context.Context) func(row pgx.Row) (store.Alarm, error) {
	return func(row pgx.Row) (store.Alarm, error) {
		a, err := scanSealedAlarm(row)
		if err != nil {
			return store.Alarm{}, err
		}
		if err := store.OpenAlarmRow(ctx, s.sealer, &a.Alarm, a.sealed, a.comment); err != nil {
			return store.Alarm{}, err
		}
		return a.Alarm, nil
	}
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
			q = b.Queue(clearAlarm, optMillis(c.At), c.By, c.RuleID, c.DeviceID)
		} else {
			kind := c.Alarm
			if kind == "" {
				kind = store.AlarmKindRule
			}
			q = b.Queue(raiseAlarm, c.TenantID, c.RuleID, c.DeviceID, c.SiteID, kind, c.Severity, optMillis(c.At), sealed[i])
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

// GetAlarm returns one alarm.
func (s *Store) GetAlarm(ctx context.Context, id int64) (store.Alarm, error) {
	a, err := s.scanAlarm(ctx)(s.pool.QueryRow(ctx, `SELECT `+alarmColumns+` FROM alarms WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
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
	var w filter
	w.in("tenant_id", f.TenantIDs)
	w.in("device_id", f.DeviceIDs)
	w.in("site_id", f.SiteIDs)
	if f.RuleID != "" {
		w.add("rule_id = ?", f.RuleID)
	}
	if f.State != "" {
		w.add("state = ?", f.State)
	}
	if f.Severity != "" {
		w.add("severity = ?", f.Severity)
	}
	if !f.Since.IsZero() {
		w.add("(state = 'active' OR cleared_at >= ?)", f.Since.UnixMilli())
	}
	if !f.Until.IsZero() {
		w.add("raised_at < ?", f.Until.UnixMilli())
	}
	if f.Unacked {
		w.add("acked_at = 0")
	}
	if f.After != 0 {
		w.add("id > ?", f.After)
	}
	if w.none {
		return []store.Alarm{}, nil
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.pool.Query(ctx, `SELECT `+alarmColumns+` FROM alarms`+w.where()+` ORDER BY id LIMIT `+w.next(),
		append(w.args, int64(limit))...)
	got, err := collect(rows, err, scanSealedAlarm)
	if err != nil {
		return nil, fmt.Errorf("list alarms: %w", err)
	}
	// Opened with the rows closed: the keyring may need a connection.
	out := make([]store.Alarm, 0, len(got))
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
	err := s.pool.QueryRow(ctx, `SELECT tenant_id, acked_at FROM alarms WHERE id = $1`, id).Scan(&tenantID, &ackedAt)
	if errors.Is(err, pgx.ErrNoRows) {
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
	a, err := s.scanAlarm(ctx)(s.pool.QueryRow(ctx, `UPDATE alarms SET acked_at = $1, acked_by = $2, ack_comment = '',
		sealed_comment = $3 WHERE id = $4 AND acked_at = 0 RETURNING `+alarmColumns, at.UnixMilli(), by, sealed, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Alarm{}, fmt.Errorf("alarm %d: already acknowledged: %w", id, store.ErrConflict)
	}
	if err != nil {
		return store.Alarm{}, fmt.Errorf("ack alarm %d: %w", id, err)
	}
	return a, nil
}

// queueDeleteDeviceAlarms queues the deletion of a device's alarms and
// their deliveries, for DeleteDevice.
func queueDeleteDeviceAlarms(b *pgx.Batch, deviceID string) {
	b.Queue(`DELETE FROM deliveries WHERE alarm_id IN (SELECT id FROM alarms WHERE device_id = $1)`, deviceID)
	b.Queue(`DELETE FROM alarms WHERE device_id = $1`, deviceID)
}

// ---- Notification settings ----

// GetNotificationPrefs returns a user's preferences, or the defaults (no
// e-mail) if the user has set none.
func (s *Store) GetNotificationPrefs(ctx context.Context, userID string) (store.NotificationPrefs, error) {
	p := store.NotificationPrefs{UserID: userID}
	var sev, sites string
	err := s.pool.QueryRow(ctx, `SELECT email, severities, site_ids FROM notification_prefs WHERE user_id = $1`, userID).
		Scan(&p.Email, &sev, &sites)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, nil
	}
	if err != nil {
		return p, fmt.Errorf("notification prefs of %q: %w", userID, err)
	}
	if err := fromJSON(sev, &p.Severities); err != nil {
		return p, fmt.Errorf("notification prefs of %q: %w", userID, err)
	}
	if err := fromJSON(sites, &p.SiteIDs); err != nil {
		return p, fmt.Errorf("notification prefs of %q: %w", userID, err)
	}
	return p, nil
}

// SetNotificationPrefs stores a user's preferences; the user must exist.
func (s *Store) SetNotificationPrefs(ctx context.Context, p store.NotificationPrefs) error {
	sev, err := toJSON(p.Severities)
	if err != nil {
		return fmt.Errorf("set notification prefs of %q: %w", p.UserID, err)
	}
	sites, err := toJSON(p.SiteIDs)
	if err != nil {
		return fmt.Errorf("set notification prefs of %q: %w", p.UserID, err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO notification_prefs (user_id, email, severities, site_ids) VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id) DO UPDATE SET email = excluded.email, severities = excluded.severities, site_ids = excluded.site_ids`,
		p.UserID, p.Email, sev, sites)
	if isForeignKeyViolation(err) {
		return fmt.Errorf("user %q: %w", p.UserID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("set notification prefs of %q: %w", p.UserID, err)
	}
	return nil
}

const webhookColumns = `id, tenant_id, url, secret, severities, enabled, created_at`

func scanWebhook(row pgx.Row) (store.Webhook, error) {
	var w store.Webhook
	var sev string
	var created int64
	if err := row.Scan(&w.ID, &w.TenantID, &w.URL, &w.Secret, &sev, &w.Enabled, &created); err != nil {
		return store.Webhook{}, err
	}
	if err := fromJSON(sev, &w.Severities); err != nil {
		return store.Webhook{}, fmt.Errorf("severities of webhook %q: %w", w.ID, err)
	}
	w.CreatedAt = optTime(created)
	return w, nil
}

// CreateWebhook stores a webhook; its tenant must exist.
func (s *Store) CreateWebhook(ctx context.Context, w store.Webhook) error {
	sev, err := toJSON(w.Severities)
	if err != nil {
		return fmt.Errorf("create webhook %q: %w", w.ID, err)
	}
	secret := w.Secret
	if secret == nil {
		secret = []byte{}
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO webhooks (`+webhookColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		w.ID, w.TenantID, w.URL, secret, sev, w.Enabled, optMillis(w.CreatedAt))
	switch {
	case isUniqueViolation(err):
		return fmt.Errorf("webhook %q: %w", w.ID, store.ErrConflict)
	case isForeignKeyViolation(err):
		return fmt.Errorf("webhook %q: tenant %q: %w", w.ID, w.TenantID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create webhook %q: %w", w.ID, err)
	}
	return nil
}

// ListWebhooks returns the webhooks of the given tenants (nil: all) in id
// order.
func (s *Store) ListWebhooks(ctx context.Context, tenantIDs []string) ([]store.Webhook, error) {
	var f filter
	f.in("tenant_id", tenantIDs)
	if f.none {
		return []store.Webhook{}, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+webhookColumns+` FROM webhooks`+f.where()+` ORDER BY id`, f.args...)
	out, err := collect(rows, err, scanWebhook)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	return out, nil
}

// DeleteWebhook removes a webhook.
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM webhooks WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete webhook %q: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("webhook %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// GetEscalation returns a tenant's escalation (ErrNotFound if none).
func (s *Store) GetEscalation(ctx context.Context, tenantID string) (store.Escalation, error) {
	e := store.Escalation{TenantID: tenantID}
	var delay int64
	err := s.pool.QueryRow(ctx, `SELECT delay_ms, email FROM escalations WHERE tenant_id = $1`, tenantID).Scan(&delay, &e.Email)
	if errors.Is(err, pgx.ErrNoRows) {
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
		if _, err := s.pool.Exec(ctx, `DELETE FROM escalations WHERE tenant_id = $1`, e.TenantID); err != nil {
			return fmt.Errorf("remove escalation of tenant %q: %w", e.TenantID, err)
		}
		return nil
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO escalations (tenant_id, delay_ms, email) VALUES ($1, $2, $3)
		ON CONFLICT (tenant_id) DO UPDATE SET delay_ms = excluded.delay_ms, email = excluded.email`,
		e.TenantID, e.Delay.Milliseconds(), e.Email)
	if isForeignKeyViolation(err) {
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

func scanDelivery(row pgx.Row) (sealedDelivery, error) {
	var d sealedDelivery
	var payload string
	var attempts int32
	var next, created, sent int64
	if err := row.Scan(&d.ID, &d.TenantID, &d.AlarmID, &d.Channel, &d.Target, &d.Event, &payload, &d.State, &attempts,
		&next, &d.LastError, &created, &sent, &d.sealed, &d.lastErr); err != nil {
		return sealedDelivery{}, err
	}
	d.Attempts = int(attempts)
	d.NextAt, d.CreatedAt, d.SentAt = optTime(next), optTime(created), optTime(sent)
	if d.sealed == nil {
		d.Payload = specJSON(payload)
	}
	return d, nil
}

// collectDeliveries reads deliveries, then opens their sealed parts with
// the rows closed (the keyring may need a connection); one that cannot be
// opened is marked Unreadable.
func (s *Store) collectDeliveries(ctx context.Context, rows pgx.Rows, err error) ([]store.Delivery, error) {
	got, err := collect(rows, err, scanDelivery)
	if err != nil {
		return nil, err
	}
	out := make([]store.Delivery, 0, len(got))
	for _, d := range got {
		if err := store.OpenDeliveryRow(ctx, s.sealer, &d.Delivery, d.sealed, d.lastErr); err != nil {
			return nil, err
		}
		out = append(out, d.Delivery)
	}
	return out, nil
}

// EnqueueDeliveries adds deliveries to the outbox in one transaction and
// one round trip; the database assigns their ids (their IDs are ignored),
// and a delivery without a state is pending.
func (s *Store) EnqueueDeliveries(ctx context.Context, ds []store.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	for _, d := range ds {
		if _, err := specText("delivery payload", d.Payload); err != nil {
			return fmt.Errorf("enqueue deliveries: %w", err)
		}
		sealed, sealedErr, err := store.SealDeliveryRow(ctx, s.sealer, d)
		if err != nil {
			return fmt.Errorf("enqueue deliveries: %w", err)
		}
		state := d.State
		if state == "" {
			state = store.DeliveryPending
		}
		b.Queue(`INSERT INTO deliveries (tenant_id, alarm_id, channel, target, event, payload, state,
			attempts, next_at, last_error, created_at, sent_at, sealed, sealed_error)
			VALUES ($1, $2, $3, $4, $5, '', $6, $7, $8, '', $9, $10, $11, $12)`,
			d.TenantID, d.AlarmID, d.Channel, d.Target, d.Event, state, int32(d.Attempts),
			optMillis(d.NextAt), optMillis(d.CreatedAt), optMillis(d.SentAt), sealed, sealedErr)
	}
	br := s.pool.SendBatch(ctx, b)
	tx := br.Tx()
	defer tx.Rollback(ctx)
	err := br.Close()
	if isForeignKeyViolation(err) {
		return fmt.Errorf("enqueue deliveries: tenant: %w", store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("enqueue deliveries: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("enqueue deliveries: commit: %w", err)
	}
	return nil
}

// DueDeliveries returns up to limit pending deliveries due at now, the
// earliest first.
func (s *Store) DueDeliveries(ctx context.Context, now time.Time, limit int) ([]store.Delivery, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM deliveries
		WHERE state = 'pending' AND next_at <= $1 ORDER BY next_at, id LIMIT $2`, now.UnixMilli(), limitArg(limit))
	out, err := s.collectDeliveries(ctx, rows, err)
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
	err := s.pool.QueryRow(ctx, `SELECT tenant_id, alarm_id, channel, target, event FROM deliveries WHERE id = $1`, d.ID).
		Scan(&d.TenantID, &d.AlarmID, &d.Channel, &d.Target, &d.Event)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("delivery %d: %w", d.ID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("update delivery %d: %w", d.ID, err)
	}
	sealedErr, err := store.SealDeliveryError(ctx, s.sealer, d)
	if err != nil {
		return fmt.Errorf("update delivery %d: %w", d.ID, err)
	}
	return s.updateOne(ctx, "delivery", fmt.Sprint(d.ID), `UPDATE deliveries SET state = $1, attempts = $2, next_at = $3,
		last_error = '', sealed_error = $4, sent_at = $5 WHERE id = $6`, d.State, int32(d.Attempts), optMillis(d.NextAt), sealedErr,
		optMillis(d.SentAt), d.ID)
}

// ListDeliveries returns the deliveries matching f, newest first, up to
// f.Limit (default 100).
func (s *Store) ListDeliveries(ctx context.Context, f store.DeliveryFilter) ([]store.Delivery, error) {
	var w filter
	w.in("tenant_id", f.TenantIDs)
	if f.AlarmID != 0 {
		w.add("alarm_id = ?", f.AlarmID)
	}
	if f.State != "" {
		w.add("state = ?", f.State)
	}
	if w.none {
		return []store.Delivery{}, nil
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM deliveries`+w.where()+` ORDER BY id DESC LIMIT `+w.next(),
		append(w.args, int64(limit))...)
	out, err := s.collectDeliveries(ctx, rows, err)
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
	_, err = s.pool.Exec(ctx, `INSERT INTO maintenance_plans (tenant_id, model, spec, updated_at, sealed) VALUES ($1, $2, '', $3, $4)
		ON CONFLICT (tenant_id, model) DO UPDATE SET spec = '', updated_at = excluded.updated_at, sealed = excluded.sealed`,
		p.TenantID, p.Model, optMillis(p.UpdatedAt), sealed)
	if isForeignKeyViolation(err) {
		return fmt.Errorf("maintenance plan %q: tenant %q: %w", p.Model, p.TenantID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("set maintenance plan %q of tenant %q: %w", p.Model, p.TenantID, err)
	}
	return nil
}

// planRow is a stored plan with its sealed spec (nil: not sealed yet).
type planRow struct {
	plan   store.MaintenancePlan
	sealed []byte
}

func scanMaintenancePlan(row pgx.Row) (planRow, error) {
	var p planRow
	var spec string
	var updated int64
	if err := row.Scan(&p.plan.TenantID, &p.plan.Model, &spec, &updated, &p.sealed); err != nil {
		return planRow{}, err
	}
	p.plan.Spec, p.plan.UpdatedAt = specJSON(spec), optTime(updated)
	return p, nil
}

// ListMaintenancePlans returns the plans of the given tenants (nil: all),
// by tenant and model.
func (s *Store) ListMaintenancePlans(ctx context.Context, tenantIDs []string) ([]store.MaintenancePlan, error) {
	var f filter
	f.in("tenant_id", tenantIDs)
	if f.none {
		return []store.MaintenancePlan{}, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT tenant_id, model, spec, updated_at, sealed FROM maintenance_plans`+f.where()+
		` ORDER BY tenant_id, model`, f.args...)
	prs, err := collect(rows, err, scanMaintenancePlan)
	if err != nil {
		return nil, fmt.Errorf("list maintenance plans: %w", err)
	}
	out := make([]store.MaintenancePlan, 0, len(prs))
	for _, pr := range prs {
		if pr.sealed != nil {
			if err := store.OpenPlan(ctx, s.sealer, &pr.plan, pr.sealed); err != nil {
				if errors.Is(err, store.ErrNoSealer) {
					return nil, err
				}
				continue // its tenant's keys are gone: a plan without its spec is no plan
			}
		}
		out = append(out, pr.plan)
	}
	return out, nil
}

// DeleteMaintenancePlan removes a tenant's plan for a model.
func (s *Store) DeleteMaintenancePlan(ctx context.Context, tenantID, model string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM maintenance_plans WHERE tenant_id = $1 AND model = $2`, tenantID, model)
	if err != nil {
		return fmt.Errorf("delete maintenance plan %q of tenant %q: %w", model, tenantID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("maintenance plan %q of tenant %q: %w", model, tenantID, store.ErrNotFound)
	}
	return nil
}
