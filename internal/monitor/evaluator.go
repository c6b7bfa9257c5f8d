package monitor

import (
	"log/slog"
	"sync"
	"time"

	"github.com/warden-iot/warden/internal/alarm"
)

// Evaluator is one kind of evaluation a partition runs on its devices'
// records: the alarm rules, the maintenance plans, and whatever comes next.
// Each partition has its own instance, called from the partition's goroutine
// only, in the order of the partition's records; so an evaluator needs no
// locks for its per-device state. The partition stores the alarm changes
// each round produced (Changes) in one transaction and then tells the
// notifier; it takes a snapshot of every evaluator before each save.
type Evaluator interface {
	// Observe evaluates the values a device sent for one time.
	Observe(dev alarm.DeviceFacts, at time.Time, values map[string]float64)
	// Presence evaluates a device's connection or disconnection.
	Presence(dev alarm.DeviceFacts, at time.Time, connected bool)
	// Forget drops a deleted device, clearing its alarms.
	Forget(deviceID string, at time.Time)
	// Tick runs the time-based checks at at.
	Tick(at time.Time)
	// Changes hands over the alarm changes made since the last call.
	Changes() []alarm.Change
	// Snapshot keeps the evaluator's state for the next save.
	Snapshot()
}

// ruleEval is a partition's alarm rules (package alarm), its Evaluator.
type ruleEval struct {
	log *slog.Logger
	now func() time.Time
	ev  *alarm.Evaluator
	// devices is the latest facts of each device the partition has seen:
	// the alarm's tenant and site come from there.
	devices map[string]alarm.DeviceFacts
	changes []alarm.Change

	mu   sync.Mutex
	snap alarm.Snapshot // the state as of the last snapshot
}

// Observe implements Evaluator.
func (r *ruleEval) Observe(dev alarm.DeviceFacts, at time.Time, values map[string]float64) {
	r.devices[dev.ID] = dev
	r.add(r.ev.Observe(dev, at, values))
}

// Presence implements Evaluator.
func (r *ruleEval) Presence(dev alarm.DeviceFacts, at time.Time, connected bool) {
	r.devices[dev.ID] = dev
	if connected {
		r.add(r.ev.Connected(dev, at))
		return
	}
	r.add(r.ev.Disconnected(dev, at))
}

// Forget implements Evaluator.
func (r *ruleEval) Forget(deviceID string, at time.Time) {
	r.add(r.ev.Forget(deviceID, at))
	delete(r.devices, deviceID)
}

// Tick implements Evaluator.
func (r *ruleEval) Tick(at time.Time) { r.add(r.ev.Tick(at)) }

// setRules takes new rules; alarms of removed or changed rules clear.
func (r *ruleEval) setRules(rules []alarm.Rule) {
	trs, err := r.ev.SetRules(rules, r.now())
	if err != nil {
		r.log.Error("monitor: rules refused", "err", err)
	}
	r.add(trs)
}

// Changes implements Evaluator.
func (r *ruleEval) Changes() []alarm.Change {
	c := r.changes
	r.changes = nil
	return c
}

// Snapshot implements Evaluator.
func (r *ruleEval) Snapshot() {
	snap := r.ev.State()
	r.mu.Lock()
	r.snap = snap
	r.mu.Unlock()
}

// add turns transitions into alarm changes, with the device's tenant and
// site as last seen.
func (r *ruleEval) add(trs []alarm.Transition) {
	for _, t := range trs {
		f, ok := r.devices[t.DeviceID]
		tenant := tenantOf(f.TenantPath)
		if !ok || tenant == "" {
			tenant = t.TenantID
		}
		r.changes = append(r.changes, alarm.Change{Kind: string(t.Kind), TenantID: tenant, RuleID: t.RuleID,
			DeviceID: t.DeviceID, SiteID: f.SiteID, Alarm: alarm.KindRule, Severity: string(t.Severity),
			Message: t.Message, Value: t.Value, At: t.At, By: "auto"})
	}
}
