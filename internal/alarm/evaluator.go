package alarm

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/expr-lang/expr/vm"
)

// TransitionKind is what happened to an alarm.
type TransitionKind string

// The alarm transitions.
const (
	// Raised: the rule's condition started to hold (for MinDuration, if
	// set) for a device that had no active alarm of the rule.
	Raised TransitionKind = "raised"
	// Retriggered: while the alarm was active, its raise condition stopped
	// holding without reaching the clear level (the hysteresis band), then
	// held again. The alarm stays the same one; Retriggers counts how often
	// this happened since it was raised.
	Retriggered TransitionKind = "retriggered"
	// Cleared: the alarm ended, because the condition cleared, or because
	// its rule was removed, disabled or changed, or the device left the
	// rule's scope or was forgotten.
	Cleared TransitionKind = "cleared"
)

// Transition is a change of one alarm: one rule on one device.
type Transition struct {
	RuleID   string         `json:"ruleId"`
	TenantID string         `json:"tenantId"` // the rule's tenant
	DeviceID string         `json:"deviceId"`
	Kind     TransitionKind `json:"kind"`
	// At is when the change happened by the data, not when it was noticed:
	// the sample's time, or the moment a duration ran out (so a Tick that
	// comes late still reports the exact time).
	At time.Time `json:"at"`
	// Value is the value behind the change: the sample for thresholds (the
	// last sample when raised after MinDuration), the rate per minute for
	// rates of change, the last value for stale rules; 0 for expressions,
	// offline rules and clears caused by rule changes.
	Value      float64  `json:"value"`
	Severity   Severity `json:"severity"`
	Message    string   `json:"message"` // e.g. "outlet_temp 92.4 above 90 for 5m0s"
	Retriggers int      `json:"retriggers,omitempty"`
}

// Evaluator evaluates alarm rules over a stream of device messages and
// connection events, keeping one alarm per rule and device.
//
// It is not safe for concurrent use: it is meant to be owned by one
// goroutine, e.g. the one that ingests a shard of devices. It does no I/O
// and never reads the clock: time comes only from the samples and from the
// arguments of Tick and the connection events, so a simulated clock drives
// it exactly as a real one.
//
// # Time
//
// Each sample is held until the next one (sample and hold). A condition
// with MinDuration becomes pending at the first sample for which it holds
// and raises at that sample's time + MinDuration unless a sample before
// then ends it. The raise is reported by whichever comes first: the next
// sample of the rule's metrics at or after that moment (a sample exactly at
// it decides by its own value; a later one finds the duration already
// passed under the held value), or a Tick at or after it. Either way the
// Transition's At is the exact moment, so results do not depend on how often
// Tick is called. A silent device therefore keeps its last value; watch
// silence with a Stale or Offline rule.
//
// Samples older than the last one a rule has taken for a device are
// ignored by that rule (rates of change also ignore samples at the same
// time). A transition is never stamped earlier than the previous
// transition of the same alarm, which keeps each alarm's history ordered
// when device clocks and Tick's clock disagree.
//
// Clearing needs no duration: a threshold clears at the first sample past
// the hysteresis level, an expression at the first evaluation that is
// false.
type Evaluator struct {
	rules   map[string]*compiled // every rule by ID, disabled ones too
	sets    map[scopeKey]*ruleSet
	devices map[string]*device
	touched []ref // expressions updated by the message being observed
	vm      vm.VM
	evals   uint64 // rule evaluations, for benchmarks
}

type scopeKind uint8

const (
	scopeDevice scopeKind = iota
	scopeSite
	scopeModel
)

// scopeKey names a group of enabled rules: those of one tenant with one
// scope.
type scopeKey struct {
	tenant string
	kind   scopeKind
	id     string
}

// ruleSet is a group of rules that apply to the same devices, indexed so a
// message only evaluates the rules that read its metrics.
type ruleSet struct {
	rules    []*compiled        // by ID
	byMetric map[string][]int32 // metric → indexes into rules
	timed    []int32            // rules with a deadline: stale, offline, MinDuration
	offline  []int32
}

