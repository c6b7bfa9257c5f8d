package monitor_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/clock/clocktest"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/monitor"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/simulate"
	"github.com/warden-iot/warden/internal/store/enginetest"
	"github.com/warden-iot/warden/internal/store/sqlite"
	"github.com/warden-iot/warden/internal/telemetry"
	"github.com/warden-iot/warden/internal/tenancy"
)

// monday is the first day of the tests' simulated world (a Monday).
var monday = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// never is a ticker period no test's clock reaches.
const never = 100 * 365 * 24 * time.Hour

// env is a monitor on a real SQLite store, on a simulated clock, with the
// tenants root and acme (below root).
type env struct {
	t    *testing.T
	st   *sqlite.Store
	keys *keyring.Keyring
	m    *monitor.Monitor
	// stopped: m was closed (Close must not be called twice).
	stopped bool
	// shards is the number of partitions of the next start (0: 2).
	shards int

	clock *clocktest.Fake

	mu     sync.Mutex
	events []event // every onAlarm, across restarts
}

// event is one alarm change the monitor handed on.
type event struct {
	Rule, Kind string
	At         time.Time
	AlarmID    int64
}

func (e event) String() string {
	return fmt.Sprintf("%s %s at %s (#%d)", e.Rule, e.Kind, e.At.Format("Mon 02 15:04:05"), e.AlarmID)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st := enginetest.SQLite(t)
	keys := enginetest.WithKeyring(t, st)
	if err := st.CreateTenant(t.Context(), tenancy.Tenant{ID: "acme", ParentID: tenancy.RootTenantID, Name: "Acme", CreatedAt: monday}); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, st: st, keys: keys, clock: clocktest.New(monday)}
}

// device registers a device of acme.
func (e *env) device(id, model string) {
	e.t.Helper()
	d := registry.Device{ID: id, TenantID: "acme", Status: registry.DeviceEnabled, PrimaryKey: make([]byte, 32),
		SecondaryKey: make([]byte, 32), CreatedAt: monday, Info: registry.DeviceInfo{Model: model}}
	if err := e.st.CreateDevice(e.t.Context(), d); err != nil {
		e.t.Fatal(err)
	}
}

// rule stores an enabled warning rule of acme; spec is the rule's JSON
// without id, tenant, name and severity.
func (e *env) rule(id, spec string) {
	e.t.Helper()
	full := `{"severity": "warning", ` + strings.TrimPrefix(strings.TrimSpace(spec), "{")
	r := alarm.StoredRule{ID: id, TenantID: "acme", Name: id, Enabled: true, Spec: []byte(full), CreatedAt: monday, UpdatedAt: monday}
	if _, err := monitor.RuleOf(r); err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.CreateAlarmRule(e.t.Context(), r); err != nil {
		e.t.Fatal(err)
	}
}

// plan stores a tenant's maintenance plan.
func (e *env) plan(tenant, model, spec string) {
	e.t.Helper()
	if err := e.st.SetMaintenancePlan(e.t.Context(), alarm.MaintenancePlan{TenantID: tenant, Model: model, Spec: []byte(spec), UpdatedAt: monday}); err != nil {
		e.t.Fatal(err)
	}
}

// setClock sets the clock to t. The monitor's own tickers are far off, so
// only tick runs its time-based checks.
func (e *env) setClock(t time.Time) { e.clock.Set(t) }

