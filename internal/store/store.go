// Package store is where Warden's state is kept: its two engines,
// store/sqlite (the embedded default) and store/postgres (for several
// nodes), each running every domain's store on its database (how each class
// of machine data is sealed with its tenant's key is package sealing's).
//
// The domains own their storage: each domain package declares its narrow
// store interface and model types, and its <domain>sql package implements it
// once for both engines (the telemetry store, whose write path differs,
// once per engine). Store is what an engine provides as a whole: every
// domain store, plus what only an engine does (migrating, the sealing and
// compaction passes, server settings, closing). store/storetest is the
// suite of those engine-wide methods; store/enginetest gives a domain's
// suite a fresh database of each engine.
package store

import (
	"context"

	"github.com/warden-iot/warden/internal/access"
	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/audit"
	"github.com/warden-iot/warden/internal/factory"
	"github.com/warden-iot/warden/internal/hub"
	"github.com/warden-iot/warden/internal/notify/notifystore"
	"github.com/warden-iot/warden/internal/provision"

	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/tenancy"
	"github.com/warden-iot/warden/internal/tsdb/tsdbstore"
)

// Store is Warden's persistent state. Every method is safe for concurrent use.
// Methods that address a device take its tenant: a device of another tenant
// is reported as ErrNotFound.
type Store interface {
	registry.Store    // devices
	hub.Store         // twins, cloud-to-device messages, model ids, sessions
	provision.Store   // the device provisioning service's state
	keyring.Store     // the tenants' data keys
	audit.Store       // the audit trail
	access.GrantStore // the supporters' grants
	alarm.Store       // rules, alarms, maintenance plans, evaluator state
	notifystore.Store // notification settings, webhooks, the outbox
	factory.Store     // credentials staff made for customers' devices
	identity.UserStore
	identity.SignInStore
	identity.TokenStore
	tenancy.Store // tenants, sites and retired ids

	// Migrate brings the schema up to date and creates the root tenant.
	Migrate(ctx context.Context) error
	// SetSealer gives the store the keyring it seals machine data with
	// (package sealing). Until it is set, writing machine data fails with
	// ErrNoSealer. Call it once, before use.
	SetSealer(s keyring.Sealer)
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
