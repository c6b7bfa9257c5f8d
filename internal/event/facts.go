package event

import "time"

// The facts Warden publishes. Each names the tenant (and device) it
// concerns and when it happened; the type names are stable.

// TenantDeleted: a tenant and everything it held are gone from the store.
// DeviceIDs are the devices it had.
type TenantDeleted struct {
	TenantID  string    `json:"tenantId"`
	DeviceIDs []string  `json:"deviceIds,omitempty"`
	At        time.Time `json:"at"`
}

func (TenantDeleted) Type() string { return "tenant.deleted" }

// KeysShredded: a tenant's data keys are destroyed; what was sealed with
// them, in the database or its backups, cannot be read any more.
type KeysShredded struct {
	TenantID string    `json:"tenantId"`
	At       time.Time `json:"at"`
}

func (KeysShredded) Type() string { return "tenant.keys-shredded" }

// DeviceCreated: a device was registered.
type DeviceCreated struct {
	TenantID string    `json:"tenantId"`
	DeviceID string    `json:"deviceId"`
	At       time.Time `json:"at"`
}

func (DeviceCreated) Type() string { return "device.created" }

// DeviceChanged: a device's site, model or status changed. It carries
// the device's values after the change; PreviousSiteID is its site
// before.
type DeviceChanged struct {
	TenantID       string    `json:"tenantId"`
	DeviceID       string    `json:"deviceId"`
	SiteID         string    `json:"siteId,omitempty"`
	PreviousSiteID string    `json:"previousSiteId,omitempty"`
	Model          string    `json:"model,omitempty"`
	Status         string    `json:"status"` // "enabled" or "disabled"
	At             time.Time `json:"at"`
}

func (DeviceChanged) Type() string { return "device.changed" }

// Disabled says the device may not connect now.
func (e DeviceChanged) Disabled() bool { return e.Status == "disabled" }

// DeviceDeleted: a device and its data are gone.
type DeviceDeleted struct {
	TenantID string    `json:"tenantId"`
	DeviceID string    `json:"deviceId"`
	At       time.Time `json:"at"`
}

func (DeviceDeleted) Type() string { return "device.deleted" }

// DeviceRekeyed: a device's keys were replaced (Keys: "primary",
// "secondary" or "both"); tokens signed with a replaced key are void.
type DeviceRekeyed struct {
	TenantID string    `json:"tenantId"`
	DeviceID string    `json:"deviceId"`
	Keys     string    `json:"keys"`
	At       time.Time `json:"at"`
}

func (DeviceRekeyed) Type() string { return "device.rekeyed" }

// RulesChanged: an alarm rule of the tenant was created, changed or
// deleted.
type RulesChanged struct {
	TenantID string    `json:"tenantId"`
	RuleID   string    `json:"ruleId"`
	At       time.Time `json:"at"`
}

func (RulesChanged) Type() string { return "alarm.rules-changed" }

// MaintenancePlansChanged: the tenant's maintenance plan for a model was
// set or deleted.
type MaintenancePlansChanged struct {
	TenantID string    `json:"tenantId"`
	Model    string    `json:"model"`
	At       time.Time `json:"at"`
}

func (MaintenancePlansChanged) Type() string { return "maintenance.plans-changed" }

// EnrollmentsChanged: a provisioning enrollment or enrollment group of
// the tenant was created, changed or deleted.
type EnrollmentsChanged struct {
	TenantID string    `json:"tenantId"`
	At       time.Time `json:"at"`
}

func (EnrollmentsChanged) Type() string { return "provisioning.enrollments-changed" }

// GrantCreated: an owner granted a supporter access to a site or device
// (one of SiteID, DeviceID).
type GrantCreated struct {
	TenantID        string    `json:"tenantId"`
	GrantID         string    `json:"grantId"`
	SupporterUserID string    `json:"supporterUserId"`
	SiteID          string    `json:"siteId,omitempty"`
	DeviceID        string    `json:"deviceId,omitempty"`
	ExpiresAt       time.Time `json:"expiresAt,omitzero"`
	At              time.Time `json:"at"`
}

func (GrantCreated) Type() string { return "grant.created" }

// GrantRevoked: a grant was revoked before it expired.
type GrantRevoked struct {
	TenantID        string    `json:"tenantId"`
	GrantID         string    `json:"grantId"`
	SupporterUserID string    `json:"supporterUserId"`
	SiteID          string    `json:"siteId,omitempty"`
	DeviceID        string    `json:"deviceId,omitempty"`
	At              time.Time `json:"at"`
}

func (GrantRevoked) Type() string { return "grant.revoked" }

// FactoryAccessClosed: operator staff may have lost access to machines of
// a customer: the owner switched a site's factory service access off
// (SiteID), a device left a site (DeviceID), or a site whose access was on
// was deleted (SiteID).
type FactoryAccessClosed struct {
	TenantID string    `json:"tenantId"`
	SiteID   string    `json:"siteId,omitempty"`
	DeviceID string    `json:"deviceId,omitempty"`
	At       time.Time `json:"at"`
}

func (FactoryAccessClosed) Type() string { return "factory.access-closed" }

// AlarmAcknowledged: a person acknowledged an alarm (By: who, as the
// alarm records it).
type AlarmAcknowledged struct {
	TenantID string    `json:"tenantId"`
	DeviceID string    `json:"deviceId"`
	AlarmID  int64     `json:"alarmId"`
	By       string    `json:"by"`
	At       time.Time `json:"at"`
}

func (AlarmAcknowledged) Type() string { return "alarm.acknowledged" }

// AlarmClearedByHand: a person cleared an active alarm. Kind is the
// alarm's kind ("rule" or "maintenance"), RuleID its rule.
type AlarmClearedByHand struct {
	TenantID string    `json:"tenantId"`
	DeviceID string    `json:"deviceId"`
	AlarmID  int64     `json:"alarmId"`
	Kind     string    `json:"kind"`
	RuleID   string    `json:"ruleId"`
	By       string    `json:"by"`
	At       time.Time `json:"at"`
}

func (AlarmClearedByHand) Type() string { return "alarm.cleared-by-hand" }

// UserDeleted: a person's account is gone, and with it their sessions,
// sign-in links, API tokens and (a supporter's) grants.
type UserDeleted struct {
	TenantID string    `json:"tenantId"`
	UserID   string    `json:"userId"`
	At       time.Time `json:"at"`
}

func (UserDeleted) Type() string { return "user.deleted" }

// CloudToDeviceQueued: a cloud-to-device message was queued for a device.
type CloudToDeviceQueued struct {
	TenantID  string    `json:"tenantId"`
	DeviceID  string    `json:"deviceId"`
	MessageID string    `json:"messageId"`
	At        time.Time `json:"at"`
}

func (CloudToDeviceQueued) Type() string { return "hub.c2d-queued" }
