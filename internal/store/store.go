// Package store defines Warden's persistent state: tenants, devices, API
// tokens, telemetry points, message-id deduplication and rejected messages.
//
// The Store interface has two implementations, store/sqlite (the embedded
// default) and store/postgres (for several nodes). Both pass the same
// behavioural suite in store/storetest.
package store

import (
	"context"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/tsdb/tsdbstore"
)

// Errors every implementation returns (wrapped) so callers can branch on
// them; they are package database's, so errors.Is matches either name.
var (
	ErrNotFound  = database.ErrNotFound
	ErrConflict  = database.ErrConflict
	ErrNotPurged = database.ErrNotPurged
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
	// RetentionDays is how long the tenant's telemetry is kept; 0 keeps it
	// forever.
	RetentionDays int
	// Path is the ids from the root down to this tenant joined by "/",
	// e.g. "root/acme/acme-north"; the store sets it from ParentID.
	Path     string
	Address  Address
	Contact  Contact
	Contract Contract
}

// TenantKey is a tenant's data key, wrapped by the master key.
type TenantKey struct {
	ID        uint32
	TenantID  string
	Wrapped   []byte
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
	Info         DeviceInfo
}

// DeviceSeen is a device's latest activity.
type DeviceSeen struct {
	ID string
	At time.Time
	IP string
}

// Token scopes. A token acts as its user (or, without one, with its own
// Role) but only within its scopes.
const (
	ScopeRead  = "read"  // every read the principal may do
	ScopeWrite = "write" // every change the principal may do
)

// APIToken is a bearer token for the HTTP API; only its SHA-256 is stored.
// UserID is the user it acts for; the operator's bootstrap token has none
// and carries its Role itself.
type APIToken struct {
	ID         string
	TenantID   string
	UserID     string
	Name       string
	Role       Role
	Scopes     []string // empty means every scope
	Hash       []byte
	CreatedAt  time.Time
	ExpiresAt  time.Time // zero: does not expire
	LastUsedAt time.Time
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
	// System holds the message's system properties ($.mid, $.cid, $.ct,
	// $.ce, $.ctime…, without "$."); App its application properties.
	System map[string]string
	App    map[string]string
}

// The telemetry store's records are package tsdbstore's (see there).
type (
	// WriteResult is tsdbstore.WriteResult.
	WriteResult = tsdbstore.WriteResult
	// Rejected is tsdbstore.Rejected.
	Rejected = tsdbstore.Rejected
	// HeadRecord is tsdbstore.HeadRecord.
	HeadRecord = tsdbstore.HeadRecord
	// ChunkRecord is tsdbstore.ChunkRecord.
	ChunkRecord = tsdbstore.ChunkRecord
	// DeviceRef is tsdbstore.DeviceRef.
	DeviceRef = tsdbstore.DeviceRef
	// DeviceBlob is tsdbstore.DeviceBlob.
	DeviceBlob = tsdbstore.DeviceBlob
	// LatestMerge is tsdbstore.LatestMerge.
	LatestMerge = tsdbstore.LatestMerge
	// Sample is tsdbstore.Sample.
	Sample = tsdbstore.Sample
	// Latest is tsdbstore.Latest.
	Latest = tsdbstore.Latest
)

// RejectedPrefixBytes is how much of a rejected payload is kept.
const RejectedPrefixBytes = tsdbstore.RejectedPrefixBytes

// Sizes that mark a rejected message not in the current form (see
// tsdbstore.RejectedOld).
const (
	// RejectedOld is tsdbstore.RejectedOld.
	RejectedOld = tsdbstore.RejectedOld
	// RejectedUnreadable is tsdbstore.RejectedUnreadable.
	RejectedUnreadable = tsdbstore.RejectedUnreadable
)

// Store is Warden's persistent state. Every method is safe for concurrent use.
// Methods that address a device take its tenant: a device of another tenant
// is reported as ErrNotFound.
type Store interface {
	HubStore
	ProvisioningStore
	AuditStore
	IdentityStore
	AlarmStore
	SignInStore
	FactoryStore

	// Migrate brings the schema up to date and creates the root tenant.
	Migrate(ctx context.Context) error
	// SetSealer gives the store the keyring it seals machine data with
	// (see seal.go). Until it is set, writing machine data fails with
	// ErrNoSealer. Call it once, before use.
	SetSealer(s Sealer)
	// SealPlaintext seals the rows written before sealing existed (their
	// sealed column is NULL) and empties their plaintext columns, each row
	// in one statement, so that it can be interrupted and run again. It
	// returns how many rows it sealed; if any, it notes that the database
	// must be compacted (CompactSealed).
	SealPlaintext(ctx context.Context) (int64, error)
	// CompactSealed, if SealPlaintext or SaveMonitorState replaced
	// plaintext since the last compaction, rewrites the database so that no
	// copy of the replaced plaintext remains in free pages, the journal or
	// dead tuples (SQLite: VACUUM and a WAL checkpoint; PostgreSQL: VACUUM
	// FULL of the tables concerned). It does nothing otherwise.
	CompactSealed(ctx context.Context) error
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
	// DeleteDevice removes the device with its telemetry (head, chunks,
	// latest values), dedup records and rejected messages.
	DeleteDevice(ctx context.Context, tenantID, id string) error
	// TouchDevices records when and from where devices were last seen, in
	// one transaction; ids of devices that no longer exist are skipped.
	TouchDevices(ctx context.Context, seen []DeviceSeen) error

	CreateAPIToken(ctx context.Context, t APIToken) error
	// APITokenByHash finds a token by the SHA-256 of its secret.
	APITokenByHash(ctx context.Context, hash []byte) (APIToken, error)

	// The telemetry engine's records (heads, chunks, latest values,
	// rejected messages) and message ids.
	tsdbstore.Store

	// CreateTenant adds a tenant below t.ParentID (which must exist) and
	// sets its Path.
	CreateTenant(ctx context.Context, t Tenant) error
	GetTenant(ctx context.Context, id string) (Tenant, error)
	ListTenants(ctx context.Context) ([]Tenant, error)
	SetTenantRetention(ctx context.Context, id string, days int) error
	// DeleteTenant removes a tenant (not the root) with its devices,
	// telemetry, tokens and keys.
	DeleteTenant(ctx context.Context, id string) error

	// CreateTenantKey stores a new data key for a tenant: it reserves an
	// id, calls wrap with it, and stores the result.
	CreateTenantKey(ctx context.Context, tenantID string, at time.Time, wrap func(id uint32) ([]byte, error)) (TenantKey, error)
	// ActiveTenantKey returns the tenant's newest data key.
	ActiveTenantKey(ctx context.Context, tenantID string) (TenantKey, error)
	TenantKey(ctx context.Context, id uint32) (TenantKey, error)
	// DeleteTenantKeys destroys every data key of a tenant, and leaves no
	// copy of it, nor of keys deleted before (by DeleteTenant), in the
	// database files (ErrNotPurged if it could not make sure of that).
	DeleteTenantKeys(ctx context.Context, tenantID string) error
}
