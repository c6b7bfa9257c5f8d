package apiv1

import (
	"time"
)

// Device is the API view of a device.
type Device struct {
	ID               string     `json:"id"`
	TenantID         string     `json:"tenantId"`
	Status           string     `json:"status"`
	Connected        bool       `json:"connected"`
	LastSeen         *time.Time `json:"lastSeen,omitempty"`
	LastIP           string     `json:"lastIp,omitempty"`
	CreatedAt        time.Time  `json:"createdAt"`
	PrimaryKey       string     `json:"primaryKey,omitempty"`
	SecondaryKey     string     `json:"secondaryKey,omitempty"`
	ConnectionString string     `json:"connectionString,omitempty"`
	DeviceInfo
}

// DeviceInfo is a device's descriptive metadata.
type DeviceInfo struct {
	SiteID              string `json:"siteId,omitempty"`
	Name                string `json:"name,omitempty"`
	SerialNumber        string `json:"serialNumber,omitempty"` // serial or control-unit number, e.g. "P1234567"
	MeterNumber         string `json:"meterNumber,omitempty"`
	MeasurementLocation string `json:"measurementLocation,omitempty"`
	InstallationPlace   string `json:"installationPlace,omitempty"`
	Model               string `json:"model,omitempty"`
	FirmwareVersion     string `json:"firmwareVersion,omitempty"`
}

// DeviceToken is the answer of POST /api/v1/devices/{id}/token: a SAS
// token of the device and the hub host name it is for. CredentialID is set
// for a staff credential made under the owner's factory access switch.
type DeviceToken struct {
	CredentialID string    `json:"credentialId,omitempty"`
	ExpiresAt    time.Time `json:"expiresAt"`
	HostName     string    `json:"hostName"`
	Token        string    `json:"token"`
}
