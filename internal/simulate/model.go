// Package simulate models connected machines — vacuum pumps, coffee machines,
// pellet heaters and LoRaWAN water meters — with signals realistic enough
// that alarms, maintenance forecasts and anomaly scores have something true
// to find.
//
// A Machine is deterministic: what Sample returns at a time t depends only on
// the kind, the seed, the start time, the Options and the explicit calls to
// Service; never on the wall clock, on a global random source, or on how often
// the machine was sampled before t. Internally every machine advances on a
// fixed 10-second grid aligned to the Unix epoch; signals between grid points
// are interpolated, cumulative counters integrate exactly over the grid, and
// measurement noise is a hash of (seed, metric, t truncated to 1 s). So a
// machine sampled every second and the same machine sampled every ten minutes
// report identical values at the instants they share.
//
// Faults are scheduled deterministically from the seed (about one per three
// weeks per machine by default) or forced through Options; ActiveFault and
// FaultsBetween tell the truth that alarms are expected to find.
//
// Sample must be called with non-decreasing times. The package does no
// networking; a runner publishes the samples.
package simulate

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Kind is the kind of a simulated machine.
type Kind string

// The kinds of machine the simulator knows.
const (
	// VacuumPump is an industrial oil-sealed rotary-vane vacuum pump with an
	// IoT box, running in day shifts.
	VacuumPump Kind = "vacuum-pump"
	// CoffeeMachine is a professional coffee machine in an office or a café.
	CoffeeMachine Kind = "coffee-machine"
	// PelletHeater is a pellet boiler heating a house and its hot water.
	PelletHeater Kind = "pellet-heater"
	// Meter is a battery-powered LoRaWAN water meter in a building.
	Meter Kind = "lorawan-meter"
)

// Kinds lists every kind, in a stable order.
func Kinds() []Kind { return []Kind{VacuumPump, CoffeeMachine, PelletHeater, Meter} }

// ParseKind parses a kind name. Besides the canonical names it accepts the
// short forms "pump", "coffee", "heater" and "meter", in any case.
func ParseKind(s string) (Kind, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case string(VacuumPump), "pump":
		return VacuumPump, nil
	case string(CoffeeMachine), "coffee":
		return CoffeeMachine, nil
	case string(PelletHeater), "heater":
		return PelletHeater, nil
	case string(Meter), "meter":
		return Meter, nil
	}
	return "", fmt.Errorf("simulate: unknown machine kind %q (want %s, %s, %s or %s)",
		s, VacuumPump, CoffeeMachine, PelletHeater, Meter)
}

// Valid reports whether k is one of Kinds.
func (k Kind) Valid() bool {
	switch k {
	case VacuumPump, CoffeeMachine, PelletHeater, Meter:
		return true
	}
	return false
}

// Metric describes one signal of a kind.
type Metric struct {
	Name string // camelCase metric name, the key in Sample's map
	Unit string // unit symbol; "" for flags and counts
	// Resolution is the sensor resolution: every value is a multiple of it
	// (rounded to the nearest float64 of the decimal).
	Resolution float64
	// Counter marks cumulative metrics, which never decrease.
	Counter bool
	// Flag marks 0/1 state metrics.
	Flag bool
}

// Metric names, by kind.
const (
	// Vacuum pump.
	MetricInletPressure  = "inletPressure"  // mbar absolute; 1–50 while running, ~1013 when stopped
	MetricOutletPressure = "outletPressure" // bar absolute; ~1.01 stopped, 1.05–1.2 running
	MetricTemperature    = "temperature"    // °C, oil/outlet temperature; ~70–85 when warm
	MetricMotorCurrent   = "motorCurrent"   // A; 0 when stopped
	MetricRunHours       = "runHours"       // h, cumulative operating hours
	MetricRunning        = "running"        // 0/1

	// Coffee machine (and boilerTemperature of the pellet heater).
	MetricBoilerTemperature = "boilerTemperature" // °C
	MetricBrewCount         = "brewCount"         // cumulative number of brews
	MetricWaterHardness     = "waterHardness"     // °dH of the supply water
	MetricOn                = "on"                // 0/1

	// Pellet heater.
	MetricFlueGasTemperature = "flueGasTemperature" // °C
	MetricOutdoorTemperature = "outdoorTemperature" // °C
	MetricPelletLevel        = "pelletLevel"        // % of the hopper
	MetricBurnerStarts       = "burnerStarts"       // cumulative successful ignitions
	MetricBurnerOn           = "burnerOn"           // 0/1, flame burning

	// LoRaWAN water meter.
	MetricConsumption = "consumption" // m³, cumulative meter reading
	MetricBattery     = "battery"     // V
	MetricRSSI        = "rssi"        // dBm of the last uplink
	MetricSNR         = "snr"         // dB of the last uplink
)

