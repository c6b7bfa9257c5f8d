package sqlstore

import (
	"context"
	"fmt"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/warden-iot/warden/internal/database"
)

// GetMeta reads a server setting.
func (s *Store) GetMeta(ctx context.Context, key string) (string, error) {
	var v string
	err := s.db.QueryRow(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if database.NoRows(err) {
		return "", fmt.Errorf("meta %q: %w", key, database.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("meta %q: %w", key, err)
	}
	return v, nil
}

// SetMeta writes a server setting.
func (s *Store) SetMeta(ctx context.Context, key, value string) error {
	_, err := s.db.Exec(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("set meta %q: %w", key, err)
	}
	return nil
}
