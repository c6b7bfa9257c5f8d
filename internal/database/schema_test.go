package database_test

import (
	"database/sql"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/warden-iot/warden/internal/store/postgres"
	"github.com/warden-iot/warden/internal/store/postgres/pgtest"
	"github.com/warden-iot/warden/internal/store/sqlite"
)

// schema is what both dialects must agree on: per table, its columns with
// their loose type, and the named (CREATE INDEX) indexes with their table.
type schema struct {
	columns map[string]map[string]string // table → column → type class
	indexes map[string]string            // index → table
}

// typeClass maps a declared column type to what the store relies on.
// BOOLEAN is an integer: SQLite stores booleans as 0 and 1.
func typeClass(typ string) string {
	t := strings.ToLower(typ)
	switch {
	case t == "integer" || t == "bigint" || t == "smallint" || t == "int" || t == "boolean":
		return "integer"
	case t == "text" || strings.HasPrefix(t, "character varying") || strings.HasPrefix(t, "varchar"):
		return "text"
	case t == "blob" || t == "bytea":
		return "blob"
	case t == "real" || t == "double precision":
		return "real"
	}
	return "unknown type " + typ
}

// TestSchemasAgree migrates a fresh SQLite and a fresh PostgreSQL database
// and compares their tables, columns (types mapped loosely) and indexes.
// PostgreSQL's schema_migrations is its way of recording the schema
// version (SQLite has user_version) and is left out.
func TestSchemasAgree(t *testing.T) {
	lite := sqliteSchema(t)
	pg := postgresSchema(t, pgtest.URL(t))
	delete(pg.columns, "schema_migrations")

	for _, table := range union(lite.columns, pg.columns) {
		lc, inLite := lite.columns[table]
		pc, inPg := pg.columns[table]
		switch {
		case !inLite:
			t.Errorf("table %s is only in PostgreSQL", table)
			continue
		case !inPg:
			t.Errorf("table %s is only in SQLite", table)
			continue
		}
		for _, col := range union(lc, pc) {
			l, inLite := lc[col]
			p, inPg := pc[col]
			switch {
			case !inLite:
				t.Errorf("column %s.%s is only in PostgreSQL", table, col)
			case !inPg:
				t.Errorf("column %s.%s is only in SQLite", table, col)
			case l != p:
				t.Errorf("column %s.%s: SQLite %s, PostgreSQL %s", table, col, l, p)
			}
		}
	}
	for idx, table := range sameConstraint {
		if pg.indexes[idx] != table {
			t.Errorf("index %s on %s is no longer in PostgreSQL: drop it from sameConstraint", idx, table)
		}
		delete(pg.indexes, idx)
	}
	for _, idx := range union(lite.indexes, pg.indexes) {
		l, inLite := lite.indexes[idx]
		p, inPg := pg.indexes[idx]
		switch {
		case !inLite:
			t.Errorf("index %s (on %s) is only in PostgreSQL", idx, p)
		case !inPg:
			t.Errorf("index %s (on %s) is only in SQLite", idx, l)
		case l != p:
			t.Errorf("index %s: on %s in SQLite, on %s in PostgreSQL", idx, l, p)
		}
	}
	if len(lite.columns) < 10 || len(lite.indexes) < 5 {
		t.Fatalf("SQLite schema: %d tables, %d indexes: too few to be the store's", len(lite.columns), len(lite.indexes))
	}
}

// sameConstraint names the PostgreSQL indexes that stand for a constraint
// SQLite declares on the column instead: both enforce the same rule.
var sameConstraint = map[string]string{
	// SQLite: id_scope TEXT NOT NULL UNIQUE COLLATE NOCASE.
	"id_scopes_scope": "id_scopes",
}

func union[V any](a, b map[string]V) []string {
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func sqliteSchema(t *testing.T) schema {
	t.Helper()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "warden.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := schema{columns: map[string]map[string]string{}, indexes: map[string]string{}}
	rows, err := db.QueryContext(ctx, `SELECT m.name, c.name, c.type FROM sqlite_master m, pragma_table_info(m.name) c
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\_%' ESCAPE '\'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var table, col, typ string
		if err := rows.Scan(&table, &col, &typ); err != nil {
			t.Fatal(err)
		}
		add(out.columns, table, col, typeClass(typ))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// Indexes made by CREATE INDEX (those of PRIMARY KEY and UNIQUE
	// constraints have no SQL).
	rows, err = db.QueryContext(ctx, `SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var idx, table string
		if err := rows.Scan(&idx, &table); err != nil {
			t.Fatal(err)
		}
		out.indexes[idx] = table
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func postgresSchema(t *testing.T, url string) schema {
	t.Helper()
	ctx := t.Context()
	s, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	out := schema{columns: map[string]map[string]string{}, indexes: map[string]string{}}
	rows, err := conn.Query(ctx, `SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c
		JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
		WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var table, col, typ string
		if err := rows.Scan(&table, &col, &typ); err != nil {
			t.Fatal(err)
		}
		add(out.columns, table, col, typeClass(typ))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// Indexes made by CREATE INDEX, not those behind PRIMARY KEY and
	// UNIQUE constraints.
	rows, err = conn.Query(ctx, `SELECT i.indexname, i.tablename FROM pg_indexes i
		WHERE i.schemaname = current_schema()
		AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname AND c.connamespace = i.schemaname::regnamespace)`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var idx, table string
		if err := rows.Scan(&idx, &table); err != nil {
			t.Fatal(err)
		}
		out.indexes[idx] = table
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func add(m map[string]map[string]string, table, col, class string) {
	if m[table] == nil {
		m[table] = map[string]string{}
	}
	if _, dup := m[table][col]; dup {
		panic(fmt.Sprintf("column %s.%s twice", table, col))
	}
	m[table][col] = class
}
