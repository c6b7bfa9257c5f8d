package simulate

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Fault names, as ActiveFault reports them.
const (
	// FaultOverheat (vacuum pump): the cooling fails while the pump runs;
	// the temperature climbs about 35 °C above normal, past 100 °C, and the
	// motor current rises a little. Random ones happen during a shift and
	// last 1–3 h; the heat builds over a quarter of an hour. A demonstration
	// window (FaultWindow.Demo) shows at any time of day: the pump runs warm
	// for the whole window and the temperature passes 95 °C within about
	// 20 s of its start.
	FaultOverheat = "overheat"
	// FaultVacuumLeak (vacuum pump): a leak on the vacuum side; the inlet
	// pressure stays at 80–300 mbar while running and the motor current is
	// higher. Random ones happen during a shift and last 1–6 h.
	FaultVacuumLeak = "vacuum-leak"
	// FaultHeaterFailure (coffee machine): the boiler heater is dead; the
	// boiler cools towards room temperature and no coffee is brewed.
	// Random ones happen while the machine is on and last 1–4 h.
	FaultHeaterFailure = "heater-failure"
	// FaultIgnitionFailure (pellet heater): the burner does not ignite;
	// after three failed attempts it locks out, burnerOn stays 0,
	// burnerStarts stops counting and the boiler cools. Random ones last
	// 3–24 h.
	FaultIgnitionFailure = "ignition-failure"
	// FaultLeak (LoRaWAN meter): a leaking pipe adds a constant flow of
	// 5–40 l/h, visible as consumption at night. Random ones last 12–72 h.
	FaultLeak = "leak"
	// FaultOffline (every kind): the device's uplink is down. The signals
	// go on as usual (counters keep counting), but a runner should publish
	// nothing while it lasts. Random ones last 20 min–8 h.
	FaultOffline = "offline"
)

// maxFaultSec bounds every random fault's duration; faultLookbackDays covers
// it, with margin for daylight-saving days.
const (
	maxFaultSec       = 72 * 3600
	faultLookbackDays = 4
)

// Faults lists the faults a machine of kind k can have.
func (k Kind) Faults() []string {
	switch k {
	case VacuumPump:
		return []string{FaultOverheat, FaultVacuumLeak, FaultOffline}
	case CoffeeMachine:
		return []string{FaultHeaterFailure, FaultOffline}
	case PelletHeater:
		return []string{FaultIgnitionFailure, FaultOffline}
	case Meter:
		return []string{FaultLeak, FaultOffline}
	}
	return nil
}

// FaultWindow is a fault active in [From, To).
type FaultWindow struct {
	Fault    string
	From, To time.Time
	// Demo makes the fault show at once, whatever the time of day, for a
	// demonstration (warden simulate --fault): a demo overheat runs the
	// pump warm and passes 95 °C within about 20 s, where a real one builds
	// over a quarter of an hour.
	Demo bool
}

type faultWindow struct {
	name     string
	from, to int64 // unix seconds, [from, to)
	demo     bool
}

func (w faultWindow) export() FaultWindow {
	return FaultWindow{Fault: w.name, From: time.Unix(w.from, 0).UTC(), To: time.Unix(w.to, 0).UTC(), Demo: w.demo}
}

func (m *Machine) addForced(f FaultWindow) {
	if !slices.Contains(m.kind.Faults(), f.Fault) {
		panic(fmt.Sprintf("simulate: fault %q is not a fault of a %s (want one of %v)", f.Fault, m.kind, m.kind.Faults()))
	}
	if f.To.Before(f.From) {
		panic(fmt.Sprintf("simulate: fault %q ends (%v) before it begins (%v)", f.Fault, f.To, f.From))
	}
	m.forced = append(m.forced, faultWindow{name: f.Fault, from: f.From.Unix(), to: f.To.Unix(), demo: f.Demo})
	m.day.valid = false
}

// InjectFault forces a fault window from now on, like Options.Faults. A
// window that begins before the last Sample changes only what follows it.
// It panics if the fault does not belong to the machine's kind.
func (m *Machine) InjectFault(f FaultWindow) { m.addForced(f) }

// ActiveFault returns the name of the fault active at t, or "" if none.
func (m *Machine) ActiveFault(t time.Time) string { return m.faultAt(t.Unix()) }

