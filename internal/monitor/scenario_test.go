package monitor_test

// Scenario tests: simulated machines (package simulate) drive the monitor
// on a simulated clock, through a real SQLite store, and each test checks
// exactly which alarms are raised and cleared, and when. The expected
// times come from the simulation's truth (the machine's own values, its
// fault windows, its operating-hours counter and wear), not from the
// evaluator.

import (
	"math"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/simulate"
)

// pumpSeed is a two-shift vacuum pump (05:45–22:00 on weekdays) that runs
// without a stop on Tuesday from 06:30 and all of Thursday.
const pumpSeed = 4

func pump(faults ...simulate.FaultWindow) *simulate.Machine {
	return simulate.NewMachineWithOptions(simulate.VacuumPump, pumpSeed, monday,
		simulate.Options{FaultRatePerDay: -1, WearPerDay: -1, Faults: faults})
}

// mustRun fails unless the pump ran at every sample in [from, to): the
// scenario's premise.
func mustRun(t *testing.T, samples []sample, from, to time.Time) {
	t.Helper()
	for _, s := range samples {
		if !s.At.Before(from) && s.At.Before(to) && s.Values[simulate.MetricRunning] != 1 {
			t.Fatalf("premise: the pump stopped at %s", s.At)
		}
	}
}

// column returns the sample times and, for each, the conditions.
func column(samples []sample, cond func(i int) (raise, clear bool)) (times []time.Time, raise, clear []bool) {
	for i, s := range samples {
		r, c := cond(i)
		times, raise, clear = append(times, s.At), append(raise, r), append(clear, c)
	}
	return
}

// within fails unless at lies in [from, to].
func within(t *testing.T, what string, at, from, to time.Time) {
	t.Helper()
	if at.Before(from) || at.After(to) {
		t.Errorf("%s at %s, outside %s … %s", what, at, from, to)
	}
}

const hotRule = `{"scope": {"model": "vp-40"},
	"threshold": {"metric": "temperature", "op": "above", "value": 100, "hysteresis": 5, "minDuration": "10m"}}`

// overheat is the pump's cooling failure on Tuesday 10:00–12:00: the
// temperature climbs about 35 °C above its ~79 °C, with a lag.
var overheat = simulate.FaultWindow{Fault: simulate.FaultOverheat,
	From: monday.Add(24*time.Hour + 10*time.Hour), To: monday.Add(24*time.Hour + 12*time.Hour)}

// expectHot is the threshold rule's alarms over the samples: above 100 for
// 10 minutes raises, at or below 95 clears.
func expectHot(t *testing.T, samples []sample) []span {
	t.Helper()
	times, raise, clear := column(samples, func(i int) (bool, bool) {
		v := samples[i].Values[simulate.MetricTemperature]
		return v > 100, v <= 95
	})
	want := expectSpans("hot", times, raise, clear, 10*time.Minute)
	if len(want) != 1 || want[0].Cleared.IsZero() {
		t.Fatalf("premise: the overheat gives %v, want one alarm that clears", want)
	}
	// The truth of the fault window: the lag (15 min time constant) puts
	// the crossing of 100 °C some minutes after the fault starts, and the
	// cooling below 95 °C some minutes after it ends.
	within(t, "expected raise", want[0].Raised, overheat.From.Add(10*time.Minute), overheat.From.Add(45*time.Minute))
	within(t, "expected clear", want[0].Cleared, overheat.To, overheat.To.Add(30*time.Minute))
	return want
}

// TestScenarioThresholdOverheat: a threshold with hysteresis and a minimum
// duration on the pump's overheating.
func TestScenarioThresholdOverheat(t *testing.T) {
	e := newEnv(t)
	e.device("vp-1", "vp-40")
	e.rule("hot", hotRule)
	tue := monday.AddDate(0, 0, 1)
	from, to := tue.Add(8*time.Hour), tue.Add(14*time.Hour)
	e.start(from)
	samples := e.drive("vp-1", pump(overheat), from, to, time.Minute, 0, nil)
	mustRun(t, samples, from, to)
	e.expectAlarms("vp-1", time.Minute, expectHot(t, samples)...)
}

// leak is a vacuum leak on Thursday 10:00–11:30: the inlet pressure jumps
// from ~7 to ~135 mbar within minutes and drops back when it ends.
var leak = simulate.FaultWindow{Fault: simulate.FaultVacuumLeak,
	From: monday.Add(3*24*time.Hour + 10*time.Hour), To: monday.Add(3*24*time.Hour + 11*time.Hour + 30*time.Minute)}

