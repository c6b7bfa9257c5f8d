package alarm

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// Snapshot is the whole state of an Evaluator, for keeping across a
// restart. It is plain data that encodes to and from JSON.
type Snapshot struct {
	Devices []DeviceState `json:"devices"`
}

// DeviceState is the state of one device: its connection and, for each rule
// that applies to it, that rule's state.
type DeviceState struct {
	Device     DeviceFacts `json:"device"`
	Connected  bool        `json:"connected,omitempty"`
	ConnAt     time.Time   `json:"connAt,omitzero"`     // last Connected or Disconnected
	LastActive time.Time   `json:"lastActive,omitzero"` // last message, connection or disconnection
	Rules      []RuleState `json:"rules,omitempty"`
}

// RuleState is the state of one rule on one device.
type RuleState struct {
	RuleID   string   `json:"ruleId"`
	TenantID string   `json:"tenantId"` // the rule's, for reporting a clear if the rule is gone
	Severity Severity `json:"severity"` // likewise
	// Fingerprint identifies the rule's tenant, scope and condition; Restore
	// drops a state whose rule has changed since.
	Fingerprint string `json:"fingerprint"`
	// Phase is "idle", "pending" (the condition holds, MinDuration not yet
	// over) or "active" (an alarm is raised).
	Phase      string             `json:"phase"`
	Holding    bool               `json:"holding,omitempty"`
	Retriggers int                `json:"retriggers,omitempty"`
	Since      time.Time          `json:"since,omitzero"`     // pending since
	Seen       time.Time          `json:"seen,omitzero"`      // stale: last value or start of watch
	LastEvent  time.Time          `json:"lastEvent,omitzero"` // last transition
	HasLast    bool               `json:"hasLast,omitempty"`
	LastAt     time.Time          `json:"lastAt,omitzero"` // last sample taken
	Last       float64            `json:"last,omitempty"`
	Held       float64            `json:"held,omitempty"`
	Vars       map[string]float64 `json:"vars,omitempty"`
}

func (p phase) String() string {
	switch p {
	case pending:
		return "pending"
	case active:
		return "active"
	}
	return "idle"
}

// State exports the state of every device and rule, sorted by device and
// rule ID. It shares nothing with the evaluator.
func (e *Evaluator) State() Snapshot {
	snap := Snapshot{Devices: make([]DeviceState, 0, len(e.devices))}
	for _, d := range e.devices {
		ds := DeviceState{Device: d.facts, Connected: d.connected, ConnAt: d.connAt, LastActive: d.lastActive}
		for k, s := range d.sets {
			for i, c := range s.rules {
				st := &d.states[k][i]
				ds.Rules = append(ds.Rules, RuleState{
					RuleID:      c.rule.ID,
					TenantID:    c.rule.TenantID,
					Severity:    c.rule.Severity,
					Fingerprint: c.fingerprint,
					Phase:       st.phase.String(),
					Holding:     st.holding,
					Retriggers:  st.retriggers,
					Since:       st.since,
					Seen:        st.seen,
					LastEvent:   st.lastEvent,
					HasLast:     st.hasLast,
					LastAt:      st.lastAt,
					Last:        st.last,
					Held:        st.held,
					Vars:        maps.Clone(st.vars),
				})
			}
		}
		slices.SortFunc(ds.Rules, func(a, b RuleState) int { return strings.Compare(a.RuleID, b.RuleID) })
		snap.Devices = append(snap.Devices, ds)
	}
	slices.SortFunc(snap.Devices, func(a, b DeviceState) int { return strings.Compare(a.Device.ID, b.Device.ID) })
	return snap
}