func (m *Machine) faultAt(sec int64) string {
	for _, w := range m.dayAt(sec).faults {
		if sec >= w.from && sec < w.to {
			return w.name
		}
	}
	return ""
}

// demoAt says whether a demonstration window of the fault is active at sec.
func (m *Machine) demoAt(sec int64, name string) bool {
	for _, w := range m.forced {
		if w.demo && w.name == name && sec >= w.from && sec < w.to {
			return true
		}
	}
	return false
}

// FaultsBetween lists the fault windows, random and forced, that overlap
// [from, to), sorted by start.
func (m *Machine) FaultsBetween(from, to time.Time) []FaultWindow {
	f, t := from.Unix(), to.Unix()
	var out []FaultWindow
	for _, w := range m.forced {
		if w.from < t && w.to > f {
			out = append(out, w.export())
		}
	}
	first := m.dayAt(f).ord - faultLookbackDays
	last := m.dayAt(t).ord
	for o := first; o <= last; o++ {
		if w, ok := m.randomFault(o); ok && w.from < t && w.to > f {
			out = append(out, w.export())
		}
	}
	slices.SortStableFunc(out, func(a, b FaultWindow) int { return a.From.Compare(b.From) })
	return out
}

// dayFaults fills d.faults with the windows overlapping day d: forced ones
// first, then random ones in order of start.
func (m *Machine) dayFaults(d *dayInfo) {
	for _, w := range m.forced {
		if w.from < d.end && w.to > d.start {
			d.faults = append(d.faults, w)
		}
	}
	for o := d.ord - faultLookbackDays; o <= d.ord; o++ {
		if w, ok := m.randomFault(o); ok && w.from < d.end && w.to > d.start {
			d.faults = append(d.faults, w)
		}
	}
}

// randomFault is the random fault starting on local day ord, if any. It is
// dropped if it would overlap a fault drawn for one of the days before, so
// random faults never overlap.
func (m *Machine) randomFault(ord int64) (faultWindow, bool) {
	w, ok := m.rawFault(ord)
	if !ok {
		return w, false
	}
	for o := ord - faultLookbackDays; o < ord; o++ {
		if p, ok := m.rawFault(o); ok && p.to > w.from {
			return w, false
		}
	}
	return w, true
}

func (m *Machine) rawFault(ord int64) (faultWindow, bool) {
	if m.faultRate <= 0 {
		return faultWindow{}, false
	}
	r := rng{s: m.hashAt(sFault, ord)}
	if r.float() >= 1-math.Exp(-m.faultRate) {
		return faultWindow{}, false
	}
	var d dayInfo
	y, mo, dd := time.Unix(ord*86400, 0).UTC().Date()
	m.fillDay(&d, y, mo, dd)
	name, from, to, ok := m.model.pickFault(m, &d, &r)
	if !ok || to <= from {
		return faultWindow{}, false
	}
	if to-from > maxFaultSec {
		to = from + maxFaultSec
	}
	return faultWindow{name: name, from: from, to: to}, true
}

// offlineFault draws an uplink outage of 20 min–8 h starting at any time of day d.
func offlineFault(d *dayInfo, r *rng) (string, int64, int64, bool) {
	return anytimeFault(FaultOffline, d, r, 20*60, 8*3600)
}

// anytimeFault draws a fault of duration [minDur, maxDur) seconds starting at
// any time of day d.
func anytimeFault(name string, d *dayInfo, r *rng, minDur, maxDur float64) (string, int64, int64, bool) {
	from := d.start + int64(r.float()*float64(d.end-d.start))
	return name, from, from + int64(r.between(minDur, maxDur)), true
}

// faultIn draws a fault of duration [minDur, maxDur) seconds starting within
// [lo, hi) local seconds of day d, such that it ends by hi if it can.
func faultIn(name string, d *dayInfo, r *rng, lo, hi, minDur, maxDur float64) (string, int64, int64, bool) {
	dur := r.between(minDur, maxDur)
	if hi-lo < dur {
		dur = hi - lo
	}
	if dur <= 0 {
		return "", 0, 0, false
	}
	from := d.start + int64(lo+r.float()*(hi-lo-dur))
	return name, from, from + int64(dur), true
}
