package database

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Querier runs statements written with ? placeholders, on a database or
// within a transaction.
type Querier interface {
	Exec(ctx context.Context, query string, args ...any) (sql.Result, error)
	Query(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) *sql.Row
}

// Scanner is a row to scan: *sql.Row or *sql.Rows.
type Scanner interface{ Scan(dest ...any) error }

// DB is a database of one dialect behind database/sql. Statements are
// written with ? placeholders and rebound to the dialect. W takes writes
// and transactions (SQLite has a single writer connection), R takes reads
// outside transactions (a pool of read-only connections in SQLite); in
// PostgreSQL both are the same pool.
type DB struct {
	Dialect Dialect
	W, R    *sql.DB
	// Purge, if set, makes sure that what committed deletions removed
	// leaves no copy in the database files (SQLite: a WAL checkpoint that
	// truncates the log, with secure_delete on). A store calls it after a
	// deletion that must not linger, and wraps ErrNotPurged around its
	// error.
	Purge func(ctx context.Context) error
}

// PurgeDeleted runs db.Purge if the engine set one; its error wraps
// ErrNotPurged.
func (db DB) PurgeDeleted(ctx context.Context) error {
	if db.Purge == nil {
		return nil
	}
	if err := db.Purge(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrNotPurged, err)
	}
	return nil
}

var _ Querier = DB{}

// Exec runs a statement on the writer.
func (db DB) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return db.W.ExecContext(ctx, db.Dialect.Rebind(query), args...)
}

// Query runs a query on the readers.
func (db DB) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return db.R.QueryContext(ctx, db.Dialect.Rebind(query), args...)
}

// QueryRow runs a query of at most one row on the readers.
func (db DB) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return db.R.QueryRowContext(ctx, db.Dialect.Rebind(query), args...)
}

// Primary is db with its reads on the writer too: a read that a write
// decides on sees every committed write (in SQLite, the readers may lag
// behind the writer).
func (db DB) Primary() DB { db.R = db.W; return db }

// Begin starts a transaction on the writer; the caller commits or rolls it
// back.
func (db DB) Begin(ctx context.Context) (Tx, error) {
	tx, err := db.W.BeginTx(ctx, nil)
	if err != nil {
		return Tx{}, fmt.Errorf("begin: %w", err)
	}
	return Tx{Dialect: db.Dialect, Tx: tx}, nil
}

// InTx runs f in a transaction on the writer and commits it if f returns
// nil; otherwise, or if f panics, it rolls the transaction back.
func (db DB) InTx(ctx context.Context, f func(Tx) error) error {
	tx, err := db.W.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	if err := f(Tx{Dialect: db.Dialect, Tx: tx}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Tx is a transaction of a DB.
type Tx struct {
	Dialect Dialect
	Tx      *sql.Tx
}

var _ Querier = Tx{}

// Exec runs a statement in the transaction.
func (tx Tx) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return tx.Tx.ExecContext(ctx, tx.Dialect.Rebind(query), args...)
}

// Query runs a query in the transaction.
func (tx Tx) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return tx.Tx.QueryContext(ctx, tx.Dialect.Rebind(query), args...)
}

// QueryRow runs a query of at most one row in the transaction.
func (tx Tx) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return tx.Tx.QueryRowContext(ctx, tx.Dialect.Rebind(query), args...)
}