// Restore replaces all device state with snap, which came from State,
// possibly of another process with other rules. A saved rule state is
// restored if the rule still exists, is enabled, applies to the device
// and has the same fingerprint; rules without a saved state start afresh
// (a stale timer at now). For each saved active alarm that is not restored,
// Restore returns a Cleared transition at now. On error nothing changes.
//
// Connection status is restored as saved. A process whose restart dropped
// its devices' connections should report Disconnected for them (their
// offline timers then run from the later of that time and their last
// activity).
func (e *Evaluator) Restore(snap Snapshot, now time.Time) ([]Transition, error) {
	devices := make(map[string]*device, len(snap.Devices))
	var out []Transition
	for n, ds := range snap.Devices {
		if ds.Device.ID == "" {
			return nil, fmt.Errorf("alarm: restore: devices[%d]: empty device id", n)
		}
		if devices[ds.Device.ID] != nil {
			return nil, fmt.Errorf("alarm: restore: devices[%d]: device %q appears twice", n, ds.Device.ID)
		}
		saved := make(map[string]*state, len(ds.Rules))
		fingerprints := make(map[string]string, len(ds.Rules))
		for j, rs := range ds.Rules {
			st, err := rs.state()
			if err != nil {
				return nil, fmt.Errorf("alarm: restore: device %q rule %d (%q): %w", ds.Device.ID, j, rs.RuleID, err)
			}
			saved[rs.RuleID] = st
			fingerprints[rs.RuleID] = rs.Fingerprint
		}
		d := &device{facts: ds.Device, connected: ds.Connected, connAt: ds.ConnAt, lastActive: ds.LastActive}
		d.sets = e.lookup(d.facts)
		d.states = make([][]state, len(d.sets))
		for k, s := range d.sets {
			d.states[k] = make([]state, len(s.rules))
			for i, c := range s.rules {
				st := &d.states[k][i]
				if old := saved[c.rule.ID]; old != nil && fingerprints[c.rule.ID] == c.fingerprint && varsFit(c, old) {
					*st = *old
					delete(saved, c.rule.ID)
					continue
				}
				initState(c, st, now)
			}
		}
		for _, rs := range ds.Rules {
			st := saved[rs.RuleID]
			if st == nil || st.phase != active {
				continue
			}
			out = append(out, Transition{
				RuleID: rs.RuleID, TenantID: rs.TenantID, DeviceID: d.facts.ID, Kind: Cleared,
				At: latest(now, st.lastEvent), Severity: rs.Severity,
				Message: "cleared: " + e.dropReason(rs.RuleID, rs.Fingerprint), Retriggers: st.retriggers,
			})
		}
		e.reschedule(d)
		devices[d.facts.ID] = d
	}
	e.devices = devices
	sortTransitions(out)
	return out, nil
}

// varsFit reports whether a restored expression state holds only the
// metrics the expression reads, so that "all have a value" stays a count.
func varsFit(c *compiled, st *state) bool {
	if c.kind != kindExpr {
		return true
	}
	for m := range st.vars {
		if _, ok := slices.BinarySearch(c.refs, m); !ok {
			return false
		}
	}
	if st.vars == nil {
		st.vars = make(map[string]float64, len(c.refs))
	}
	return true
}

func (rs RuleState) state() (*state, error) {
	st := &state{
		holding:    rs.Holding,
		retriggers: rs.Retriggers,
		since:      rs.Since,
		seen:       rs.Seen,
		lastEvent:  rs.LastEvent,
		hasLast:    rs.HasLast,
		lastAt:     rs.LastAt,
		last:       rs.Last,
		held:       rs.Held,
		vars:       maps.Clone(rs.Vars),
	}
	switch rs.Phase {
	case "idle":
		st.phase = idle
	case "pending":
		st.phase = pending
	case "active":
		st.phase = active
	default:
		return nil, fmt.Errorf("phase %q is not idle, pending or active", rs.Phase)
	}
	if rs.RuleID == "" {
		return nil, errors.New("empty rule id")
	}
	if rs.Retriggers < 0 {
		return nil, fmt.Errorf("negative retrigger count %d", rs.Retriggers)
	}
	for m, v := range rs.Vars {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("vars[%q] is not a finite number", m)
		}
	}
	return st, nil
}
