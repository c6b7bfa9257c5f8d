package simulate

import "math"

// meterModel is a battery-powered LoRaWAN water meter of a household or a
// small building.
//
// Water flows in bursts (about a third of the 2-minute slots are dry) around
// a daily profile with a morning, a midday and an evening peak — later in the
// morning at weekends — scaled by a per-day factor. Between 00:30 and 05:00
// nothing flows but the odd toilet flush, so a leak (a constant flow) shows at
// night. The battery voltage declines slowly (wear); rssi and snr wander
// around a seed-derived link budget.
type meterModel struct {
	prev, cur meterState

	daily float64 // m³ per day on average
	leak  float64 // m³/s during a leak
	batt0 float64 // V, fresh battery
	rssi0 float64 // dBm, mean link budget
}

type meterState struct {
	total float64 // m³
}

// meterProfile[weekend][minute] is the share of a day's water per second at
// that local minute: the sum over a day times 60 is 1.
var meterProfile = func() (p [2][1440]float64) {
	g := func(h, mu, sigma float64) float64 { return math.Exp(-0.5 * (h - mu) * (h - mu) / (sigma * sigma)) }
	for w := range p {
		sum := 0.0
		for i := range p[w] {
			h := (float64(i) + 0.5) / 60
			if h >= 0.5 && h < 5 {
				continue // night: nothing flows
			}
			v := 0.05 + 0.35*g(h, 12.5, 1) + 0.8*g(h, 19.5, 1.5)
			if w == 0 {
				v += g(h, 7, 0.9)
			} else {
				v += 0.9*g(h, 9, 1.2) + 0.15*g(h, 13, 1)
			}
			p[w][i] = v
			sum += v
		}
		for i := range p[w] {
			p[w][i] /= sum * 60
		}
	}
	return p
}()

func newMeter(m *Machine) *meterModel {
	return &meterModel{
		daily: m.param(sParam, 0, 0.2, 3),
		leak:  m.param(sParam, 1, 5, 40) / 3.6e6,
		batt0: m.param(sParam, 2, 3.58, 3.66),
		rssi0: m.param(sParam, 3, -118, -75),
	}
}

func (p *meterModel) init(m *Machine, t int64) {
	s := meterState{total: math.Round(m.param(sParam, 4, 5, 3000)*1000) / 1000}
	p.prev, p.cur = s, s
}

// flow is the water flow at t, m³/s.
func (p *meterModel) flow(m *Machine, t int64) float64 {
	d := m.dayAt(t)
	w := 0
	if weekend(d.weekday) {
		w = 1
	}
	q := 0.0
	if u := m.unitAt(sMeterBurst, floorDiv(t, 120)); u >= 0.35 {
		burst := -math.Log(1-m.unitAt(sMeterBurstSize, floorDiv(t, 120))) / 0.65 // mean 1 over all slots
		q = p.daily * (0.8 + 0.4*m.unitAt(sDay, d.ord)) * meterProfile[w][minuteOfDay(d, t)] * burst
	}
	if tod := t - d.start; tod >= 1800 && tod < 5*3600 && floorDiv(t, 60)%10 < 2 &&
		m.unitAt(sMeterFlush, floorDiv(t, 600)) < 0.04 {
		q += 0.008 / 120 // a toilet flush: 8 l in 2 min
	}
	if m.faultAt(t) == FaultLeak {
		q += p.leak
	}
	return q
}

func (p *meterModel) step(m *Machine, t int64) {
	s := p.cur
	if !m.warming {
		s.total += p.flow(m, t) * stepSec
	}
	p.prev, p.cur = p.cur, s
}

func (p *meterModel) sample(m *Machine, sec int64, f float64, dst map[string]float64) {
	a, b := &p.prev, &p.cur
	link := p.rssi0 + 4*m.smooth(sRSSISlow, sec, 6*3600)
	rssi := clamp(link+2*m.noiseAt(sRSSI, sec), -140, -30)
	snr := clamp(math.Min(9.5, 0.8*(link+113))+1.2*m.noiseAt(sSNR, sec), -20, 13)
	batt := clamp(p.batt0-m.wearAt(sec)+0.002*m.noiseAt(sBattery, sec), 2.5, 3.7)

	dst[MetricConsumption] = round(lerpCounter(a.total, b.total, f), 1000)
	dst[MetricBattery] = round(batt, 1000)
	dst[MetricRSSI] = round(rssi, 1)
	dst[MetricSNR] = round(snr, 4)
}

func (p *meterModel) pickFault(m *Machine, d *dayInfo, r *rng) (string, int64, int64, bool) {
	if r.float() < 0.3 {
		return offlineFault(d, r)
	}
	return anytimeFault(FaultLeak, d, r, 12*3600, 72*3600)
}
