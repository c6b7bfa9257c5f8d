package database

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"
)

// WaitForHorizon waits, in PostgreSQL, until no transaction that began
// before transaction xid (epoch and xid as text, from pg_current_xact_id())
// committed is still running anywhere on the server (the xmin of a new
// snapshot, VACUUM's own included, is the oldest running transaction of any
// database), and no session of this database (on any node) or replication
// slot still holds a snapshot older than that; VACUUM can then remove what
// xid deleted. Sessions of other roles are visible only to roles with
// pg_read_all_stats. It gives up with an error after limit. In SQLite,
// which has no such horizon, it returns at once.
func (db DB) WaitForHorizon(ctx context.Context, xid string, limit time.Duration) error {
	if db.Dialect != Postgres {
		return nil
	}
	deadline := time.Now().Add(limit)
	for {
		var older int
		err := db.Primary().QueryRow(ctx, `SELECT
			(SELECT count(*) WHERE pg_snapshot_xmin(pg_current_snapshot()) <= ?::text::xid8)
			+ (SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_xmin IS NOT NULL
				AND (datid IS NULL OR datname = current_database()) AND age(backend_xmin) >= age(?::text::xid))
			+ (SELECT count(*) FROM pg_replication_slots WHERE xmin IS NOT NULL AND age(xmin) >= age(?::text::xid))`,
			xid, xid32(xid), xid32(xid)).Scan(&older)
		if err != nil {
			return fmt.Errorf("look for older transactions: %w", err)
		}
		if older == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d transactions, sessions or replication slots older than the deletion stayed open for %v", older, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// xid32 turns a 64-bit transaction id (epoch and xid, as text) into the
// 32-bit xid that pg_stat_activity shows.
func xid32(xid8 string) string {
	n, err := strconv.ParseUint(xid8, 10, 64)
	if err != nil {
		return xid8 // the query then reports the malformed id
	}
	return strconv.FormatUint(n&math.MaxUint32, 10)
}
