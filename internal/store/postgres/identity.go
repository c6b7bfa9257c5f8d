package postgres

import (
	"github.com/jackc/pgx/v5"

	"github.com/warden-iot/warden/internal/database"
)

// nullIfEmpty passes an empty string as NULL.
func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func isForeignKeyViolation(err error) bool { return database.Postgres.IsForeignKeyViolation(err) }

// collect scans every row with scan; the result is never nil.
func collect[T any](rows pgx.Rows, err error, scan func(pgx.Row) (T, error)) ([]T, error) {
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
	return out, rows.Err()
}

// ---- Devices ----

// ---- Users ----

// ---- Sessions ----

// ---- One-time tokens ----

// ---- API tokens ----
