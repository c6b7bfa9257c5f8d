package apiv1

import (
	"encoding/json"
	"time"
)

// DPSInfo tells devices of the caller's tenant how to reach the
// provisioning service: it runs on the MQTT TLS listener, under the hub
// host name.
type DPSInfo struct {
	IDScope          string `json:"idScope"`
	ProvisioningHost string `json:"provisioningHost"`
}

// EnrollmentGroup is the API view of an enrollment group. Keys are base64;
// a device's key is sas.DeriveDeviceKey(group key, registration id).
type EnrollmentGroup struct {
	ID           string          `json:"id"`
	TenantID     string          `json:"tenantId"`
	Enabled      bool            `json:"enabled"`
	PrimaryKey   string          `json:"primaryKey,omitempty"`
	SecondaryKey string          `json:"secondaryKey,omitempty"`
	InitialTwin  json.RawMessage `json:"initialTwin,omitempty"`
	CreatedAt    time.Time       `json:"createdAt"`
	UpdatedAt    time.Time       `json:"updatedAt"`
	Unreadable   bool            `json:"unreadable,omitempty"` // its tenant's keys were destroyed: the initial twin is lost
}

// Enrollment is the API view of an individual enrollment.
type Enrollment struct {
	RegistrationID string          `json:"registrationId"`
	DeviceID       string          `json:"deviceId"`
	TenantID       string          `json:"tenantId"`
	Enabled        bool            `json:"enabled"`
	PrimaryKey     string          `json:"primaryKey,omitempty"`
	SecondaryKey   string          `json:"secondaryKey,omitempty"`
	InitialTwin    json.RawMessage `json:"initialTwin,omitempty"`
	CreatedAt      time.Time       `json:"createdAt"`
	UpdatedAt      time.Time       `json:"updatedAt"`
	Unreadable     bool            `json:"unreadable,omitempty"` // its tenant's keys were destroyed
}

// Registration is the API view of a registration record.
type Registration struct {
	RegistrationID string          `json:"registrationId"`
	DeviceID       string          `json:"deviceId"`
	TenantID       string          `json:"tenantId"`
	EnrollmentType string          `json:"enrollmentType"` // group or individual
	EnrollmentID   string          `json:"enrollmentId"`   // the group id, or the registration id
	Status         string          `json:"status"`
	Substatus      string          `json:"substatus"`
	AssignedHub    string          `json:"assignedHub"`
	OperationID    string          `json:"operationId"`
	ETag           string          `json:"etag"`
	Payload        json.RawMessage `json:"payload,omitempty"`
	InitialTwin    json.RawMessage `json:"initialTwin,omitempty"`
	CreatedAt      time.Time       `json:"createdAt"`
	UpdatedAt      time.Time       `json:"updatedAt"`
	Unreadable     bool            `json:"unreadable,omitempty"` // its tenant's keys were destroyed
}

// RegistrationPage is the answer of GET /api/v1/dps/registrations. Next is
// the "after" of the next page; empty when this is the last.
type RegistrationPage struct {
	Next          string         `json:"next,omitempty"`
	Registrations []Registration `json:"registrations"`
}