// Lock takes a lock named by key until the transaction ends, so that
// transactions of several nodes taking it run one after the other: an
// advisory lock in PostgreSQL. SQLite needs none: its transactions on the
// single writer already run one after the other.
func (tx Tx) Lock(ctx context.Context, key int64) error {
	if tx.Dialect != Postgres {
		return nil
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(?)`, key); err != nil {
		return fmt.Errorf("lock %#x: %w", key, err)
	}
	return nil
}

// Prepare prepares a statement in the transaction.
func (tx Tx) Prepare(ctx context.Context, query string) (*sql.Stmt, error) {
	return tx.Tx.PrepareContext(ctx, tx.Dialect.Rebind(query))
}

// Commit commits the transaction.
func (tx Tx) Commit() error { return tx.Tx.Commit() }

// Rollback rolls the transaction back; after Commit it does nothing.
func (tx Tx) Rollback() error { return tx.Tx.Rollback() }

// Collect scans every row of a query with scan; the result is never nil.
// It closes rows.
func Collect[T any](rows *sql.Rows, err error, scan func(Scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// NoRows reports whether err says a query found no row.
func NoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// Affected returns how many rows an Exec changed, or its error.
func Affected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Millis is t in unix milliseconds, 0 for the zero time (Time's inverse):
// the store keeps times as integers in both dialects.
func Millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// Time is the time of unix milliseconds ms in UTC, the zero time for 0.
func Time(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// NullIfEmpty passes an empty string as NULL.
func NullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Filter builds a WHERE clause of conditions written with ? placeholders.
type Filter struct {
	Dialect Dialect
	conds   []string
	Args    []any
	None    bool // an empty, non-nil list was given to In: nothing can match
}

// Add adds a condition and its arguments.
func (f *Filter) Add(cond string, args ...any) {
	f.conds = append(f.conds, cond)
	f.Args = append(f.Args, args...)
}

// In restricts col to vals: nil does not filter, an empty list matches
// nothing. The list goes as one parameter (a JSON array in SQLite, a text
// array in PostgreSQL), so it may be long.
func (f *Filter) In(col string, vals []string) {
	switch {
	case vals == nil:
	case len(vals) == 0:
		f.None = true
	case f.Dialect == Postgres:
		f.Add(col+` = ANY(?::text[])`, vals)
	default:
		b, _ := json.Marshal(vals) // a []string always marshals
		f.Add(col+` IN (SELECT value FROM json_each(?))`, string(b))
	}
}

// Under restricts col, a tenant id column, to the tenant tenantID and the
// tenants below it, found by the tenants' stored paths in the query
// itself: the paths equal to the tenant's or starting with it and "/"
// (compared as a range, "0" following "/" in byte order, so that no id is
// read as a LIKE pattern and "acme" does not take in "acme2"). An empty
// tenantID does not filter; an unknown one matches nothing.
func (f *Filter) Under(col, tenantID string) {
	if tenantID == "" {
		return
	}
	f.Add(col+` IN (SELECT sub.id FROM tenants sub, tenants top WHERE top.id = ?
		AND (sub.path = top.path OR (sub.path > top.path || '/' AND sub.path < top.path || '0')))`, tenantID)
}

// Where is the clause, " WHERE …", or "" without conditions.
func (f *Filter) Where() string {
	if len(f.conds) == 0 {
		return ""
	}
	return ` WHERE ` + strings.Join(f.conds, " AND ")
}

// UpdateOne runs an UPDATE of one row on q, what id (e.g. "user", "u1")
// naming it in errors, and reports ErrNotFound if it matched none.
func UpdateOne(ctx context.Context, q Querier, what, id, query string, args ...any) error {
	return one(ctx, q, "update", what, id, query, args...)
}

// DeleteOne runs a DELETE of one row on q, what id (e.g. "user", "u1")
// naming it in errors, and reports ErrNotFound if it matched none.
func DeleteOne(ctx context.Context, q Querier, what, id, query string, args ...any) error {
	return one(ctx, q, "delete", what, id, query, args...)
}

// one runs a statement (verb: "update", "delete") meant to change one row
// and reports ErrNotFound if it changed none.
func one(ctx context.Context, q Querier, verb, what, id, query string, args ...any) error {
	n, err := Affected(q.Exec(ctx, query, args...))
	if err != nil {
		return fmt.Errorf("%s %s %q: %w", verb, what, id, err)
	}
	if n == 0 {
		return fmt.Errorf("%s %q: %w", what, id, ErrNotFound)
	}
	return nil
}

// ToJSON is v as a JSON TEXT column.
func ToJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// FromJSON reads a JSON TEXT column into v; "" leaves v as it is.
func FromJSON(s string, v any) error {
	if s == "" {
		return nil
	}
	return json.Unmarshal([]byte(s), v)
}