type ref struct{ set, rule int32 }

type device struct {
	facts      DeviceFacts
	connected  bool
	connAt     time.Time // time of the last Connected or Disconnected
	lastActive time.Time // latest message, connection or disconnection
	nextDue    time.Time // no deadline of the device is earlier; zero: none
	sets       []*ruleSet
	states     [][]state // parallel to sets[i].rules
}

type phase uint8

const (
	idle phase = iota
	pending
	active
)

// state is one rule on one device.
type state struct {
	phase      phase
	holding    bool // active: the raise condition held at the last evaluation
	hasLast    bool // lastAt and last hold a sample
	touched    bool // expression: in Evaluator.touched
	retriggers int
	since      time.Time // pending: when the raise condition began
	seen       time.Time // stale: last value, or when watching began
	lastEvent  time.Time // time of the last transition
	lastAt     time.Time // time of the last sample taken
	last       float64   // last sample (threshold, rate, stale)
	held       float64   // threshold value or rate of the last evaluation
	vars       map[string]float64
}

// New compiles rules into an evaluator with no device state. Disabled rules
// are kept (so SetRules can tell a disabled rule from a removed one) but not
// evaluated.
func New(rules []Rule) (*Evaluator, error) {
	e := &Evaluator{devices: make(map[string]*device)}
	if _, err := e.SetRules(rules, time.Time{}); err != nil {
		return nil, err
	}
	return e, nil
}

// SetRules replaces the rules. A rule whose ID is unchanged keeps its state
// on every device (pending durations, active alarms, retrigger counts) as
// long as its tenant, scope and condition are unchanged; its name and
// severity may change. Every other rule starts afresh; a stale timer of a
// new rule starts at now. For each active alarm whose rule was removed,
// disabled or changed, SetRules returns a Cleared transition at now (or at
// the alarm's last transition, if later). On error nothing changes.
func (e *Evaluator) SetRules(rules []Rule, now time.Time) ([]Transition, error) {
	byID := make(map[string]*compiled, len(rules))
	var errs []error
	for i, r := range rules {
		c, err := compile(r)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule %d (%q): %w", i, r.ID, err))
			continue
		}
		if byID[r.ID] != nil {
			errs = append(errs, fmt.Errorf("rule %d: duplicate id %q", i, r.ID))
			continue
		}
		byID[r.ID] = c
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("alarm: %w", errors.Join(errs...))
	}
	ids := make([]string, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	sets := make(map[scopeKey]*ruleSet)
	for _, id := range ids {
		c := byID[id]
		if !c.rule.Enabled {
			continue
		}
		key := scopeKey{tenant: c.rule.TenantID}
		switch s := c.rule.Scope; {
		case s.DeviceID != "":
			key.kind, key.id = scopeDevice, s.DeviceID
		case s.SiteID != "":
			key.kind, key.id = scopeSite, s.SiteID
		default:
			key.kind, key.id = scopeModel, s.Model
		}
		set := sets[key]
		if set == nil {
			set = &ruleSet{byMetric: make(map[string][]int32)}
			sets[key] = set
		}
		set.add(c)
	}
	e.rules, e.sets = byID, sets

	var out []Transition
	for _, d := range e.devices {
		out = e.replan(out, d, now)
	}
	sortTransitions(out)
	return out, nil
}

func (s *ruleSet) add(c *compiled) {
	i := int32(len(s.rules))
	s.rules = append(s.rules, c)
	switch c.kind {
	case kindThreshold, kindRate, kindStale:
		s.byMetric[c.metric] = append(s.byMetric[c.metric], i)
	case kindExpr:
		for _, m := range c.refs {
			s.byMetric[m] = append(s.byMetric[m], i)
		}
	}
	if c.kind == kindOffline {
		s.offline = append(s.offline, i)
	}
	if c.kind == kindStale || c.kind == kindOffline || c.minDur > 0 {
		s.timed = append(s.timed, i)
	}
}

