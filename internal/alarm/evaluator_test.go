package alarm_test

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/alarm"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var pump = alarm.DeviceFacts{ID: "pump-1", TenantPath: "root/acme/acme-north", SiteID: "site-a", Model: "VP-200"}

func mins(m float64) time.Duration { return time.Duration(m * float64(time.Minute)) }

// event is one call on the evaluator at t0+at and the transitions it must
// return, written "kind@offset v=value" plus " r=n" when retriggered.
type event struct {
	at   time.Duration
	obs  map[string]float64 // Observe
	tick bool               // Tick
	conn string             // "up": Connected, "down": Disconnected
	dev  *alarm.DeviceFacts // default pump
	want []string
}

func obs(at time.Duration, values map[string]float64, want ...string) event {
	return event{at: at, obs: values, want: want}
}

func tick(at time.Duration, want ...string) event { return event{at: at, tick: true, want: want} }
func up(at time.Duration, want ...string) event   { return event{at: at, conn: "up", want: want} }
func down(at time.Duration, want ...string) event { return event{at: at, conn: "down", want: want} }

func (ev event) run(e *alarm.Evaluator) []alarm.Transition {
	dev := pump
	if ev.dev != nil {
		dev = *ev.dev
	}
	now := t0.Add(ev.at)
	switch {
	case ev.tick:
		return e.Tick(now)
	case ev.conn == "up":
		return e.Connected(dev, now)
	case ev.conn == "down":
		return e.Disconnected(dev, now)
	default:
		return e.Observe(dev, now, ev.obs)
	}
}

func short(ts []alarm.Transition) []string {
	var out []string
	for _, t := range ts {
		s := fmt.Sprintf("%s@%s v=%g", t.Kind, t.At.Sub(t0), t.Value)
		if t.Retriggers > 0 {
			s += fmt.Sprintf(" r=%d", t.Retriggers)
		}
		out = append(out, s)
	}
	return out
}

func play(t *testing.T, e *alarm.Evaluator, events []event) {
	t.Helper()
	for n, ev := range events {
		got := short(ev.run(e))
		if !slices.Equal(got, ev.want) {
			t.Errorf("event %d at %s: got %q, want %q", n, ev.at, got, ev.want)
		}
	}
}

func rule(id string, set func(r *alarm.Rule)) alarm.Rule {
	r := alarm.Rule{
		ID: id, TenantID: "acme", Name: "rule " + id, Severity: alarm.Warning,
		Scope: alarm.Scope{Model: "VP-200"}, Enabled: true,
	}
	set(&r)
	return r
}

