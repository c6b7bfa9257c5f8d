package identitysql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/identity"
)

// APITokenColumns are the columns ScanAPIToken reads, in its order.
const APITokenColumns = `id, tenant_id, user_id, name, role, scopes, hash, created_at, expires_at, last_used_at`

// ScanAPIToken reads an API token row of APITokenColumns.
func ScanAPIToken(row database.Scanner) (identity.APIToken, error) {
	var t identity.APIToken
	var user sql.NullString
	var role, scopes string
	var created, expires, used int64
	if err := row.Scan(&t.ID, &t.TenantID, &user, &t.Name, &role, &scopes, &t.Hash, &created, &expires, &used); err != nil {
		return identity.APIToken{}, err
	}
	t.UserID, t.Role, t.Scopes = user.String, identity.Role(role), strings.Fields(scopes)
	t.CreatedAt, t.ExpiresAt, t.LastUsedAt = time.UnixMilli(created).UTC(), database.Time(expires), database.Time(used)
	return t, nil
}

// joinScopes is the scopes column: the scopes separated by spaces.
func joinScopes(scopes []string) (string, error) {
	for _, sc := range scopes {
		if sc == "" || strings.ContainsFunc(sc, func(r rune) bool { return r <= ' ' }) {
			return "", fmt.Errorf("invalid scope %q", sc)
		}
	}
	return strings.Join(scopes, " "), nil
}

// CreateAPIToken stores a token's hash. A token's user must be one of the
// token's tenant (otherwise ErrNotFound).
func (s *Store) CreateAPIToken(ctx context.Context, t identity.APIToken) error {
	scopes, err := joinScopes(t.Scopes)
	if err != nil {
		return fmt.Errorf("create api token %q: %w", t.ID, err)
	}
	user := database.NullIfEmpty(t.UserID)
	n, err := database.Affected(s.db.Exec(ctx, `INSERT INTO api_tokens (`+APITokenColumns+`)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
		WHERE `+s.db.Dialect.Param("text")+` IS NULL OR EXISTS (SELECT 1 FROM users WHERE id = ? AND tenant_id = ?)`,
		t.ID, t.TenantID, user, t.Name, string(t.Role), scopes, t.Hash, t.CreatedAt.UnixMilli(), database.Millis(t.ExpiresAt),
		database.Millis(t.LastUsedAt), user, user, t.TenantID))
	switch {
	case s.isUnique(err):
		return fmt.Errorf("api token %q: %w", t.ID, database.ErrConflict)
	case s.isForeignKey(err):
		return fmt.Errorf("api token %q: tenant %q or user %q: %w", t.ID, t.TenantID, t.UserID, database.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create api token %q: %w", t.ID, err)
	case n == 0:
		return fmt.Errorf("api token %q: user %q of tenant %q: %w", t.ID, t.UserID, t.TenantID, database.ErrNotFound)
	}
	return nil
}

// APITokenByHash finds a token by its hash, expired or not.
func (s *Store) APITokenByHash(ctx context.Context, hash []byte) (identity.APIToken, error) {
	t, err := ScanAPIToken(s.db.QueryRow(ctx, `SELECT `+APITokenColumns+` FROM api_tokens WHERE hash = ?`, hash))
	if database.NoRows(err) {
		return identity.APIToken{}, fmt.Errorf("api token: %w", database.ErrNotFound)
	}
	if err != nil {
		return identity.APIToken{}, fmt.Errorf("api token: %w", err)
	}
	return t, nil
}

// ListAPITokens returns the tokens acting for a user, oldest first; with
// userID "", the tokens without a user.
func (s *Store) ListAPITokens(ctx context.Context, userID string) ([]identity.APIToken, error) {
	same := `user_id IS ?` // SQLite's IS compares NULLs as equal
	if s.db.Dialect == database.Postgres {
		same = `user_id IS NOT DISTINCT FROM ?`
	}
	rows, err := s.db.Query(ctx, `SELECT `+APITokenColumns+` FROM api_tokens WHERE `+same+` ORDER BY created_at, id`,
		database.NullIfEmpty(userID))
	out, err := database.Collect(rows, err, ScanAPIToken)
	if err != nil {
		return nil, fmt.Errorf("list api tokens of %q: %w", userID, err)
	}
	return out, nil
}

// GetAPIToken returns one token.
func (s *Store) GetAPIToken(ctx context.Context, id string) (identity.APIToken, error) {
	t, err := ScanAPIToken(s.db.QueryRow(ctx, `SELECT `+APITokenColumns+` FROM api_tokens WHERE id = ?`, id))
	if database.NoRows(err) {
		return t, fmt.Errorf("api token %q: %w", id, database.ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("api token %q: %w", id, err)
	}
	return t, nil
}

// DeleteAPIToken revokes a token.
func (s *Store) DeleteAPIToken(ctx context.Context, id string) error {
	return database.DeleteOne(ctx, s.db, "api token", id, `DELETE FROM api_tokens WHERE id = ?`, id)
}

// TouchAPIToken records when a token was last used.
func (s *Store) TouchAPIToken(ctx context.Context, id string, at time.Time) error {
	return database.UpdateOne(ctx, s.db, "api token", id, `UPDATE api_tokens SET last_used_at = ? WHERE id = ?`, database.Millis(at), id)
}
