// Package database is what the SQLite and the PostgreSQL store have in
// common: the schema (one list of migrations holding both dialects side by
// side), the dialect differences (placeholders, error codes), and a thin
// layer over database/sql for statements, transactions and scanning, so that
// a statement both engines accept is written once.
package database

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Errors every store returns (wrapped) so callers can branch on them.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("already exists")
	// ErrNotPurged: a deletion committed, but copies of what it deleted may
	// remain in the database files until a later purge (the next deletion
	// of a device or of keys) succeeds.
	ErrNotPurged = errors.New("deleted, but not yet purged from the database files")
)

// Dialect is the SQL dialect of an engine.
type Dialect int

// The dialects of the engines.
const (
	SQLite Dialect = iota + 1
	Postgres
)

func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgres"
	}
	return "dialect(" + strconv.Itoa(int(d)) + ")"
}

// Rebind turns the ? placeholders of query into the dialect's: $1, $2, … in
// PostgreSQL; SQLite takes ? as written. A ? inside a quoted string, a
// quoted identifier or a comment is left alone.
func (d Dialect) Rebind(query string) string {
	if d != Postgres || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'' || c == '"':
			j := strings.IndexByte(query[i+1:], c)
			if j < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+j+2])
			i += j + 1
		case c == '-' && i+1 < len(query) && query[i+1] == '-':
			j := strings.IndexByte(query[i:], '\n')
			if j < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+j+1])
			i += j
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Param is a ? placeholder whose value has SQL type typ: PostgreSQL must
// be told the type of a parameter it cannot infer (as in "? IS NULL" or
// COALESCE(?, col)); SQLite needs no type.
func (d Dialect) Param(typ string) string {
	if d == Postgres {
		return "?::" + typ
	}
	return "?"
}

// Limit is the argument of LIMIT ? for a limit n: a negative n means no
// limit (SQLite takes a negative LIMIT so, PostgreSQL takes NULL).
func (d Dialect) Limit(n int) any {
	if n < 0 && d == Postgres {
		return nil
	}
	return int64(n)
}

// The PostgreSQL error codes the store maps.
const (
	pgUniqueViolation     = "23505"
	pgForeignKeyViolation = "23503"
)

// IsUniqueViolation reports whether err is a unique or primary key
// constraint failing.
func (d Dialect) IsUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	if d == Postgres {
		var pgErr *pgconn.PgError
		return errors.As(err, &pgErr) && pgErr.Code == pgUniqueViolation
	}
	return strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// IsForeignKeyViolation reports whether err is a foreign key constraint
// failing.
func (d Dialect) IsForeignKeyViolation(err error) bool {
	if err == nil {
		return false
	}
	if d == Postgres {
		var pgErr *pgconn.PgError
		return errors.As(err, &pgErr) && pgErr.Code == pgForeignKeyViolation
	}
	return strings.Contains(err.Error(), "FOREIGN KEY constraint failed")
}

// Migration is one step of the schema, in both dialects.
type Migration struct {
	Name     string // unique, never changes
	SQLite   string
	Postgres string
}

// SQL returns the migration's statements in dialect d.
func (m Migration) SQL(d Dialect) string {
	if d == Postgres {
		return m.Postgres
	}
	return m.SQLite
}

// Migrations returns the schema's migrations in order: the migration at
// index i brings a database to schema version i+1.
func Migrations() []Migration { return slices.Clone(migrations) }

// MigrationVersion returns the schema version the named migration brings a
// database to.
func MigrationVersion(name string) (int, error) {
	i := slices.IndexFunc(migrations, func(m Migration) bool { return m.Name == name })
	if i < 0 {
		return 0, fmt.Errorf("no migration %q", name)
	}
	return i + 1, nil
}
