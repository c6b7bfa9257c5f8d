package simulate

import (
	"math"
	"slices"
	"testing"
	"time"
)

// slope is the least-squares slope of ys over xs.
func slope(xs, ys []float64) float64 {
	var mx, my float64
	for i := range xs {
		mx += xs[i]
		my += ys[i]
	}
	mx /= float64(len(xs))
	my /= float64(len(ys))
	var num, den float64
	for i := range xs {
		num += (xs[i] - mx) * (ys[i] - my)
		den += (xs[i] - mx) * (xs[i] - mx)
	}
	return num / den
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func mean(xs []float64) float64 {
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

// constant returns an outdoor temperature that never changes.
func constant(c float64) func(time.Time) float64 { return func(time.Time) float64 { return c } }

// --- vacuum pump -----------------------------------------------------------

func TestPumpRunsInWeekdayShiftsAndRestsOnSunday(t *testing.T) {
	var weekdays []float64
	for seed := int64(1); seed <= 20; seed++ {
		m := NewMachineWithOptions(VacuumPump, seed, monday, quiet)
		for day := 0; day < 14; day++ {
			ps := run(m, at(day, 0, 0), 24*time.Hour, 5*time.Minute)
			wd := ps[0].t.Weekday()
			daytime := 0.0
			for _, p := range ps {
				if h := p.t.Hour(); h >= 8 && h < 14 {
					daytime += p.v[MetricRunning] / 72
				}
				if wd == time.Sunday && p.v[MetricRunning] != 0 {
					t.Fatalf("seed %d: running on Sunday %v", seed, p.t)
				}
				if p.t.Hour() == 3 && p.v[MetricRunning] != 0 {
					t.Fatalf("seed %d: running at %v", seed, p.t)
				}
			}
			if wd != time.Saturday && wd != time.Sunday {
				weekdays = append(weekdays, daytime)
				if daytime < 0.75 {
					t.Errorf("seed %d: running %.0f %% of %s 08:00–14:00, want ≥ 75 %%", seed, 100*daytime, wd)
				}
			}
			if wd == time.Sunday && ps[len(ps)-1].v[MetricRunHours] != ps[0].v[MetricRunHours] {
				t.Errorf("seed %d: runHours rose on Sunday", seed)
			}
		}
	}
	if avg := mean(weekdays); avg < 0.93 {
		t.Errorf("running %.1f %% of weekday 08:00–14:00 on average, want ≥ 93 %% (short stops only)", 100*avg)
	}
}

func TestPumpSignalsRunningAndAtRest(t *testing.T) {
	for seed := int64(1); seed <= 10; seed++ {
		m := NewMachineWithOptions(VacuumPump, seed, monday, quiet)
		var inlet, temp []float64
		for _, p := range run(m, at(1, 10, 0), 3*time.Hour, time.Minute) { // Tuesday late morning
			if p.v[MetricRunning] == 1 {
				inlet = append(inlet, p.v[MetricInletPressure])
				temp = append(temp, p.v[MetricTemperature])
				if p.v[MetricMotorCurrent] < 5 || p.v[MetricOutletPressure] < 1.03 {
					t.Fatalf("seed %d at %v running with %v", seed, p.t, p.v)
				}
			}
		}
		if in := median(inlet); in < 1 || in > 50 {
			t.Errorf("seed %d: median inlet pressure running %.1f mbar, want 1–50", seed, in)
		}
		if tm := median(temp); tm < 68 || tm > 86 {
			t.Errorf("seed %d: median temperature running %.1f °C, want 68–86", seed, tm)
		}
		rest := m.Sample(at(6, 3, 0)) // Sunday 03:00
		if rest[MetricRunning] != 0 || rest[MetricMotorCurrent] != 0 || rest[MetricInletPressure] < 950 ||
			rest[MetricTemperature] > 35 || rest[MetricOutletPressure] > 1.03 {
			t.Errorf("seed %d: at rest on Sunday night %v", seed, rest)
		}
	}
}

func TestPumpWarmsUpAndCoolsDownWithALag(t *testing.T) {
	m := NewMachineWithOptions(VacuumPump, 3, monday, quiet)
	ps := run(m, at(1, 0, 0), 24*time.Hour, time.Minute) // Tuesday
	on := slices.IndexFunc(ps, func(p point) bool { return p.v[MetricRunning] == 1 })
	off := on
	for i, p := range ps {
		if p.v[MetricRunning] == 1 {
			off = i + 1 // first sample after the last running one
		}
	}
	cold, warm := ps[on].v[MetricTemperature], ps[on+180].v[MetricTemperature]
	if warm-cold < 40 {
		t.Fatalf("temperature %.1f at start of shift and %.1f three hours later", cold, warm)
	}
	if after10 := ps[on+10].v[MetricTemperature]; after10-cold > (warm-cold)/2 {
		t.Errorf("half warm after 10 minutes (%.1f → %.1f → %.1f); want a lag of tens of minutes", cold, after10, warm)
	}
	end := ps[off].v[MetricTemperature]
	if after30 := ps[off+30].v[MetricTemperature]; after30 < cold+(end-cold)/3 {
		t.Errorf("cooled from %.1f to %.1f in 30 minutes; want a slow cool-down", end, after30)
	}
}

// dailyRunningMedian is, for each weekday of the span, the median of metric
// over the samples between 10:00 and 14:00 while the pump runs.
func dailyRunningMedian(m *Machine, days int, metric string) (xs, ys []float64) {
	for day := 0; day < days; day++ {
		if wd := at(day, 0, 0).Weekday(); wd == time.Saturday || wd == time.Sunday {
			continue
		}
		var v []float64
		for _, p := range run(m, at(day, 10, 0), 4*time.Hour, 2*time.Minute) {
			if p.v[MetricRunning] == 1 {
				v = append(v, p.v[metric])
			}
		}
		xs = append(xs, float64(day))
		ys = append(ys, median(v))
	}
	return xs, ys
}

func TestPumpWearRaisesTemperatureByTheConfiguredRate(t *testing.T) {
	tests := []struct {
		wearPerDay, wantSlope float64
	}{
		{0.5, 0.5},
		{0.2, 0.2},
		{-1, 0}, // no wear
	}
	for _, tc := range tests {
		for _, seed := range []int64{1, 2, 3} {
			m := NewMachineWithOptions(VacuumPump, seed, monday, Options{FaultRatePerDay: -1, WearPerDay: tc.wearPerDay})
			xs, temps := dailyRunningMedian(m, 30, MetricTemperature)
			if got := slope(xs, temps); math.Abs(got-tc.wantSlope) > 0.05 {
				t.Errorf("seed %d wear %v °C/day: temperature rises %.3f °C/day, want %.2f ± 0.05",
					seed, tc.wearPerDay, got, tc.wantSlope)
			}
		}
	}
}

func TestPumpWearRaisesMotorCurrent(t *testing.T) {
	m := NewMachineWithOptions(VacuumPump, 1, monday, Options{FaultRatePerDay: -1, WearPerDay: 0.5})
	_, current := dailyRunningMedian(m, 30, MetricMotorCurrent)
	if rise := current[len(current)-1]/current[0] - 1; rise < 0.04 || rise > 0.12 {
		t.Errorf("motor current rose %.1f %% over a month of 0.5 °C/day wear, want about 7 %%", 100*rise)
	}
}

func TestPumpServiceBringsTheTemperatureBack(t *testing.T) {
	m := NewMachineWithOptions(VacuumPump, 2, monday, Options{FaultRatePerDay: -1, WearPerDay: 0.5})
	_, before := dailyRunningMedian(m, 22, MetricTemperature) // through Monday of week 4
	m.Service(at(22, 0, 0))
	var after []float64
	for _, p := range run(m, at(22, 10, 0), 4*time.Hour, 2*time.Minute) {
		if p.v[MetricRunning] == 1 {
			after = append(after, p.v[MetricTemperature])
		}
	}
	if drop := before[len(before)-1] - median(after); drop < 9 || drop > 12 {
		t.Errorf("temperature dropped %.1f °C when serviced after 21 days of 0.5 °C/day wear, want about 10.5", drop)
	}
}

// --- coffee machine --------------------------------------------------------

func TestCoffeeMachineDailyRoutine(t *testing.T) {
	for seed := int64(1); seed <= 10; seed++ {
		m := NewMachineWithOptions(CoffeeMachine, seed, monday, quiet)
		ps := run(m, at(1, 0, 0), 24*time.Hour, time.Minute) // Tuesday
		night := ps[3*60].v
		if night[MetricOn] != 0 || night[MetricBoilerTemperature] > 35 {
			t.Errorf("seed %d: at 03:00 %v, want off and cold", seed, night)
		}
		if mid := ps[10*60+30].v; mid[MetricOn] != 1 || mid[MetricBoilerTemperature] < 88 || mid[MetricBoilerTemperature] > 97 {
			t.Errorf("seed %d: at 10:30 %v, want on and hot", seed, mid)
		}
		on := slices.IndexFunc(ps, func(p point) bool { return p.v[MetricOn] == 1 })
		if on < 0 {
			t.Fatalf("seed %d: never on on Tuesday", seed)
		}
		start := ps[on].v[MetricBoilerTemperature]
		after5 := ps[on+5].v[MetricBoilerTemperature]
		hottest := maxOf(ps[on:on+40], MetricBoilerTemperature)
		if start > 40 || after5 > 80 || hottest < 90 {
			t.Errorf("seed %d: heating curve after power-on %.1f → %.1f (5 min) → at most %.1f (40 min), want cold → warming → hot",
				seed, start, after5, hottest)
		}
	}
}

func TestCoffeeBrewsPeakAtBreakfastAndLunch(t *testing.T) {
	var breakfast, lunch, lateMorning, perDay []float64
	for seed := int64(1); seed <= 10; seed++ {
		m := NewMachineWithOptions(CoffeeMachine, seed, monday, quiet)
		for day := 0; day < 5; day++ {
			count := func(h0, m0, h1, m1 int) float64 {
				a := m.Sample(at(day, h0, m0))[MetricBrewCount]
				b := m.Sample(at(day, h1, m1))[MetricBrewCount]
				return b - a
			}
			first := m.Sample(at(day, 0, 0))[MetricBrewCount]
			breakfast = append(breakfast, count(7, 30, 9, 30)/2)
			lateMorning = append(lateMorning, count(10, 0, 11, 30)/1.5)
			lunch = append(lunch, count(12, 0, 13, 30)/1.5)
			perDay = append(perDay, m.Sample(at(day+1, 0, 0))[MetricBrewCount]-first)
		}
	}
	if b, l, q := mean(breakfast), mean(lunch), mean(lateMorning); b < 3*q || l < 3*q {
		t.Errorf("brews per hour: breakfast %.1f, lunch %.1f, late morning %.1f; want the peaks ≥ 3× the lull", b, l, q)
	}
	if lo, hi := slices.Min(perDay), slices.Max(perDay); lo < 20 || hi > 600 {
		t.Errorf("brews per weekday range %v…%v, want tens to hundreds", lo, hi)
	}
}

func TestCoffeeBrewDipsTheBoiler(t *testing.T) {
	m := NewMachineWithOptions(CoffeeMachine, 5, monday, quiet)
	ps := run(m, at(1, 7, 0), 12*time.Hour, 10*time.Second)
	brews, dipped := 0, 0
	for i := 1; i+4 < len(ps); i++ {
		if ps[i].v[MetricBrewCount] == ps[i-1].v[MetricBrewCount] || ps[i-1].v[MetricBoilerTemperature] < 92 {
			continue
		}
		brews++
		low := math.Inf(1)
		for _, p := range ps[i : i+4] {
			low = math.Min(low, p.v[MetricBoilerTemperature])
		}
		if ps[i-1].v[MetricBoilerTemperature]-low >= 0.8 {
			dipped++
		}
	}
	if brews < 20 || float64(dipped) < 0.8*float64(brews) {
		t.Errorf("%d of %d brews dipped the boiler by ≥ 0.8 °C", dipped, brews)
	}
}

func TestCoffeeScaleSlowsTheHeatUp(t *testing.T) {
	heatUp := func(m *Machine, day int) time.Duration {
		ps := run(m, at(day, 0, 0), 24*time.Hour, 10*time.Second)
		on := slices.IndexFunc(ps, func(p point) bool { return p.v[MetricOn] == 1 })
		hot := slices.IndexFunc(ps[on:], func(p point) bool { return p.v[MetricBoilerTemperature] >= 90 })
		return time.Duration(hot) * 10 * time.Second
	}
	m := NewMachineWithOptions(CoffeeMachine, 6, monday, Options{FaultRatePerDay: -1, WearPerDay: 1}) // 1 %/day
	fresh, scaled := heatUp(m, 1), heatUp(m, 29)
	if ratio := float64(scaled) / float64(fresh); ratio < 1.25 || ratio > 1.6 {
		t.Errorf("heat-up took %v fresh and %v after 29 days of 1 %%/day scale (×%.2f), want about ×1.4", fresh, scaled, ratio)
	}
	m.Service(at(30, 0, 0))
	if again := heatUp(m, 30); again > fresh*11/10 {
		t.Errorf("heat-up took %v after descaling, want about %v", again, fresh)
	}
}

func TestCoffeeWaterHardnessIsNearlyConstantWithRareSteps(t *testing.T) {
	steps := 0
	for seed := int64(1); seed <= 10; seed++ {
		m := NewMachine(CoffeeMachine, seed, monday)
		ps := run(m, monday, 365*24*time.Hour, time.Hour)
		for i := 1; i < len(ps); i++ {
			if math.Abs(ps[i].v[MetricWaterHardness]-ps[i-1].v[MetricWaterHardness]) > 0.25 {
				steps++ // anything beyond sensor noise is a step
			}
		}
	}
	if perYear := float64(steps) / 10; perYear > 6 || steps == 0 {
		t.Errorf("%.1f hardness steps per machine-year, want rare (about 3) but some", perYear)
	}
}

// --- pellet heater ---------------------------------------------------------

func TestHeaterDemandFollowsOutdoorTemperature(t *testing.T) {
	type result struct{ onFraction, boiler, pelletsPerHour float64 }
	measure := func(seed int64, outdoor float64) result {
		m := NewMachineWithOptions(PelletHeater, seed, monday, Options{FaultRatePerDay: -1, OutdoorTemperature: constant(outdoor)})
		ps := run(m, monday, 4*24*time.Hour, time.Minute)
		var r result
		var drops []float64
		for i, p := range ps {
			r.onFraction += p.v[MetricBurnerOn] / float64(len(ps))
			r.boiler += p.v[MetricBoilerTemperature] / float64(len(ps))
			if i >= 60 && i%60 == 0 {
				drops = append(drops, ps[i-60].v[MetricPelletLevel]-p.v[MetricPelletLevel])
			}
		}
		r.pelletsPerHour = median(drops)
		return r
	}
	for seed := int64(1); seed <= 5; seed++ {
		cold, mild := measure(seed, -10), measure(seed, 15)
		if cold.onFraction < 2*mild.onFraction || cold.onFraction < 0.4 {
			t.Errorf("seed %d: burner on %.0f %% of the time at −10 °C and %.0f %% at +15 °C", seed, 100*cold.onFraction, 100*mild.onFraction)
		}
		if cold.pelletsPerHour < 2*mild.pelletsPerHour || cold.pelletsPerHour <= 0 {
			t.Errorf("seed %d: pellets drop %.2f %%/h at −10 °C and %.2f %%/h at +15 °C", seed, cold.pelletsPerHour, mild.pelletsPerHour)
		}
		if cold.boiler < mild.boiler+5 {
			t.Errorf("seed %d: boiler %.1f °C at −10 °C and %.1f °C at +15 °C, want the heating curve to raise it", seed, cold.boiler, mild.boiler)
		}
	}
}

// dailyBurningMean is the mean flue-gas temperature while the burner burns on
// the given day.
func dailyBurningMean(m *Machine, day int) float64 {
	var v []float64
	for _, p := range run(m, at(day, 0, 0), 24*time.Hour, 2*time.Minute) {
		if p.v[MetricBurnerOn] == 1 {
			v = append(v, p.v[MetricFlueGasTemperature])
		}
	}
	return mean(v)
}

func TestHeaterFlueGasRisesWithSootAndDropsAfterService(t *testing.T) {
	for _, seed := range []int64{1, 2, 3} {
		m := NewMachineWithOptions(PelletHeater, seed, monday, Options{FaultRatePerDay: -1, WearPerDay: 1, OutdoorTemperature: constant(-5)})
		var xs, ys []float64
		for day := 0; day < 20; day++ {
			xs = append(xs, float64(day))
			ys = append(ys, dailyBurningMean(m, day))
		}
		if got := slope(xs, ys); math.Abs(got-1) > 0.15 {
			t.Errorf("seed %d: flue gas rises %.2f °C/day under 1 °C/day soot, want 1 ± 0.15", seed, got)
		}
		m.Service(at(20, 0, 0))
		if drop := ys[19] - dailyBurningMean(m, 20); drop < 15 || drop > 23 {
			t.Errorf("seed %d: flue gas dropped %.1f °C after cleaning 19.5 days of soot, want about 19", seed, drop)
		}
	}
}

func TestHeaterClimateHasSeasonsAndDays(t *testing.T) {
	var january, july, night, afternoon []float64
	for seed := int64(1); seed <= 5; seed++ {
		m := NewMachine(PelletHeater, seed, monday)
		for _, p := range run(m, monday, 28*24*time.Hour, 30*time.Minute) {
			january = append(january, p.v[MetricOutdoorTemperature])
			switch p.t.Hour() {
			case 4:
				night = append(night, p.v[MetricOutdoorTemperature])
			case 15:
				afternoon = append(afternoon, p.v[MetricOutdoorTemperature])
			}
		}
		summer := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
		m = NewMachine(PelletHeater, seed, summer)
		for _, p := range run(m, summer, 28*24*time.Hour, 30*time.Minute) {
			july = append(july, p.v[MetricOutdoorTemperature])
		}
	}
	if w, s := mean(january), mean(july); w > 3 || s < 14 {
		t.Errorf("mean outdoor temperature %.1f °C in January and %.1f °C in July", w, s)
	}
	if n, a := mean(night), mean(afternoon); a-n < 2.5 {
		t.Errorf("mean outdoor temperature %.1f °C at 04:00 and %.1f °C at 15:00, want a daily cycle", n, a)
	}
}

func TestHeaterPelletsDrainAndAreRefilledWhenLow(t *testing.T) {
	m := NewMachineWithOptions(PelletHeater, 4, monday, Options{FaultRatePerDay: -1, OutdoorTemperature: constant(-8)})
	ps := run(m, monday, 40*24*time.Hour, 10*time.Minute)
	refills := 0
	lowest := 100.0
	for i := 1; i < len(ps); i++ {
		level := ps[i].v[MetricPelletLevel]
		lowest = math.Min(lowest, level)
		if level-ps[i-1].v[MetricPelletLevel] > 30 {
			refills++
			if before := ps[i-1].v[MetricPelletLevel]; before > 26 {
				t.Errorf("refilled at %v from %.1f %%, want only when low", ps[i].t, before)
			}
		}
	}
	if refills == 0 || lowest < 5 {
		t.Errorf("%d refills in 40 cold days, lowest level %.1f %%", refills, lowest)
	}
}

// --- LoRaWAN meter ---------------------------------------------------------

func TestMeterUsageFollowsTheDay(t *testing.T) {
	for seed := int64(1); seed <= 10; seed++ {
		m := NewMachineWithOptions(Meter, seed, monday, quiet)
		var night, morning, day float64
		for d := 0; d < 14; d++ {
			read := func(h int) float64 { return m.Sample(at(d, h, 0))[MetricConsumption] }
			r0, r1, r5, r6, r9, r24 := read(0), read(1), read(5), read(6), read(9), read(24)
			night += r5 - r1
			morning += r9 - r6
			day += r24 - r0
		}
		if night > 0.03*day || morning < 0.15*day {
			t.Errorf("seed %d: of %.3f m³ in two weeks, %.3f at night (01–05) and %.3f in the morning (06–09)", seed, day, night, morning)
		}
		if perDay := day / 14; perDay < 0.1 || perDay > 5 {
			t.Errorf("seed %d: %.3f m³ per day", seed, perDay)
		}
	}
}

func TestMeterBatteryDeclinesByTheConfiguredRate(t *testing.T) {
	m := NewMachineWithOptions(Meter, 2, monday, Options{FaultRatePerDay: -1, WearPerDay: 0.001})
	var xs, ys []float64
	for day := 0; day < 60; day++ {
		var v []float64
		for _, p := range run(m, at(day, 0, 0), 24*time.Hour, 15*time.Minute) {
			v = append(v, p.v[MetricBattery])
		}
		xs = append(xs, float64(day))
		ys = append(ys, mean(v))
	}
	if got := slope(xs, ys); math.Abs(got+0.001) > 0.0001 {
		t.Errorf("battery changes %.5f V/day, want −0.001", got)
	}
}

func TestMeterRadioIsNoisyAndSNRFollowsRSSI(t *testing.T) {
	var rssiMeans, snrMeans []float64
	for seed := int64(1); seed <= 20; seed++ {
		m := NewMachine(Meter, seed, monday)
		var rssi, snr []float64
		for _, p := range run(m, monday, 2*24*time.Hour, 15*time.Minute) {
			rssi = append(rssi, p.v[MetricRSSI])
			snr = append(snr, p.v[MetricSNR])
		}
		if slices.Min(rssi) == slices.Max(rssi) {
			t.Errorf("seed %d: rssi constant at %v", seed, rssi[0])
		}
		rssiMeans = append(rssiMeans, mean(rssi))
		snrMeans = append(snrMeans, mean(snr))
	}
	if s := slope(rssiMeans, snrMeans); s < 0.2 {
		t.Errorf("snr rises %.2f dB per dBm of rssi across meters, want a clear positive relation", s)
	}
}

// --- forced faults ---------------------------------------------------------

// TestForcedFaultsShowInTheSignals forces each fault on Tuesday and checks
// that ActiveFault names it and the signals show it.
func TestForcedFaultsShowInTheSignals(t *testing.T) {
	tests := []struct {
		kind     Kind
		fault    string
		from, to time.Time
		outdoor  func(time.Time) float64
		// check gets the samples (every minute) from two hours before the
		// window to six hours after it.
		check func(t *testing.T, before, during, after []point)
	}{
		{
			kind: VacuumPump, fault: FaultOverheat, from: at(1, 9, 0), to: at(1, 12, 0),
			check: func(t *testing.T, before, during, after []point) {
				if hi := maxOf(before, MetricTemperature); hi > 90 {
					t.Errorf("%.1f °C before the fault", hi)
				}
				if hi := maxOf(during, MetricTemperature); hi < 95 {
					t.Errorf("hottest %.1f °C during an overheat, want above 95", hi)
				}
				if hi := maxOf(after[120:], MetricTemperature); hi > 90 {
					t.Errorf("still %.1f °C two hours after the fault", hi)
				}
			},
		},
		{
			kind: VacuumPump, fault: FaultVacuumLeak, from: at(1, 9, 0), to: at(1, 12, 0),
			check: func(t *testing.T, before, during, after []point) {
				if lo := minOf(during[5:], MetricInletPressure); lo < 60 {
					t.Errorf("inlet pressure down to %.1f mbar during a leak, want above 60", lo)
				}
				if in := medianOf(before, MetricInletPressure, MetricRunning); in > 50 {
					t.Errorf("median inlet pressure %.1f mbar running before the leak", in)
				}
				if in := medianOf(after[10:], MetricInletPressure, MetricRunning); in > 50 {
					t.Errorf("median inlet pressure %.1f mbar running after the leak", in)
				}
			},
		},
		{
			kind: CoffeeMachine, fault: FaultHeaterFailure, from: at(1, 9, 0), to: at(1, 13, 0),
			check: func(t *testing.T, before, during, after []point) {
				if lo := minOf(during, MetricBoilerTemperature); lo > 80 {
					t.Errorf("boiler down to only %.1f °C after hours without heater", lo)
				}
				if minOf(during, MetricOn) != 1 {
					t.Error("machine off during the fault; want on but cold")
				}
				if first, last := during[1].v[MetricBrewCount], during[len(during)-1].v[MetricBrewCount]; last != first {
					t.Errorf("%v brews without a heater", last-first)
				}
				if tm := after[30].v[MetricBoilerTemperature]; tm < 90 {
					t.Errorf("boiler at %.1f °C half an hour after the repair", tm)
				}
			},
		},
		{
			kind: PelletHeater, fault: FaultIgnitionFailure, from: at(1, 0, 0), to: at(1, 12, 0), outdoor: constant(0),
			check: func(t *testing.T, before, during, after []point) {
				if first, last := during[0].v[MetricBurnerStarts], during[len(during)-1].v[MetricBurnerStarts]; last != first {
					t.Errorf("burner started %v times during an ignition failure", last-first)
				}
				if hi := maxOf(during[180:], MetricBurnerOn); hi != 0 {
					t.Error("burner on three hours into an ignition failure")
				}
				if drop := during[180].v[MetricBoilerTemperature] - during[len(during)-1].v[MetricBoilerTemperature]; drop < 10 {
					t.Errorf("boiler fell only %.1f °C without a flame", drop)
				}
				if after[len(after)-1].v[MetricBurnerStarts] == after[0].v[MetricBurnerStarts] {
					t.Error("burner did not start again after the fault")
				}
			},
		},
		{
			kind: Meter, fault: FaultLeak, from: at(1, 0, 0), to: at(3, 0, 0),
			check: func(t *testing.T, before, during, after []point) {
				// Wednesday 01:00–05:00 is 25–29 h into the window.
				for i := 25 * 60; i < 29*60; i += 30 {
					if flow := during[i+30].v[MetricConsumption] - during[i].v[MetricConsumption]; flow < 0.002 {
						t.Errorf("only %.3f m³ in the half hour at %v of a leaking night", flow, during[i].t)
					}
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(string(tc.kind)+"/"+tc.fault, func(t *testing.T) {
			m := NewMachineWithOptions(tc.kind, 7, monday, Options{FaultRatePerDay: -1, OutdoorTemperature: tc.outdoor,
				Faults: []FaultWindow{{Fault: tc.fault, From: tc.from, To: tc.to}}})
			before := run(m, tc.from.Add(-2*time.Hour), 2*time.Hour, time.Minute)
			during := run(m, tc.from, tc.to.Sub(tc.from), time.Minute)
			after := run(m, tc.to, 6*time.Hour, time.Minute)
			for _, p := range before {
				if f := m.ActiveFault(p.t); f != "" {
					t.Fatalf("ActiveFault(%v) = %q before the window", p.t, f)
				}
			}
			for _, p := range during {
				if f := m.ActiveFault(p.t); f != tc.fault {
					t.Fatalf("ActiveFault(%v) = %q in the window", p.t, f)
				}
			}
			tc.check(t, before, during, after)
		})
	}
}

func TestMeterNightsAreDryWithoutALeak(t *testing.T) {
	m := NewMachineWithOptions(Meter, 7, monday, quiet)
	dry := 0
	for h := 1; h < 5; h++ {
		for _, mm := range []int{0, 30} {
			a := m.Sample(at(2, h, mm))[MetricConsumption]
			b := m.Sample(at(2, h, mm+30))[MetricConsumption]
			if b == a {
				dry++
			}
		}
	}
	if dry < 4 {
		t.Errorf("only %d of 8 night half hours without flow", dry)
	}
}

func TestRandomOverheatsAreVisible(t *testing.T) {
	seen := 0
	for seed := int64(1); seed <= 10; seed++ {
		m := NewMachineWithOptions(VacuumPump, seed, monday, Options{FaultRatePerDay: 0.3})
		for _, w := range m.FaultsBetween(monday, at(60, 0, 0)) {
			if w.Fault != FaultOverheat {
				continue
			}
			seen++
			if hi := maxOf(run(m, w.From, w.To.Sub(w.From), time.Minute), MetricTemperature); hi < 95 {
				t.Errorf("seed %d: random overheat %v–%v peaked at %.1f °C", seed, w.From, w.To, hi)
			}
		}
	}
	if seen < 10 {
		t.Errorf("only %d random overheats in 10 pump-months at 0.3 faults/day", seen)
	}
}

func maxOf(ps []point, metric string) float64 {
	hi := math.Inf(-1)
	for _, p := range ps {
		hi = math.Max(hi, p.v[metric])
	}
	return hi
}

func minOf(ps []point, metric string) float64 {
	lo := math.Inf(1)
	for _, p := range ps {
		lo = math.Min(lo, p.v[metric])
	}
	return lo
}

// medianOf is the median of metric over the samples where the flag is 1.
func medianOf(ps []point, metric, flag string) float64 {
	var v []float64
	for _, p := range ps {
		if p.v[flag] == 1 {
			v = append(v, p.v[metric])
		}
	}
	return median(v)
}

// The README's walkthrough: a demonstration overheat (warden simulate --fault
// overheat --fault-after 5s) raises an alarm with the rule "temperature
// above 95" within half a minute, at any time of day, while a pump without
// a fault never reaches 95 °C.
func TestForcedOverheatPassesTheThresholdQuickly(t *testing.T) {
	const threshold = 95.0
	starts := []time.Time{at(0, 3, 17), at(2, 10, 41), at(6, 14, 5), at(4, 23, 59)} // night, shift, Sunday, late
	slowest := time.Duration(0)
	for seed := int64(1); seed <= 30; seed++ {
		for i, start := range starts {
			from := start.Add(time.Duration(seed*7+int64(i)*3) * time.Second % (10 * time.Second)) // off the 10 s grid
			m := NewMachineWithOptions(VacuumPump, seed, monday, Options{FaultRatePerDay: -1,
				Faults: []FaultWindow{{Fault: FaultOverheat, From: from, To: from.Add(10 * time.Minute), Demo: true}}})
			m.Sample(from.Add(-time.Minute))
			crossed := time.Duration(-1)
			for d := time.Duration(0); d <= time.Minute; d += time.Second {
				if m.Sample(from.Add(d))[MetricTemperature] > threshold {
					crossed = d
					break
				}
			}
			if crossed < 0 || crossed > 30*time.Second {
				t.Errorf("seed %d, fault at %v: temperature above %.0f after %v, want within 30 s", seed, from, threshold, crossed)
			}
			slowest = max(slowest, crossed)
			// It stays above for the window and the pump runs.
			if v := m.Sample(from.Add(5 * time.Minute)); v[MetricTemperature] <= threshold || v[MetricRunning] != 1 {
				t.Errorf("seed %d, fault at %v: 5 min in %v", seed, from, v)
			}
		}
	}
	t.Logf("slowest crossing: %v", slowest)
	for seed := int64(1); seed <= 30; seed++ {
		m := NewMachineWithOptions(VacuumPump, seed, monday, quiet)
		hottest := 0.0
		for _, p := range run(m, monday, 14*24*time.Hour, 5*time.Minute) {
			hottest = math.Max(hottest, p.v[MetricTemperature])
		}
		if hottest >= threshold {
			t.Errorf("seed %d: %.1f °C without a fault, want below %.0f", seed, hottest, threshold)
		}
	}
}