// lookup returns the rule sets that apply to a device.
func (e *Evaluator) lookup(f DeviceFacts) []*ruleSet {
	var sets []*ruleSet
	for path := f.TenantPath; path != ""; {
		var tenant string
		tenant, path, _ = strings.Cut(path, "/")
		if tenant == "" {
			continue
		}
		for _, key := range [...]scopeKey{
			{tenant, scopeDevice, f.ID},
			{tenant, scopeSite, f.SiteID},
			{tenant, scopeModel, f.Model},
		} {
			if s := e.sets[key]; key.id != "" && s != nil && !slices.Contains(sets, s) {
				sets = append(sets, s)
			}
		}
	}
	return sets
}

// device returns the state of dev, creating it or, if dev's facts changed,
// re-planning it.
func (e *Evaluator) device(dev DeviceFacts, at time.Time, out *[]Transition) *device {
	d := e.devices[dev.ID]
	switch {
	case d == nil:
		d = &device{facts: dev}
		e.devices[dev.ID] = d
		*out = e.replan(*out, d, at)
	case d.facts != dev:
		d.facts = dev
		*out = e.replan(*out, d, at)
	}
	return d
}

// replan recomputes the rules that apply to d, keeping the state of rules
// that stay, and clearing active alarms of rules that go.
func (e *Evaluator) replan(out []Transition, d *device, at time.Time) []Transition {
	oldSets, oldStates := d.sets, d.states
	var oldByID map[string]*state
	var oldRule map[*state]*compiled
	if len(oldSets) > 0 {
		oldByID = make(map[string]*state)
		oldRule = make(map[*state]*compiled)
	}
	for k, s := range oldSets {
		for i, c := range s.rules {
			st := &oldStates[k][i]
			oldByID[c.rule.ID] = st
			oldRule[st] = c
		}
	}
	d.sets = e.lookup(d.facts)
	d.states = make([][]state, len(d.sets))
	for k, s := range d.sets {
		d.states[k] = make([]state, len(s.rules))
		for i, c := range s.rules {
			st := &d.states[k][i]
			if old := oldByID[c.rule.ID]; old != nil && oldRule[old].fingerprint == c.fingerprint {
				*st = *old
				delete(oldByID, c.rule.ID)
				continue
			}
			initState(c, st, at)
		}
	}
	// Whatever is left in oldByID is gone; report its active alarms in a
	// stable order.
	gone := make([]string, 0, len(oldByID))
	for id, st := range oldByID {
		if st.phase == active {
			gone = append(gone, id)
		}
	}
	slices.Sort(gone)
	for _, id := range gone {
		st := oldByID[id]
		out = append(out, e.dropped(d, oldRule[st], st, at))
	}
	e.reschedule(d)
	return out
}

func initState(c *compiled, st *state, at time.Time) {
	*st = state{seen: at}
	if c.kind == kindExpr {
		st.vars = make(map[string]float64, len(c.refs))
	}
}

// dropped is the Cleared transition of an active alarm whose rule no longer
// applies to the device.
func (e *Evaluator) dropped(d *device, c *compiled, st *state, at time.Time) Transition {
	return Transition{
		RuleID:     c.rule.ID,
		TenantID:   c.rule.TenantID,
		DeviceID:   d.facts.ID,
		Kind:       Cleared,
		At:         latest(at, st.lastEvent),
		Severity:   c.rule.Severity,
		Message:    "cleared: " + e.dropReason(c.rule.ID, c.fingerprint),
		Retriggers: st.retriggers,
	}
}

// dropReason says why the state of a rule with the given ID and
// fingerprint no longer applies to a device.
func (e *Evaluator) dropReason(ruleID, fingerprint string) string {
	switch c := e.rules[ruleID]; {
	case c == nil:
		return "rule removed"
	case !c.rule.Enabled:
		return "rule disabled"
	case c.fingerprint != fingerprint:
		return "rule changed"
	}
	return "device no longer in the rule's scope"
}