var metricSpecs = map[Kind][]Metric{
	VacuumPump: {
		{Name: MetricInletPressure, Unit: "mbar", Resolution: 0.1},
		{Name: MetricOutletPressure, Unit: "bar", Resolution: 0.001},
		{Name: MetricTemperature, Unit: "°C", Resolution: 0.1},
		{Name: MetricMotorCurrent, Unit: "A", Resolution: 0.01},
		{Name: MetricRunHours, Unit: "h", Resolution: 0.01, Counter: true},
		{Name: MetricRunning, Resolution: 1, Flag: true},
	},
	CoffeeMachine: {
		{Name: MetricBoilerTemperature, Unit: "°C", Resolution: 0.1},
		{Name: MetricBrewCount, Resolution: 1, Counter: true},
		{Name: MetricWaterHardness, Unit: "°dH", Resolution: 0.1},
		{Name: MetricOn, Resolution: 1, Flag: true},
	},
	PelletHeater: {
		{Name: MetricBoilerTemperature, Unit: "°C", Resolution: 0.1},
		{Name: MetricFlueGasTemperature, Unit: "°C", Resolution: 0.1},
		{Name: MetricOutdoorTemperature, Unit: "°C", Resolution: 0.1},
		{Name: MetricPelletLevel, Unit: "%", Resolution: 0.1},
		{Name: MetricBurnerStarts, Resolution: 1, Counter: true},
		{Name: MetricBurnerOn, Resolution: 1, Flag: true},
	},
	Meter: {
		{Name: MetricConsumption, Unit: "m³", Resolution: 0.001, Counter: true},
		{Name: MetricBattery, Unit: "V", Resolution: 0.001},
		{Name: MetricRSSI, Unit: "dBm", Resolution: 1},
		{Name: MetricSNR, Unit: "dB", Resolution: 0.25},
	},
}

// MetricSpecs describes the metrics of kind k, in a stable order; nil for an
// unknown kind.
func (k Kind) MetricSpecs() []Metric {
	return append([]Metric(nil), metricSpecs[k]...)
}

// Metrics lists the metric names of kind k, in the order of MetricSpecs.
func (k Kind) Metrics() []string {
	specs := metricSpecs[k]
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	return names
}

// DefaultFaultRatePerDay is the default expected number of random faults per
// machine and day: about one every three weeks.
const DefaultFaultRatePerDay = 1.0 / 21

// DefaultWearPerDay is the default wear rate of kind k, in the kind's wear
// unit per day (see Options.WearPerDay). A machine created with WearPerDay 0
// wears at this rate scaled by a seed-derived factor between 0.75 and 1.25.
func DefaultWearPerDay(k Kind) float64 {
	switch k {
	case VacuumPump:
		return 0.15 // °C/day of oil temperature
	case CoffeeMachine:
		return 0.2 // %/day of heater power lost to scale
	case PelletHeater:
		return 0.25 // °C/day of flue-gas temperature
	case Meter:
		return 0.0002 // V/day of battery voltage
	}
	return 0
}

// Options tune a machine. The zero value gives the defaults.
type Options struct {
	// FaultRatePerDay is the expected number of random faults per day.
	// 0 selects DefaultFaultRatePerDay; a negative value disables random
	// faults (forced Faults still happen).
	FaultRatePerDay float64

	// WearPerDay is the rate of the machine's slow wear, in the kind's wear
	// unit per day since the start or the last Service:
	//   - vacuum pump: °C/day rise of the warm running temperature; the motor
	//     current rises by 0.5 % and the outlet pressure by 2 mbar per °C;
	//   - coffee machine: % of heater power lost per day to scale (capped at
	//     60 %), so heating up after power-on and recovery after brews slow;
	//   - pellet heater: °C/day rise of the flue-gas temperature while the
	//     burner burns (soot on the heat exchanger);
	//   - LoRaWAN meter: V/day decline of the battery voltage.
	// 0 selects the kind's default (DefaultWearPerDay, varied by seed); a
	// negative value disables wear.
	WearPerDay float64

	// InitialWear is the wear already accumulated at start, in the kind's
	// wear unit (°C, %, °C or V); 0 means freshly serviced.
	InitialWear float64

	// Faults are forced fault windows, in addition to the random ones; each
	// must name a fault of the machine's kind (see Kind.Faults). A forced
	// fault takes precedence over a random one in ActiveFault.
	Faults []FaultWindow

	// Location is the time zone of the machine's site; its daily rhythm
	// (shifts, breakfast, heating setback) follows local time. nil means UTC.
	Location *time.Location

	// OutdoorTemperature, if set, replaces the pellet heater's built-in
	// climate (seasonal and daily cycles plus weather) in °C. It must be a
	// pure function of time for the machine to stay deterministic. Ignored
	// by other kinds.
	OutdoorTemperature func(time.Time) float64
}

