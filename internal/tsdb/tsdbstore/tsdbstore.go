// Package tsdbstore is the storage contract of the telemetry engine
// (package tsdb): the records it keeps — per-device heads of sealed
// messages, compressed chunks, latest values, rejected messages — and the
// Store interface that holds them. Its implementations are tsdbsqlite and
// tsdbpg (on the statements both accept, in tsdbsql); tsdbtest is the suite
// both pass.
//
// It is a package of its own, below tsdb, because package store re-exports
// its types (aliases) while tsdb, through package keyring, imports store.
package tsdbstore

import (
	"context"
	"time"
)

// Store keeps the telemetry engine's records. Every method is safe for
// concurrent use. Methods that address a device take its tenant: a device
// of another tenant is reported as database.ErrNotFound.
type Store interface {
	// WriteHead commits a batch atomically and durably: each record whose
	// message id was not seen before from that device (or that has none)
	// joins the device's head with its id remembered; a repeated id adds
	// nothing. For each device with accepted records, merge gives its new
	// latest blob. A record whose KeyID no longer exists is not stored, nor
	// its message id (KeyGone): its tenant's keys were destroyed since it
	// was sealed. Results are in batch order.
	// With them, mark (unless its LogID is empty) records how far the
	// commit log they came from is applied (see LogApplied).
	WriteHead(ctx context.Context, recs []HeadRecord, merge LatestMerge, mark LogMark) ([]WriteResult, error)
	// LogApplied is the Next of the last LogMark written for the commit
	// log logID: the offset of its first record not written yet (0 if
	// none was).
	LogApplied(ctx context.Context, logID string) (uint64, error)
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
	// there first) nothing changes and the error wraps database.ErrConflict.
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

	// AddRejected keeps a message that could not be accepted; a device
	// keeps its newest thousand.
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
	// the database must be compacted (store.Store.CompactSealed). It
	// returns how many it replaced.
	UpgradeRejected(ctx context.Context, rs []Rejected) (int64, error)
}

// LogMark is how far a commit log is applied: Next is the offset of its
// first record not written yet. A log is named by LogID, made with it, so
// that a new log does not take the marks of another.
type LogMark struct {
	LogID string
	Next  uint64
}

// LogMarkKey is the meta key that holds a commit log's mark.
func LogMarkKey(logID string) string { return "commit_log_applied:" + logID }

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
