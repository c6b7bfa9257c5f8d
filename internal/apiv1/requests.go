package apiv1

import (
	"encoding/json"
	"time"
)

// The request bodies. Fields marked omitempty are optional; in a patch a
// nil pointer leaves the field as it is and a pointer to "" clears it, so a
// patch carries only the fields it changes.

// Login is the body of POST /api/v1/auth/login.
type Login struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	TOTP     string `json:"totp,omitempty"` // the current code, for accounts with two-factor sign-in
}

// PasswordLink is the body of POST /api/v1/auth/activate and
// /api/v1/auth/password-reset/confirm: a one-time link's token and the new
// password.
type PasswordLink struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

// NewDevice is the body of POST /api/v1/devices.
type NewDevice struct {
	ID       string `json:"id"`
	TenantID string `json:"tenantId,omitempty"` // default: the caller's
	DeviceInfo
}

// DevicePatch is the body of PATCH /api/v1/devices/{id}: a new status
// ("enabled" or "disabled") and metadata.
type DevicePatch struct {
	Status              *string `json:"status,omitempty"`
	SiteID              *string `json:"siteId,omitempty"`
	Name                *string `json:"name,omitempty"`
	SerialNumber        *string `json:"serialNumber,omitempty"`
	MeterNumber         *string `json:"meterNumber,omitempty"`
	MeasurementLocation *string `json:"measurementLocation,omitempty"`
	InstallationPlace   *string `json:"installationPlace,omitempty"`
	Model               *string `json:"model,omitempty"`
	FirmwareVersion     *string `json:"firmwareVersion,omitempty"`
}

// KeyRegeneration is the body of POST /api/v1/devices/{id}/keys/regenerate:
// which key, "primary", "secondary" or "both".
type KeyRegeneration struct {
	Key string `json:"key"`
}

// DeviceTokenRequest is the body of POST /api/v1/devices/{id}/token: the
// SAS token's lifetime as a Go duration, e.g. "1h" (empty: 1h), and the
// key that signs it, "primary" (the default) or "secondary".
type DeviceTokenRequest struct {
	TTL string `json:"ttl"`
	Key string `json:"key,omitempty"`
}

// NewTenant is the body of POST /api/v1/tenants.
type NewTenant struct {
	ID       string `json:"id,omitempty"`       // default: made up
	ParentID string `json:"parentId,omitempty"` // default: the caller's tenant
	TenantPatch
}

// TenantPatch is the body of PATCH /api/v1/tenants/{id}. An address or
// contact replaces the whole one.
type TenantPatch struct {
	Name                   *string   `json:"name,omitempty"`
	Address                *Address  `json:"address,omitempty"`
	Contact                *Contact  `json:"contact,omitempty"`
	Contract               *Contract `json:"contract,omitempty"`
	TelemetryRetentionDays *int      `json:"telemetryRetentionDays,omitempty"` // 0: kept until deleted
}

// NewSite is the body of POST /api/v1/sites.
type NewSite struct {
	TenantID string `json:"tenantId,omitempty"` // default: the caller's
	SitePatch
}

// SitePatch is the body of PATCH /api/v1/sites/{id}.
type SitePatch struct {
	Name    *string  `json:"name,omitempty"`
	Address *Address `json:"address,omitempty"`
}

// FactoryAccess is the body of PUT /api/v1/sites/{id}/factory-access.
// Enabled is required.
type FactoryAccess struct {
	Enabled *bool `json:"enabled"`
}

// Profile is the personal data of an account, as a patch.
type Profile struct {
	FirstName *string  `json:"firstName,omitempty"`
	LastName  *string  `json:"lastName,omitempty"`
	Phone     *string  `json:"phone,omitempty"`
	Company   *string  `json:"company,omitempty"`
	Address   *Address `json:"address,omitempty"`
}

// NewUser is the body of POST /api/v1/users.
type NewUser struct {
	TenantID string `json:"tenantId,omitempty"` // default: the caller's
	Email    string `json:"email"`
	Role     string `json:"role"`
	Profile
}

// UserPatch is the body of PATCH /api/v1/users/{id}. Status is "active" or
// "disabled"; Unlock lifts a sign-in lock.
type UserPatch struct {
	Role   *string `json:"role,omitempty"`
	Status *string `json:"status,omitempty"`
	Unlock bool    `json:"unlock,omitempty"`
	Profile
}

// NewToken is the body of POST /api/v1/tokens. Scopes are "read" and
// "write" (empty: those of the caller); TTL is a Go duration such as
// "720h" (empty: the token does not end).
type NewToken struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes,omitempty"`
	TTL    string   `json:"ttl,omitempty"`
}

// NewGrant is the body of POST /api/v1/grants: a supporter's access to a
// site or a device (one of them), until ExpiresAt (nil: no end).
type NewGrant struct {
	SupporterID string     `json:"supporterId"`
	SiteID      string     `json:"siteId,omitempty"`
	DeviceID    string     `json:"deviceId,omitempty"`
	ExpiresAt   *time.Time `json:"expiresAt,omitempty"`
}

