// Package notifysql is notifystore.Store on SQLite and PostgreSQL:
// notification preferences, webhooks, escalations and the outbox of
// deliveries, in SQL written once for both dialects (package database
// rebinds it). Payloads and delivery errors are sealed before a
// transaction begins and opened once the rows are closed, so the keyring
// is never called inside a transaction or with rows open.
package notifysql

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/notify/notifystore"
	"github.com/warden-iot/warden/internal/sealing"
)

// Store is notifystore.Store on a database.
type Store struct {
	db     database.DB
	sealer keyring.Sealer // set once by SetSealer, before use
}

var _ notifystore.Store = (*Store)(nil)

// New returns a Store on db. Call SetSealer before use.
func New(db database.DB) *Store { return &Store{db: db} }

// SetSealer sets what seals and opens payloads and delivery errors; the
// engines' SetSealer forwards to it.
func (s *Store) SetSealer(sl keyring.Sealer) { s.sealer = sl }

func (s *Store) filter() *database.Filter { return &database.Filter{Dialect: s.db.Dialect} }

// ---- Notification settings ----

// GetNotificationPrefs returns a user's preferences, or the defaults (no
// e-mail) if the user has set none.
func (s *Store) GetNotificationPrefs(ctx context.Context, userID string) (notifystore.NotificationPrefs, error) {
	p := notifystore.NotificationPrefs{UserID: userID}
	var sev, sites string
	err := s.db.QueryRow(ctx, `SELECT email, severities, site_ids FROM notification_prefs WHERE user_id = ?`, userID).
		Scan(&p.Email, &sev, &sites)
	if database.NoRows(err) {
		return p, nil
	}
	if err != nil {
		return p, fmt.Errorf("notification prefs of %q: %w", userID, err)
	}
	if err := database.FromJSON(sev, &p.Severities); err != nil {
		return p, fmt.Errorf("notification prefs of %q: %w", userID, err)
	}
	if err := database.FromJSON(sites, &p.SiteIDs); err != nil {
		return p, fmt.Errorf("notification prefs of %q: %w", userID, err)
	}
	return p, nil
}

