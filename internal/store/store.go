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
	"github.com/warden-iot/warden/internal/registry"
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

// Devices are package registry's; these names stay so that code written
// against package store compiles unchanged.

// DeviceStatus is registry.DeviceStatus.
type DeviceStatus = registry.DeviceStatus

// The statuses of a device (package registry's).
const (
	DeviceEnabled  = registry.DeviceEnabled
	DeviceDisabled = registry.DeviceDisabled
)

// Device is registry.Device.
type Device = registry.Device

// DeviceSeen is registry.DeviceSeen.
type DeviceSeen = registry.DeviceSeen

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

// WriteResult says what happened to each message of a batch, in order.
type WriteResult struct {
	Duplicate bool // an earlier message with the same id was already stored
	// KeyGone: the data key the record was sealed with was destroyed
	// before the commit; nothing of the record was stored, not even its
	// message id (WriteHead).
	KeyGone bool
	// Dropped: the message's tenant no longer exists; nothing was stored
	// (tsdb.Engine.Write).
	Dropped bool
	// Err: the message was not stored, though others of the batch were
	// (tsdb.Engine.Write: its tenant's keys were destroyed during each
	// attempt). Its device should send it again.
	Err error
}

// Stored reports whether the message was stored by this write (not a
// duplicate, not dropped, not failed).
func (r WriteResult) Stored() bool { return !r.Duplicate && !r.Dropped && r.Err == nil }

// Rejected is a message Warden could not accept, kept with the reason.
// Its payload is never kept whole: Payload holds at most the first
// RejectedPrefixBytes of it, Size its length and SHA256 its hash.
type Rejected struct {
	ID         int64
	TenantID   string
	DeviceID   string
	MessageID  string
	Topic      string
	Reason     string
	Payload    []byte
	Size       int64  // bytes received; RejectedOld (Payload is whole) or RejectedUnreadable, see below
	SHA256     []byte // of the whole payload
	ReceivedAt time.Time
	// Sealed is what the store keeps of Topic, Reason and SHA256:
	// encrypted with the tenant's key by the telemetry engine, which
	// passes them empty (entries kept before have them in clear).
	Sealed []byte
	// Unreadable: the telemetry engine's lists mark an entry whose
	// payload was dropped because it could not be opened (see
	// RejectedUnreadable).
	Unreadable bool
}

// RejectedPrefixBytes is how much of a rejected payload is kept.
const RejectedPrefixBytes = 1024

// Sizes that mark a rejected message not in the current form.
const (
	// RejectedOld: kept before sizes were recorded; Payload holds the
	// whole payload and Topic and Reason are in clear, until the telemetry
	// engine's upgrade rewrites the entry.
	RejectedOld = -1
	// RejectedUnreadable: an old entry the upgrade could not open (its
	// tenant's keys were destroyed, or it was corrupt): its payload, and
	// its topic and reason unless they could be sealed, were dropped.
	RejectedUnreadable = -2
)

// Truncated reports whether Payload is only the start of the payload.
func (r Rejected) Truncated() bool { return r.Size > int64(len(r.Payload)) }

// HeadRecord is one accepted message in a device's head, not yet sealed
// into chunks. Blob holds its points, encrypted; MinTS and MaxTS (Unix ms)
// bound their times.
type HeadRecord struct {
	ID         int64
	TenantID   string
	DeviceID   string
	MessageID  string
	ReceivedAt time.Time
	MinTS      int64
	MaxTS      int64
	Blob       []byte
	// KeyID is the tenant data key Blob (and the device's new latest blob)
	// is sealed with; WriteHead stores the record only if that key still
	// exists when it commits. 0: not checked.
	KeyID uint32
}

// ChunkRecord is a sealed, compressed, encrypted run of one series' points
// from StartTS to EndTS (Unix ms, inclusive).
type ChunkRecord struct {
	ID       int64
	TenantID string
	DeviceID string
	Metric   string
	StartTS  int64
	EndTS    int64
	Count    int
	Blob     []byte
}

// DeviceRef names a device and its tenant.
type DeviceRef struct {
	TenantID string
	DeviceID string
}

// DeviceBlob is a device with its (encrypted) latest values; Blob is nil if
// it has none.
type DeviceBlob struct {
	TenantID string
	DeviceID string
	Blob     []byte
}

