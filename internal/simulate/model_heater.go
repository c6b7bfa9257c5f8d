package simulate

import (
	"math"
	"time"
)

// heaterModel is a pellet boiler heating a house and its hot water.
//
// The outdoor temperature has a seasonal cycle (coldest around 20 January),
// a daily cycle (coldest around 04:00) and weather (value noise over 36 h and
// 5 h), unless Options.OutdoorTemperature replaces it. The house draws
// UA·(16 °C − outdoor) from the boiler (13 °C during the night setback from
// 22:00 to 05:30) plus hot-water draws in the morning and evening. The boiler
// setpoint follows a heating curve between 60 and 80 °C. The burner ignites
// (4 min, counted in burnerStarts once the flame burns) when the boiler is
// 6 °C below the setpoint, modulates between 30 and 100 % of its power to
// charge the buffer tank, and burns out (3 min) when the boiler is 4 °C above
// the setpoint — a few to a dozen starts a day. The flue gas runs
// 40–100 °C above the boiler while burning, plus the soot wear. Pellets drain
// from the hopper with the burner's output; the hopper is refilled from the
// store within two hours of falling below its threshold.
type heaterModel struct {
	prev, cur heaterState

	power     float64 // kW at full modulation
	ua        float64 // kW/K, heat loss of the house
	capacity  float64 // kWh/K, boiler, buffer tank and steel
	hopperKg  float64
	refillAt  float64 // %
	refillMin int64   // minutes past the hour the refill runs
	room      float64 // °C, boiler room
	dhw       float64 // kW drawn by a hot-water draw
	mean, amp float64 // climate: annual mean and seasonal amplitude, °C
	dailyAmp  float64 // °C
	aFlue     float64
}

type heaterState struct {
	mode      uint8 // burner state for the step starting here
	since     int64 // when the burner entered mode
	attempts  uint8 // failed ignitions in a row
	mod       float64
	outdoor   float64 // °C at the state's time
	temp      float64 // boiler, °C
	flue      float64 // °C
	level     float64 // %
	starts    float64
	refillDue int64 // unix seconds; 0 if no refill pending
}

const (
	burnerOff uint8 = iota
	burnerIgniting
	burnerBurning
	burnerBurnout
	burnerLockout
)

const (
	ignitionSec = 240
	burnoutSec  = 180
	pelletKWh   = 4.9 * 0.92 // useful kWh per kg of pellets
)

func newHeater(m *Machine) *heaterModel {
	power := math.Round(m.param(sParam, 0, 10, 25))
	return &heaterModel{
		power:     power,
		ua:        power * m.param(sParam, 1, 0.022, 0.029),
		capacity:  m.param(sParam, 2, 0.6, 1.2),
		hopperKg:  power * m.param(sParam, 3, 25, 45),
		refillAt:  m.param(sParam, 4, 15, 25),
		refillMin: int64(m.param(sParam, 5, 0, 60)),
		room:      m.param(sParam, 6, 12, 20),
		dhw:       power * m.param(sParam, 7, 0.4, 0.6),
		mean:      m.param(sParam, 8, 7, 11),
		amp:       m.param(sParam, 9, 8, 11),
		dailyAmp:  m.param(sParam, 10, 2, 5),
		aFlue:     alpha(180),
	}
}

// outdoor is the outdoor temperature at t, °C, without sensor noise.
func (p *heaterModel) outdoor(m *Machine, t int64) float64 {
	if m.outdoorFn != nil {
		return m.outdoorFn(time.Unix(t, 0))
	}
	days := float64(t) / 86400
	season := p.mean - p.amp*math.Cos(2*math.Pi*(days-19)/365.2425) // coldest ~20 January
	daily := -p.dailyAmp * math.Cos(2*math.Pi*(m.todHours(t)-4)/24)
	weather := 3.5*m.smooth(sWeatherSlow, t, 36*3600) + m.smooth(sWeatherFast, t, 5*3600)
	return season + daily + weather
}

// setpoint is the boiler setpoint for an outdoor temperature, °C.
func setpoint(outdoor float64) float64 { return clamp(33+1.4*(20-outdoor), 60, 80) }

// load is the heat the house and hot water draw from the boiler at t, kW.
func (p *heaterModel) load(m *Machine, t int64, outdoor, boiler float64) float64 {
	d := m.dayAt(t)
	tod := t - d.start
	balance := 16.0
	if tod < 5*3600+1800 || tod >= 22*3600 {
		balance = 13 // night setback
	}
	kw := p.ua * math.Max(0, balance-outdoor)
	if (tod >= 6*3600 && tod < 8*3600+1800) || (tod >= 18*3600 && tod < 22*3600) {
		if m.unitAt(sDHW, floorDiv(t, 300)) < 0.25 {
			kw += p.dhw
		}
	}
	return kw * clamp((boiler-25)/20, 0, 1) // a cold boiler cannot deliver
}

