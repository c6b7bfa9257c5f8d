package sqlstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/store"
)

// LoadMonitorState returns the evaluator's state under key, by tenant;
// parts that cannot be opened are left out. A state saved before sealing
// comes back under "".
func (s *Store) LoadMonitorState(ctx context.Context, key string) (map[string][]byte, error) {
	rows, err := s.db.Query(ctx, `SELECT tenant_id, sealed FROM monitor_states WHERE key = ?`, key)
	if err != nil {
		return nil, fmt.Errorf("load monitor state %q: %w", key, err)
	}
	defer rows.Close()
	sealed := map[string][]byte{}
	for rows.Next() {
		var tenantID string
		var blob []byte
		if err := rows.Scan(&tenantID, &blob); err != nil {
			return nil, fmt.Errorf("load monitor state %q: %w", key, err)
		}
		sealed[tenantID] = blob
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("load monitor state %q: %w", key, err)
	}
	out, err := store.OpenMonitorStates(ctx, s.sealer, key, sealed)
	if err != nil {
		return nil, err
	}
	var legacy []byte
	err = s.db.QueryRow(ctx, `SELECT state FROM monitor_state WHERE key = ?`, key).Scan(&legacy)
	switch {
	case database.NoRows(err):
	case err != nil:
		return nil, fmt.Errorf("load monitor state %q: %w", key, err)
	default:
		out[""] = legacy
	}
	return out, nil
}