// LatestMerge computes a device's new latest-values blob from the stored
// one (nil if none) and the accepted messages of a batch (indexes into the
// batch). It runs inside the write transaction, so it must only compute:
// it must not call the store, nor anything that may (a keyring does; use
// keys obtained before, keyring.TenantKeys). An error it returns rolls the
// transaction back and is returned by WriteHead.
type LatestMerge func(tenantID, deviceID string, old []byte, accepted []int) ([]byte, error)

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
	registry.Store
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

	CreateAPIToken(ctx context.Context, t APIToken) error
	// APITokenByHash finds a token by the SHA-256 of its secret.
	APITokenByHash(ctx context.Context, hash []byte) (APIToken, error)

	// WriteHead commits a batch atomically and durably: each record whose
	// message id was not seen before from that device (or that has none)
	// joins the device's head with its id remembered; a repeated id adds
	// nothing. For each device with accepted records, merge gives its new
	// latest blob. A record whose KeyID no longer exists is not stored, nor
	// its message id (KeyGone): its tenant's keys were destroyed since it
	// was sealed. Results are in batch order.
	WriteHead(ctx context.Context, recs []HeadRecord, merge LatestMerge) ([]WriteResult, error)
	// ForgetMessageIDs drops dedup records received before the cutoff.
	ForgetMessageIDs(ctx context.Context, before time.Time) (int64, error)
	// HeadRecords returns a device's head in arrival order.
	HeadRecords(ctx context.Context, deviceID string) ([]HeadRecord, error)
	// DevicesToSeal lists devices whose head holds at least minRows records
	// or a record received before the given time.
	DevicesToSeal(ctx context.Context, minRows int, receivedBefore time.Time, limit int) ([]DeviceRef, error)
	// ChunksForMerge returns a series' chunks overlapping [from, to] and
	// the last chunk ending before from, in time order.
	ChunksForMerge(ctx context.Context, deviceID, metric string, from, to int64) ([]ChunkRecord, error)
	// SealHead atomically deletes the given head records and chunks and
	// adds new chunks. If any of them was already gone (another sealer got
	// there first) nothing changes and the error wraps ErrConflict.
	SealHead(ctx context.Context, deviceID string, headIDs, removeChunks []int64, add []ChunkRecord) error
	// ReadSeries returns, from one consistent snapshot, the head records of
	// a device that may hold points of [from, to) and the chunks of one of
	// its series overlapping [from, to), in time order.
	ReadSeries(ctx context.Context, tenantID, deviceID, metric string, from, to int64) ([]HeadRecord, []ChunkRecord, error)
	// LatestBlob returns a device's latest-values blob (nil if none).
	LatestBlob(ctx context.Context, tenantID, deviceID string) ([]byte, error)
	// LatestBlobs returns up to limit devices of a tenant with id > after,
	// in id order, with their latest blobs.
	LatestBlobs(ctx context.Context, tenantID, after string, limit int) ([]DeviceBlob, error)
	// SetLatestBlob replaces a device's latest blob (nil deletes it).
	SetLatestBlob(ctx context.Context, deviceID string, blob []byte) error
	// DeleteTelemetryBefore deletes a tenant's chunks and head records
	// that lie wholly before cutoff (Unix ms), and its rejected messages
	// received before it; it returns the chunks and records deleted.
	DeleteTelemetryBefore(ctx context.Context, tenantID string, cutoff int64) (int64, error)
	// ChunksSpanning returns a tenant's chunks that start before cutoff and
	// end at or after it.
	ChunksSpanning(ctx context.Context, tenantID string, cutoff int64) ([]ChunkRecord, error)

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

	AddRejected(ctx context.Context, r Rejected) error
	// ListRejected returns a device's rejected messages, newest first.
	ListRejected(ctx context.Context, tenantID, deviceID string, limit int) ([]Rejected, error)
	// OldRejected returns up to limit rejected messages of every tenant
	// kept in the old form (Size RejectedOld) with an id above afterID, in
	// id order; it stops after the one that brings their payloads to
	// maxBytes (old payloads were kept whole, however large).
	OldRejected(ctx context.Context, afterID int64, limit int, maxBytes int64) ([]Rejected, error)
	// UpgradeRejected stores the new form of old rejected messages (by
	// ID: Payload, Size, Sealed; topic and reason are emptied), each only
	// if it is still in the old form, in one transaction that notes that
	// the database must be compacted (CompactSealed). It returns how many
	// it replaced.
	UpgradeRejected(ctx context.Context, rs []Rejected) (int64, error)
}