// SetNotificationPrefs stores a user's preferences; the user must exist.
func (s *Store) SetNotificationPrefs(ctx context.Context, p notifystore.NotificationPrefs) error {
	sev, err := database.ToJSON(p.Severities)
	if err != nil {
		return fmt.Errorf("set notification prefs of %q: %w", p.UserID, err)
	}
	sites, err := database.ToJSON(p.SiteIDs)
	if err != nil {
		return fmt.Errorf("set notification prefs of %q: %w", p.UserID, err)
	}
	_, err = s.db.Exec(ctx, `INSERT INTO notification_prefs (user_id, email, severities, site_ids) VALUES (?, ?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET email = excluded.email, severities = excluded.severities, site_ids = excluded.site_ids`,
		p.UserID, p.Email, sev, sites)
	if s.db.Dialect.IsForeignKeyViolation(err) {
		return fmt.Errorf("user %q: %w", p.UserID, database.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("set notification prefs of %q: %w", p.UserID, err)
	}
	return nil
}

const webhookColumns = `id, tenant_id, url, secret, severities, enabled, created_at`

func scanWebhook(row database.Scanner) (notifystore.Webhook, error) {
	var w notifystore.Webhook
	var sev string
	var created int64
	if err := row.Scan(&w.ID, &w.TenantID, &w.URL, &w.Secret, &sev, &w.Enabled, &created); err != nil {
		return w, err
	}
	if err := database.FromJSON(sev, &w.Severities); err != nil {
		return w, fmt.Errorf("%q: %w", w.ID, err)
	}
	w.CreatedAt = database.Time(created)
	return w, nil
}

// CreateWebhook stores a webhook; its tenant must exist.
func (s *Store) CreateWebhook(ctx context.Context, w notifystore.Webhook) error {
	sev, err := database.ToJSON(w.Severities)
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
	case s.db.Dialect.IsUniqueViolation(err):
		return fmt.Errorf("webhook %q: %w", w.ID, database.ErrConflict)
	case s.db.Dialect.IsForeignKeyViolation(err):
		return fmt.Errorf("webhook %q: tenant %q: %w", w.ID, w.TenantID, database.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create webhook %q: %w", w.ID, err)
	}
	return nil
}

// ListWebhooks returns the webhooks of the given tenants (nil: all) in id
// order.
func (s *Store) ListWebhooks(ctx context.Context, tenantIDs []string) ([]notifystore.Webhook, error) {
	f := s.filter()
	f.In("tenant_id", tenantIDs)
	if f.None {
		return []notifystore.Webhook{}, nil
	}
	rows, err := s.db.Query(ctx, `SELECT `+webhookColumns+` FROM webhooks`+f.Where()+` ORDER BY id`, f.Args...)
	out, err := database.Collect(rows, err, scanWebhook)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	return out, nil
}

// DeleteWebhook removes a webhook.
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	n, err := database.Affected(s.db.Exec(ctx, `DELETE FROM webhooks WHERE id = ?`, id))
	if err != nil {
		return fmt.Errorf("delete webhook %q: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("webhook %q: %w", id, database.ErrNotFound)
	}
	return nil
}

// GetEscalation returns a tenant's escalation (ErrNotFound if none).
func (s *Store) GetEscalation(ctx context.Context, tenantID string) (notifystore.Escalation, error) {
	e := notifystore.Escalation{TenantID: tenantID}
	var delay int64
	err := s.db.QueryRow(ctx, `SELECT delay_ms, email FROM escalations WHERE tenant_id = ?`, tenantID).Scan(&delay, &e.Email)
	if database.NoRows(err) {
		return notifystore.Escalation{}, fmt.Errorf("escalation of tenant %q: %w", tenantID, database.ErrNotFound)
	}
	if err != nil {
		return notifystore.Escalation{}, fmt.Errorf("escalation of tenant %q: %w", tenantID, err)
	}
	e.Delay = time.Duration(delay) * time.Millisecond
	return e, nil
}

// SetEscalation stores a tenant's escalation; a Delay of 0 (or less)
// removes it.
func (s *Store) SetEscalation(ctx context.Context, e notifystore.Escalation) error {
	if e.Delay <= 0 {
		if _, err := s.db.Exec(ctx, `DELETE FROM escalations WHERE tenant_id = ?`, e.TenantID); err != nil {
			return fmt.Errorf("remove escalation of tenant %q: %w", e.TenantID, err)
		}
		return nil
	}
	_, err := s.db.Exec(ctx, `INSERT INTO escalations (tenant_id, delay_ms, email) VALUES (?, ?, ?)
		ON CONFLICT (tenant_id) DO UPDATE SET delay_ms = excluded.delay_ms, email = excluded.email`,
		e.TenantID, e.Delay.Milliseconds(), e.Email)
	if s.db.Dialect.IsForeignKeyViolation(err) {
		return fmt.Errorf("escalation: tenant %q: %w", e.TenantID, database.ErrNotFound)
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
	notifystore.Delivery
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
	if d.sealed == nil && payload != "" {
		d.Payload = json.RawMessage(payload)
	}
	return d, nil
}

// EnqueueDeliveries adds deliveries to the outbox in one transaction; the
// database assigns their ids (their IDs are ignored), and a delivery
// without a state is pending.
func (s *Store) EnqueueDeliveries(ctx context.Context, ds []notifystore.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	// Sealed before the transaction: a tenant's first sealing creates its
	// key.
	type sealedParts struct{ payload, lastErr []byte }
	parts := make([]sealedParts, len(ds))
	for i, d := range ds {
		if len(d.Payload) != 0 && !json.Valid(d.Payload) {
			return fmt.Errorf("enqueue deliveries: delivery payload: invalid JSON")
		}
		p, e, err := sealing.SealDeliveryRow(ctx, s.sealer, d)
		if err != nil {
			return fmt.Errorf("enqueue deliveries: %w", err)
		}
		parts[i] = sealedParts{p, e}
	}
	err := s.db.InTx(ctx, func(tx database.Tx) error {
		stmt, err := tx.Prepare(ctx, `INSERT INTO deliveries (tenant_id, alarm_id, channel, target, event, payload, state,
			attempts, next_at, last_error, created_at, sent_at, sealed, sealed_error)
			VALUES (?, ?, ?, ?, ?, '', ?, ?, ?, '', ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for i, d := range ds {
			state := d.State
			if state == "" {
				state = notifystore.DeliveryPending
			}
			_, err := stmt.ExecContext(ctx, d.TenantID, d.AlarmID, d.Channel, d.Target, d.Event, state, d.Attempts,
				database.Millis(d.NextAt), database.Millis(d.CreatedAt), database.Millis(d.SentAt), parts[i].payload, parts[i].lastErr)
			if s.db.Dialect.IsForeignKeyViolation(err) {
				return fmt.Errorf("tenant %q: %w", d.TenantID, database.ErrNotFound)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("enqueue deliveries: %w", err)
	}
	return nil
}

// queryDeliveries runs a query of deliveryColumns and opens the
// deliveries once its rows are closed (the keyring may need a
// connection).
func (s *Store) queryDeliveries(ctx context.Context, query string, args ...any) ([]notifystore.Delivery, error) {
	rows, err := s.db.Query(ctx, query, args...)
	got, err := database.Collect(rows, err, scanDelivery)
	if err != nil {
		return nil, err
	}
	out := make([]notifystore.Delivery, 0, len(got))
	for _, d := range got {
		if err := sealing.OpenDeliveryRow(ctx, s.sealer, &d.Delivery, d.sealed, d.lastErr); err != nil {
			return nil, err
		}
		out = append(out, d.Delivery)
	}
	return out, nil
}

// DueDeliveries returns up to limit pending deliveries due at now, the
// earliest first.
func (s *Store) DueDeliveries(ctx context.Context, now time.Time, limit int) ([]notifystore.Delivery, error) {
	out, err := s.queryDeliveries(ctx, `SELECT `+deliveryColumns+` FROM deliveries
		WHERE state = 'pending' AND next_at <= ? ORDER BY next_at, id LIMIT ?`, now.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("due deliveries: %w", err)
	}
	return out, nil
}

// UpdateDelivery stores a delivery's state, attempts, next time, error and
// sent time.
func (s *Store) UpdateDelivery(ctx context.Context, d notifystore.Delivery) error {
	// The error is sealed bound to the stored delivery, whatever the
	// caller's copy says.
	err := s.db.Primary().QueryRow(ctx, `SELECT tenant_id, alarm_id, channel, target, event FROM deliveries WHERE id = ?`, d.ID).
		Scan(&d.TenantID, &d.AlarmID, &d.Channel, &d.Target, &d.Event)
	if database.NoRows(err) {
		return fmt.Errorf("delivery %d: %w", d.ID, database.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("update delivery %d: %w", d.ID, err)
	}
	sealedErr, err := sealing.SealDeliveryError(ctx, s.sealer, d)
	if err != nil {
		return fmt.Errorf("update delivery %d: %w", d.ID, err)
	}
	n, err := database.Affected(s.db.Exec(ctx, `UPDATE deliveries SET state = ?, attempts = ?, next_at = ?,
		last_error = '', sealed_error = ?, sent_at = ? WHERE id = ?`, d.State, d.Attempts, database.Millis(d.NextAt), sealedErr,
		database.Millis(d.SentAt), d.ID))
	if err != nil {
		return fmt.Errorf("update delivery %d: %w", d.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("delivery %d: %w", d.ID, database.ErrNotFound)
	}
	return nil
}

// ListDeliveries returns the deliveries matching f, newest first, up to
// f.Limit (default 100).
func (s *Store) ListDeliveries(ctx context.Context, f notifystore.DeliveryFilter) ([]notifystore.Delivery, error) {
	w := s.filter()
	w.In("tenant_id", f.TenantIDs)
	if f.AlarmID != 0 {
		w.Add("alarm_id = ?", f.AlarmID)
	}
	if f.State != "" {
		w.Add("state = ?", f.State)
	}
	if w.None {
		return []notifystore.Delivery{}, nil
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
