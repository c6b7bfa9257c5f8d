package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/warden-iot/warden/internal/store"
)

// auditColumns: owner_tenant_id came later (migrationIdentity).
const auditColumns = `seq, at, tenant_id, actor_id, actor_name, action, target, outcome, status,
	ip, user_agent, browser, browser_version, os, prev_hash, hash, owner_tenant_id`

// AppendAudit appends an entry through the single writer connection, so
// appends are serialised and the last hash is read inside the transaction.
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEntry, seal func(*store.AuditEntry) error) (store.AuditEntry, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return e, fmt.Errorf("append audit: %w", err)
	}
	defer tx.Rollback()
	var last int64
	var prev []byte
	err = tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&last, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("append audit: last entry: %w", err)
	}
	e.Seq, e.PrevHash, e.At = last+1, prev, e.At.Truncate(time.Millisecond)
	if e.PrevHash == nil {
		e.PrevHash = []byte{}
	}
	if err := seal(&e); err != nil {
		return e, fmt.Errorf("append audit: seal: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_log (`+auditColumns+`) VALUES (`+placeholders(17)+`)`,
		e.Seq, e.At.UnixMilli(), e.TenantID, e.ActorID, e.ActorName, e.Action, e.Target, e.Outcome, e.Status,
		e.IP, e.UserAgent, e.Browser, e.BrowserVersion, e.OS, e.PrevHash, e.Hash, e.OwnerTenantID); err != nil {
		return e, fmt.Errorf("append audit: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return e, fmt.Errorf("append audit: commit: %w", err)
	}
	return e, nil
}

// ListAudit returns entries matching f in sequence order.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error) {
	where := []string{"seq > ?"}
	args := []any{f.After}
	if !f.Since.IsZero() {
		where, args = append(where, "at >= ?"), append(args, f.Since.UnixMilli())
	}
	for _, c := range []struct{ col, v string }{{"tenant_id", f.TenantID}, {"action", f.Action}, {"target", f.Target}} {
		if c.v != "" {
			where, args = append(where, c.col+" = ?"), append(args, c.v)
		}
	}
	if f.OwnerTenantIDs != nil {
		if len(f.OwnerTenantIDs) == 0 {
			return nil, nil // an empty, non-nil list matches nothing
		}
		var owners filter
		owners.in("owner_tenant_id", f.OwnerTenantIDs)
		where, args = append(where, owners.conds...), append(args, owners.args...)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit_log WHERE `+strings.Join(where, " AND ")+
		` ORDER BY seq LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	defer rows.Close()
	var out []store.AuditEntry
	for rows.Next() {
		var e store.AuditEntry
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
