package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/audit"
	"github.com/warden-iot/warden/internal/store/postgres"
	"github.com/warden-iot/warden/internal/store/sqlite"
)

const auditUsage = `audit <subcommand> [flags]

Subcommands:
  verify [--data-dir warden-data | --database postgres://…] [--anchor SEQ:HASH]
                        open the database directly (offline) and check the
                        hash chain; exits 1 and names the first broken entry
                        if one was edited or deleted
  list [--since 24h|TIME] [--tenant ID] [--action NAME] [--target ID] [--limit 100]
                        list audit entries through the API (operator admins:
                        the whole trail)
  list --access-log [--outside] [--tenant ID] …
                        an owner's view: entries that touched the tenant's
                        machines, sites, grants and accounts; --outside
                        keeps supporters' and operator staff's (customer
                        admins)`

// errAuditBroken is returned when verify finds a broken chain.
var errAuditBroken = errors.New("the audit log has been tampered with")

func runAudit(ctx context.Context, env *Env, args []string) error {
	in, args, err := begin(env, "audit", auditUsage, args)
	if err != nil {
		return err
	}
	fs := in.fs
	dataDir := fs.String("data-dir", "warden-data", "directory holding warden.db (SQLite) (verify)")
	database := fs.String("database", "", "database instead of the data dir: sqlite:<path> or postgres://user@host/db (verify)")
	var anchorFlags listFlag
	fs.Var(&anchorFlags, "anchor", "SEQ:HASH printed by an earlier verify and kept outside the database; fails if that entry is gone or differs (verify; repeatable)")
	since := fs.String("since", "", "only entries at or after this time (RFC 3339 or date) or this long ago, e.g. 24h or 7d (list)")
	tenant := fs.String("tenant", "", "only entries of this tenant (list)")
	action := fs.String("action", "", "only this action, e.g. device.create (list)")
	target := fs.String("target", "", "only entries about this target, e.g. a device id (list)")
	limit := fs.Int("limit", 100, "at most this many entries (list)")
	accessLog := fs.Bool("access-log", false, "the owner's view of --tenant (default yours): who touched its machines, sites, grants and accounts (list)")
	outside := fs.Bool("outside", false, "with --access-log: only actors from outside the tenant (supporters, operator staff) (list)")
	err = in.parse(args, map[string]arity{"verify": {access: local}, "list": {}})
	if err != nil {
		return err
	}
	if in.sub == "verify" {
		return auditVerify(ctx, in, *dataDir, *database, anchorFlags)
	}
	path := "/api/v1/audit"
	if *accessLog {
		path = "/api/v1/access-log"
	} else if *outside {
		return in.usageError("--outside goes with --access-log")
	}
	if *limit < 1 {
		return in.usageError("--limit must be positive")
	}
	q := url.Values{}
	if *since != "" {
		t, err := timeOrAgo(*since, time.Now())
		if err != nil {
			return in.usageError("--since %q: %v", *since, err)
		}
		q.Set("since", t.UTC().Format(time.RFC3339))
	}
	for k, v := range map[string]string{"tenant": *tenant, "action": *action, "target": *target} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if *outside {
		q.Set("outside", "true")
	}
	c, err := in.client()
	if err != nil {
		return err
	}
	entries := []apiv1.AuditEntry{}
	for len(entries) < *limit {
		q.Set("limit", strconv.Itoa(min(1000, *limit-len(entries))))
		var page apiv1.AuditPage
		if err := c.Do(ctx, "GET", path, q, nil, &page); err != nil {
			return fmt.Errorf("list audit entries: %w", err)
		}
		entries = append(entries, page.Entries...)
		if page.Next == 0 {
			break
		}
		q.Set("after", strconv.FormatInt(page.Next, 10))
	}
	return printList(in, entries, "no audit entries", []string{"SEQ", "TIME", "TENANT", "ACTOR", "ACTION", "TARGET", "OUTCOME", "IP", "BROWSER", "OS"},
		func(e apiv1.AuditEntry) []any {
			browser := strings.TrimSpace(e.Browser + " " + e.BrowserVersion)
			return []any{e.Seq, localTime(e.At), dash(e.TenantID), dash(e.ActorID), e.Action, dash(e.Target),
				fmt.Sprintf("%s %d", e.Outcome, e.Status), dash(e.IP), dash(browser), dash(e.OS)}
		})
}

func auditVerify(ctx context.Context, in *invocation, dataDir, database string, anchorFlags listFlag) error {
	var anchors []audit.Anchor
	for _, s := range anchorFlags {
		a, err := audit.ParseAnchor(s)
		if err != nil {
			return in.usageError("--anchor: %v", err)
		}
		anchors = append(anchors, a)
	}
	st, err := openStoreForAudit(ctx, dataDir, database)
	if err != nil {
		return err
	}
	defer st.Close()
	res, err := audit.Verify(ctx, st, anchors...)
	if err != nil {
		return err
	}
	if in.json {
		out := map[string]any{"ok": res.OK(), "entries": res.Entries, "lastSeq": res.LastSeq,
			"anchor": fmt.Sprintf("%d:%x", res.LastSeq, res.LastHash)}
		if !res.OK() {
			out["brokenSeq"], out["reason"] = res.BrokenSeq, res.Reason
		}
		if err := printJSON(in.env, out); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(in.env.Stdout, res.String())
	}
	if !res.OK() {
		return fmt.Errorf("%w: entry %d: %s", errAuditBroken, res.BrokenSeq, res.Reason)
	}
	return nil
}

// auditStore is what verify needs: reading the chain.
type auditStore interface {
	audit.Store
	Close() error
}

// openStoreForAudit opens an existing database without migrating it.
func openStoreForAudit(ctx context.Context, dataDir, database string) (auditStore, error) {
	switch {
	case strings.HasPrefix(database, "postgres://"), strings.HasPrefix(database, "postgresql://"):
		return postgres.Open(ctx, database)
	case database == "" || database == "sqlite" || strings.HasPrefix(database, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(database, "sqlite"), ":")
		if path == "" {
			path = filepath.Join(dataDir, "warden.db")
		}
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("open the database: %w", err)
		}
		return sqlite.Open(ctx, path)
	default:
		return nil, fmt.Errorf("%w: --database: want sqlite:<path> or a postgres:// URL", errUsage)
	}
}
