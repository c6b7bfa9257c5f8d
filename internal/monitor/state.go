package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/database"
)

// Saved state
//
// Each partition saves its own evaluators' state, on its own schedule:
// under "alarm-evaluator/<partition>" and "maintenance/<partition>", one
// part per tenant (sealed with the tenant's key). The number of partitions
// is kept in the meta table: a start with another number reads every
// partition saved before and spreads the devices over the new partitions.
// A state saved whole (before partitions saved their own) is read too, and
// replaced.

const (
	stateKey       = "alarm-evaluator"
	maintStateKey  = "maintenance"
	partitionsMeta = "monitor-partitions"
)

func partKey(key string, p int) string { return key + "/" + strconv.Itoa(p) }

// tenantBlob is one tenant's part of a saved state.
type tenantBlob struct {
	tenant string
	blob   []byte
}

// savedPartitions is the number of partitions the state was saved with
// (0: none, or saved whole).
func (m *Monitor) savedPartitions(ctx context.Context) (int, error) {
	v, err := m.st.GetMeta(ctx, partitionsMeta)
	if errors.Is(err, database.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("monitor: saved partitions: %w", err)
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		m.log.Error("monitor: saved partition count unreadable", "value", v)
		return 0, nil
	}
	return n, nil
}

// loadState reads the parts saved under key: the partitions' first, then a
// state saved whole. rewrite says whether the state must be saved again
// (saved whole, unsealed, or with another number of partitions).
func (m *Monitor) loadState(ctx context.Context, key string, saved int) (parts []tenantBlob, rewrite bool, err error) {
	keys := make([]string, 0, max(saved, m.cfg.Shards)+1)
	for i := range max(saved, m.cfg.Shards) {
		keys = append(keys, partKey(key, i))
	}
	keys = append(keys, key)
	for _, k := range keys {
		blobs, err := m.st.LoadMonitorState(ctx, k)
		if err != nil {
			return nil, false, fmt.Errorf("monitor: load state %q: %w", k, err)
		}
		if _, unsealed := blobs[""]; unsealed || (k == key && len(blobs) > 0) {
			rewrite = true
		}
		for tn, b := range blobs {
			parts = append(parts, tenantBlob{tenant: tn, blob: b})
		}
	}
	return parts, rewrite || saved != m.cfg.Shards, nil
}

// loadRuleState reads the saved alarm evaluator state, by partition.
func (m *Monitor) loadRuleState(ctx context.Context, saved int) ([]alarm.Snapshot, bool, error) {
	blobs, rewrite, err := m.loadState(ctx, stateKey, saved)
	if err != nil {
		return nil, false, err
	}
	parts := make([]alarm.Snapshot, m.cfg.Shards)
	seen := map[string]bool{}
	for _, tb := range blobs {
		var snap alarm.Snapshot
		if err := json.Unmarshal(tb.blob, &snap); err != nil {
			m.log.Error("monitor: saved evaluator state unreadable; starting afresh", "tenant", tb.tenant, "err", err)
			continue
		}
		for _, d := range snap.Devices {
			if seen[d.Device.ID] {
				continue // a newer part had it
			}
			seen[d.Device.ID] = true
			i := m.shardOf(d.Device.ID)
			parts[i].Devices = append(parts[i].Devices, d)
		}
	}
	return parts, rewrite, nil
}

// loadMaintenance reads the saved maintenance state, by partition.
func (m *Monitor) loadMaintenance(ctx context.Context, saved int) ([][]maintDeviceState, bool, error) {
	blobs, rewrite, err := m.loadState(ctx, maintStateKey, saved)
	if err != nil {
		return nil, false, err
	}
	parts := make([][]maintDeviceState, m.cfg.Shards)
	for _, tb := range blobs {
		var states [][]maintDeviceState
		if err := json.Unmarshal(tb.blob, &states); err != nil {
			m.log.Error("monitor: saved maintenance state unreadable; starting afresh", "tenant", tb.tenant, "err", err)
			continue
		}
		for _, part := range states {
			for _, st := range part {
				i := m.shardOf(st.Device.ID)
				parts[i] = append(parts[i], st) // maintStart keeps the first of a device
			}
		}
	}
	return parts, rewrite, nil
}

