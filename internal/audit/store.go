package audit

import (
	"context"
	"time"
)

// Entry is one record of the tamper-evident audit trail. Entries are
// numbered 1, 2, 3, … without gaps; Hash chains each entry to the one
// before it (see Canonical for the encoding).
type Entry struct {
	Seq      int64
	At       time.Time // millisecond precision
	TenantID string    // the actor's tenant; empty for an anonymous caller
	// ActorID and ActorName identify who acted: an API token's id and
	// name for now, a user later; "anonymous" for a failed sign-in.
	ActorID   string
	ActorName string
	Action    string // e.g. "device.create", or "POST /api/v1/…" if unnamed
	Target    string // e.g. a device id; may be empty
	// OwnerTenantID is the tenant whose data or settings the action
	// touched (a device's, site's or user's tenant); empty if none.
	OwnerTenantID  string
	Outcome        string // "success", "denied" or "failed"
	Status         int    // HTTP status
	IP             string
	UserAgent      string
	Browser        string // parsed from UserAgent: name and version
	BrowserVersion string
	OS             string
	PrevHash       []byte // Hash of entry Seq-1; empty for the first entry
	Hash           []byte
}

// Filter selects audit entries. Zero fields do not filter.
type Filter struct {
	After    int64     // only entries with Seq > After
	Since    time.Time // only entries at or after Since
	TenantID string
	// OwnerTenantIDs: only entries whose OwnerTenantID is one of these.
	OwnerTenantIDs []string
	// OwnerUnder: only entries whose OwnerTenantID is this tenant or one
	// below it.
	OwnerUnder string
	Action     string
	Target     string
	Limit      int // at most this many; 0 means 100
}

// Store keeps the tamper-evident audit trail. It is append-only: there is
// no way to change or remove an entry through it. Package auditsql
// implements it on both database engines.
type Store interface {
	// AppendAudit appends e as the next entry. Appends are serialised
	// (across nodes too), so the chain is linear: the store sets e.Seq
	// and e.PrevHash from the current last entry, then calls seal, which
	// must set e.Hash, and stores the entry in the same transaction.
	AppendAudit(ctx context.Context, e Entry, seal func(e *Entry) error) (Entry, error)
	// ListAudit returns entries matching f in Seq order.
	ListAudit(ctx context.Context, f Filter) ([]Entry, error)
}