// DeviceSeed derives the seed of the device with the given index from a fleet
// seed, so that devices of one fleet differ and a fleet is reproducible.
func DeviceSeed(fleetSeed int64, index int) int64 {
	return int64(mix64(mix64(uint64(fleetSeed)^0x5eed5eed5eed5eed) + uint64(index)*golden))
}

const (
	stepSec    = 10       // grid step, seconds
	prerollSec = 8 * 3600 // simulated before start so temperatures are settled
)

// Machine is one simulated machine. It is not safe for concurrent use.
type Machine struct {
	kind      Kind
	seed      int64
	start     time.Time
	loc       *time.Location
	faultRate float64
	wearRate  float64
	wear0     float64 // wear at serviceAt
	serviceAt int64   // unix seconds of the start or the last Service
	forced    []faultWindow
	outdoorFn func(time.Time) float64

	keys [numStreams]uint64
	day  dayInfo

	curT    int64 // grid time of the model's current state; previous state is at curT-stepSec
	warming bool  // pre-roll before start: counters do not count
	model   model
}

// model is the per-kind part of a Machine. A model keeps two states, prev at
// curT-stepSec and cur at curT. A state holds the continuous variables at its
// time and the discrete mode (running, burner state, brew events) decided at
// its time for the step that begins there.
type model interface {
	// init sets both states to the state at grid time t.
	init(m *Machine, t int64)
	// step advances cur from grid time t to t+stepSec; prev becomes the old cur.
	step(m *Machine, t int64)
	// sample writes the metrics at a time between prev and cur: frac in
	// [0,1] is its position between them, sec the time truncated to the
	// second (for measurement noise and signals that are pure functions of
	// time).
	sample(m *Machine, sec int64, frac float64, dst map[string]float64)
	// pickFault draws the random fault, if any, of one local day.
	pickFault(m *Machine, d *dayInfo, r *rng) (name string, from, to int64, ok bool)
}

// NewMachine creates a machine of the given kind with default Options.
// Its counters start at seed-derived values at start, and its temperatures
// are already settled then. It panics if kind is not valid.
func NewMachine(kind Kind, seed int64, start time.Time) *Machine {
	return NewMachineWithOptions(kind, seed, start, Options{})
}

// NewMachineWithOptions creates a machine of the given kind. It panics if
// kind is not valid or a forced fault does not belong to the kind or ends
// before it begins.
func NewMachineWithOptions(kind Kind, seed int64, start time.Time, opts Options) *Machine {
	if !kind.Valid() {
		panic(fmt.Sprintf("simulate: invalid machine kind %q", kind))
	}
	m := &Machine{
		kind:      kind,
		seed:      seed,
		start:     start,
		loc:       opts.Location,
		outdoorFn: opts.OutdoorTemperature,
		wear0:     opts.InitialWear,
		serviceAt: start.Unix(),
	}
	if m.loc == nil {
		m.loc = time.UTC
	}
	kindKey := uint64(0xcbf29ce484222325) // FNV-1a of the kind: kinds draw independently
	for _, c := range []byte(kind) {
		kindKey = (kindKey ^ uint64(c)) * 0x100000001b3
	}
	for i := range m.keys {
		m.keys[i] = mix64(mix64(uint64(seed)^kindKey) + mix64(uint64(i)+0x1234567))
	}
	switch {
	case opts.FaultRatePerDay == 0:
		m.faultRate = DefaultFaultRatePerDay
	case opts.FaultRatePerDay > 0:
		m.faultRate = opts.FaultRatePerDay
	}
	switch {
	case opts.WearPerDay == 0:
		m.wearRate = DefaultWearPerDay(kind) * m.param(sWear, 0, 0.75, 1.25)
	case opts.WearPerDay > 0:
		m.wearRate = opts.WearPerDay
	}
	for _, f := range opts.Faults {
		m.addForced(f)
	}
	switch kind {
	case VacuumPump:
		m.model = newPump(m)
	case CoffeeMachine:
		m.model = newCoffee(m)
	case PelletHeater:
		m.model = newHeater(m)
	case Meter:
		m.model = newMeter(m)
	}
	s := start.Unix()
	t0 := floorDiv(s, stepSec)*stepSec - prerollSec
	m.curT = t0
	m.model.init(m, t0)
	m.warming = true
	m.advance(s)
	m.warming = false
	return m
}

// Kind returns the machine's kind.
func (m *Machine) Kind() Kind { return m.kind }

// Seed returns the machine's seed.
func (m *Machine) Seed() int64 { return m.seed }

// Start returns the time the machine was created for.
func (m *Machine) Start() time.Time { return m.start }

// Metrics lists the machine's metric names (Kind().Metrics()).
func (m *Machine) Metrics() []string { return m.kind.Metrics() }

