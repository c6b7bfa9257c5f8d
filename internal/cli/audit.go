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
	"text/tabwriter"
	"time"

	"github.com/warden-iot/warden/internal/api"
	"github.com/warden-iot/warden/internal/audit"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/postgres"
	"github.com/warden-iot/warden/internal/store/sqlite"
)

const auditUsage = `audit <subcommand> [flags]

Subcommands:
  verify [--data-dir warden-data | --database postgres://…]
         open the database directly (offline) and check the hash chain;
         exits 1 and names the first broken entry if one was edited or deleted
  list [--since 2026-01-02T15:04:05Z] [--tenant id] [--action name] [--target id] [--limit 100]
         list audit entries through the API (operator admins: the whole trail)
  list --access-log [--outside] [--tenant id] …
         an owner's view: entries that touched the tenant's machines, sites,
         grants and accounts; --outside keeps supporters' and operator
         staff's (customer admins)`

func runAudit(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(env.Stderr, "Usage: warden "+auditUsage)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "verify":
		return auditVerify(ctx, env, args)
	case "list":
		return auditList(ctx, env, args)
	default:
		fmt.Fprintln(env.Stderr, "Usage: warden "+auditUsage)
		return fmt.Errorf("%w: unknown subcommand %q", errUsage, sub)
	}
}

// errAuditBroken is returned when verify finds a broken chain.
var errAuditBroken = errors.New("the audit log has been tampered with")

func auditVerify(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet("audit verify", auditUsage, env.Stderr)
	dataDir := fs.String("data-dir", "warden-data", "directory holding warden.db (SQLite)")
	database := fs.String("database", "", "database instead of the data dir: sqlite:<path> or postgres://user@host/db")
	var anchorFlags listFlag
	fs.Var(&anchorFlags, "anchor", "SEQ:HASH printed by an earlier verify and kept outside the database; fails if that entry is gone or differs (repeatable)")
	if err := parse(fs, args); err != nil {
		return err
	}
	var anchors []audit.Anchor
	for _, s := range anchorFlags {
		a, err := audit.ParseAnchor(s)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		anchors = append(anchors, a)
	}
	st, err := openStoreForAudit(ctx, *dataDir, *database)
	if err != nil {
		return err
	}
	defer st.Close()
	res, err := audit.Verify(ctx, st, anchors...)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, res.String())
	if !res.OK() {
		return fmt.Errorf("%w: entry %d: %s", errAuditBroken, res.BrokenSeq, res.Reason)
	}
	return nil
}

// auditStore is what verify needs: reading the chain.
type auditStore interface {
	store.AuditStore
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

func auditList(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet("audit list", auditUsage, env.Stderr)
	var cf clientFlags
	cf.register(fs)
	since := fs.String("since", "", "only entries at or after this time (RFC 3339) or this long ago (e.g. 24h)")
	tenant := fs.String("tenant", "", "only entries of this tenant")
	action := fs.String("action", "", "only this action, e.g. device.create")
	target := fs.String("target", "", "only entries about this target, e.g. a device id")
	limit := fs.Int("limit", 100, "at most this many entries")
	accessLog := fs.Bool("access-log", false, "the owner's view of --tenant (default yours): who touched its machines, sites, grants and accounts")
	outside := fs.Bool("outside", false, "with --access-log: only actors from outside the tenant (supporters, operator staff)")
	if err := parse(fs, args); err != nil {
		return err
	}
	path := "/api/v1/audit"
	if *accessLog {
		path = "/api/v1/access-log"
	} else if *outside {
		return usageError(env, "audit list", "--outside goes with --access-log")
	}
	q := url.Values{}
	if *since != "" {
		t, err := time.Parse(time.RFC3339, *since)
		if err != nil {
			d, derr := time.ParseDuration(*since)
			if derr != nil {
				return fmt.Errorf("%w: --since %q: want an RFC 3339 time or a duration", errUsage, *since)
			}
			t = time.Now().Add(-d)
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
	c, err := cf.client()
	if err != nil {
		return err
	}
	var entries []api.AuditEntry
	for len(entries) < *limit {
		q.Set("limit", strconv.Itoa(min(1000, *limit-len(entries))))
		var page api.AuditPage
		if err := c.Do(ctx, "GET", path, q, nil, &page); err != nil {
			return err
		}
		entries = append(entries, page.Entries...)
		if page.Next == 0 {
			break
		}
		q.Set("after", strconv.FormatInt(page.Next, 10))
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tTENANT\tACTOR\tACTION\tTARGET\tOUTCOME\tIP\tBROWSER\tOS")
	for _, e := range entries {
		browser := strings.TrimSpace(e.Browser + " " + e.BrowserVersion)
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s %d\t%s\t%s\t%s\n", e.Seq, e.At.Local().Format(time.DateTime),
			e.TenantID, e.ActorID, e.Action, e.Target, e.Outcome, e.Status, e.IP, browser, e.OS)
	}
	return tw.Flush()
}
