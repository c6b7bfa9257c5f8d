package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warden-iot/warden/internal/store"
)

// auditLock is the pg_advisory_xact_lock key that serialises audit appends
// across nodes ("audit" in ASCII). One key, taken once per append, so the
// lock table does not grow.
const auditLock int64 = 0x6175646974

// auditColumns: owner_tenant_id came later (migrationIdentity).
const auditColumns = `seq, at, tenant_id, actor_id, actor_name, action, target, outcome, status,
	ip, user_agent, browser, browser_version, os, prev_hash, hash, owner_tenant_id`

// AppendAudit appends an entry under the audit advisory lock, reading the
// last hash inside the locked transaction so the chain stays linear.
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEntry, seal func(*store.AuditEntry) error) (store.AuditEntry, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return e, fmt.Errorf("append audit: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, auditLock); err != nil {
		return e, fmt.Errorf("append audit: lock: %w", err)
	}
	var last int64
	var prev []byte
	err = tx.QueryRow(ctx, `SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&last, &prev)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return e, fmt.Errorf("append audit: last entry: %w", err)
	}
	e.Seq, e.PrevHash, e.At = last+1, prev, e.At.Truncate(time.Millisecond)
	if e.PrevHash == nil {
		e.PrevHash = []byte{}
	}
	if err := seal(&e); err != nil {
		return e, fmt.Errorf("append audit: seal: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO audit_log (`+auditColumns+`) VALUES
		($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		e.Seq, e.At.UnixMilli(), e.TenantID, e.ActorID, e.ActorName, e.Action, e.Target, e.Outcome, e.Status,
		e.IP, e.UserAgent, e.Browser, e.BrowserVersion, e.OS, e.PrevHash, e.Hash, e.OwnerTenantID); err != nil {
		return e, fmt.Errorf("append audit: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return e, fmt.Errorf("append audit: commit: %w", err)
	}
	return e, nil
}

// ListAudit returns entries matching f in sequence order.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error) {
	args := []any{f.After}
	where := []string{"seq > $1"}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.Replace(cond, "?", "$"+strconv.Itoa(len(args)), 1))
	}
	if !f.Since.IsZero() {
		add("at >= ?", f.Since.UnixMilli())
	}
	for _, c := range []struct{ col, v string }{{"tenant_id", f.TenantID}, {"action", f.Action}, {"target", f.Target}} {
		if c.v != "" {
			add(c.col+" = ?", c.v)
		}
	}
	if f.OwnerTenantIDs != nil {
		if len(f.OwnerTenantIDs) == 0 {
			return nil, nil // an empty, non-nil list matches nothing
		}
		add("owner_tenant_id = ANY(?::text[])", f.OwnerTenantIDs)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	args = append(args, limit)
	rows, err := s.pool.Query(ctx, `SELECT `+auditColumns+` FROM audit_log WHERE `+strings.Join(where, " AND ")+
		` ORDER BY seq LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	defer rows.Close()
	var out []store.AuditEntry
	for rows.Next() {
		var e store.AuditEntry
		var at int64
		var status int32
		if err := rows.Scan(&e.Seq, &at, &e.TenantID, &e.ActorID, &e.ActorName, &e.Action, &e.Target, &e.Outcome, &status,
			&e.IP, &e.UserAgent, &e.Browser, &e.BrowserVersion, &e.OS, &e.PrevHash, &e.Hash, &e.OwnerTenantID); err != nil {
			return nil, fmt.Errorf("list audit: %w", err)
		}
		e.Status = int(status)
		e.At = time.UnixMilli(at).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	return out, nil
}