// AlarmComment is the body of POST /api/v1/alarms/{id}/ack and …/clear.
type AlarmComment struct {
	Comment string `json:"comment"`
}

// NewWebhook is the body of POST /api/v1/webhooks. Severities empty:
// every severity.
type NewWebhook struct {
	TenantID   string   `json:"tenantId,omitempty"` // default: the caller's
	URL        string   `json:"url"`
	Severities []string `json:"severities,omitempty"`
}

// EscalationSetting is the body of PUT /api/v1/escalation. DelayMinutes
// is required; 0 removes the escalation.
type EscalationSetting struct {
	DelayMinutes *int   `json:"delayMinutes"`
	Email        string `json:"email"`
}

// TwinPatch is the body of PATCH /api/v1/devices/{id}/twin: JSON merge
// patches of the desired properties and of the tags (nil: unchanged).
type TwinPatch struct {
	Properties *PropertiesPatch `json:"properties,omitempty"`
	Tags       json.RawMessage  `json:"tags,omitempty"`
}

// PropertiesPatch is the properties part of a TwinPatch. Only the device
// reports its reported properties: a patch of them is refused.
type PropertiesPatch struct {
	Desired  json.RawMessage `json:"desired"`
	Reported json.RawMessage `json:"reported,omitempty"`
}

// MethodCall is the body of POST /api/v1/devices/{id}/methods/{name}.
// TimeoutSeconds nil: DefaultMethodTimeout.
type MethodCall struct {
	Payload        json.RawMessage `json:"payload,omitempty"`
	TimeoutSeconds *float64        `json:"timeoutSeconds,omitempty"`
}

// C2DSend is the body of POST /api/v1/devices/{id}/c2d. Payload is a JSON
// string (sent as its text) or any other JSON value (sent as JSON);
// TTLSeconds nil: the server's default (1 h); MessageID empty: the server
// makes one.
type C2DSend struct {
	Payload       json.RawMessage   `json:"payload"`
	Properties    map[string]string `json:"properties,omitempty"`
	TTLSeconds    *int64            `json:"ttlSeconds,omitempty"`
	MessageID     string            `json:"messageId,omitempty"`
	CorrelationID string            `json:"correlationId,omitempty"`
}

// NewEnrollmentGroup is the body of POST /api/v1/dps/enrollment-groups.
// Keys are base64 and optional (new random keys if empty); Enabled
// defaults to true.
type NewEnrollmentGroup struct {
	ID           string          `json:"id"`
	Enabled      *bool           `json:"enabled,omitempty"`
	InitialTwin  json.RawMessage `json:"initialTwin,omitempty"`
	PrimaryKey   string          `json:"primaryKey,omitempty"`
	SecondaryKey string          `json:"secondaryKey,omitempty"`
}

// NewEnrollment is the body of POST /api/v1/dps/enrollments. DeviceID
// defaults to the registration id; keys as in NewEnrollmentGroup.
type NewEnrollment struct {
	RegistrationID string          `json:"registrationId"`
	DeviceID       string          `json:"deviceId,omitempty"`
	Enabled        *bool           `json:"enabled,omitempty"`
	InitialTwin    json.RawMessage `json:"initialTwin,omitempty"`
	PrimaryKey     string          `json:"primaryKey,omitempty"`
	SecondaryKey   string          `json:"secondaryKey,omitempty"`
}

// EnrollmentPatch is the body of PATCH on an enrollment group or an
// enrollment; empty fields change nothing. InitialTwin "null" removes the
// initial twin; RegenerateKey is "primary", "secondary" or "both".
type EnrollmentPatch struct {
	Enabled       *bool           `json:"enabled,omitempty"`
	InitialTwin   json.RawMessage `json:"initialTwin,omitempty"`
	RegenerateKey string          `json:"regenerateKey,omitempty"`
	PrimaryKey    string          `json:"primaryKey,omitempty"`
	SecondaryKey  string          `json:"secondaryKey,omitempty"`
}

// Ptr returns a pointer to v, for the fields of a patch.
func Ptr[T any](v T) *T { return &v }

// PasswordReset is the body of POST /api/v1/auth/password-reset: the
// e-mail address of the account.
type PasswordReset struct {
	Email string `json:"email"`
}

// PasswordChange is the body of PUT /api/v1/me/password.
type PasswordChange struct {
	CurrentPassword string `json:"currentPassword"`
	NewPassword     string `json:"newPassword"`
}

// TOTPCode is the body of POST /api/v1/me/totp/confirm: a code of the
// authenticator app.
type TOTPCode struct {
	Code string `json:"code"`
}

// PasswordCheck is the body of DELETE /api/v1/me/totp: the account's
// password.
type PasswordCheck struct {
	Password string `json:"password"`
}