// TestScenarioRateAndExpression: a rate of change on the inlet pressure
// (its jump when the leak starts and its drop when it ends), and an
// expression over two metrics (running and inlet pressure) held for 5
// minutes.
func TestScenarioRateAndExpression(t *testing.T) {
	e := newEnv(t)
	e.device("vp-1", "vp-40")
	e.rule("rate", `{"scope": {"deviceId": "vp-1"},
		"rateOfChange": {"metric": "inletPressure", "maxRatePerMinute": 30, "hysteresis": 10, "direction": "either"}}`)
	e.rule("vacuum-lost", `{"scope": {"model": "vp-40"},
		"expression": {"expr": "running == 1 && inletPressure > 50", "minDuration": "5m"}}`)
	thu := monday.AddDate(0, 0, 3)
	from, to := thu.Add(8*time.Hour), thu.Add(13*time.Hour)
	e.start(from)
	samples := e.drive("vp-1", pump(leak), from, to, time.Minute, 0, nil)
	mustRun(t, samples, from, to)

	p := func(i int) float64 { return samples[i].Values[simulate.MetricInletPressure] }
	times, raise, clear := column(samples, func(i int) (bool, bool) {
		if i == 0 {
			return false, false
		}
		r := math.Abs(p(i)-p(i-1)) / samples[i].At.Sub(samples[i-1].At).Minutes()
		return r > 30, r <= 20
	})
	rate := expectSpans("rate", times, raise, clear, 0)
	if len(rate) != 2 {
		t.Fatalf("premise: the leak gives rate alarms %v, want one as it starts and one as it ends", rate)
	}
	within(t, "expected rate raise", rate[0].Raised, leak.From, leak.From.Add(2*time.Minute))
	within(t, "expected rate raise", rate[1].Raised, leak.To, leak.To.Add(2*time.Minute))

	times, raise, clear = column(samples, func(i int) (bool, bool) {
		on := samples[i].Values[simulate.MetricRunning] == 1 && p(i) > 50
		return on, !on
	})
	expr := expectSpans("vacuum-lost", times, raise, clear, 5*time.Minute)
	if len(expr) != 1 {
		t.Fatalf("premise: the leak gives expression alarms %v, want one", expr)
	}
	within(t, "expected expression raise", expr[0].Raised, leak.From.Add(5*time.Minute), leak.From.Add(7*time.Minute))
	within(t, "expected expression clear", expr[0].Cleared, leak.To, leak.To.Add(2*time.Minute))

	e.expectAlarms("vp-1", time.Minute, rate[0], expr[0], rate[1])
}

// TestScenarioStaleAndOffline: one metric stops coming for 40 minutes,
// then the device's uplink fails for 45 minutes (disconnected, nothing
// sent). Stale and offline alarms raise exactly at the last activity + their
// time and clear when data or the connection comes back.
func TestScenarioStaleAndOffline(t *testing.T) {
	e := newEnv(t)
	e.device("vp-1", "vp-40")
	e.rule("temp-stale", `{"scope": {"model": "vp-40"}, "stale": {"metric": "temperature", "after": "15m"}}`)
	e.rule("offline", `{"scope": {"model": "vp-40"}, "offline": {"after": "10m"}}`)
	thu := monday.AddDate(0, 0, 3)
	from, to := thu.Add(8*time.Hour), thu.Add(13*time.Hour)
	noTemp := [2]time.Time{thu.Add(9 * time.Hour), thu.Add(9*time.Hour + 40*time.Minute)}
	outage := simulate.FaultWindow{Fault: simulate.FaultOffline, From: thu.Add(11 * time.Hour), To: thu.Add(11*time.Hour + 45*time.Minute)}
	machine := pump(outage)

	e.start(from)
	e.m.Presence(t.Context(), "acme", "vp-1", true, from)
	connected := true
	e.drive("vp-1", machine, from, to, time.Minute, 0, func(at time.Time, v map[string]float64) map[string]float64 {
		if machine.ActiveFault(at) == simulate.FaultOffline {
			if connected {
				e.m.Presence(t.Context(), "acme", "vp-1", false, at)
				connected = false
			}
			return nil
		}
		if !connected {
			e.m.Presence(t.Context(), "acme", "vp-1", true, at)
			connected = true
		}
		if !at.Before(noTemp[0]) && at.Before(noTemp[1]) {
			delete(v, simulate.MetricTemperature)
		}
		return v
	})

	// The truth: the last temperature before the gap was sent a minute
	// before it; the device disconnected when the outage began (after its
	// last message) and came back, with a message, when it ended.
	lastTemp := noTemp[0].Add(-time.Minute)
	lastBeforeOutage := outage.From.Add(-time.Minute)
	e.expectAlarms("vp-1", 0,
		span{"temp-stale", lastTemp.Add(15 * time.Minute), noTemp[1]},
		span{"offline", outage.From.Add(10 * time.Minute), outage.To},
		span{"temp-stale", lastBeforeOutage.Add(15 * time.Minute), outage.To},
	)
}