// Observe evaluates one message of dev: the values of several metrics at
// time ts. Only rules that read one of the metrics are evaluated (and every
// offline rule of the device, which any message clears). Values that are
// NaN or infinite are ignored. The transitions are in time order.
func (e *Evaluator) Observe(dev DeviceFacts, ts time.Time, values map[string]float64) []Transition {
	var out []Transition
	d := e.device(dev, ts, &out)
	out = e.activity(out, d, ts, "message received")
	if len(d.sets) == 0 {
		sortTransitions(out)
		return out
	}
	for name, v := range values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		for k, s := range d.sets {
			for _, i := range s.byMetric[name] {
				c, st := s.rules[i], &d.states[k][i]
				switch c.kind {
				case kindThreshold:
					out = e.threshold(out, d, c, st, ts, v)
				case kindRate:
					out = e.rate(out, d, c, st, ts, v)
				case kindStale:
					out = e.stale(out, d, c, st, ts, v)
				case kindExpr:
					if st.hasLast && ts.Before(st.lastAt) {
						continue
					}
					if !st.touched {
						st.touched = true
						e.touched = append(e.touched, ref{int32(k), i})
						out = e.catchUp(out, d, c, st, ts)
					}
					st.vars[name] = v
				}
			}
		}
	}
	for _, r := range e.touched {
		c, st := d.sets[r.set].rules[r.rule], &d.states[r.set][r.rule]
		st.touched = false
		out = e.expression(out, d, c, st, ts)
	}
	e.touched = e.touched[:0]
	sortTransitions(out)
	return out
}

// Connected records that dev connected at at; it clears the device's
// offline alarms. Events older than the device's last connection event are
// ignored.
func (e *Evaluator) Connected(dev DeviceFacts, at time.Time) []Transition {
	var out []Transition
	d := e.device(dev, at, &out)
	if at.Before(d.connAt) {
		return out
	}
	d.connAt, d.connected = at, true
	out = e.activity(out, d, at, "device connected")
	sortTransitions(out)
	return out
}

// Disconnected records that dev disconnected at at; its offline rules start
// counting from then (or from a later message). Events older than the
// device's last connection event are ignored.
func (e *Evaluator) Disconnected(dev DeviceFacts, at time.Time) []Transition {
	var out []Transition
	d := e.device(dev, at, &out)
	if at.Before(d.connAt) {
		return out
	}
	d.connAt, d.connected = at, false
	d.lastActive = latest(d.lastActive, at)
	e.reschedule(d)
	sortTransitions(out)
	return out
}

// Forget drops all state of a device, e.g. when it is deleted, returning a
// Cleared transition at at for each of its active alarms.
func (e *Evaluator) Forget(deviceID string, at time.Time) []Transition {
	d := e.devices[deviceID]
	if d == nil {
		return nil
	}
	var out []Transition
	for k, s := range d.sets {
		for i, c := range s.rules {
			if st := &d.states[k][i]; st.phase == active {
				out = append(out, Transition{
					RuleID: c.rule.ID, TenantID: c.rule.TenantID, DeviceID: deviceID,
					Kind: Cleared, At: latest(at, st.lastEvent), Severity: c.rule.Severity,
					Message: "cleared: device forgotten", Retriggers: st.retriggers,
				})
			}
		}
	}
	delete(e.devices, deviceID)
	sortTransitions(out)
	return out
}

// Reset puts one rule's state on one device back to idle, without a
// transition: the alarm was cleared by hand. If the condition still holds,
// the next evaluation raises a new alarm (after MinDuration), as a person
// who cleared a still-present fault would expect.
func (e *Evaluator) Reset(ruleID, deviceID string, at time.Time) {
	d := e.devices[deviceID]
	if d == nil {
		return
	}
	for k, s := range d.sets {
		for i, c := range s.rules {
			if c.rule.ID != ruleID {
				continue
			}
			if st := &d.states[k][i]; st.phase == active {
				st.phase, st.holding, st.retriggers = idle, false, 0
				st.lastEvent = latest(st.lastEvent, at)
			}
		}
	}
	e.reschedule(d)
}

