package pgtest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
)

// RelationFiles returns the bytes of every relation (tables, indexes, TOAST
// tables, with their dead tuples and free space) of conn's database, after
// a CHECKPOINT has written every dirty page: read from the files under the
// data directory if the test may read them (as root or as the server's
// user), else page by page through the pageinspect extension. It needs a
// superuser, and fails t otherwise.
func RelationFiles(t testing.TB, conn *pgx.Conn) map[string][]byte {
	t.Helper()
	ctx := t.Context()
	if _, err := conn.Exec(ctx, `CHECKPOINT`); err != nil {
		t.Fatalf("pgtest: checkpoint (a superuser is needed): %v", err)
	}
	var dataDir, dbOID string
	if err := conn.QueryRow(ctx, `SELECT current_setting('data_directory'), oid::text FROM pg_database
		WHERE datname = current_database()`).Scan(&dataDir, &dbOID); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	dir := filepath.Join(dataDir, "base", dbOID)
	out := map[string][]byte{}
	entries, err := os.ReadDir(dir)
	if err == nil {
		for _, en := range entries {
			b, err := os.ReadFile(filepath.Join(dir, en.Name()))
			if err != nil {
				t.Fatalf("pgtest: %v", err)
			}
			out[filepath.Join(dir, en.Name())] = b
		}
		return out
	}
	t.Logf("pgtest: cannot read %s (%v): reading pages through pageinspect", dir, err)
	if _, err := conn.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pageinspect`); err != nil {
		t.Fatalf("pgtest: neither the data directory nor pageinspect is available: %v", err)
	}
	rows, err := conn.Query(ctx, `SELECT c.oid::regclass::text, pg_relation_size(c.oid) / current_setting('block_size')::int
		FROM pg_class c WHERE c.relkind IN ('r', 'i', 't', 'm') AND c.relpersistence = 'p'`)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	type rel struct {
		name   string
		blocks int64
	}
	rels, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rel, error) {
		var x rel
		return x, r.Scan(&x.name, &x.blocks)
	})
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	for _, r := range rels {
		var buf bytes.Buffer
		for blk := range r.blocks {
			var page []byte
			if err := conn.QueryRow(ctx, `SELECT get_raw_page($1, $2)`, r.name, blk).Scan(&page); err != nil {
				t.Fatalf("pgtest: page %d of %s: %v", blk, r.name, err)
			}
			buf.Write(page)
		}
		out[r.name] = buf.Bytes()
	}
	return out
}
