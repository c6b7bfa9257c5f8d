package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/warden-iot/warden/internal/apiv1"
)

// CreateRule makes an alarm rule from its JSON (an apiv1.RuleRequest
// without an id), sent as given so that the server judges every field.
func (c *Client) CreateRule(ctx context.Context, rule json.RawMessage) (apiv1.Rule, error) {
	var out apiv1.Rule
	err := c.Do(ctx, http.MethodPost, "/api/v1/rules", nil, rule, &out)
	return out, err
}

// Rules lists the alarm rules of a tenant ("": the caller's) and below.
func (c *Client) Rules(ctx context.Context, tenant string) ([]apiv1.Rule, error) {
	var out apiv1.RuleList
	err := c.Do(ctx, http.MethodGet, "/api/v1/rules", tenantQuery(tenant), nil, &out)
	return out.Rules, err
}

func rulePath(id string) string { return "/api/v1/rules/" + url.PathEscape(id) }

// Rule returns one alarm rule.
func (c *Client) Rule(ctx context.Context, id string) (apiv1.Rule, error) {
	var out apiv1.Rule
	err := c.Do(ctx, http.MethodGet, rulePath(id), nil, nil, &out)
	return out, err
}

// UpdateRule replaces a rule's definition with its JSON (an
// apiv1.RuleRequest), sent as given.
func (c *Client) UpdateRule(ctx context.Context, id string, rule json.RawMessage) (apiv1.Rule, error) {
	var out apiv1.Rule
	err := c.Do(ctx, http.MethodPut, rulePath(id), nil, rule, &out)
	return out, err
}

// DeleteRule deletes a rule; its alarms stay.
func (c *Client) DeleteRule(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, rulePath(id), nil, nil, nil)
}

// AlarmFilter selects alarms; zero fields do not filter.
type AlarmFilter struct {
	Tenant   string
	State    string // "active" or "cleared"
	Severity string
	Device   string
	Site     string
	Since    time.Time
	Until    time.Time
	Unacked  bool
	After    int64
	Limit    int
}

func (f AlarmFilter) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"tenant": f.Tenant, "state": f.State, "severity": f.Severity,
		"device": f.Device, "site": f.Site} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	if f.Unacked {
		q.Set("unacked", "true")
	}
	if f.After > 0 {
		q.Set("after", fmt.Sprint(f.After))
	}
	if f.Limit > 0 {
		q.Set("limit", fmt.Sprint(f.Limit))
	}
	return q
}

// Alarms returns one page of alarms; the page's Next is the After of the
// following one.
func (c *Client) Alarms(ctx context.Context, f AlarmFilter) (apiv1.AlarmPage, error) {
	var out apiv1.AlarmPage
	err := c.Do(ctx, http.MethodGet, "/api/v1/alarms", f.query(), nil, &out)
	return out, err
}

func alarmPath(id int64, rest string) string { return fmt.Sprintf("/api/v1/alarms/%d%s", id, rest) }

// Alarm returns one alarm.
func (c *Client) Alarm(ctx context.Context, id int64) (apiv1.Alarm, error) {
	var out apiv1.Alarm
	err := c.Do(ctx, http.MethodGet, alarmPath(id, ""), nil, nil, &out)
	return out, err
}

// AckAlarm acknowledges an alarm with an optional comment.
func (c *Client) AckAlarm(ctx context.Context, id int64, comment string) (apiv1.Alarm, error) {
	var out apiv1.Alarm
	err := c.Do(ctx, http.MethodPost, alarmPath(id, "/ack"), nil, apiv1.AlarmComment{Comment: comment}, &out)
	return out, err
}

// ClearAlarm clears an active alarm by hand.
func (c *Client) ClearAlarm(ctx context.Context, id int64, comment string) (apiv1.Alarm, error) {
	var out apiv1.Alarm
	err := c.Do(ctx, http.MethodPost, alarmPath(id, "/clear"), nil, apiv1.AlarmComment{Comment: comment}, &out)
	return out, err
}

// NotificationPrefs returns the caller's alarm e-mail preferences.
func (c *Client) NotificationPrefs(ctx context.Context) (apiv1.NotificationPrefs, error) {
	var out apiv1.NotificationPrefs
	err := c.Do(ctx, http.MethodGet, "/api/v1/me/notifications", nil, nil, &out)
	return out, err
}