// start starts a monitor at at (after a Close, a new one on the same
// store: a restart).
func (e *env) start(at time.Time) {
	e.t.Helper()
	e.setClock(at)
	onAlarm := func(_ context.Context, a alarm.Record, kind string) {
		at := a.LastAt
		if kind == "cleared" {
			at = a.ClearedAt
		}
		e.mu.Lock()
		e.events = append(e.events, event{Rule: a.RuleID, Kind: kind, At: at, AlarmID: a.ID})
		e.mu.Unlock()
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// The real tickers never fire within a test: time is what the test
	// says (TickNow).
	shards := e.shards
	if shards == 0 {
		shards = 2
	}
	e.m = monitor.New(e.st, monitor.Config{Shards: shards, TickEvery: never, SaveEvery: never}, onAlarm, log, e.clock)
	if err := e.m.Start(e.t.Context()); err != nil {
		e.t.Fatal(err)
	}
	m := e.m
	e.t.Cleanup(func() {
		if e.m == m && !e.stopped {
			m.Close(context.Background())
		}
	})
	e.stopped = false
}

// stop closes the monitor, saving its state.
func (e *env) stop() {
	e.t.Helper()
	e.stopped = true
	if err := e.m.Close(e.t.Context()); err != nil {
		e.t.Fatal(err)
	}
}

// send hands the monitor one message of acme's device with every value at
// at.
func (e *env) send(device string, at time.Time, values map[string]float64) {
	pts := make([]telemetry.Point, 0, len(values))
	for k, v := range values {
		pts = append(pts, telemetry.Point{Metric: k, TS: at, Value: v})
	}
	e.m.Observe(e.t.Context(), []telemetry.Message{{TenantID: "acme", DeviceID: device, ReceivedAt: at, Points: pts}})
}

// tick sets the clock to at and runs the monitor's time-based checks.
func (e *env) tick(at time.Time) {
	e.t.Helper()
	e.setClock(at)
	if err := e.m.TickNow(e.t.Context(), at); err != nil {
		e.t.Fatal(err)
	}
}

// sample is what a simulated machine reported at a time.
type sample struct {
	At     time.Time
	Values map[string]float64
}

// drive samples machine every step in [from, to), lets edit change or
// drop (nil) what is sent, sends it, and ticks every tickEvery (0: every
// sample). It returns what was sent.
func (e *env) drive(device string, machine *simulate.Machine, from, to time.Time, step, tickEvery time.Duration,
	edit func(at time.Time, v map[string]float64) map[string]float64) []sample {
	e.t.Helper()
	var out []sample
	var lastTick time.Time
	for at := from; at.Before(to); at = at.Add(step) {
		v := machine.Sample(at)
		if edit != nil {
			v = edit(at, v)
		}
		if v != nil {
			e.send(device, at, v)
			out = append(out, sample{At: at, Values: v})
		}
		if tickEvery == 0 || at.Sub(lastTick) >= tickEvery {
			e.tick(at)
			lastTick = at
		}
	}
	return out
}

// alarms returns the device's stored alarms, by raise time.
func (e *env) alarms(device string) []alarm.Record {
	e.t.Helper()
	if err := e.m.Flush(e.t.Context()); err != nil {
		e.t.Fatal(err)
	}
	as, err := e.st.ListAlarms(e.t.Context(), alarm.Filter{DeviceIDs: []string{device}})
	if err != nil {
		e.t.Fatal(err)
	}
	slices.SortFunc(as, func(a, b alarm.Record) int {
		if c := a.RaisedAt.Compare(b.RaisedAt); c != 0 {
			return c
		}
		return strings.Compare(a.RuleID, b.RuleID)
	})
	return as
}

// span is an expected alarm: raised and (unless zero) cleared.
type span struct {
	Rule            string
	Raised, Cleared time.Time
}

func (s span) String() string {
	c := "still active"
	if !s.Cleared.IsZero() {
		c = "cleared " + s.Cleared.Format("Mon 02 15:04:05")
	}
	return fmt.Sprintf("%s raised %s, %s", s.Rule, s.Raised.Format("Mon 02 15:04:05"), c)
}

// expectAlarms checks the device's stored alarms against want, each time
// within tol, and that onAlarm was told exactly one "raised" and (if
// cleared) one "cleared" for each. It logs expected and observed times.
func (e *env) expectAlarms(device string, tol time.Duration, want ...span) {
	e.t.Helper()
	got := e.alarms(device)
	if len(got) != len(want) {
		for _, a := range got {
			e.t.Logf("got: %s", span{a.RuleID, a.RaisedAt, a.ClearedAt})
		}
		e.t.Fatalf("%d alarms stored, want %d: %v", len(got), len(want), want)
	}
	for i, w := range want {
		a := got[i]
		g := span{a.RuleID, a.RaisedAt, a.ClearedAt}
		e.t.Logf("expected %s\n\tobserved %s (%s / %s off)", w, g, a.RaisedAt.Sub(w.Raised), a.ClearedAt.Sub(w.Cleared))
		if a.RuleID != w.Rule || a.Kind == "" {
			e.t.Errorf("alarm %d is of rule %q, want %q", i, a.RuleID, w.Rule)
		}
		if d := a.RaisedAt.Sub(w.Raised); d.Abs() > tol {
			e.t.Errorf("%s: raised %s, want %s (off by %s)", w.Rule, a.RaisedAt, w.Raised, d)
		}
		switch {
		case w.Cleared.IsZero() && a.State != alarm.StateActive:
			e.t.Errorf("%s: %s at %s, want still active", w.Rule, a.State, a.ClearedAt)
		case !w.Cleared.IsZero() && a.State != alarm.StateCleared:
			e.t.Errorf("%s: still active, want cleared at %s", w.Rule, w.Cleared)
		case !w.Cleared.IsZero():
			if d := a.ClearedAt.Sub(w.Cleared); d.Abs() > tol {
				e.t.Errorf("%s: cleared %s, want %s (off by %s)", w.Rule, a.ClearedAt, w.Cleared, d)
			}
		}
		if a.Retriggers != 0 {
			e.t.Errorf("%s: %d retriggers", w.Rule, a.Retriggers)
		}
		var raised, cleared int
		for _, ev := range e.eventsOf(a.ID) {
			switch ev.Kind {
			case "raised":
				raised++
			case "cleared":
				cleared++
			default:
				e.t.Errorf("%s: unexpected event %s", w.Rule, ev)
			}
		}
		wantCleared := 0
		if !w.Cleared.IsZero() {
			wantCleared = 1
		}
		if raised != 1 || cleared != wantCleared {
			e.t.Errorf("%s: told %d raises and %d clears, want 1 and %d: %v", w.Rule, raised, cleared, wantCleared, e.eventsOf(a.ID))
		}
	}
}

func (e *env) eventsOf(alarmID int64) []event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []event
	for _, ev := range e.events {
		if ev.AlarmID == alarmID {
			out = append(out, ev)
		}
	}
	return out
}

