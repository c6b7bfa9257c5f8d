// Package msglog is the log of what the server accepted: every telemetry
// message after its group commit, and every connection change of a device.
// Consumers (the alarm and maintenance runtime) read it partition by
// partition, at their own pace, and commit the offset up to which they are
// done; the producer (the ingest committer) never waits for them beyond a
// bounded time.
//
// Records are partitioned by device: a device's records are always in the
// same partition, in the order they were appended. Log is the contract; Memory
// is the in-process implementation. A durable stream (NATS JetStream: one
// subject per partition, a durable consumer per reader) implements the same
// interface.
package msglog

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/warden-iot/warden/internal/telemetry"
)

// Record is one entry of the log: a committed telemetry message, or a
// connection change (Presence set).
type Record struct {
	// Offset is the record's place in its partition, set by the log.
	Offset   int64
	TenantID string
	DeviceID string
	// Message is the committed message (nil for a connection change).
	Message *telemetry.Message
	// Presence is the connection change (nil for a message).
	Presence *Presence
}

// Presence is a device's connection or disconnection.
type Presence struct {
	Connected bool
	At        time.Time
}

// Appender adds records; it is all a producer needs.
type Appender interface {
	// Append adds the records, each to its device's partition, in order.
	// While a partition is full it waits, up to a bound the log sets; the
	// records that still find no room are not appended, and Append returns
	// a *FullError (matching ErrFull) that says how many.
	Append(ctx context.Context, recs []Record) error
}

// Log is a partitioned, ordered log with consumer offsets.
type Log interface {
	Appender
	// Partitions is the number of partitions, fixed for the log's life.
	Partitions() int
	// PartitionOf is the partition of a device's records.
	PartitionOf(deviceID string) int
	// Read returns up to limit records of partition p from offset on, in
	// order; it blocks until there is at least one or ctx ends. A from
	// below the oldest record kept starts at the oldest record kept.
	Read(ctx context.Context, p int, from int64, limit int) ([]Record, error)
	// End is the offset the next record of partition p will get.
	End(p int) int64
	// Commit records that consumer is done with partition p's records
	// below offset: the log may let go of them.
	Commit(ctx context.Context, consumer string, p int, offset int64) error
	// Committed is consumer's committed offset of partition p (0 if none).
	Committed(ctx context.Context, consumer string, p int) (int64, error)
}

// ErrFull says that records were dropped because a partition stayed full
// past the bounded wait.
var ErrFull = errors.New("message log partition full")

// FullError is Append's error when it dropped records; it matches ErrFull.
type FullError struct {
	Dropped, Of int
}

func (e *FullError) Error() string {
	return fmt.Sprintf("%v: %d of %d records dropped", ErrFull, e.Dropped, e.Of)
}

// Is makes errors.Is(err, ErrFull) hold.
func (e *FullError) Is(target error) bool { return target == ErrFull }

// ErrClosed is returned by Read and Append after Close.
var ErrClosed = errors.New("message log closed")

// Partition is the partition of a device among n: an FNV-1a hash of the
// device id. Device ids are unique across tenants, and the tenant is left
// out on purpose: a device moved to another tenant stays in its partition,
// with its evaluation state.
func Partition(deviceID string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(deviceID))
	return int(h.Sum32() % uint32(n))
}