// Sample returns the metric values at t, rounded to sensor resolution.
// Calls must come with non-decreasing t; a t before an earlier call's returns
// the state at the earliest time still held (at most 10 s before the latest).
func (m *Machine) Sample(t time.Time) map[string]float64 {
	dst := make(map[string]float64, 6)
	m.SampleInto(t, dst)
	return dst
}

// SampleInto is Sample writing into dst, to spare an allocation.
func (m *Machine) SampleInto(t time.Time, dst map[string]float64) {
	sec := t.Unix()
	m.advance(sec)
	prevT := m.curT - stepSec
	frac := (float64(sec-prevT) + float64(t.Nanosecond())/1e9) / stepSec
	if frac < 0 {
		frac = 0
	} else if frac > 1 {
		frac = 1
	}
	m.model.sample(m, sec, frac, dst)
}

// advance steps the model until curT > sec, so that sec lies in [curT-stepSec, curT).
func (m *Machine) advance(sec int64) {
	for m.curT <= sec {
		m.model.step(m, m.curT)
		m.curT += stepSec
	}
}

// Service records a maintenance visit at t (not before the last Sample): the
// wear goes back to zero — pump oil and filters changed, coffee machine
// descaled, heater cleaned of soot, meter battery replaced.
func (m *Machine) Service(t time.Time) {
	m.advance(t.Unix())
	m.serviceAt = t.Unix()
	m.wear0 = 0
}

// Wear returns the machine's wear at t, in the kind's wear unit (see
// Options.WearPerDay), taking Service calls made so far into account.
func (m *Machine) Wear(t time.Time) float64 { return m.wearAt(t.Unix()) }

func (m *Machine) wearAt(sec int64) float64 {
	d := float64(sec-m.serviceAt) / 86400
	if d < 0 {
		d = 0
	}
	return m.wear0 + m.wearRate*d
}

// dayInfo describes one local calendar day of the machine's site, with the
// fault windows that overlap it.
type dayInfo struct {
	valid      bool
	start, end int64 // unix seconds of local midnight and the next one
	ord        int64 // days from 1970-01-01 to the local date
	weekday    time.Weekday
	faults     []faultWindow
}

// dayAt returns the local day containing sec, cached.
func (m *Machine) dayAt(sec int64) *dayInfo {
	d := &m.day
	if d.valid && sec >= d.start && sec < d.end {
		return d
	}
	y, mo, dd := time.Unix(sec, 0).In(m.loc).Date()
	m.fillDay(d, y, mo, dd)
	if sec < d.start || sec >= d.end { // a day swallowed by a time-zone change
		d.start, d.end = sec, sec+1
	}
	m.dayFaults(d)
	d.valid = true
	return d
}

func (m *Machine) fillDay(d *dayInfo, y int, mo time.Month, dd int) {
	s := time.Date(y, mo, dd, 0, 0, 0, 0, m.loc)
	d.start = s.Unix()
	d.end = time.Date(y, mo, dd+1, 0, 0, 0, 0, m.loc).Unix()
	d.weekday = s.Weekday()
	d.ord = time.Date(y, mo, dd, 0, 0, 0, 0, time.UTC).Unix() / 86400
	d.faults = d.faults[:0]
}

// todHours is the local time of day of sec in hours (0 ≤ h < 25).
func (m *Machine) todHours(sec int64) float64 {
	return float64(sec-m.dayAt(sec).start) / 3600
}

// minuteOfDay is the local minute of day of sec, within 0..1439.
func minuteOfDay(d *dayInfo, sec int64) int {
	i := int((sec - d.start) / 60)
	if i < 0 {
		return 0
	}
	if i > 1439 {
		return 1439
	}
	return i
}

func weekend(wd time.Weekday) bool { return wd == time.Saturday || wd == time.Sunday }

// param is a seed-derived machine parameter uniform in [lo, hi).
func (m *Machine) param(stream, i int, lo, hi float64) float64 {
	return lo + (hi-lo)*m.unitAt(stream, int64(i))
}

// round rounds v to a multiple of 1/inv, giving the float64 nearest to the
// decimal, and never -0.
func round(v, inv float64) float64 {
	r := math.Round(v*inv) / inv
	if r == 0 {
		return 0
	}
	return r
}

func lerp(a, b, f float64) float64 { return a + (b-a)*f }

// lerpCounter interpolates a non-decreasing counter without overshooting b.
func lerpCounter(a, b, f float64) float64 { return math.Min(a+(b-a)*f, b) }

func clamp(v, lo, hi float64) float64 {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

func flag(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// alpha is the fraction of the way a first-order lag with time constant tau
// (seconds) moves towards its target in one grid step.
func alpha(tau float64) float64 { return 1 - math.Exp(-stepSec/tau) }
