package simulate

import "math"

// coffeeModel is a professional coffee machine, in an office (on weekdays
// only) or a café (every day, later at weekends), chosen by seed.
//
// A timer switches it on in the morning; the boiler then heats from room
// temperature to its setpoint (93–96 °C) in about 20 minutes under a
// proportional controller with feed-forward. Brews arrive as a Poisson process
// whose rate follows a breakfast peak, a lunch peak and a small afternoon
// peak, scaled by a per-day factor; each brew draws hot water and dips the
// boiler by 2–3.5 °C for about 30 s. Scale (wear) weakens the heater.
type coffeeModel struct {
	prev, cur coffeeState

	cafe              bool
	onStart, onEnd    int64 // local seconds of day, weekdays
	weStart, weEnd    int64 // weekends, café only
	set, room         float64
	cupsPerDay, dip   float64
	hardness          float64 // °dH
	heatRate          float64 // °C/s at full heater power, unworn
	hardStepChance    float64 // chance of a hardness change per 30 days
	hardStepMagnitude float64
}

type coffeeState struct {
	on    bool
	temp  float64 // boiler, °C
	draw  int     // grid steps of brew draw left
	brews float64
}

const (
	coffeeLossTau = 7200.0 // s, boiler heat-loss time constant
	hardBucketSec = 30 * 86400
)

// brewProfile[minute] is the share of a day's brews per second at that local
// minute: the sum over a day times 60 is 1.
var brewProfile = func() (p [1440]float64) {
	g := func(h, mu, sigma float64) float64 { return math.Exp(-0.5 * (h - mu) * (h - mu) / (sigma * sigma)) }
	sum := 0.0
	for i := range p {
		h := (float64(i) + 0.5) / 60
		v := 3*g(h, 8.25, 0.75) + 2.5*g(h, 12.75, 0.6) + g(h, 15.5, 1)
		if h >= 7 && h < 18 {
			v += 0.3
		} else {
			v += 0.03
		}
		p[i] = v
		sum += v
	}
	for i := range p {
		p[i] /= sum * 60
	}
	return p
}()

func newCoffee(m *Machine) *coffeeModel {
	hours := func(lo, hi float64, i int) int64 { return int64(math.Round(m.param(sParam, i, lo, hi)*4)) * 900 }
	p := &coffeeModel{
		cafe:              m.unitAt(sParam, 0) < 0.3,
		set:               math.Round(m.param(sParam, 1, 93, 96)*10) / 10,
		room:              m.param(sParam, 2, 20, 24),
		dip:               m.param(sParam, 3, 2, 3.5),
		hardness:          m.param(sParam, 4, 5, 20),
		heatRate:          m.param(sParam, 5, 0.05, 0.07),
		hardStepChance:    0.25,
		hardStepMagnitude: m.param(sParam, 6, 1, 4),
	}
	if p.cafe {
		p.onStart, p.onEnd = hours(6.5, 7.5, 7), hours(18.5, 20, 8)
		p.weStart, p.weEnd = hours(8, 9, 9), hours(18, 19, 10)
		p.cupsPerDay = m.param(sParam, 11, 150, 350)
	} else {
		p.onStart, p.onEnd = hours(6, 7.5, 7), hours(17.5, 19, 8)
		p.cupsPerDay = m.param(sParam, 11, 40, 120)
	}
	return p
}

// hours returns the on-window of day d, or (0, 0) if the machine stays off.
func (p *coffeeModel) hours(d *dayInfo) (int64, int64) {
	if weekend(d.weekday) {
		return p.weStart, p.weEnd
	}
	return p.onStart, p.onEnd
}

func (p *coffeeModel) isOn(m *Machine, t int64) bool {
	d := m.dayAt(t)
	from, to := p.hours(d)
	tod := t - d.start
	return tod >= from && tod < to
}

// scaleLoss is the fraction of heater power lost to scale at wear w (%).
func scaleLoss(w float64) float64 { return clamp(w/100, 0, 0.6) }

func (p *coffeeModel) init(m *Machine, t int64) {
	s := coffeeState{on: p.isOn(m, t), temp: p.room,
		brews: math.Round(m.param(sParam, 12, 1000, 150000))}
	if s.on {
		s.temp = p.set
	}
	p.prev, p.cur = s, s
}

func (p *coffeeModel) step(m *Machine, t int64) {
	s := p.cur
	rate := p.heatRate * (1 - scaleLoss(m.wearAt(t)))
	duty := 0.0
	if s.on && m.faultAt(t) != FaultHeaterFailure {
		ff := (p.set - p.room) / coffeeLossTau / rate // holds the setpoint against losses
		duty = clamp(ff+(p.set-s.temp), 0, 1)
	}
	s.temp += stepSec * (rate*duty - (s.temp-p.room)/coffeeLossTau)
	if s.draw > 0 { // fresh water at 12 °C replaces what a brew drew
		s.temp -= p.dip / 3 * (s.temp - 12) / 82
		s.draw--
	}

	next := t + stepSec
	s.on = p.isOn(m, next)
	if s.on && s.temp >= p.set-5 && m.faultAt(next) != FaultHeaterFailure {
		d := m.dayAt(next)
		lambda := p.cupsPerDay * brewProfile[minuteOfDay(d, next)] * (0.75 + 0.5*m.unitAt(sDay, d.ord))
		if weekend(d.weekday) {
			lambda *= 1.2
		}
		if m.unitAt(sCoffeeBrew, next/stepSec) < lambda*stepSec {
			if !m.warming {
				s.brews++
			}
			s.draw = min(s.draw+3, 6)
		}
	}
	p.prev, p.cur = p.cur, s
}

func (p *coffeeModel) sample(m *Machine, sec int64, f float64, dst map[string]float64) {
	a, b := &p.prev, &p.cur
	temp := lerp(a.temp, b.temp, f) + 0.04*m.noiseAt(sCoffeeTemp, sec)
	dst[MetricBoilerTemperature] = round(temp, 10)
	dst[MetricBrewCount] = a.brews
	dst[MetricWaterHardness] = round(p.waterHardness(m, sec)+0.03*m.noiseAt(sHardNoise, sec), 10)
	dst[MetricOn] = flag(a.on)
}

// waterHardness is the supply water's hardness at sec: a seed-derived level
// that, in about one 30-day period in four, steps to a new level (another
// source, a softener) at a random moment.
func (p *coffeeModel) waterHardness(m *Machine, sec int64) float64 {
	k := floorDiv(sec, hardBucketSec)
	for j := k; j > k-24; j-- {
		r := rng{s: m.hashAt(sHardStep, j)}
		if r.float() >= p.hardStepChance {
			continue
		}
		if j == k && sec < j*hardBucketSec+int64(r.float()*hardBucketSec) {
			continue
		}
		if j != k {
			r.float()
		}
		return math.Max(1, p.hardness+p.hardStepMagnitude*(2*r.float()-1))
	}
	return p.hardness
}

func (p *coffeeModel) pickFault(m *Machine, d *dayInfo, r *rng) (string, int64, int64, bool) {
	if r.float() < 0.3 {
		return offlineFault(d, r)
	}
	from, to := p.hours(d)
	if to == 0 {
		return "", 0, 0, false
	}
	return faultIn(FaultHeaterFailure, d, r, float64(from+3600), float64(to), 3600, 4*3600)
}
