package database

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestReleasedMigrations holds every released migration to its released
// name, position and text in both dialects: a database migrated by an
// earlier warden records only how many migrations it applied, so changing
// or reordering one would leave such a database with another schema than a
// new one (or apply a step twice).
func TestReleasedMigrations(t *testing.T) {
	f, err := os.Open("testdata/released.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ms := Migrations()
	released := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 4 {
			t.Fatalf("released.txt: bad line %q", line)
		}
		version, err := strconv.Atoi(fields[0])
		if err != nil || version != released+1 {
			t.Fatalf("released.txt: line %q: want version %d", line, released+1)
		}
		released = version
		if version > len(ms) {
			t.Errorf("released migration %d (%s) is missing", version, fields[1])
			continue
		}
		m := ms[version-1]
		if m.Name != fields[1] {
			t.Errorf("migration %d is %q, released as %q", version, m.Name, fields[1])
		}
		if got := sum(m.SQLite); got != fields[2] {
			t.Errorf("migration %d (%s): the SQLite text changed since its release", version, m.Name)
		}
		if got := sum(m.Postgres); got != fields[3] {
			t.Errorf("migration %d (%s): the PostgreSQL text changed since its release", version, m.Name)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if released == 0 {
		t.Fatal("released.txt lists no migration")
	}
	names := map[string]bool{}
	for i, m := range ms {
		if m.Name == "" || m.SQLite == "" || m.Postgres == "" {
			t.Errorf("migration %d (%q) lacks a name or a dialect", i+1, m.Name)
		}
		if names[m.Name] {
			t.Errorf("migration name %q is used twice", m.Name)
		}
		names[m.Name] = true
	}
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestMigrationVersion(t *testing.T) {
	if v, err := MigrationVersion("base"); err != nil || v != 1 {
		t.Errorf(`MigrationVersion("base") = %d, %v; want 1`, v, err)
	}
	if _, err := MigrationVersion("no-such"); err == nil {
		t.Error("MigrationVersion of an unknown name: no error")
	}
}

func TestRebind(t *testing.T) {
	for _, c := range []struct{ in, sqlite, postgres string }{
		{`SELECT 1`, `SELECT 1`, `SELECT 1`},
		{`a = ? AND b IN (?, ?)`, `a = ? AND b IN (?, ?)`, `a = $1 AND b IN ($2, $3)`},
		{`x = '?' AND y = ?`, `x = '?' AND y = ?`, `x = '?' AND y = $1`},
		{`"we?rd" = ? -- what?` + "\n" + `AND z = ?`, `"we?rd" = ? -- what?` + "\n" + `AND z = ?`,
			`"we?rd" = $1 -- what?` + "\n" + `AND z = $2`},
		{`x = 'it''s?' OR y = ?`, `x = 'it''s?' OR y = ?`, `x = 'it''s?' OR y = $1`},
	} {
		if got := SQLite.Rebind(c.in); got != c.sqlite {
			t.Errorf("SQLite.Rebind(%q) = %q", c.in, got)
		}
		if got := Postgres.Rebind(c.in); got != c.postgres {
			t.Errorf("Postgres.Rebind(%q) = %q, want %q", c.in, got, c.postgres)
		}
	}
}