func (p *heaterModel) init(m *Machine, t int64) {
	out := p.outdoor(m, t)
	s := heaterState{
		mode: burnerOff, since: t, outdoor: out, temp: setpoint(out),
		level:  m.param(sParam, 11, 35, 95),
		starts: math.Round(m.param(sParam, 12, 300, 40000)),
	}
	s.flue = p.room + 0.4*(s.temp-p.room)
	p.prev, p.cur = s, s
}

func (p *heaterModel) step(m *Machine, t int64) {
	s := p.cur
	out := 0.0
	switch s.mode {
	case burnerBurning:
		out = p.power * s.mod
	case burnerBurnout:
		out = p.power * 0.15
	}
	load := p.load(m, t, s.outdoor, s.temp)
	s.temp += (out - load - 0.012*(s.temp-p.room)) * stepSec / 3600 / p.capacity

	var flue float64
	switch s.mode {
	case burnerBurning:
		flue = s.temp + 40 + 60*s.mod + m.wearAt(t)
	case burnerIgniting:
		flue = p.room + 0.4*(s.temp-p.room) + 25
	case burnerBurnout:
		flue = s.temp + 25
	default:
		flue = p.room + 0.4*(s.temp-p.room)
	}
	s.flue += (flue - s.flue) * p.aFlue
	s.level = math.Max(0, s.level-out*stepSec/3600/pelletKWh/p.hopperKg*100)

	next := t + stepSec
	if s.refillDue == 0 && s.level < p.refillAt {
		s.refillDue = (floorDiv(next, 3600)+1)*3600 + p.refillMin*60
	}
	if s.refillDue != 0 && next >= s.refillDue {
		s.level = 92 + 8*m.unitAt(sRefill, s.refillDue)
		s.refillDue = 0
	}

	s.outdoor = p.outdoor(m, next)
	set := setpoint(s.outdoor)
	fault := m.faultAt(next)
	switch s.mode {
	case burnerOff:
		if s.level > 0 && s.temp < set-6 {
			s.mode, s.since = burnerIgniting, next
		}
	case burnerIgniting:
		if next-s.since >= ignitionSec {
			switch {
			case fault != FaultIgnitionFailure:
				s.mode, s.since, s.attempts = burnerBurning, next, 0
				if !m.warming {
					s.starts++
				}
			case s.attempts >= 2:
				s.mode, s.since = burnerLockout, next
			default:
				s.attempts++
				s.since = next
			}
		}
	case burnerBurning:
		if s.temp > set+4 || s.level <= 0 {
			s.mode, s.since = burnerBurnout, next
		}
	case burnerBurnout:
		if next-s.since >= burnoutSec {
			s.mode, s.since = burnerOff, next
		}
	case burnerLockout:
		if fault != FaultIgnitionFailure {
			s.mode, s.since, s.attempts = burnerOff, next, 0
		}
	}
	s.mod = 0
	if s.mode == burnerBurning {
		// aim above the switch-off point, so the burner charges the buffer and stops
		s.mod = clamp(p.load(m, next, s.outdoor, s.temp)/p.power+0.1*(set+8-s.temp), 0.3, 1)
	}
	p.prev, p.cur = p.cur, s
}

func (p *heaterModel) sample(m *Machine, sec int64, f float64, dst map[string]float64) {
	a, b := &p.prev, &p.cur
	dst[MetricBoilerTemperature] = round(lerp(a.temp, b.temp, f)+0.08*m.noiseAt(sHeaterBoiler, sec), 10)
	dst[MetricFlueGasTemperature] = round(lerp(a.flue, b.flue, f)+0.3*m.noiseAt(sHeaterFlue, sec), 10)
	dst[MetricOutdoorTemperature] = round(p.outdoor(m, sec)+0.05*m.noiseAt(sHeaterOutdoor, sec), 10)
	dst[MetricPelletLevel] = round(clamp(lerp(a.level, b.level, f)+0.1*m.noiseAt(sHeaterLevel, sec), 0, 100), 10)
	dst[MetricBurnerStarts] = a.starts
	dst[MetricBurnerOn] = flag(a.mode == burnerBurning)
}

func (p *heaterModel) pickFault(m *Machine, d *dayInfo, r *rng) (string, int64, int64, bool) {
	if r.float() < 0.25 {
		return offlineFault(d, r)
	}
	return anytimeFault(FaultIgnitionFailure, d, r, 3*3600, 24*3600)
}