// Tick evaluates what depends on time passing rather than on samples:
// stale and offline rules, and MinDuration running out with no new sample.
// Call it periodically with the current time; how often only changes how
// soon a transition is reported, not its At. It costs a comparison per
// device plus work for the devices with a deadline due.
func (e *Evaluator) Tick(now time.Time) []Transition {
	var out []Transition
	for _, d := range e.devices {
		if d.nextDue.IsZero() || d.nextDue.After(now) {
			continue
		}
		var next time.Time
		for k, s := range d.sets {
			for _, i := range s.timed {
				c, st := s.rules[i], &d.states[k][i]
				due, ok := deadline(d, c, st)
				if !ok {
					continue
				}
				if due.After(now) {
					next = earliest(next, due)
					continue
				}
				v := st.held
				if c.kind == kindStale {
					v = st.last
				}
				out = e.raise(out, d, c, st, due, v)
			}
		}
		d.nextDue = next
	}
	sortTransitions(out)
	return out
}

// deadline is when a time-based part of c raises on d if nothing happens
// before.
func deadline(d *device, c *compiled, st *state) (time.Time, bool) {
	if st.phase != idle && st.phase != pending {
		return time.Time{}, false
	}
	switch c.kind {
	case kindStale:
		return st.seen.Add(c.after), true
	case kindOffline:
		if d.connected {
			return time.Time{}, false
		}
		return d.lastActive.Add(c.after), true
	}
	if st.phase == pending {
		return st.since.Add(c.minDur), true
	}
	return time.Time{}, false
}

// due notes a deadline of d.
func (d *device) due(t time.Time) {
	if d.nextDue.IsZero() || t.Before(d.nextDue) {
		d.nextDue = t
	}
}

// reschedule recomputes d's earliest deadline.
func (e *Evaluator) reschedule(d *device) {
	d.nextDue = time.Time{}
	for k, s := range d.sets {
		for _, i := range s.timed {
			if t, ok := deadline(d, s.rules[i], &d.states[k][i]); ok {
				d.due(t)
			}
		}
	}
}

// activity records that d was heard from at at: its offline alarms clear and
// their timers restart.
func (e *Evaluator) activity(out []Transition, d *device, at time.Time, why string) []Transition {
	d.lastActive = latest(d.lastActive, at)
	for k, s := range d.sets {
		for _, i := range s.offline {
			c, st := s.rules[i], &d.states[k][i]
			if st.phase == active {
				out = e.clear(out, d, c, st, at, 0, why)
			}
			if !d.connected {
				d.due(d.lastActive.Add(c.after))
			}
		}
	}
	return out
}

func (e *Evaluator) threshold(out []Transition, d *device, c *compiled, st *state, ts time.Time, v float64) []Transition {
	if st.hasLast && ts.Before(st.lastAt) {
		return out
	}
	e.evals++
	out = e.catchUp(out, d, c, st, ts)
	st.hasLast, st.lastAt, st.last = true, ts, v
	var raise, clear bool
	switch c.op {
	case Above:
		raise, clear = v > c.limit, v <= c.clearHi
	case Below:
		raise, clear = v < c.limit, v >= c.clearLo
	case Outside:
		raise, clear = v < c.low || v > c.hi, v >= c.clearLo && v <= c.clearHi
	case Inside:
		raise, clear = v >= c.low && v <= c.hi, v < c.clearLo || v > c.clearHi
	}
	return e.step(out, d, c, st, ts, v, raise, clear)
}

func (e *Evaluator) rate(out []Transition, d *device, c *compiled, st *state, ts time.Time, v float64) []Transition {
	if !st.hasLast {
		st.hasLast, st.lastAt, st.last = true, ts, v
		return out
	}
	if !ts.After(st.lastAt) {
		return out
	}
	e.evals++
	out = e.catchUp(out, d, c, st, ts)
	r := (v - st.last) / ts.Sub(st.lastAt).Minutes()
	st.lastAt, st.last = ts, v
	if math.IsInf(r, 0) || math.IsNaN(r) {
		return out // values so far apart that the rate overflows
	}
	x := r
	switch c.dir {
	case Down:
		x = -r
	case Either:
		x = math.Abs(r)
	}
	return e.step(out, d, c, st, ts, r, x > c.maxRate, x <= c.maxRate-c.hyst)
}

