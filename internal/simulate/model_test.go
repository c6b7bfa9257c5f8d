package simulate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Berlin without depending on the host's zone files
)

// monday is 00:00 UTC on Monday 5 January 2026, in the heating season.
var monday = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

// at returns the time day days and hh:mm after monday.
func at(day, hh, mm int) time.Time {
	return monday.Add(time.Duration(day)*24*time.Hour + time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute)
}

// point is one sample.
type point struct {
	t time.Time
	v map[string]float64
}

// run samples m every step over [from, from+span).
func run(m *Machine, from time.Time, span, step time.Duration) []point {
	var ps []point
	for t := from; t.Before(from.Add(span)); t = t.Add(step) {
		ps = append(ps, point{t, m.Sample(t)})
	}
	return ps
}

// quiet are options without random faults.
var quiet = Options{FaultRatePerDay: -1}

func TestParseKind(t *testing.T) {
	tests := []struct {
		in      string
		want    Kind
		wantErr bool
	}{
		{"vacuum-pump", VacuumPump, false},
		{"coffee-machine", CoffeeMachine, false},
		{"pellet-heater", PelletHeater, false},
		{"lorawan-meter", Meter, false},
		{"pump", VacuumPump, false},
		{" Coffee ", CoffeeMachine, false},
		{"HEATER", PelletHeater, false},
		{"meter", Meter, false},
		{"", "", true},
		{"toaster", "", true},
	}
	for _, tc := range tests {
		got, err := ParseKind(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseKind(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
	for _, k := range Kinds() {
		if got, err := ParseKind(string(k)); err != nil || got != k {
			t.Errorf("ParseKind(%q) = %q, %v; want it back", k, got, err)
		}
	}
}

func TestSampleReportsExactlyTheKindsMetrics(t *testing.T) {
	for _, k := range Kinds() {
		m := NewMachine(k, 1, monday)
		if m.Kind() != k || !slices.Equal(m.Metrics(), k.Metrics()) {
			t.Fatalf("%s: Kind() = %s, Metrics() = %v", k, m.Kind(), m.Metrics())
		}
		got := m.Sample(monday.Add(time.Hour))
		var keys []string
		for name := range got {
			keys = append(keys, name)
		}
		want := k.Metrics()
		slices.Sort(keys)
		slices.Sort(want)
		if !slices.Equal(keys, want) {
			t.Errorf("%s: Sample keys %v, want %v", k, keys, want)
		}
		if len(k.Faults()) == 0 || !slices.Contains(k.Faults(), FaultOffline) {
			t.Errorf("%s: Faults() = %v, want offline among them", k, k.Faults())
		}
	}
}

func TestNewMachinePanicsOnMisuse(t *testing.T) {
	tests := []struct {
		name string
		new  func()
	}{
		{"unknown kind", func() { NewMachine("toaster", 1, monday) }},
		{"fault of another kind", func() {
			NewMachineWithOptions(VacuumPump, 1, monday, Options{Faults: []FaultWindow{{Fault: FaultLeak, From: monday, To: at(1, 0, 0)}}})
		}},
		{"fault ending before it begins", func() {
			NewMachineWithOptions(Meter, 1, monday, Options{Faults: []FaultWindow{{Fault: FaultLeak, From: at(1, 0, 0), To: monday}}})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tc.new()
		})
	}
}

func TestSameSeedSameSeriesDifferentSeedDifferentSeries(t *testing.T) {
	for _, k := range Kinds() {
		a := run(NewMachine(k, 11, monday), monday, 3*24*time.Hour, time.Minute)
		b := run(NewMachine(k, 11, monday), monday, 3*24*time.Hour, time.Minute)
		c := run(NewMachine(k, 12, monday), monday, 3*24*time.Hour, time.Minute)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: two machines with seed 11 differ", k)
		}
		same := 0
		for i := range a {
			if reflect.DeepEqual(a[i].v, c[i].v) {
				same++
			}
		}
		if same > len(a)/10 {
			t.Errorf("%s: seeds 11 and 12 agree on %d of %d samples", k, same, len(a))
		}
	}
}

func TestKindsDrawIndependently(t *testing.T) {
	// The same seed must not give every kind the same fault days.
	from, to := monday, at(365, 0, 0)
	days := func(k Kind) []int {
		var d []int
		for _, w := range NewMachine(k, 5, monday).FaultsBetween(from, to) {
			d = append(d, int(w.From.Sub(from).Hours()/24))
		}
		return d
	}
	if slices.Equal(days(PelletHeater), days(Meter)) {
		t.Errorf("heater and meter with one seed fault on the same days: %v", days(Meter))
	}
}

// TestValuesDoNotDependOnSamplingHistory is the central determinism promise:
// a machine sampled every second, one sampled every ten minutes and one
// sampled at irregular gaps report identical values at the instants they
// share — counters included.
func TestValuesDoNotDependOnSamplingHistory(t *testing.T) {
	for _, k := range Kinds() {
		dense := NewMachine(k, 3, monday)
		sparse := NewMachine(k, 3, monday)
		irregular := NewMachine(k, 3, monday)
		r := rand.New(rand.NewPCG(1, 2))
		nextIrregular := monday
		for s := 0; s < 86400; s++ {
			tm := monday.Add(time.Duration(s) * time.Second)
			want := dense.Sample(tm)
			if s%600 == 0 {
				if got := sparse.Sample(tm); !reflect.DeepEqual(got, want) {
					t.Fatalf("%s at %v: every 10 min %v, every 1 s %v", k, tm, got, want)
				}
			}
			if tm.Equal(nextIrregular) {
				if got := irregular.Sample(tm); !reflect.DeepEqual(got, want) {
					t.Fatalf("%s at %v: irregular %v, every 1 s %v", k, tm, got, want)
				}
				nextIrregular = tm.Add(time.Duration(1+r.IntN(900)) * time.Second)
			}
		}
	}
}

func TestSubSecondTimesInterpolate(t *testing.T) {
	m := NewMachine(VacuumPump, 3, monday)
	prev := -1.0
	for ms := 0; ms < 60_000; ms += 250 {
		v := m.Sample(at(0, 10, 0).Add(time.Duration(ms) * time.Millisecond))[MetricRunHours]
		if v < prev {
			t.Fatalf("runHours went back from %v to %v", prev, v)
		}
		prev = v
	}
}

func TestCountersNeverDecreaseAndIntegrateAlikeAtAnySpacing(t *testing.T) {
	for _, k := range Kinds() {
		for _, seed := range []int64{1, 2, 3} {
			fine := NewMachine(k, seed, monday)
			coarse := NewMachine(k, seed, monday)
			for _, spec := range k.MetricSpecs() {
				if !spec.Counter {
					continue
				}
				last := math.Inf(-1)
				var first10s, first10m float64
				for s := 0; s <= 2*86400; s += 10 {
					tm := monday.Add(time.Duration(s) * time.Second)
					v := fine.Sample(tm)[spec.Name]
					if v < last {
						t.Fatalf("%s seed %d: %s fell from %v to %v at %v", k, seed, spec.Name, last, v, tm)
					}
					last = v
					if s == 0 {
						first10s = v
					}
					if s%600 == 0 {
						c := coarse.Sample(tm)[spec.Name]
						if s == 0 {
							first10m = c
						}
						if d10s, d10m := v-first10s, c-first10m; math.Abs(d10s-d10m) > spec.Resolution/2 {
							t.Fatalf("%s seed %d: %s rose by %v sampled every 10 s but %v every 10 min at %v",
								k, seed, spec.Name, d10s, d10m, tm)
						}
					}
				}
			}
		}
	}
}

func TestRunHoursCountTheRunningTime(t *testing.T) {
	m := NewMachineWithOptions(VacuumPump, 8, monday, quiet)
	ps := run(m, monday, 7*24*time.Hour+time.Second, 10*time.Second)
	running := 0.0
	for _, p := range ps[:len(ps)-1] {
		running += p.v[MetricRunning] * 10 / 3600
	}
	counted := ps[len(ps)-1].v[MetricRunHours] - ps[0].v[MetricRunHours]
	if math.Abs(counted-running) > 0.011 || running < 40 {
		t.Errorf("runHours rose by %.3f h over a week, running flag says %.3f h", counted, running)
	}
}

// ranges are the physical ranges of every metric.
var ranges = map[string][2]float64{
	MetricInletPressure:      {0.5, 1100},
	MetricOutletPressure:     {0.95, 1.5},
	MetricTemperature:        {5, 130},
	MetricMotorCurrent:       {0, 40},
	MetricRunHours:           {0, 1e6},
	MetricRunning:            {0, 1},
	MetricBoilerTemperature:  {5, 98},
	MetricBrewCount:          {0, 1e7},
	MetricWaterHardness:      {0.5, 30},
	MetricOn:                 {0, 1},
	MetricFlueGasTemperature: {-35, 300},
	MetricOutdoorTemperature: {-35, 42},
	MetricPelletLevel:        {0, 100},
	MetricBurnerStarts:       {0, 1e7},
	MetricBurnerOn:           {0, 1},
	MetricConsumption:        {0, 1e6},
	MetricBattery:            {2.5, 3.7},
	MetricRSSI:               {-140, -30},
	MetricSNR:                {-20, 13.5},
}

// TestAMonthOfValuesIsPhysicalAndAtSensorResolution samples every kind with
// default options (random faults included) every 5 minutes for a month, in
// winter and in summer.
func TestAMonthOfValuesIsPhysicalAndAtSensorResolution(t *testing.T) {
	for _, k := range Kinds() {
		for _, start := range []time.Time{monday, time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)} {
			for seed := int64(1); seed <= 4; seed++ {
				m := NewMachine(k, seed, start)
				for _, p := range run(m, start, 31*24*time.Hour, 5*time.Minute) {
					for _, spec := range k.MetricSpecs() {
						v := p.v[spec.Name]
						r := ranges[spec.Name]
						if math.IsNaN(v) || math.IsInf(v, 0) || v < r[0] || v > r[1] {
							t.Fatalf("%s seed %d at %v: %s = %v, want within %v", k, seed, p.t, spec.Name, v, r)
						}
						if !atResolution(v, spec.Resolution) {
							t.Fatalf("%s seed %d at %v: %s = %v is not a multiple of %v", k, seed, p.t, spec.Name, v, spec.Resolution)
						}
						if spec.Flag && v != 0 && v != 1 {
							t.Fatalf("%s seed %d at %v: flag %s = %v", k, seed, p.t, spec.Name, v)
						}
					}
				}
			}
		}
	}
}

// atResolution reports whether v is the float64 nearest to a multiple of res,
// so that it prints with no more decimals than res has.
func atResolution(v, res float64) bool {
	n := math.Round(v / res)
	if math.Abs(v/res-n) > 1e-9 {
		return false
	}
	decimals := func(x float64) int {
		s := strconv.FormatFloat(x, 'f', -1, 64)
		if i := strings.IndexByte(s, '.'); i >= 0 {
			return len(s) - i - 1
		}
		return 0
	}
	negativeZero := v == 0 && math.Signbit(v)
	return decimals(v) <= decimals(res) && !negativeZero
}

func TestRoundGivesShortDecimals(t *testing.T) {
	tests := []struct {
		v, inv float64
		want   string
	}{
		{70.14999, 10, "70.1"},
		{70.15001, 10, "70.2"},
		{1.0134999, 1000, "1.013"},
		{12.345, 100, "12.35"},
		{-0.04, 10, "0"},
		{7.13, 4, "7.25"},
		{-93.4, 1, "-93"},
	}
	for _, tc := range tests {
		if got := strconv.FormatFloat(round(tc.v, tc.inv), 'f', -1, 64); got != tc.want {
			t.Errorf("round(%v, %v) = %s, want %s", tc.v, tc.inv, got, tc.want)
		}
	}
}

func TestDeviceSeed(t *testing.T) {
	seen := map[int64]int{}
	for i := 0; i < 1000; i++ {
		s := DeviceSeed(42, i)
		if s != DeviceSeed(42, i) {
			t.Fatal("DeviceSeed is not deterministic")
		}
		if j, dup := seen[s]; dup {
			t.Fatalf("devices %d and %d share seed %d", j, i, s)
		}
		seen[s] = i
	}
	if DeviceSeed(42, 0) == DeviceSeed(43, 0) {
		t.Error("fleets 42 and 43 give device 0 the same seed")
	}
}

func TestSiteTimeZoneDrivesTheDailyRhythm(t *testing.T) {
	// A pump in a UTC−5 hall runs at 10:00 local, which is 15:00 UTC, and is
	// off at 03:00 local, which is 08:00 UTC.
	zone := time.FixedZone("UTC-5", -5*3600)
	startLocal := time.Date(2026, 1, 5, 0, 0, 0, 0, zone)
	for seed := int64(1); seed <= 10; seed++ {
		m := NewMachineWithOptions(VacuumPump, seed, startLocal, Options{FaultRatePerDay: -1, Location: zone})
		on := 0
		for day := 0; day < 5; day++ {
			night := m.Sample(startLocal.AddDate(0, 0, day).Add(3 * time.Hour))
			if night[MetricRunning] != 0 {
				t.Errorf("seed %d: running at 03:00 local on day %d", seed, day)
			}
			on += int(m.Sample(startLocal.AddDate(0, 0, day).Add(10 * time.Hour))[MetricRunning])
		}
		if on < 4 {
			t.Errorf("seed %d: running at 10:00 local on %d of 5 weekdays", seed, on)
		}
	}
}

func TestDaylightSavingDaysAreHandled(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	// 29 March and 25 October 2026 are the Sundays the clocks change.
	for _, start := range []time.Time{time.Date(2026, 3, 23, 0, 0, 0, 0, berlin), time.Date(2026, 10, 19, 0, 0, 0, 0, berlin)} {
		for _, k := range Kinds() {
			m := NewMachineWithOptions(k, 1, start, Options{Location: berlin})
			last := map[string]float64{}
			for _, p := range run(m, start, 14*24*time.Hour, 5*time.Minute) {
				for _, spec := range k.MetricSpecs() {
					v := p.v[spec.Name]
					if math.IsNaN(v) || math.IsInf(v, 0) || (spec.Counter && v < last[spec.Name]) {
						t.Fatalf("%s at %v: %s = %v after %v", k, p.t, spec.Name, v, last[spec.Name])
					}
					last[spec.Name] = v
				}
				if k == VacuumPump && p.t.In(berlin).Hour() == 3 && p.v[MetricRunning] != 0 {
					t.Fatalf("pump running at %v", p.t.In(berlin))
				}
			}
		}
	}
}

func TestDefaultFaultRateIsAboutOneInThreeWeeks(t *testing.T) {
	from, to := monday, monday.AddDate(1, 0, 0)
	for _, k := range Kinds() {
		total := 0
		for seed := int64(1); seed <= 20; seed++ {
			ws := NewMachine(k, seed, monday).FaultsBetween(from, to)
			total += len(ws)
			for i := 1; i < len(ws); i++ {
				if ws[i].From.Before(ws[i-1].To) {
					t.Errorf("%s seed %d: random faults overlap: %v and %v", k, seed, ws[i-1], ws[i])
				}
			}
		}
		perYear := float64(total) / 20
		if perYear < 8 || perYear > 26 {
			t.Errorf("%s: %.1f random faults per machine-year, want about 365/21 ≈ 17", k, perYear)
		}
	}
}

func TestActiveFaultTellsTheSchedule(t *testing.T) {
	for _, k := range Kinds() {
		m := NewMachineWithOptions(k, 9, monday, Options{FaultRatePerDay: 0.2})
		ws := m.FaultsBetween(monday, at(60, 0, 0))
		if len(ws) < 5 {
			t.Fatalf("%s: only %d faults in 60 days at 0.2/day", k, len(ws))
		}
		for tm := monday; tm.Before(at(60, 0, 0)); tm = tm.Add(5 * time.Minute) {
			want := ""
			for _, w := range ws {
				if !tm.Before(w.From) && tm.Before(w.To) {
					want = w.Fault
				}
			}
			m.Sample(tm)
			if got := m.ActiveFault(tm); got != want {
				t.Fatalf("%s: ActiveFault(%v) = %q, FaultsBetween says %q", k, tm, got, want)
			}
			if want != "" && !slices.Contains(k.Faults(), want) {
				t.Fatalf("%s: fault %q is not one of %v", k, want, k.Faults())
			}
		}
	}
}

func TestNegativeFaultRateMeansNoRandomFaults(t *testing.T) {
	for _, k := range Kinds() {
		m := NewMachineWithOptions(k, 9, monday, quiet)
		if ws := m.FaultsBetween(monday, monday.AddDate(2, 0, 0)); len(ws) != 0 {
			t.Errorf("%s: faults with rate -1: %v", k, ws)
		}
	}
}

func TestForcedFaultIsReportedExactlyInItsWindow(t *testing.T) {
	from, to := at(1, 9, 0), at(1, 12, 0)
	m := NewMachineWithOptions(Meter, 1, monday, Options{FaultRatePerDay: -1,
		Faults: []FaultWindow{{Fault: FaultOffline, From: from, To: to}}})
	tests := []struct {
		t    time.Time
		want string
	}{
		{from.Add(-time.Second), ""},
		{from, FaultOffline},
		{to.Add(-time.Second), FaultOffline},
		{to, ""},
	}
	for _, tc := range tests {
		if got := m.ActiveFault(tc.t); got != tc.want {
			t.Errorf("ActiveFault(%v) = %q, want %q", tc.t, got, tc.want)
		}
	}
	if ws := m.FaultsBetween(monday, at(7, 0, 0)); len(ws) != 1 || !ws[0].From.Equal(from) || !ws[0].To.Equal(to) {
		t.Errorf("FaultsBetween = %v, want the forced window only", ws)
	}
}

func TestInjectFaultTakesEffectFromNowOn(t *testing.T) {
	m := NewMachineWithOptions(VacuumPump, 2, monday, quiet)
	m.Sample(at(1, 8, 0))
	m.InjectFault(FaultWindow{Fault: FaultOverheat, From: at(1, 9, 0), To: at(1, 12, 0)})
	if got := m.ActiveFault(at(1, 10, 0)); got != FaultOverheat {
		t.Fatalf("ActiveFault = %q after InjectFault", got)
	}
	hottest := 0.0
	for _, p := range run(m, at(1, 9, 0), 3*time.Hour, time.Minute) {
		hottest = math.Max(hottest, p.v[MetricTemperature])
	}
	if hottest < 95 {
		t.Errorf("injected overheat: hottest %.1f °C, want above 95", hottest)
	}
}

func TestServiceResetsWear(t *testing.T) {
	for _, k := range Kinds() {
		m := NewMachineWithOptions(k, 4, monday, Options{FaultRatePerDay: -1, WearPerDay: 2, InitialWear: 1})
		if w := m.Wear(monday); w != 1 {
			t.Errorf("%s: wear at start %v, want InitialWear 1", k, w)
		}
		if w := m.Wear(at(10, 0, 0)); math.Abs(w-21) > 1e-9 {
			t.Errorf("%s: wear after 10 days %v, want 21", k, w)
		}
		m.Sample(at(10, 0, 0))
		m.Service(at(10, 0, 0))
		if w := m.Wear(at(11, 0, 0)); math.Abs(w-2) > 1e-9 {
			t.Errorf("%s: wear a day after service %v, want 2", k, w)
		}
	}
}

func TestDefaultWearVariesBySeedAroundTheKindsRate(t *testing.T) {
	for _, k := range Kinds() {
		var rates []float64
		for seed := int64(0); seed < 10; seed++ {
			m := NewMachine(k, seed, monday)
			rates = append(rates, m.Wear(at(1, 0, 0)))
		}
		lo, hi := slices.Min(rates), slices.Max(rates)
		d := DefaultWearPerDay(k)
		if lo < 0.75*d || hi > 1.25*d || lo == hi {
			t.Errorf("%s: default wear per day ranges %v…%v, want varied within 0.75…1.25 × %v", k, lo, hi, d)
		}
	}
}

func BenchmarkSample(b *testing.B) {
	for _, k := range Kinds() {
		for _, every := range []time.Duration{time.Second, 10 * time.Second, 10 * time.Minute} {
			b.Run(fmt.Sprintf("%s/every=%v", k, every), func(b *testing.B) {
				m := NewMachine(k, 1, monday)
				dst := make(map[string]float64, 6)
				tm := monday
				b.ResetTimer()
				for range b.N {
					tm = tm.Add(every)
					m.SampleInto(tm, dst)
				}
			})
		}
	}
}
