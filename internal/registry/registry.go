// Package registry owns Warden's devices: what a device is (its identity,
// keys, status, descriptive metadata and last activity), the Store that
// keeps them, and the Service that registers, changes, re-keys and deletes
// them and publishes those facts (package event). Its SQL implementation,
// for both engines, is registrysql.
package registry

import (
	"context"
	"time"
)

// DeviceStatus says whether a device may connect.
type DeviceStatus string

// The statuses of a device.
const (
	DeviceEnabled  DeviceStatus = "enabled"
	DeviceDisabled DeviceStatus = "disabled"
)

// Device is a registered machine. Keys are the raw 256-bit symmetric keys;
// they are secret and never logged.
type Device struct {
	ID           string
	TenantID     string
	Status       DeviceStatus
	PrimaryKey   []byte
	SecondaryKey []byte
	CreatedAt    time.Time
	LastSeen     time.Time // zero if never seen
	LastIP       string
	Info         DeviceInfo
}

// DeviceInfo is a device's descriptive metadata.
type DeviceInfo struct {
	SiteID              string // empty: not assigned to a site
	Name                string
	SerialNumber        string // serial or control-unit number, e.g. "P1234567"
	MeterNumber         string
	MeasurementLocation string
	InstallationPlace   string
	Model               string
	FirmwareVersion     string
}

// DeviceFilter selects devices. Zero fields do not filter; the result is
// the intersection of the non-zero ones, in id order.
type DeviceFilter struct {
	TenantIDs []string
	SiteIDs   []string
	IDs       []string
	Model     string
	// Under keeps the devices of this tenant and the tenants below it
	// (found in the query by the tenants' paths).
	Under string
	// FactoryAccess keeps the devices now at a site whose owner has
	// switched the factory service access on.
	FactoryAccess bool
	After         string // only ids > After
	Limit         int    // 0: no limit
}

// DeviceSeen is a device's latest activity.
type DeviceSeen struct {
	ID string
	At time.Time
	IP string
}

// Store keeps the devices. Every method is safe for concurrent use. Errors
// wrap database.ErrNotFound and database.ErrConflict where they say so.
// Methods that address a device take its tenant: a device of another
// tenant is reported as not found.
type Store interface {
	// CreateDevice registers a device with its metadata. A taken id is
	// ErrConflict; a site that is not one of the device's tenant is
	// ErrNotFound.
	CreateDevice(ctx context.Context, d Device) error
	// GetDevice looks a device up by id alone; the broker uses it to
	// authenticate a connection before any tenant is known.
	GetDevice(ctx context.Context, id string) (Device, error)
	// ListDevices returns a tenant's devices in id order.
	ListDevices(ctx context.Context, tenantID string) ([]Device, error)
	// FindDevices returns the devices matching f in id order (never nil).
	FindDevices(ctx context.Context, f DeviceFilter) ([]Device, error)
	// SetDeviceStatus enables or disables a device.
	SetDeviceStatus(ctx context.Context, tenantID, id string, s DeviceStatus) error
	// SetDeviceKeys replaces a device's symmetric keys.
	SetDeviceKeys(ctx context.Context, tenantID, id string, primary, secondary []byte) error
	// SetDeviceInfo replaces a device's metadata; a site must be one of
	// the device's tenant (otherwise ErrNotFound).
	SetDeviceInfo(ctx context.Context, tenantID, id string, info DeviceInfo) error
	// DeleteDevice removes the device with everything recorded for it
	// (telemetry: head, chunks, latest values; dedup records, rejected
	// messages, twin, cloud-to-device messages, session, the grants on it,
	// its alarms and their deliveries) in one transaction, and leaves no
	// copy of it in the database files (ErrNotPurged if it could not make
	// sure of that; the deletion itself is then done).
	DeleteDevice(ctx context.Context, tenantID, id string) error
	// TouchDevices records when and from where devices were last seen, in
	// one transaction; ids of devices that no longer exist are skipped.
	TouchDevices(ctx context.Context, seen []DeviceSeen) error
}
