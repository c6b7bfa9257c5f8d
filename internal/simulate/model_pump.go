package simulate

import (
	"math"
	"time"
)

// pumpModel is an oil-sealed rotary-vane vacuum pump in a production hall.
//
// It runs in day shifts on weekdays (one or two shifts, chosen by seed), on
// some Saturday mornings, never on Sundays, and stops for about 3 % of the
// quarter hours within a shift. Its warmth is a first-order lag (about 25 min
// to warm up, 40 min to cool down); temperature = hall temperature + warmth ×
// (rise + wear). The inlet pressure follows the process at 2–20 mbar (up to twice that) while
// running and vents back to atmosphere when stopped; the motor current rises
// with the gas load (inlet pressure) and with wear.
type pumpModel struct {
	prev, cur pumpState

	shiftStart, shiftEnd int64   // local seconds of day, Monday–Friday
	satEnd               int64   // end of a Saturday shift from shiftStart; 0 for none
	rise                 float64 // °C above the hall when warm and unworn
	hall                 float64 // °C, mean hall temperature
	lnBase               float64 // ln of the process inlet pressure, mbar
	leak                 float64 // inlet pressure during a vacuum leak, mbar
	iNom                 float64 // A
	outletRise           float64 // bar above atmosphere while running

	aWarm, aCool, aOver, aPumpdown, aVent float64
	aOverForced                           float64
}

type pumpState struct {
	running  bool    // mode for the step starting here
	warm     float64 // 0 cold … 1 warm
	over     float64 // °C added by an overheat fault
	lnP      float64 // ln inlet pressure, mbar
	runHours float64
}

var lnAtm = math.Log(1013)

func newPump(m *Machine) *pumpModel {
	p := &pumpModel{
		rise:       m.param(sParam, 3, 50, 56),
		hall:       m.param(sParam, 4, 19, 25),
		lnBase:     math.Log(m.param(sParam, 5, 2, 20)),
		leak:       m.param(sParam, 6, 80, 300),
		iNom:       m.param(sParam, 7, 8, 30),
		outletRise: m.param(sParam, 8, 0.04, 0.12),
		aWarm:      alpha(1500),
		aCool:      alpha(2400),
		aOver:      alpha(900),
		// A demonstration overheat: 10 s (one step).
		aOverForced: alpha(10),
		aPumpdown:   alpha(45),
		aVent:       alpha(300),
	}
	quarter := func(h float64) int64 { return int64(math.Round(h*4)) * 900 }
	if m.unitAt(sParam, 0) < 0.6 { // two shifts
		p.shiftStart = quarter(m.param(sParam, 1, 5.5, 6.5))
		p.shiftEnd = quarter(m.param(sParam, 2, 21.5, 22.5))
	} else {
		p.shiftStart = quarter(m.param(sParam, 1, 6, 7.5))
		p.shiftEnd = quarter(m.param(sParam, 2, 15.5, 17.5))
	}
	if m.unitAt(sParam, 9) < 0.3 {
		p.satEnd = quarter(m.param(sParam, 10, 12, 14))
	}
	return p
}

// shift returns the shift end of day d (local seconds), 0 if no shift.
func (p *pumpModel) shift(d *dayInfo) int64 {
	switch d.weekday {
	case time.Sunday:
		return 0
	case time.Saturday:
		return p.satEnd
	}
	return p.shiftEnd
}

func (p *pumpModel) scheduled(m *Machine, t int64) bool {
	d := m.dayAt(t)
	end := p.shift(d)
	tod := t - d.start
	if end == 0 || tod < p.shiftStart || tod >= end {
		return false
	}
	return m.unitAt(sPumpStop, floorDiv(t, 900)) >= 0.03
}

func (p *pumpModel) init(m *Machine, t int64) {
	s := pumpState{running: p.scheduled(m, t), lnP: lnAtm,
		runHours: math.Round(m.param(sParam, 11, 200, 25000))}
	if s.running {
		s.warm, s.lnP = 1, p.lnBase
	}
	p.prev, p.cur = s, s
}

func (p *pumpModel) step(m *Machine, t int64) {
	s := p.cur
	fault := m.faultAt(t)
	if s.running {
		s.warm += (1 - s.warm) * p.aWarm
		target := p.lnBase + 0.2*m.smooth(sPumpProcess, t, 1200)
		if fault == FaultVacuumLeak {
			target = math.Log(p.leak)
		}
		s.lnP += (target - s.lnP) * p.aPumpdown
		if !m.warming {
			s.runHours += stepSec / 3600.0
		}
	} else {
		s.warm -= s.warm * p.aCool
		s.lnP += (lnAtm - s.lnP) * p.aVent
	}
	over := 0.0
	if s.running && fault == FaultOverheat {
		over = 35
	}
	if fault == FaultOverheat && m.demoAt(t, FaultOverheat) {
		// A demonstration overheat shows at once, whatever the schedule: the
		// pump runs warm and the heat builds in seconds.
		s.warm = 1
		s.over += (over - s.over) * p.aOverForced
	} else {
		s.over += (over - s.over) * p.aOver
	}
	s.running = p.scheduled(m, t+stepSec) || m.demoAt(t+stepSec, FaultOverheat)
	p.prev, p.cur = p.cur, s
}

func (p *pumpModel) sample(m *Machine, sec int64, f float64, dst map[string]float64) {
	a, b := &p.prev, &p.cur
	warm := lerp(a.warm, b.warm, f)
	over := lerp(a.over, b.over, f)
	wear := m.wearAt(sec)
	tod := m.todHours(sec)

	hall := p.hall + 1.5*math.Sin(2*math.Pi*(tod-9)/24) // warmest at 15:00
	temp := hall + warm*(p.rise+wear) + over + 0.12*m.noiseAt(sPumpTemp, sec)
	pIn := math.Exp(lerp(a.lnP, b.lnP, f)) * (1 + 0.004*m.noiseAt(sPumpInlet, sec))
	load := clamp(math.Log10(pIn)/3, 0, 1) // gas throughput: 0 at 1 mbar, 1 at atmosphere
	pOut := 1.013 + 0.008*m.smooth(sAtm, sec, 2*86400) + 0.001*m.noiseAt(sPumpOutlet, sec)
	current := 0.0
	if a.running {
		pOut += p.outletRise*(0.85+0.3*load) + 0.002*wear
		current = p.iNom * (0.8 + 0.2*load) * (1 + 0.005*wear) * (1 + 0.002*over) *
			(1 + 0.006*m.noiseAt(sPumpCurrent, sec))
		if m.faultAt(sec) == FaultVacuumLeak {
			current *= 1.05
		}
	}

	dst[MetricInletPressure] = round(pIn, 10)
	dst[MetricOutletPressure] = round(pOut, 1000)
	dst[MetricTemperature] = round(temp, 10)
	dst[MetricMotorCurrent] = round(current, 100)
	dst[MetricRunHours] = round(lerpCounter(a.runHours, b.runHours, f), 100)
	dst[MetricRunning] = flag(a.running)
}

func (p *pumpModel) pickFault(m *Machine, d *dayInfo, r *rng) (string, int64, int64, bool) {
	x := r.float()
	if x < 0.2 {
		return offlineFault(d, r)
	}
	end := p.shift(d)
	if end == 0 {
		return "", 0, 0, false
	}
	lo, hi := float64(p.shiftStart+1800), float64(end)
	if x < 0.6 {
		return faultIn(FaultOverheat, d, r, lo, hi, 3600, 3*3600)
	}
	return faultIn(FaultVacuumLeak, d, r, lo, hi, 3600, 6*3600)
}
