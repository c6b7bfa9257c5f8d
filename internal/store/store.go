// Package store defines Warden's persistent state: tenants, devices, API
// tokens, telemetry points, message-id deduplication and rejected messages.
//
// The Store interface has two implementations, store/sqlite (the embedded
// default) and store/postgres (for several nodes). Both pass the same
// behavioural suite in store/storetest.
package store

import (
	"context"

	"github.com/warden-iot/warden/internal/access"
	"github.com/warden-iot/warden/internal/factory"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/telemetry"
	"github.com/warden-iot/warden/internal/tenancy"
	"github.com/warden-iot/warden/internal/tsdb/tsdbstore"
)

// Errors every implementation returns (wrapped) so callers can branch on
// them; they are package database's, so errors.Is matches either name.
var (
	ErrNotFound  = database.ErrNotFound
	ErrConflict  = database.ErrConflict
	ErrNotPurged = database.ErrNotPurged
)

// RootTenantID is the operator's tenant (package tenancy).
const RootTenantID = tenancy.RootTenantID

// Tenant is a node of the tenant hierarchy (package tenancy).
type Tenant = tenancy.Tenant

// TenantKey is keyring.TenantKey: a tenant's data key, wrapped by the
// master key.
type TenantKey = keyring.TenantKey

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

// Token scopes (identity's).
const (
	ScopeRead  = identity.ScopeRead
	ScopeWrite = identity.ScopeWrite
)

// APIToken is identity.APIToken.
type APIToken = identity.APIToken

// Point is telemetry.Point, under its old name.
type Point = telemetry.Point

// Message is telemetry.Message, under its old name.
type Message = telemetry.Message

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
	registry.Store // devices
	HubStore
	ProvisioningStore
	keyring.Store // the tenants' data keys
	AuditStore
	access.GrantStore // the supporters' grants
	AlarmStore
	factory.Store // credentials staff made for customers' devices
	identity.UserStore
	identity.SignInStore
	identity.TokenStore
	tenancy.Store // tenants, sites and retired ids

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

	// The telemetry engine's records (heads, chunks, latest values,
	// rejected messages) and message ids.
	tsdbstore.Store
}