// TestScenarioRestart: the monitor is closed while the overheat alarm is
// pending (its minimum duration running), and again while it is active;
// each time a new monitor starts on the same store and the stream goes on.
// There is one alarm, raised and cleared once each at the times of an
// uninterrupted run, and the run hours of the maintenance plan lose
// nothing.
func TestScenarioRestart(t *testing.T) {
	testRestart(t, []int{2, 2, 2})
}

// TestScenarioRestartRepartitioned is TestScenarioRestart with another
// number of partitions at each start: each partition saves its own state,
// and a start spreads what the partitions saved over its own.
func TestScenarioRestartRepartitioned(t *testing.T) {
	testRestart(t, []int{2, 5, 1})
}

func testRestart(t *testing.T, shards []int) {
	e := newEnv(t)
	e.device("vp-1", "vp-40")
	e.rule("hot", hotRule)
	e.plan("acme", "vp-40", `{"model": "vp-40", "run": {"metric": "running", "kind": "onoff"},
		"service": {"everyRunHours": 2000, "everyMonths": 12}}`)
	tue := monday.AddDate(0, 0, 1)
	from, to := tue.Add(8*time.Hour), tue.Add(14*time.Hour)
	machine := pump(overheat)

	// The first hot sample is at 10:15 (see TestScenarioThresholdOverheat):
	// stop at 10:20, pending; and at 11:00, active.
	cuts := []time.Time{from, tue.Add(10*time.Hour + 20*time.Minute), tue.Add(11 * time.Hour), to}
	var samples []sample
	for i := range len(cuts) - 1 {
		e.shards = shards[i]
		e.start(cuts[i])
		samples = append(samples, e.drive("vp-1", machine, cuts[i], cuts[i+1], time.Minute, 0, nil)...)
		if i == 0 {
			if as := e.alarms("vp-1"); len(as) != 0 {
				t.Fatalf("premise: an alarm before the first restart: %+v", as)
			}
		}
		if i < len(cuts)-2 {
			e.stop()
		}
	}
	mustRun(t, samples, from, to)
	want := expectHot(t, samples)
	within(t, "expected pending", want[0].Raised.Add(-10*time.Minute), from, cuts[1]) // pending at the first cut
	within(t, "expected raise", want[0].Raised, cuts[1], cuts[2])
	within(t, "expected clear", want[0].Cleared, cuts[2], cuts[3]) // active at the second
	e.expectAlarms("vp-1", time.Minute, want...)

	// Run hours: the pump ran the whole time; the model's own counter
	// says how long.
	last := samples[len(samples)-1]
	truth := last.Values[simulate.MetricRunHours] - samples[0].Values[simulate.MetricRunHours]
	st := e.maintenance("vp-1", last.At)
	t.Logf("run hours after two restarts: %.3f, the pump's counter %.3f", st.RunHours, truth)
	if math.Abs(st.RunHours-truth) > 0.02 {
		t.Errorf("run hours %.3f, the pump's counter says %.3f", st.RunHours, truth)
	}
	if !st.LastService.Equal(from) {
		t.Errorf("last service %s, want the first sample %s", st.LastService, from)
	}
}

// days is a number of days as a duration.
func days(d float64) time.Duration { return time.Duration(d * float64(24*time.Hour)) }