func (e *Evaluator) stale(out []Transition, d *device, c *compiled, st *state, ts time.Time, v float64) []Transition {
	e.evals++
	if !st.hasLast || !ts.Before(st.lastAt) {
		st.hasLast, st.lastAt, st.last = true, ts, v
	}
	if !ts.After(st.seen) {
		return out
	}
	st.seen = ts
	d.due(ts.Add(c.after))
	if st.phase == active {
		out = e.clear(out, d, c, st, ts, v, "")
	}
	return out
}

func (e *Evaluator) expression(out []Transition, d *device, c *compiled, st *state, ts time.Time) []Transition {
	st.hasLast, st.lastAt = true, ts
	if len(st.vars) < len(c.refs) {
		return out // a metric it reads has no value yet
	}
	e.evals++
	res, err := e.vm.Run(c.program, st.vars)
	if err != nil {
		// A runtime error (there are few with float64 operands) counts as
		// false rather than stopping the stream.
		res = false
	}
	ok, _ := res.(bool)
	return e.step(out, d, c, st, ts, 0, ok, !ok)
}

// catchUp raises a pending alarm whose MinDuration ran out before ts under
// the held sample.
func (e *Evaluator) catchUp(out []Transition, d *device, c *compiled, st *state, ts time.Time) []Transition {
	if st.phase == pending {
		if due := st.since.Add(c.minDur); ts.After(due) {
			out = e.raise(out, d, c, st, due, st.held)
		}
	}
	return out
}

// step advances a sample-driven alarm given whether the sample meets the
// raise condition and the clear condition (which excludes raise).
func (e *Evaluator) step(out []Transition, d *device, c *compiled, st *state, ts time.Time, v float64, raise, clear bool) []Transition {
	switch st.phase {
	case idle:
		if raise {
			if c.minDur == 0 {
				out = e.raise(out, d, c, st, ts, v)
			} else {
				st.phase, st.since = pending, ts
				d.due(ts.Add(c.minDur))
			}
		}
	case pending:
		if !raise {
			st.phase = idle
		} else if !ts.Before(st.since.Add(c.minDur)) {
			out = e.raise(out, d, c, st, ts, v)
		}
	case active:
		switch {
		case clear:
			out = e.clear(out, d, c, st, ts, v, "")
		case raise && !st.holding:
			st.retriggers++
			out = e.emit(out, d, c, st, Retriggered, ts, v, "")
			st.holding = true
		default:
			st.holding = raise
		}
	}
	st.held = v
	return out
}

func (e *Evaluator) raise(out []Transition, d *device, c *compiled, st *state, at time.Time, v float64) []Transition {
	st.phase, st.holding, st.retriggers = active, true, 0
	return e.emit(out, d, c, st, Raised, at, v, "")
}

func (e *Evaluator) clear(out []Transition, d *device, c *compiled, st *state, at time.Time, v float64, why string) []Transition {
	out = e.emit(out, d, c, st, Cleared, at, v, why)
	st.phase, st.holding, st.retriggers = idle, false, 0
	return out
}

func (e *Evaluator) emit(out []Transition, d *device, c *compiled, st *state, k TransitionKind, at time.Time, v float64, why string) []Transition {
	at = latest(at, st.lastEvent)
	st.lastEvent = at
	return append(out, Transition{
		RuleID:     c.rule.ID,
		TenantID:   c.rule.TenantID,
		DeviceID:   d.facts.ID,
		Kind:       k,
		At:         at,
		Value:      v,
		Severity:   c.rule.Severity,
		Message:    c.message(k, st, v, why),
		Retriggers: st.retriggers,
	})
}

func sortTransitions(ts []Transition) {
	if len(ts) < 2 {
		return
	}
	slices.SortStableFunc(ts, func(a, b Transition) int {
		return cmp.Or(a.At.Compare(b.At), strings.Compare(a.DeviceID, b.DeviceID), strings.Compare(a.RuleID, b.RuleID))
	})
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}