// maintenance is the device's maintenance status with the clock at at.
func (e *env) maintenance(device string, at time.Time) monitor.MaintenanceStatus {
	e.t.Helper()
	e.setClock(at)
	st, err := e.m.Maintenance(e.t.Context(), device)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// expectSpans is the reference for sample-and-hold alarms: given, for each
// sample time, whether the raise condition holds and whether the clear
// condition holds, it returns the alarms a rule with minDur raises. It
// follows package alarm's documented lifecycle, not its code: pending from
// the first sample that holds, raised at that time + minDur unless a sample
// before then (or exactly then) does not hold, cleared at the first sample
// that meets the clear condition.
func expectSpans(rule string, times []time.Time, raise, clear []bool, minDur time.Duration) []span {
	var out []span
	const (
		idle = iota
		pending
		active
	)
	phase, since := idle, time.Time{}
	for i, t := range times {
		if phase == pending {
			due := since.Add(minDur)
			switch {
			case t.After(due):
				out = append(out, span{Rule: rule, Raised: due})
				phase = active
			case !raise[i]:
				phase = idle
				continue
			case t.Equal(due):
				out = append(out, span{Rule: rule, Raised: due})
				phase = active
				continue
			}
		}
		switch phase {
		case idle:
			if raise[i] {
				if minDur == 0 {
					out = append(out, span{Rule: rule, Raised: t})
					phase = active
				} else {
					phase, since = pending, t
				}
			}
		case active:
			if clear[i] {
				out[len(out)-1].Cleared = t
				phase = idle
			}
		}
	}
	return out
}