// TestScenarioWearTrend: a LoRaWAN water meter's battery runs down at 5 mV
// a day (its wear) for 60 days; the plan's trend warns 14 days before the
// voltage reaches 3.4 V. The crossing is known from the model: the fresh
// battery's voltage less the wear. At day 50 the battery is replaced and
// the service recorded, which clears the warning; the fresh battery does
// not warn again.
func TestScenarioWearTrend(t *testing.T) {
	const (
		limit    = 3.4
		rate     = 0.005 // V/day
		warnDays = 14
		step     = 15 * time.Minute // an uplink every quarter hour
	)
	opts := simulate.Options{FaultRatePerDay: -1, WearPerDay: rate}
	e := newEnv(t)
	e.device("wm-1", "wm-100")
	e.plan("acme", "wm-100", `{"model": "wm-100",
		"trends": [{"metric": "battery", "limit": 3.4, "direction": "falling", "window": "30d", "warnDays": 14}]}`)

	// The truth: voltage = fresh voltage − wear + noise. The fresh
	// voltage is the day's mean of voltage + wear of a twin machine.
	twin := simulate.NewMachineWithOptions(simulate.Meter, 3, monday, opts)
	var sum float64
	n := 0
	for at := monday; at.Before(monday.Add(24 * time.Hour)); at = at.Add(step) {
		sum += twin.Sample(at)[simulate.MetricBattery] + twin.Wear(at)
		n++
	}
	fresh := sum / float64(n)
	truth := monday.Add(days((fresh - limit) / rate))
	t.Logf("fresh battery %.4f V: reaches %.1f V at day %.2f (%s)", fresh, limit, truth.Sub(monday).Hours()/24, truth)

	meter := simulate.NewMachineWithOptions(simulate.Meter, 3, monday, opts)
	e.start(monday)
	at := monday
	driveTo := func(day float64) time.Time {
		end := monday.Add(days(day))
		e.drive("wm-1", meter, at, end, step, time.Hour, nil)
		at = end
		return end.Add(-step) // the last sample
	}
	const tolerance = 3 * 24 * time.Hour
	for _, day := range []float64{10, 20, 30, 40} {
		now := driveTo(day)
		st := e.maintenance("wm-1", now)
		tr := st.Trends[0]
		off := tr.CrossAt.Sub(truth)
		t.Logf("day %2.0f: %d points, slope %.5f V/day (truth %.5f), crossing forecast %s, %.2f days from the truth, warning %v",
			day, tr.Points, tr.SlopePerDay, -rate, tr.CrossAt.Format(time.DateOnly), off.Hours()/24, tr.Warning)
		if !tr.OK || off.Abs() > tolerance {
			t.Errorf("day %.0f: crossing forecast %s, %s from the truth %s (tolerance %s)", day, tr.CrossAt, off, truth, tolerance)
		}
	}
	service := driveTo(50).Add(step)
	meter.Service(service)
	if err := e.m.RecordService(t.Context(), "wm-1", service); err != nil {
		t.Fatal(err)
	}
	driveTo(60)
	st := e.maintenance("wm-1", at)
	if tr := st.Trends[0]; tr.Warning || !st.LastService.Equal(service) {
		t.Errorf("after the battery change: %+v, last service %s", tr, st.LastService)
	}

	// The warning: warnDays before the crossing, within a day.
	as := e.alarms("wm-1")
	if len(as) != 1 {
		t.Fatalf("%d alarms, want 1: %+v", len(as), as)
	}
	a := as[0]
	want := truth.Add(-warnDays * 24 * time.Hour)
	t.Logf("trend warning raised %s, %.2f days from the truth − %d days; message %q",
		a.RaisedAt, a.RaisedAt.Sub(want).Hours()/24, warnDays, a.Message)
	if a.RuleID != "maintenance:trend:battery" || a.Kind != "maintenance" || a.Severity != "warning" {
		t.Errorf("alarm %+v", a)
	}
	if off := a.RaisedAt.Sub(want); off.Abs() > 24*time.Hour {
		t.Errorf("warning raised %s, %s from %s (the crossing less %d days)", a.RaisedAt, off, want, warnDays)
	}
	e.expectAlarms("wm-1", 24*time.Hour, span{"maintenance:trend:battery", want, service})
	if !a.ClearedAt.Equal(service) {
		t.Errorf("warning cleared %s, want at the service %s", a.ClearedAt, service)
	}
}