// SetNotificationPrefs replaces the caller's alarm e-mail preferences.
func (c *Client) SetNotificationPrefs(ctx context.Context, p apiv1.NotificationPrefs) (apiv1.NotificationPrefs, error) {
	var out apiv1.NotificationPrefs
	req := apiv1.NotificationPrefsSetting{Email: &p.Email, Severities: p.Severities, SiteIDs: p.SiteIDs}
	err := c.Do(ctx, http.MethodPut, "/api/v1/me/notifications", nil, req, &out)
	return out, err
}

// Webhooks lists the webhooks of a tenant ("": the caller's) and below.
func (c *Client) Webhooks(ctx context.Context, tenant string) ([]apiv1.Webhook, error) {
	var out apiv1.WebhookList
	err := c.Do(ctx, http.MethodGet, "/api/v1/webhooks", tenantQuery(tenant), nil, &out)
	return out.Webhooks, err
}

// CreateWebhook makes a webhook in a tenant ("": the caller's); the answer
// holds its secret, shown only this once.
func (c *Client) CreateWebhook(ctx context.Context, tenant, webhookURL string, severities []string) (apiv1.Webhook, error) {
	body := apiv1.NewWebhook{TenantID: tenant, URL: webhookURL, Severities: severities}
	var out apiv1.Webhook
	err := c.Do(ctx, http.MethodPost, "/api/v1/webhooks", nil, body, &out)
	return out, err
}

// DeleteWebhook deletes a webhook.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/api/v1/webhooks/"+url.PathEscape(id), nil, nil, nil)
}

// Escalation returns a tenant's escalation ("": the caller's tenant).
func (c *Client) Escalation(ctx context.Context, tenant string) (apiv1.Escalation, error) {
	var out apiv1.Escalation
	err := c.Do(ctx, http.MethodGet, "/api/v1/escalation", tenantQuery(tenant), nil, &out)
	return out, err
}

// SetEscalation sets a tenant's escalation; a delay of 0 removes it.
func (c *Client) SetEscalation(ctx context.Context, tenant string, delayMinutes int, email string) (apiv1.Escalation, error) {
	var out apiv1.Escalation
	err := c.Do(ctx, http.MethodPut, "/api/v1/escalation", tenantQuery(tenant),
		apiv1.EscalationSetting{DelayMinutes: &delayMinutes, Email: email}, &out)
	return out, err
}

// DeliveryFilter selects notifications of the outbox.
type DeliveryFilter struct {
	Tenant string
	State  string // "pending", "sent" or "failed"
	Alarm  int64
	Limit  int
}

// Deliveries lists the newest notifications of a tenant and below.
func (c *Client) Deliveries(ctx context.Context, f DeliveryFilter) ([]apiv1.Delivery, error) {
	q := tenantQuery(f.Tenant)
	if f.State != "" {
		q.Set("state", f.State)
	}
	if f.Alarm > 0 {
		q.Set("alarm", fmt.Sprint(f.Alarm))
	}
	if f.Limit > 0 {
		q.Set("limit", fmt.Sprint(f.Limit))
	}
	var out apiv1.DeliveryList
	err := c.Do(ctx, http.MethodGet, "/api/v1/deliveries", q, nil, &out)
	return out.Deliveries, err
}

// KPIQuery is the scope (at most one of Device, Site and Tenant) and the
// period of a key-figures report; zero times take the server's defaults.
type KPIQuery struct {
	Device, Site, Tenant string
	From, To             time.Time
}

// KPI computes key figures from the alarm history.
func (c *Client) KPI(ctx context.Context, k KPIQuery) (apiv1.KPIReport, error) {
	q := url.Values{}
	for name, v := range map[string]string{"device": k.Device, "site": k.Site, "tenant": k.Tenant} {
		if v != "" {
			q.Set(name, v)
		}
	}
	if !k.From.IsZero() {
		q.Set("from", k.From.UTC().Format(time.RFC3339Nano))
	}
	if !k.To.IsZero() {
		q.Set("to", k.To.UTC().Format(time.RFC3339Nano))
	}
	var out apiv1.KPIReport
	err := c.Do(ctx, http.MethodGet, "/api/v1/kpi", q, nil, &out)
	return out, err
}
