// Package notifystore holds what the notifier keeps: users' notification
// preferences, tenants' webhooks and escalations, and the outbox of
// deliveries, with the Store interface over them (implemented by package
// notifysql).
//
// It is a leaf package apart from package notify because the notifier
// itself reads tenants, users, grants and devices through package store
// (and packages access and audit, which import store), while store refers
// to these types for its aliases: holding them in notify would make an
// import cycle.
package notifystore

import (
	"context"
	"encoding/json"
	"time"
)

// NotificationPrefs is what a user wants to be told about by e-mail.
type NotificationPrefs struct {
	UserID     string
	Email      bool     // e-mail at all
	Severities []string // empty: every severity
	SiteIDs    []string // empty: every site the user may see
}

// Webhook is a tenant's HTTP endpoint for alarm events, signed with
// HMAC-SHA256 over the body with Secret.
type Webhook struct {
	ID         string
	TenantID   string
	URL        string
	Secret     []byte
	Severities []string // empty: every severity
	Enabled    bool
	CreatedAt  time.Time
}

// Escalation sends an unacknowledged critical alarm of a tenant to a second
// recipient after Delay.
type Escalation struct {
	TenantID string
	Delay    time.Duration
	Email    string
}

// Delivery states.
const (
	DeliveryPending = "pending"
	DeliverySent    = "sent"
	DeliveryFailed  = "failed" // gave up after the last attempt
)

// Delivery is one notification in the outbox: an e-mail or a webhook call
// about an alarm, retried with backoff until sent or given up.
type Delivery struct {
	ID        int64
	TenantID  string
	AlarmID   int64
	Channel   string // "email" or "webhook"
	Target    string // e-mail address, or webhook id
	Event     string // "raised", "retriggered", "acknowledged", "cleared", "escalated"
	Payload   json.RawMessage
	State     string
	Attempts  int
	NextAt    time.Time
	LastError string
	CreatedAt time.Time
	SentAt    time.Time
	// Unreadable: the sealed payload or error cannot be opened (the
	// tenant's keys were destroyed); they read as empty.
	Unreadable bool
}

// DeliveryFilter selects deliveries.
type DeliveryFilter struct {
	TenantIDs []string
	AlarmID   int64
	State     string
	Limit     int // 0: 100
}

// Store keeps notification settings and the outbox. Payloads and delivery
// errors are sealed with their tenant's key (see package store's Sealer).
// Missing rows are database.ErrNotFound, duplicates database.ErrConflict
// (wrapped).
type Store interface {
	GetNotificationPrefs(ctx context.Context, userID string) (NotificationPrefs, error)
	SetNotificationPrefs(ctx context.Context, p NotificationPrefs) error
	CreateWebhook(ctx context.Context, w Webhook) error
	ListWebhooks(ctx context.Context, tenantIDs []string) ([]Webhook, error)
	DeleteWebhook(ctx context.Context, id string) error
	GetEscalation(ctx context.Context, tenantID string) (Escalation, error)
	SetEscalation(ctx context.Context, e Escalation) error // Delay 0 removes it

	EnqueueDeliveries(ctx context.Context, ds []Delivery) error
	// DueDeliveries returns up to limit pending deliveries with NextAt <= now.
	DueDeliveries(ctx context.Context, now time.Time, limit int) ([]Delivery, error)
	// UpdateDelivery stores a delivery's state, attempts, next time, error
	// and sent time.
	UpdateDelivery(ctx context.Context, d Delivery) error
	ListDeliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error)
}