// TestScenarioServiceInterval: the pump is to be serviced every 500 run
// hours, known from its 0/1 running metric. The truth is the pump's own
// operating-hours counter: the service falls due when it has advanced 500
// hours. The run hours counted, the forecast of the due date and the
// warning 7 days ahead are checked against it; a technician services the
// pump a day after it fell due, which clears the warning and starts the
// next interval.
func TestScenarioServiceInterval(t *testing.T) {
	const (
		every = 500.0
		step  = 5 * time.Minute
	)
	e := newEnv(t)
	e.device("vp-1", "vp-40")
	e.plan("acme", "vp-40", `{"model": "vp-40", "run": {"metric": "running", "kind": "onoff"},
		"service": {"everyRunHours": 500, "warnDays": 7}}`)

	// The truth from a twin: its counter at every step for 100 days.
	twin := pump()
	type reading struct {
		at    time.Time
		hours float64
	}
	var counter []reading
	for at := monday; at.Before(monday.Add(days(100))); at = at.Add(step) {
		counter = append(counter, reading{at, twin.Sample(at)[simulate.MetricRunHours]})
	}
	hoursAt := func(at time.Time) float64 {
		return counter[int(at.Sub(monday)/step)].hours
	}
	dueAfter := func(from time.Time) time.Time {
		h0 := hoursAt(from)
		for _, r := range counter {
			if r.at.After(from) && r.hours-h0 >= every {
				return r.at
			}
		}
		t.Fatalf("premise: no %g run hours within 100 days of %s", every, from)
		return time.Time{}
	}
	due := dueAfter(monday)
	t.Logf("truth: %g run hours reached at day %.2f (%s)", every, due.Sub(monday).Hours()/24, due)

	machine := pump()
	e.start(monday)
	at := monday
	var cycles int64
	running := false
	driveTo := func(end time.Time) time.Time {
		for _, s := range e.drive("vp-1", machine, at, end, step, time.Hour, nil) {
			on := s.Values[simulate.MetricRunning] == 1
			if running && !on {
				cycles++
			}
			running = on
		}
		at = end
		return end.Add(-step)
	}
	const tolerance = 3 * 24 * time.Hour
	for _, day := range []float64{7, 14, 21, 28, 35} {
		now := driveTo(monday.Add(days(day)))
		st := e.maintenance("vp-1", now)
		truthHours := hoursAt(now) - hoursAt(monday)
		off := st.NextDue.Sub(due)
		t.Logf("day %2.0f: %.2f run hours (counter %.2f), %d cycles, %.2f h/day, next due %s (%s), %.2f days from the truth",
			day, st.RunHours, truthHours, st.Cycles, st.HoursPerDay, st.NextDue.Format(time.DateOnly), st.DueReason, off.Hours()/24)
		if math.Abs(st.RunHours-truthHours) > 0.005*truthHours+0.1 {
			t.Errorf("day %.0f: %.2f run hours, the counter says %.2f", day, st.RunHours, truthHours)
		}
		if st.Cycles != cycles {
			t.Errorf("day %.0f: %d cycles, %d on→off changes sent", day, st.Cycles, cycles)
		}
		if st.DueReason != "run-hours" || off.Abs() > tolerance {
			t.Errorf("day %.0f: next due %s (%s), %s from the truth %s", day, st.NextDue, st.DueReason, off, due)
		}
	}

	// The technician comes a day after it fell due.
	service := due.Add(24 * time.Hour).Truncate(step)
	driveTo(service)
	if err := e.m.RecordService(t.Context(), "vp-1", service); err != nil {
		t.Fatal(err)
	}
	st := e.maintenance("vp-1", service)
	if !st.LastService.Equal(service) || st.RunHoursSinceService > 0.1 || len(st.Warnings) != 0 {
		t.Errorf("after the service: last %s, %.2f run hours since, warnings %v", st.LastService, st.RunHoursSinceService, st.Warnings)
	}
	next := dueAfter(service)
	end := driveTo(monday.Add(days(56)))
	st = e.maintenance("vp-1", end)
	off := st.NextDue.Sub(next)
	t.Logf("after the service on %s: %.2f run hours since, next due %s, %.2f days from the truth %s",
		service.Format(time.DateOnly), st.RunHoursSinceService, st.NextDue.Format(time.DateOnly), off.Hours()/24, next.Format(time.DateOnly))
	if off.Abs() > tolerance {
		t.Errorf("next due %s, %s from the truth %s", st.NextDue, off, next)
	}
	if truthSince := hoursAt(end) - hoursAt(service); math.Abs(st.RunHoursSinceService-truthSince) > 0.005*truthSince+0.1 {
		t.Errorf("%.2f run hours since the service, the counter says %.2f", st.RunHoursSinceService, truthSince)
	}

	// One warning: 7 days before it fell due (the forecast's error
	// allowed), cleared by the service.
	as := e.alarms("vp-1")
	if len(as) != 1 {
		t.Fatalf("%d alarms, want 1: %+v", len(as), as)
	}
	want := due.Add(-7 * 24 * time.Hour)
	t.Logf("service warning raised %s, %.2f days from the truth − 7 days; message %q", as[0].RaisedAt, as[0].RaisedAt.Sub(want).Hours()/24, as[0].Message)
	e.expectAlarms("vp-1", 2*24*time.Hour, span{"maintenance:service:running", want, service})
	if !as[0].ClearedAt.Equal(service) {
		t.Errorf("cleared %s, want at the service %s", as[0].ClearedAt, service)
	}
}
