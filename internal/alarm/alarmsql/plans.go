package alarmsql

import (
	"context"
	"errors"
	"fmt"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/sealing"
)

// ---- Maintenance plans ----

// SetMaintenancePlan stores a tenant's plan for a model in place of the
// previous one; the tenant must exist.
func (s *Store) SetMaintenancePlan(ctx context.Context, p alarm.MaintenancePlan) error {
	if _, err := specText("maintenance plan "+p.Model, p.Spec); err != nil {
		return err
	}
	sealed, err := sealing.SealPlan(ctx, s.sealer, p)
	if err != nil {
		return fmt.Errorf("set maintenance plan %q of tenant %q: %w", p.Model, p.TenantID, err)
	}
	_, err = s.db.Exec(ctx, `INSERT INTO maintenance_plans (tenant_id, model, spec, updated_at, sealed) VALUES (?, ?, '', ?, ?)
		ON CONFLICT (tenant_id, model) DO UPDATE SET spec = '', updated_at = excluded.updated_at, sealed = excluded.sealed`,
		p.TenantID, p.Model, database.Millis(p.UpdatedAt), sealed)
	if s.db.Dialect.IsForeignKeyViolation(err) {
		return fmt.Errorf("maintenance plan %q: tenant %q: %w", p.Model, p.TenantID, database.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("set maintenance plan %q of tenant %q: %w", p.Model, p.TenantID, err)
	}
	return nil
}

// ListMaintenancePlans returns the plans of the given tenants (nil: all),
// by tenant and model.
func (s *Store) ListMaintenancePlans(ctx context.Context, tenantIDs []string) ([]alarm.MaintenancePlan, error) {
	f := s.filter()
	f.In("tenant_id", tenantIDs)
	if f.None {
		return []alarm.MaintenancePlan{}, nil
	}
	rows, err := s.db.Query(ctx, `SELECT tenant_id, model, spec, updated_at, sealed FROM maintenance_plans`+f.Where()+
		` ORDER BY tenant_id, model`, f.Args...)
	if err != nil {
		return nil, fmt.Errorf("list maintenance plans: %w", err)
	}
	defer rows.Close()
	var got []alarm.MaintenancePlan
	var sealed [][]byte
	for rows.Next() {
		var p alarm.MaintenancePlan
		var spec string
		var updated int64
		var blob []byte
		if err := rows.Scan(&p.TenantID, &p.Model, &spec, &updated, &blob); err != nil {
			return nil, fmt.Errorf("list maintenance plans: %w", err)
		}
		p.Spec, p.UpdatedAt = specJSON(spec), database.Time(updated)
		got, sealed = append(got, p), append(sealed, blob)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("list maintenance plans: %w", err)
	}
	// Opened with the rows closed: the keyring may need a connection.
	return sealing.OpenPlans(ctx, s.sealer, got, sealed)
}

// DeleteMaintenancePlan removes a tenant's plan for a model.
func (s *Store) DeleteMaintenancePlan(ctx context.Context, tenantID, model string) error {
	n, err := database.Affected(s.db.Exec(ctx, `DELETE FROM maintenance_plans WHERE tenant_id = ? AND model = ?`, tenantID, model))
	if err != nil {
		return fmt.Errorf("delete maintenance plan %q of tenant %q: %w", model, tenantID, err)
	}
	if n == 0 {
		return fmt.Errorf("maintenance plan %q of tenant %q: %w", model, tenantID, database.ErrNotFound)
	}
	return nil
}

// ---- The evaluators' state ----

// compactPending is the meta key the engines' CompactSealed looks for: set
// in the transaction that replaces plaintext, removed once the database has
// been compacted (see store.Store's CompactSealed).
const compactPending = "sealed_compact_pending"

// SaveMonitorState replaces the evaluator's state under key, one sealed
// row per tenant, and drops a state saved before sealing (noting that the
// database must be compacted, so that no copy of it remains).
func (s *Store) SaveMonitorState(ctx context.Context, key string, byTenant map[string][]byte) error {
	sealed := make(map[string][]byte, len(byTenant))
	for tenantID, state := range byTenant {
		blob, err := sealing.SealMonitorState(ctx, s.sealer, key, tenantID, state)
		if err != nil {
			return fmt.Errorf("save monitor state %q: %w", key, err)
		}
		sealed[tenantID] = blob
	}
	err := s.db.InTx(ctx, func(tx database.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM monitor_states WHERE key = ?`, key); err != nil {
			return err
		}
		for tenantID, blob := range sealed {
			if _, err := tx.Exec(ctx, `INSERT INTO monitor_states (key, tenant_id, sealed) VALUES (?, ?, ?)`,
				key, tenantID, blob); err != nil {
				return err
			}
		}
		n, err := database.Affected(tx.Exec(ctx, `DELETE FROM monitor_state WHERE key = ?`, key))
		if err != nil || n == 0 {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO meta (key, value) VALUES (?, '1') ON CONFLICT (key) DO NOTHING`, compactPending)
		return err
	})
	if err != nil {
		return fmt.Errorf("save monitor state %q: %w", key, err)
	}
	return nil
}

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
	// Opened with the rows closed: the keyring may need a connection.
	out, err := sealing.OpenMonitorStates(ctx, s.sealer, key, sealed)
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
