// Package store defines Warden's persistent state: tenants, devices, API
// tokens, telemetry points, message-id deduplication and rejected messages.
//
// The Store interface has two implementations, store/sqlite (the embedded
// default) and store/postgres (for several nodes). Both pass the same
// behavioural suite in store/storetest.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors every implementation returns (wrapped) so callers can branch on them.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("already exists")
)

// RootTenantID is the operator's tenant, created by Migrate. Every other
// tenant will descend from it.
const RootTenantID = "root"

// Tenant is a node of the tenant hierarchy (operator → customers → …).
type Tenant struct {
	ID        string
	ParentID  string // empty for the root tenant
	Name      string
	CreatedAt time.Time
}

// DeviceStatus says whether a device may connect.
type DeviceStatus string

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
}

// TokenRole is what an API token may do.
type TokenRole string

// RoleOperatorAdmin may do everything in its tenant and below.
const RoleOperatorAdmin TokenRole = "operator-admin"

// APIToken is a bearer token for the HTTP API; only its SHA-256 is stored.
type APIToken struct {
	ID        string
	TenantID  string
	Name      string
	Role      TokenRole
	Hash      []byte
	CreatedAt time.Time
}

// Point is one value of one metric at one instant.
type Point struct {
	Metric string
	TS     time.Time
	Value  float64
}

// Message is one accepted telemetry message, ready to be committed.
type Message struct {
	TenantID   string
	DeviceID   string
	MessageID  string // empty: the message cannot be deduplicated
	ReceivedAt time.Time
	Points     []Point
}

// WriteResult says what happened to each message of a batch, in order.
type WriteResult struct {
	Duplicate bool // an earlier message with the same id was already stored
}

// Rejected is a message Warden could not accept, kept with the reason.
type Rejected struct {
	ID         int64
	TenantID   string
	DeviceID   string
	MessageID  string
	Topic      string
	Reason     string
	Payload    []byte
	ReceivedAt time.Time
}

// Sample is a stored point of a known series.
type Sample struct {
	TS    time.Time
	Value float64
}

// Latest is the newest value of one metric of a device.
type Latest struct {
	Metric string
	TS     time.Time
	Value  float64
}

// Store is Warden's persistent state. Every method is safe for concurrent use.
// Methods that address a device take its tenant: a device of another tenant
// is reported as ErrNotFound.
type Store interface {
	// Migrate brings the schema up to date and creates the root tenant.
	Migrate(ctx context.Context) error
	Close() error

	// Meta is a small key/value table for server-wide settings
	// (for example whether the first operator token has been made).
	GetMeta(ctx context.Context, key string) (string, error)
	SetMeta(ctx context.Context, key, value string) error

	CreateDevice(ctx context.Context, d Device) error
	// GetDevice looks a device up by id alone; the broker uses it to
	// authenticate a connection before any tenant is known.
	GetDevice(ctx context.Context, id string) (Device, error)
	ListDevices(ctx context.Context, tenantID string) ([]Device, error)
	SetDeviceStatus(ctx context.Context, tenantID, id string, s DeviceStatus) error
	SetDeviceKeys(ctx context.Context, tenantID, id string, primary, secondary []byte) error
	// DeleteDevice removes the device with its telemetry, dedup records and
	// rejected messages.
	DeleteDevice(ctx context.Context, tenantID, id string) error
	// TouchDevice records a connection's time and remote address.
	TouchDevice(ctx context.Context, id string, seen time.Time, ip string) error

	CreateAPIToken(ctx context.Context, t APIToken) error
	// APITokenByHash finds a token by the SHA-256 of its secret.
	APITokenByHash(ctx context.Context, hash []byte) (APIToken, error)

	// WriteMessages commits a batch atomically and durably: for each
	// message with an id not seen before from that device, its points and
	// the id; for a repeated id, nothing. Results are in batch order.
	WriteMessages(ctx context.Context, msgs []Message) ([]WriteResult, error)
	// ForgetMessageIDs drops dedup records received before the cutoff.
	ForgetMessageIDs(ctx context.Context, before time.Time) (int64, error)

	// LatestValues returns the newest point of every metric of a device,
	// sorted by metric name.
	LatestValues(ctx context.Context, tenantID, deviceID string) ([]Latest, error)
	// Samples calls fn for each point of one series with from <= ts < to,
	// in time order, until fn returns false or limit points (0: no limit).
	Samples(ctx context.Context, tenantID, deviceID, metric string, from, to time.Time, limit int, fn func(Sample) bool) error

	AddRejected(ctx context.Context, r Rejected) error
	// ListRejected returns a device's rejected messages, newest first.
	ListRejected(ctx context.Context, tenantID, deviceID string, limit int) ([]Rejected, error)
}
