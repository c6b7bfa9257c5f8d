package monitor

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/warden-iot/warden/internal/alarm"
)

// TenantDeleted forgets a deleted tenant: its rules and maintenance plans,
// the rule and maintenance state of its devices (deviceIDs, and any other
// device of it the monitor knows), and from then on every record of its
// devices still on its way. Its rules never fire again.
func (m *Monitor) TenantDeleted(ctx context.Context, tenantID string, deviceIDs []string) error {
	mine := map[string]bool{}
	for _, id := range deviceIDs {
		mine[id] = true
	}
	m.mu.Lock()
	m.gone[tenantID] = true
	for id, f := range m.facts {
		if tenantOf(f.TenantPath) == tenantID {
			mine[id] = true
		}
	}
	for id := range mine {
		delete(m.facts, id)
	}
	m.mu.Unlock()
	if m.shards == nil {
		return nil
	}
	rules, err := m.loadRules(ctx)
	if err != nil {
		return err
	}
	rules = slices.DeleteFunc(rules, func(r alarm.Rule) bool { return r.TenantID == tenantID })
	plans, err := m.loadPlans(ctx)
	if err != nil {
		return err
	}
	delete(plans, tenantID)
	now := m.clock.Now()
	// What the tenant's devices leave behind is not stored (their alarms
	// went with the tenant: write drops it); the other tenants'
	// transitions from the rule reload are.
	err = m.broadcast(ctx, event{kind: evCall, call: func(s *shard) error {
		for id := range mine {
			if m.shardOf(id) == s.id {
				for _, e := range s.evals {
					e.Forget(id, now)
				}
			}
		}
		s.rules.setRules(rules)
		s.maint.maintSetPlans(plans, now)
		return nil
	}})
	// A failed alarm write of the same round is another device's (the
	// shard logged it), not the forgetting's.
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("monitor: forget tenant %s: %w", tenantID, err)
	}
	return nil
}

// isGone says whether the tenant was deleted while the monitor ran.
func (m *Monitor) isGone(tenantID string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gone[tenantID]
}

// write stores the round's alarm changes: all in one transaction, or, if
// that fails, device by device, so that a device whose changes cannot be
// written (its tenant deleted meanwhile, a sealing failure) costs only its
// own. Changes of deleted tenants are dropped. The alarms answered line up
// with changes; a change not stored has a zero alarm. The error joins the
// devices' failures.
func (s *shard) write(ctx context.Context, changes []alarm.Change) ([]alarm.Record, error) {
	out := make([]alarm.Record, len(changes))
	keep := make([]int, 0, len(changes)) // indexes into changes
	for i, c := range changes {
		if !s.m.isGone(c.TenantID) {
			keep = append(keep, i)
		}
	}
	if len(keep) == 0 {
		return out, nil
	}
	pick := func(idx []int) []alarm.Change {
		cs := make([]alarm.Change, len(idx))
		for j, i := range idx {
			cs[j] = changes[i]
		}
		return cs
	}
	alarms, err := s.m.st.ApplyAlarmChanges(ctx, pick(keep))
	if err == nil {
		for j, i := range keep {
			out[i] = alarms[j]
		}
		return out, nil
	}
	// One device's changes, in order, per transaction.
	var order []string
	byDevice := map[string][]int{}
	for _, i := range keep {
		d := changes[i].DeviceID
		if _, ok := byDevice[d]; !ok {
			order = append(order, d)
		}
		byDevice[d] = append(byDevice[d], i)
	}
	if len(order) == 1 {
		s.m.log.Error("monitor: store alarm changes", "device", order[0], "changes", len(keep), "err", err)
		return out, err
	}
	var errs []error
	for _, d := range order {
		idx := byDevice[d]
		alarms, err := s.m.st.ApplyAlarmChanges(ctx, pick(idx))
		if err != nil {
			s.m.log.Error("monitor: store alarm changes", "device", d, "changes", len(idx), "err", err)
			errs = append(errs, fmt.Errorf("device %s: %w", d, err))
			continue
		}
		for j, i := range idx {
			out[i] = alarms[j]
		}
	}
	return out, errors.Join(errs...)
}
