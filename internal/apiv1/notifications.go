package apiv1

import (
	"time"
)

// NotificationPrefs is what a user wants to be told about by e-mail.
type NotificationPrefs struct {
	Email bool `json:"email"`
	// Severities: empty means every severity.
	Severities []string `json:"severities"`
	// SiteIDs: empty means every site the user may see.
	SiteIDs []string `json:"siteIds"`
	// Warnings (answers only) say why the settings cannot take effect
	// yet, e.g. e-mail on while the server has no mail server.
	Warnings []string `json:"warnings,omitempty"`
}

// NotificationPrefsSetting is the body of PUT /api/v1/me/notifications:
// the caller's preferences, replaced whole. Email is required.
type NotificationPrefsSetting struct {
	Email *bool `json:"email"`
	// Severities: empty means every severity.
	Severities []string `json:"severities"`
	// SiteIDs: empty means every site the user may see.
	SiteIDs []string `json:"siteIds"`
}

// Webhook is the API view of a webhook. Secret is only in the answer that
// made it.
type Webhook struct {
	ID         string    `json:"id"`
	TenantID   string    `json:"tenantId"`
	URL        string    `json:"url"`
	Severities []string  `json:"severities"`
	Enabled    bool      `json:"enabled"`
	CreatedAt  time.Time `json:"createdAt"`
	Secret     string    `json:"secret,omitempty"`
}

// Escalation is a tenant's escalation: an unacknowledged critical alarm
// goes to Email after DelayMinutes. DelayMinutes 0: none.
type Escalation struct {
	TenantID     string `json:"tenantId"`
	DelayMinutes int    `json:"delayMinutes"`
	Email        string `json:"email,omitempty"`
	// Warnings say why the escalation cannot take effect yet, e.g. an
	// e-mail recipient while the server has no mail server.
	Warnings []string `json:"warnings,omitempty"`
}

// Delivery is one notification in the outbox, with how its sending went.
type Delivery struct {
	ID        int64      `json:"id"`
	TenantID  string     `json:"tenantId"`
	AlarmID   int64      `json:"alarmId"`
	Channel   string     `json:"channel"`
	Target    string     `json:"target"`
	Event     string     `json:"event"`
	State     string     `json:"state"`
	Attempts  int        `json:"attempts"`
	NextAt    *time.Time `json:"nextAt,omitempty"`
	LastError string     `json:"lastError,omitempty"`
	// Unreadable: its tenant's keys were destroyed.
	Unreadable bool       `json:"unreadable,omitempty"`
	CreatedAt  time.Time  `json:"createdAt"`
	SentAt     *time.Time `json:"sentAt,omitempty"`
}
