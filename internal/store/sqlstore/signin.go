package sqlstore

import (
	"context"
	"fmt"
	"time"
)

// RetireID keeps an id from being used again.
func (s *Store) RetireID(ctx context.Context, kind, id string, at time.Time) error {
	if _, err := s.db.Exec(ctx, `INSERT INTO retired_ids (kind, id, retired_at) VALUES (?, ?, ?)
		ON CONFLICT (kind, id) DO NOTHING`, kind, id, at.UnixMilli()); err != nil {
		return fmt.Errorf("retire %s id %q: %w", kind, id, err)
	}
	return nil
}

// IDRetired says whether an id was retired.
func (s *Store) IDRetired(ctx context.Context, kind, id string) (bool, error) {
	var n int
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM retired_ids WHERE kind = ? AND id = ?`, kind, id).Scan(&n); err != nil {
		return false, fmt.Errorf("is %s id %q retired: %w", kind, id, err)
	}
	return n > 0, nil
}
