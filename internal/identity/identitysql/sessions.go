package identitysql

import (
	"context"
	"fmt"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/identity"
)

const sessionColumns = `id, user_id, hash, created_at, last_seen_at, expires_at, ip, user_agent`

func scanSession(row database.Scanner) (identity.Session, error) {
	var se identity.Session
	var created, seen, expires int64
	if err := row.Scan(&se.ID, &se.UserID, &se.Hash, &created, &seen, &expires, &se.IP, &se.UserAgent); err != nil {
		return identity.Session{}, err
	}
	se.CreatedAt, se.LastSeenAt, se.ExpiresAt = database.Time(created), database.Time(seen), database.Time(expires)
	return se, nil
}

// CreateSession stores a signed-in browser.
func (s *Store) CreateSession(ctx context.Context, se identity.Session) error {
	_, err := s.db.Exec(ctx, `INSERT INTO sessions (`+sessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		se.ID, se.UserID, se.Hash, database.Millis(se.CreatedAt), database.Millis(se.LastSeenAt), database.Millis(se.ExpiresAt), se.IP, se.UserAgent)
	switch {
	case s.isUnique(err):
		return fmt.Errorf("session %q: %w", se.ID, database.ErrConflict)
	case s.isForeignKey(err):
		return fmt.Errorf("user %q: %w", se.UserID, database.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create session %q: %w", se.ID, err)
	}
	return nil
}

// SessionByHash finds a session by the hash of its secret, expired or not.
func (s *Store) SessionByHash(ctx context.Context, hash []byte) (identity.Session, error) {
	se, err := scanSession(s.db.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE hash = ?`, hash))
	if database.NoRows(err) {
		return se, fmt.Errorf("session: %w", database.ErrNotFound)
	}
	if err != nil {
		return se, fmt.Errorf("session: %w", err)
	}
	return se, nil
}

// TouchSession records activity and moves the expiry.
func (s *Store) TouchSession(ctx context.Context, id string, at, expires time.Time) error {
	return database.UpdateOne(ctx, s.db, "session", id, `UPDATE sessions SET last_seen_at = ?, expires_at = ? WHERE id = ?`,
		database.Millis(at), database.Millis(expires), id)
}

// DeleteSession signs a session out.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	return database.DeleteOne(ctx, s.db, "session", id, `DELETE FROM sessions WHERE id = ?`, id)
}

// DeleteUserSessions signs a user out everywhere.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("delete sessions of user %q: %w", userID, err)
	}
	return nil
}

// ListSessions returns a user's sessions, oldest first.
func (s *Store) ListSessions(ctx context.Context, userID string) ([]identity.Session, error) {
	rows, err := s.db.Query(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE user_id = ? ORDER BY created_at, id`, userID)
	out, err := database.Collect(rows, err, scanSession)
	if err != nil {
		return nil, fmt.Errorf("list sessions of %q: %w", userID, err)
	}
	return out, nil
}