// rewriteState saves every partition's state, drops what was saved whole
// or in partitions that no longer exist, and records the partition count.
func (m *Monitor) rewriteState(ctx context.Context, saved int) error {
	for _, s := range m.shards {
		s.snapshot()
	}
	if err := m.save(ctx); err != nil {
		return err
	}
	for _, key := range []string{stateKey, maintStateKey} {
		stale := []string{key}
		for i := m.cfg.Shards; i < saved; i++ {
			stale = append(stale, partKey(key, i))
		}
		for _, k := range stale {
			if err := m.st.SaveMonitorState(ctx, k, nil); err != nil {
				return fmt.Errorf("monitor: drop old state %q: %w", k, err)
			}
		}
	}
	if err := m.st.SetMeta(ctx, partitionsMeta, strconv.Itoa(m.cfg.Shards)); err != nil {
		return fmt.Errorf("monitor: record partitions: %w", err)
	}
	return nil
}

// save stores every partition's state as of its last snapshot.
func (m *Monitor) save(ctx context.Context) error {
	var errs []error
	for _, s := range m.shards {
		errs = append(errs, s.save(ctx))
	}
	return errors.Join(errs...)
}

// save stores the partition's evaluator state as of its last snapshot.
func (s *shard) save(ctx context.Context) error {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	return errors.Join(s.saveRules(ctx), s.saveMaint(ctx))
}

func (s *shard) saveRules(ctx context.Context) error {
	s.rules.mu.Lock()
	devices := s.rules.snap.Devices
	s.rules.mu.Unlock()
	byTenant := map[string]*alarm.Snapshot{}
	for _, d := range devices {
		tn := tenantOf(d.Device.TenantPath)
		if tn == "" {
			continue // no tenant to seal it for (never the case for a known device)
		}
		if byTenant[tn] == nil {
			byTenant[tn] = &alarm.Snapshot{}
		}
		byTenant[tn].Devices = append(byTenant[tn].Devices, d)
	}
	blobs := make(map[string][]byte, len(byTenant))
	for tn, part := range byTenant {
		blob, err := json.Marshal(part)
		if err != nil {
			return fmt.Errorf("monitor: encode state: %w", err)
		}
		blobs[tn] = blob
	}
	if err := s.m.st.SaveMonitorState(ctx, partKey(stateKey, s.id), blobs); err != nil {
		return fmt.Errorf("monitor: save state: %w", err)
	}
	return nil
}

// saveMaint stores the maintenance state: per tenant, a JSON array holding
// the array of the tenant's device states.
func (s *shard) saveMaint(ctx context.Context) error {
	s.maint.mu.Lock()
	snap := s.maint.snap
	s.maint.mu.Unlock()
	byTenant := map[string][]json.RawMessage{}
	if len(snap) > 0 {
		var items []json.RawMessage
		if err := json.Unmarshal(snap, &items); err != nil {
			return fmt.Errorf("monitor: save maintenance state: %w", err)
		}
		for _, it := range items {
			var st struct {
				Device alarm.DeviceFacts `json:"device"`
			}
			if err := json.Unmarshal(it, &st); err != nil {
				return fmt.Errorf("monitor: save maintenance state: %w", err)
			}
			tn := tenantOf(st.Device.TenantPath)
			if tn == "" {
				continue // no tenant to seal it for (never the case for a known device)
			}
			byTenant[tn] = append(byTenant[tn], it)
		}
	}
	blobs := make(map[string][]byte, len(byTenant))
	for tn, items := range byTenant {
		b, err := json.Marshal([][]json.RawMessage{items})
		if err != nil {
			return fmt.Errorf("monitor: save maintenance state: %w", err)
		}
		blobs[tn] = b
	}
	if err := s.m.st.SaveMonitorState(ctx, partKey(maintStateKey, s.id), blobs); err != nil {
		return fmt.Errorf("monitor: save maintenance state: %w", err)
	}
	return nil
}
