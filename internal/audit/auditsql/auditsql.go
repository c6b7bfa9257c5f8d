// Package auditsql is audit.Store on Warden's database, one set of
// statements for SQLite and PostgreSQL.
package auditsql

import (
	"context"
	"fmt"
	"time"

	"github.com/warden-iot/warden/internal/audit"
	"github.com/warden-iot/warden/internal/database"
)

// Store is audit.Store on a database.
type Store struct {
	db database.DB
}

var _ audit.Store = (*Store)(nil)

// New returns a Store on db.
func New(db database.DB) *Store { return &Store{db: db} }

// auditColumns: owner_tenant_id came later (the identity migration).
const auditColumns = `seq, at, tenant_id, actor_id, actor_name, action, target, outcome, status,
	ip, user_agent, browser, browser_version, os, prev_hash, hash, owner_tenant_id`

// auditLock is the lock that serialises audit appends across nodes
// ("audit" in ASCII). One key, taken once per append, so PostgreSQL's lock
// table does not grow.
const auditLock int64 = 0x6175646974

// AppendAudit appends an entry under the audit lock, reading the last hash
// inside the transaction so the chain stays linear.
func (s *Store) AppendAudit(ctx context.Context, e audit.Entry, seal func(*audit.Entry) error) (audit.Entry, error) {
	err := s.db.InTx(ctx, func(tx database.Tx) error {
		if err := tx.Lock(ctx, auditLock); err != nil {
			return err
		}
		var last int64
		var prev []byte
		err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&last, &prev)
		if err != nil && !database.NoRows(err) {
			return fmt.Errorf("last entry: %w", err)
		}
		e.Seq, e.PrevHash, e.At = last+1, prev, e.At.Truncate(time.Millisecond)
		if e.PrevHash == nil {
			e.PrevHash = []byte{}
		}
		if err := seal(&e); err != nil {
			return fmt.Errorf("seal: %w", err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO audit_log (`+auditColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.Seq, e.At.UnixMilli(), e.TenantID, e.ActorID, e.ActorName, e.Action, e.Target, e.Outcome, e.Status,
			e.IP, e.UserAgent, e.Browser, e.BrowserVersion, e.OS, e.PrevHash, e.Hash, e.OwnerTenantID)
		return err
	})
	if err != nil {
		return e, fmt.Errorf("append audit: %w", err)
	}
	return e, nil
}

// ListAudit returns entries matching f in sequence order.
func (s *Store) ListAudit(ctx context.Context, f audit.Filter) ([]audit.Entry, error) {
	w := &database.Filter{Dialect: s.db.Dialect}
	w.Add("seq > ?", f.After)
	if !f.Since.IsZero() {
		w.Add("at >= ?", f.Since.UnixMilli())
	}
	for _, c := range []struct{ col, v string }{{"tenant_id", f.TenantID}, {"action", f.Action}, {"target", f.Target}} {
		if c.v != "" {
			w.Add(c.col+" = ?", c.v)
		}
	}
	w.In("owner_tenant_id", f.OwnerTenantIDs)
	w.Under("owner_tenant_id", f.OwnerUnder)
	if w.None {
		return nil, nil // an empty, non-nil list matches nothing
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.Query(ctx, `SELECT `+auditColumns+` FROM audit_log`+w.Where()+` ORDER BY seq LIMIT ?`,
		append(w.Args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	defer rows.Close()
	var out []audit.Entry
	for rows.Next() {
		var e audit.Entry
		var at int64
		if err := rows.Scan(&e.Seq, &at, &e.TenantID, &e.ActorID, &e.ActorName, &e.Action, &e.Target, &e.Outcome, &e.Status,
			&e.IP, &e.UserAgent, &e.Browser, &e.BrowserVersion, &e.OS, &e.PrevHash, &e.Hash, &e.OwnerTenantID); err != nil {
			return nil, fmt.Errorf("list audit: %w", err)
		}
		e.At = time.UnixMilli(at).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	return out, nil
}