func newEval(t *testing.T, rules ...alarm.Rule) *alarm.Evaluator {
	t.Helper()
	e, err := alarm.New(rules)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

type v = map[string]float64

func TestEvaluatorConditions(t *testing.T) {
	tests := []struct {
		name   string
		rule   alarm.Rule
		events []event
	}{
		{
			name: "threshold above: min duration, hysteresis, retriggers",
			rule: rule("hot", func(r *alarm.Rule) {
				r.Threshold = &alarm.Threshold{Metric: "outlet_temp", Op: alarm.Above, Value: new(90.0),
					Hysteresis: 2, MinDuration: alarm.Duration(5 * time.Minute)}
			}),
			events: []event{
				obs(0, v{"outlet_temp": 85}),
				obs(mins(1), v{"outlet_temp": 91}), // pending from 1m
				obs(mins(2), v{"outlet_temp": 92}),
				obs(mins(4), v{"outlet_temp": 95}),
				tick(mins(5.99)),
				obs(mins(6), v{"outlet_temp": 96}, "raised@6m0s v=96"), // exactly 1m + 5m
				obs(mins(7), v{"outlet_temp": 89}),                     // below the limit, above limit−hysteresis
				obs(mins(8), v{"outlet_temp": 91}, "retriggered@8m0s v=91 r=1"),
				obs(mins(8.5), v{"outlet_temp": 93}), // still above: no new retrigger
				obs(mins(9), v{"outlet_temp": 88.5}),
				obs(mins(10), v{"outlet_temp": 92}, "retriggered@10m0s v=92 r=2"),
				obs(mins(11), v{"outlet_temp": 88}, "cleared@11m0s v=88 r=2"), // at limit−hysteresis
				obs(mins(12), v{"outlet_temp": 95}),                           // pending again
				tick(mins(16.9)),
				tick(mins(17.5), "raised@17m0s v=95"), // the tick is late, At is exact
				tick(mins(30)),
			},
		},
		{
			name: "threshold: a dip resets the duration, a late sample catches up under the held value",
			rule: rule("hot", func(r *alarm.Rule) {
				r.Threshold = &alarm.Threshold{Metric: "t", Op: alarm.Above, Value: new(90.0),
					Hysteresis: 2, MinDuration: alarm.Duration(5 * time.Minute)}
			}),
			events: []event{
				obs(mins(1), v{"t": 91}),
				obs(mins(3), v{"t": 90}), // not above: pending ends
				obs(mins(4), v{"t": 91}), // pending from 4m
				tick(mins(8.9)),
				obs(mins(12), v{"t": 80}, "raised@9m0s v=91", "cleared@12m0s v=80"),
			},
		},
		{
			name: "threshold below, no duration",
			rule: rule("low", func(r *alarm.Rule) {
				r.Threshold = &alarm.Threshold{Metric: "pressure", Op: alarm.Below, Value: new(1.0), Hysteresis: 0.2}
			}),
			events: []event{
				obs(0, v{"pressure": 1}),
				obs(mins(1), v{"pressure": 0.9}, "raised@1m0s v=0.9"),
				obs(mins(2), v{"pressure": 1.1}),
				obs(mins(3), v{"pressure": 1.2}, "cleared@3m0s v=1.2"),
			},
		},
		{
			name: "threshold outside a band",
			rule: rule("band", func(r *alarm.Rule) {
				r.Threshold = &alarm.Threshold{Metric: "vac", Op: alarm.Outside, Low: new(2.0), High: new(5.0), Hysteresis: 0.5}
			}),
			events: []event{
				obs(0, v{"vac": 2}), // bounds are inside the band
				obs(mins(1), v{"vac": 5}),
				obs(mins(2), v{"vac": 5.5}, "raised@2m0s v=5.5"),
				obs(mins(3), v{"vac": 4.8}), // back in the band, not in the clear band 2.5…4.5
				obs(mins(4), v{"vac": 1.9}, "retriggered@4m0s v=1.9 r=1"),
				obs(mins(5), v{"vac": 4.5}, "cleared@5m0s v=4.5 r=1"),
				obs(mins(6), v{"vac": 1}, "raised@6m0s v=1"),
			},
		},
		{
			name: "threshold inside a band",
			rule: rule("band", func(r *alarm.Rule) {
				r.Threshold = &alarm.Threshold{Metric: "rpm", Op: alarm.Inside, Low: new(100.0), High: new(200.0), Hysteresis: 10}
			}),
			events: []event{
				obs(0, v{"rpm": 99}),
				obs(mins(1), v{"rpm": 100}, "raised@1m0s v=100"),
				obs(mins(2), v{"rpm": 95}),
				obs(mins(3), v{"rpm": 89}, "cleared@3m0s v=89"),
			},
		},
		{
			name: "rate of change up, with hysteresis",
			rule: rule("rise", func(r *alarm.Rule) {
				r.RateOfChange = &alarm.RateOfChange{Metric: "temp", MaxRatePerMinute: 2, Direction: alarm.Up, Hysteresis: 0.5}
			}),
			events: []event{
				obs(0, v{"temp": 10}),
				obs(mins(1), v{"temp": 11}),
				obs(mins(2), v{"temp": 14}, "raised@2m0s v=3"),
				obs(mins(2), v{"temp": 20}),    // same time: no rate
				obs(mins(1.5), v{"temp": 0}),   // older: ignored
				obs(mins(3), v{"temp": 15.75}), // 1.75/min: neither raise nor clear
				obs(mins(4), v{"temp": 18}, "retriggered@4m0s v=2.25 r=1"),
				obs(mins(5), v{"temp": 17}, "cleared@5m0s v=-1 r=1"), // falling is within an up limit
				obs(mins(6), v{"temp": 10}),
			},
		},
		{
			name: "rate of change either way, with min duration",
			rule: rule("swing", func(r *alarm.Rule) {
				r.RateOfChange = &alarm.RateOfChange{Metric: "p", MaxRatePerMinute: 1, MinDuration: alarm.Duration(time.Minute)}
			}),
			events: []event{
				obs(0, v{"p": 0}),
				obs(mins(0.5), v{"p": -1}), // −2/min: pending from 30s
				obs(mins(1), v{"p": -2}),
				obs(mins(1.5), v{"p": -3}, "raised@1m30s v=-2"),
				obs(mins(2.5), v{"p": -3}, "cleared@2m30s v=0"),
			},
		},
		{
			name: "expression over two metrics from separate messages",
			rule: rule("dt", func(r *alarm.Rule) {
				r.Expression = &alarm.Expression{Expr: "outlet_temp - inlet_temp > 40 && pump_on == 1",
					MinDuration: alarm.Duration(2 * time.Minute)}
			}),
			events: []event{
				obs(0, v{"outlet_temp": 90, "pump_on": 1}), // inlet_temp unknown: not evaluated
				tick(mins(10)), // still nothing pending
				obs(mins(10.5), v{"inlet_temp": 40, "other": 3}), // 50 > 40: pending
				obs(mins(11), v{"outlet_temp": 91}),
				tick(mins(12.5), "raised@12m30s v=0"),
				obs(mins(13), v{"pump_on": 0}, "cleared@13m0s v=0"),
				obs(mins(14), v{"pump_on": 1, "inlet_temp": 60}),
			},
		},
		{
			name: "expression with dotted and quoted metric names",
			rule: rule("motor", func(r *alarm.Rule) {
				r.Expression = &alarm.Expression{Expr: `motor.current > 3 && $env["inlet-temp"] < 50`}
			}),
			events: []event{
				obs(0, v{"motor.current": 4}),
				obs(mins(1), v{"inlet-temp": 20}, "raised@1m0s v=0"),
				obs(mins(2), v{"motor.current": 2, "inlet-temp": 20}, "cleared@2m0s v=0"),
			},
		},
		{
			name: "stale",
			rule: rule("quiet", func(r *alarm.Rule) {
				r.Stale = &alarm.Stale{Metric: "temp", After: alarm.Duration(10 * time.Minute)}
			}),
			events: []event{
				obs(0, v{"temp": 20}),
				tick(mins(9)),
				tick(mins(10), "raised@10m0s v=20"),
				tick(mins(20)),
				obs(mins(21), v{"temp": 21}, "cleared@21m0s v=21"),
				obs(mins(22), v{"pressure": 1}), // another metric does not count
				tick(mins(30.9)),
				tick(mins(31), "raised@31m0s v=21"),
			},
		},
		{
			name: "stale: the timer starts when the device is first seen",
			rule: rule("quiet", func(r *alarm.Rule) {
				r.Stale = &alarm.Stale{Metric: "temp", After: alarm.Duration(10 * time.Minute)}
			}),
			events: []event{
				obs(mins(5), v{"pressure": 1}),
				tick(mins(15), "raised@15m0s v=0"),
			},
		},
		{
			name: "offline: disconnect, reconnect, messages",
			rule: rule("gone", func(r *alarm.Rule) {
				r.Offline = &alarm.Offline{After: alarm.Duration(5 * time.Minute)}
			}),
			events: []event{
				up(0),
				obs(mins(1), v{"temp": 1}),
				tick(mins(10)), // connected: silence is fine
				down(mins(12)),
				tick(mins(16.9)),
				tick(mins(17), "raised@17m0s v=0"),
				up(mins(20), "cleared@20m0s v=0"),
				down(mins(21)),
				obs(mins(23), v{"temp": 1}), // a message restarts the timer
				tick(mins(27.9)),
				tick(mins(28.1), "raised@28m0s v=0"),
				obs(mins(30), v{"temp": 2}, "cleared@30m0s v=0"),
				up(mins(20.5)), // older than the last connection event: ignored
				tick(mins(40), "raised@35m0s v=0"),
			},
		},
		{
			name: "offline: a device that only sends messages",
			rule: rule("gone", func(r *alarm.Rule) {
				r.Offline = &alarm.Offline{After: alarm.Duration(time.Hour)}
			}),
			events: []event{
				obs(0, v{"volume": 12.5}),
				obs(mins(30), v{"volume": 12.6}),
				tick(mins(89)),
				tick(mins(90), "raised@1h30m0s v=0"),
				obs(mins(95), v{"volume": 12.7}, "cleared@1h35m0s v=0"),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			play(t, newEval(t, tt.rule), tt.events)
		})
	}
}

func TestTransitionMessages(t *testing.T) {
	e := newEval(t,
		rule("hot", func(r *alarm.Rule) {
			r.Severity = alarm.Critical
			r.Threshold = &alarm.Threshold{Metric: "outlet_temp", Op: alarm.Above, Value: new(90.0),
				Hysteresis: 2, MinDuration: alarm.Duration(5 * time.Minute)}
		}),
		rule("dt", func(r *alarm.Rule) {
			r.Expression = &alarm.Expression{Expr: "outlet_temp - inlet_temp > 40"}
		}),
	)
	var got []alarm.Transition
	got = append(got, e.Observe(pump, t0, v{"outlet_temp": 92.4, "inlet_temp": 30})...)
	got = append(got, e.Tick(t0.Add(5*time.Minute))...)
	got = append(got, e.Observe(pump, t0.Add(6*time.Minute), v{"outlet_temp": 87.5, "inlet_temp": 50})...)
	want := []alarm.Transition{
		{RuleID: "dt", TenantID: "acme", DeviceID: "pump-1", Kind: alarm.Raised, At: t0, Severity: alarm.Warning,
			Message: "outlet_temp - inlet_temp > 40 true (inlet_temp=30, outlet_temp=92.4)"},
		{RuleID: "hot", TenantID: "acme", DeviceID: "pump-1", Kind: alarm.Raised, At: t0.Add(5 * time.Minute),
			Value: 92.4, Severity: alarm.Critical, Message: "outlet_temp 92.4 above 90 for 5m0s"},
		{RuleID: "dt", TenantID: "acme", DeviceID: "pump-1", Kind: alarm.Cleared, At: t0.Add(6 * time.Minute),
			Severity: alarm.Warning, Message: "outlet_temp - inlet_temp > 40 no longer true (inlet_temp=50, outlet_temp=87.5)"},
		{RuleID: "hot", TenantID: "acme", DeviceID: "pump-1", Kind: alarm.Cleared, At: t0.Add(6 * time.Minute),
			Value: 87.5, Severity: alarm.Critical, Message: "outlet_temp 87.5 back at or below 88 (above 90, hysteresis 2)"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", dump(got), dump(want))
	}
}

func dump(ts []alarm.Transition) string {
	b, _ := json.MarshalIndent(ts, "", "  ")
	return string(b)
}

func TestObserveIgnoresBadAndOldSamples(t *testing.T) {
	e := newEval(t, rule("hot", func(r *alarm.Rule) {
		r.Threshold = &alarm.Threshold{Metric: "t", Op: alarm.Above, Value: new(90.0)}
	}))
	play(t, e, []event{
		obs(mins(2), v{"t": 95}, "raised@2m0s v=95"),
		obs(mins(1), v{"t": 10}), // older than the last sample
		obs(mins(3), v{"t": math.NaN()}),
		obs(mins(4), v{"t": 10}, "cleared@4m0s v=10"),
	})
}

func TestScopeMatching(t *testing.T) {
	rules := []alarm.Rule{
		rule("by-device", func(r *alarm.Rule) { r.Scope = alarm.Scope{DeviceID: "pump-1"} }),
		rule("by-site", func(r *alarm.Rule) { r.Scope = alarm.Scope{SiteID: "site-b"} }),
		rule("by-model", func(r *alarm.Rule) { r.Scope = alarm.Scope{Model: "VP-200"} }),
		rule("operator-model", func(r *alarm.Rule) { r.TenantID = "root"; r.Scope = alarm.Scope{Model: "VP-200"} }),
		rule("other-tenant", func(r *alarm.Rule) { r.TenantID = "globex"; r.Scope = alarm.Scope{Model: "VP-200"} }),
		rule("disabled", func(r *alarm.Rule) { r.Enabled = false }),
	}
	for i := range rules {
		rules[i].Threshold = &alarm.Threshold{Metric: "t", Op: alarm.Above, Value: new(0.0)}
	}
	devices := []alarm.DeviceFacts{
		pump,
		{ID: "pump-2", TenantPath: "root/acme", SiteID: "site-b", Model: "VP-200"},
		{ID: "pump-3", TenantPath: "root/acme", SiteID: "site-b", Model: "CM-1"},
		{ID: "pump-4", TenantPath: "root/globex", SiteID: "site-b", Model: "VP-200"},
		{ID: "pump-1", TenantPath: "root/globex", Model: "X"}, // same id, other tenant's view
	}
	want := map[string][]string{
		"pump-1/root/acme/acme-north": {"by-device", "by-model", "operator-model"},
		"pump-2/root/acme":            {"by-model", "by-site", "operator-model"},
		"pump-3/root/acme":            {"by-site"},
		"pump-4/root/globex":          {"operator-model", "other-tenant"},
		"pump-1/root/globex":          nil,
	}
	for _, dev := range devices {
		key := dev.ID + "/" + dev.TenantPath
		e := newEval(t, rules...)
		var got []string
		for _, tr := range e.Observe(dev, t0, v{"t": 1}) {
			got = append(got, tr.RuleID)
		}
		if !slices.Equal(got, want[key]) {
			t.Errorf("%s: evaluator raised %q, want %q", key, got, want[key])
		}
		var matched []string
		for _, r := range rules {
			if r.Enabled && r.Matches(dev) {
				matched = append(matched, r.ID)
			}
		}
		slices.Sort(matched)
		if !slices.Equal(matched, want[key]) {
			t.Errorf("%s: Rule.Matches gives %q, want %q", key, matched, want[key])
		}
	}
}

func TestDeviceMovingOutOfScopeClears(t *testing.T) {
	e := newEval(t, rule("site", func(r *alarm.Rule) {
		r.Scope = alarm.Scope{SiteID: "site-a"}
		r.Threshold = &alarm.Threshold{Metric: "t", Op: alarm.Above, Value: new(0.0)}
	}))
	moved := pump
	moved.SiteID = "site-z"
	play(t, e, []event{
		obs(0, v{"t": 1}, "raised@0s v=1"),
		{at: mins(1), obs: v{"t": 1}, dev: &moved, want: []string{"cleared@1m0s v=0"}},
	})
}

func TestSetRulesKeepsStateOfUnchangedRules(t *testing.T) {
	hot := rule("hot", func(r *alarm.Rule) {
		r.Threshold = &alarm.Threshold{Metric: "t", Op: alarm.Above, Value: new(90.0), MinDuration: alarm.Duration(5 * time.Minute)}
	})
	cold := rule("cold", func(r *alarm.Rule) {
		r.Threshold = &alarm.Threshold{Metric: "t", Op: alarm.Above, Value: new(50.0)}
	})
	gone := rule("gone", func(r *alarm.Rule) {
		r.Threshold = &alarm.Threshold{Metric: "t", Op: alarm.Above, Value: new(10.0)}
	})
	off := rule("off", func(r *alarm.Rule) {
		r.Threshold = &alarm.Threshold{Metric: "t", Op: alarm.Above, Value: new(20.0)}
	})
	e := newEval(t, hot, cold, gone, off)
	play(t, e, []event{obs(0, v{"t": 95}, "raised@0s v=95", "raised@0s v=95", "raised@0s v=95")})

	// hot: renamed and made critical, same condition: stays pending.
	// cold: condition changed: its alarm clears. gone: removed. off: disabled.
	hot.Name, hot.Severity = "renamed", alarm.Critical
	cold.Threshold.Value = new(60.0)
	off.Enabled = false
	got, err := e.SetRules([]alarm.Rule{hot, cold, off}, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, tr := range got {
		msgs = append(msgs, tr.RuleID+": "+tr.Message)
	}
	want := []string{"cold: cleared: rule changed", "gone: cleared: rule removed", "off: cleared: rule disabled"}
	if !slices.Equal(msgs, want) {
		t.Errorf("SetRules returned %q, want %q", msgs, want)
	}
	raised := e.Tick(t0.Add(5 * time.Minute))
	if len(raised) != 1 || raised[0].RuleID != "hot" || raised[0].Severity != alarm.Critical || !raised[0].At.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("after SetRules, Tick returned %s; want hot raised at 5m as critical", dump(raised))
	}
	// cold starts afresh: the next hot sample raises it again.
	play(t, e, []event{obs(mins(6), v{"t": 95}, "raised@6m0s v=95")})

	if _, err := e.SetRules([]alarm.Rule{hot, hot}, t0); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("duplicate ids: got error %v", err)
	}
}

func TestStateRestoreMidDuration(t *testing.T) {
	rules := []alarm.Rule{
		rule("hot", func(r *alarm.Rule) {
			r.Threshold = &alarm.Threshold{Metric: "t", Op: alarm.Above, Value: new(90.0), Hysteresis: 5,
				MinDuration: alarm.Duration(5 * time.Minute)}
		}),
		rule("rise", func(r *alarm.Rule) {
			r.RateOfChange = &alarm.RateOfChange{Metric: "t", MaxRatePerMinute: 10}
		}),
		rule("dt", func(r *alarm.Rule) {
			r.Expression = &alarm.Expression{Expr: "t - inlet > 40", MinDuration: alarm.Duration(3 * time.Minute)}
		}),
		rule("quiet", func(r *alarm.Rule) {
			r.Stale = &alarm.Stale{Metric: "inlet", After: alarm.Duration(20 * time.Minute)}
		}),
		rule("gone", func(r *alarm.Rule) {
			r.Offline = &alarm.Offline{After: alarm.Duration(15 * time.Minute)}
		}),
	}
	before := []event{
		up(0),
		obs(0, v{"t": 80, "inlet": 45}),
		obs(mins(1), v{"t": 91}, "raised@1m0s v=11"), // rise; hot and dt pending from 1m
		down(mins(2)),
	}
	after := []event{
		tick(mins(3.5)),
		obs(mins(4), v{"t": 94}, "raised@4m0s v=0", "cleared@4m0s v=1"), // dt: 1m + 3m; rise
		tick(mins(6), "raised@6m0s v=94"),                               // hot: 1m + 5m
		obs(mins(7), v{"t": 84}, "cleared@7m0s v=0", "cleared@7m0s v=84"),
		tick(mins(30), "raised@20m0s v=45", "raised@22m0s v=0"), // quiet; gone: 7m + 15m
	}

	straight := newEval(t, rules...)
	play(t, straight, before)
	snap := straight.State()
	b, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	var decoded alarm.Snapshot
	if err := json.Unmarshal(b, &decoded); err != nil {
		t.Fatal(err)
	}
	restored := newEval(t, rules...)
	if got, err := restored.Restore(decoded, t0.Add(3*time.Minute)); err != nil || len(got) != 0 {
		t.Fatalf("Restore: %v, %v", got, err)
	}
	b2, _ := json.Marshal(restored.State())
	if string(b) != string(b2) {
		t.Errorf("state changed in a round trip:\n%s\n%s", b, b2)
	}
	t.Run("straight", func(t *testing.T) { play(t, straight, after) })
	t.Run("restored", func(t *testing.T) { play(t, restored, after) })
}

func TestRestoreClearsAlarmsOfChangedRules(t *testing.T) {
	hot := rule("hot", func(r *alarm.Rule) {
		r.Threshold = &alarm.Threshold{Metric: "t", Op: alarm.Above, Value: new(90.0)}
	})
	e := newEval(t, hot)
	play(t, e, []event{obs(0, v{"t": 95}, "raised@0s v=95")})
	snap := e.State()

	hot.Threshold.Value = new(99.0)
	changed := newEval(t, hot)
	got, err := changed.Restore(snap, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Kind != alarm.Cleared || got[0].Message != "cleared: rule changed" || got[0].Severity != alarm.Warning {
		t.Errorf("Restore returned %s", dump(got))
	}
	play(t, changed, []event{obs(mins(61), v{"t": 100}, "raised@1h1m0s v=100")})

	bad := snap
	bad.Devices = append(slices.Clone(snap.Devices), snap.Devices[0])
	if _, err := changed.Restore(bad, t0); err == nil {
		t.Error("Restore accepted a device twice")
	}
}

func TestForget(t *testing.T) {
	e := newEval(t, rule("hot", func(r *alarm.Rule) {
		r.Threshold = &alarm.Threshold{Metric: "t", Op: alarm.Above, Value: new(90.0)}
	}))
	play(t, e, []event{obs(0, v{"t": 95}, "raised@0s v=95")})
	if got := short(e.Forget("pump-1", t0.Add(time.Minute))); !slices.Equal(got, []string{"cleared@1m0s v=0"}) {
		t.Errorf("Forget: %q", got)
	}
	if len(e.State().Devices) != 0 {
		t.Error("Forget kept the device")
	}
}
