package alarm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

const benchDevices = 10_000

func benchRule(id string, set func(r *Rule)) Rule {
	r := Rule{ID: id, TenantID: "acme", Name: id, Severity: Warning, Scope: Scope{Model: "VP-200"}, Enabled: true}
	set(&r)
	return r
}

// benchMixed is ten rules of every kind; a message with all of benchMetrics
// evaluates nine of them (offline only listens for activity).
func benchMixed() []Rule {
	m := func(d time.Duration) Duration { return Duration(d) }
	return []Rule{
		benchRule("hot", func(r *Rule) {
			r.Threshold = &Threshold{Metric: "outlet_temp", Op: Above, Value: new(90.0), Hysteresis: 2, MinDuration: m(5 * time.Minute)}
		}),
		benchRule("vacuum-lost", func(r *Rule) { r.Threshold = &Threshold{Metric: "pressure", Op: Above, Value: new(0.9)} }),
		benchRule("vibration", func(r *Rule) {
			r.Threshold = &Threshold{Metric: "vibration", Op: Outside, Low: new(0.0), High: new(8.0), Hysteresis: 0.5}
		}),
		benchRule("overcurrent", func(r *Rule) { r.Threshold = &Threshold{Metric: "current", Op: Above, Value: new(12.0), Hysteresis: 1} }),
		benchRule("oil-low", func(r *Rule) {
			r.Threshold = &Threshold{Metric: "oil_level", Op: Below, Value: new(20.0), Hysteresis: 2}
		}),
		benchRule("heating-fast", func(r *Rule) {
			r.RateOfChange = &RateOfChange{Metric: "outlet_temp", MaxRatePerMinute: 5, Direction: Up}
		}),
		benchRule("pressure-jump", func(r *Rule) {
			r.RateOfChange = &RateOfChange{Metric: "pressure", MaxRatePerMinute: 1, MinDuration: m(time.Minute)}
		}),
		benchRule("delta-t", func(r *Rule) {
			r.Expression = &Expression{Expr: "outlet_temp - inlet_temp > 40 && pump_on == 1", MinDuration: m(2 * time.Minute)}
		}),
		benchRule("pressure-stale", func(r *Rule) { r.Stale = &Stale{Metric: "pressure", After: m(10 * time.Minute)} }),
		benchRule("offline", func(r *Rule) { r.Offline = &Offline{After: m(15 * time.Minute)} }),
	}
}

var benchMetrics = []string{"outlet_temp", "inlet_temp", "pressure", "vibration", "current", "oil_level", "pump_on"}

// benchThresholds is ten threshold rules on ten metrics.
func benchThresholds() ([]Rule, []string) {
	var rules []Rule
	var metrics []string
	for i := range 10 {
		name := fmt.Sprintf("sensor_%d", i)
		metrics = append(metrics, name)
		rules = append(rules, benchRule(name, func(r *Rule) {
			r.Threshold = &Threshold{Metric: name, Op: Above, Value: new(90.0), Hysteresis: 2, MinDuration: Duration(time.Minute)}
		}))
	}
	return rules, metrics
}

// benchMessages is a cycle of messages whose values drift slowly around
// the rules' limits (a sine of period benchCycle plus a little noise), so
// that consecutive messages of a device make sensible rates and alarms
// raise and clear now and then, as in life.
func benchMessages(metrics []string) []map[string]float64 {
	rnd := rand.New(rand.NewPCG(1, 2))
	base := map[string]float64{"outlet_temp": 80, "inlet_temp": 40, "pressure": 0.5, "vibration": 4,
		"current": 10, "oil_level": 50, "pump_on": 1}
	pool := make([]map[string]float64, benchCycle)
	for i := range pool {
		m := make(map[string]float64, len(metrics))
		for k, name := range metrics {
			b, ok := base[name]
			if !ok {
				b = 80
			}
			phase := 2 * math.Pi * (float64(i)/benchCycle + float64(k)/7)
			m[name] = b * (1 + 0.15*math.Sin(phase) + 0.001*rnd.NormFloat64())
			if name == "pump_on" {
				m[name] = math.Round(0.5 + 0.5*math.Sin(phase))
			}
		}
		pool[i] = m
	}
	return pool
}

const benchCycle = 720 // messages: two hours at one message per ten seconds

func runObserveBench(b *testing.B, rules []Rule, metrics []string) {
	e, err := New(rules)
	if err != nil {
		b.Fatal(err)
	}
	devs := make([]DeviceFacts, benchDevices)
	for i := range devs {
		devs[i] = DeviceFacts{ID: fmt.Sprintf("dev-%05d", i), TenantPath: "root/acme", SiteID: fmt.Sprintf("site-%d", i/20), Model: "VP-200"}
	}
	pool := benchMessages(metrics)
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i, d := range devs { // every device known before timing
		e.Connected(d, t0)
		e.Observe(d, t0, pool[(i*37+len(pool)-1)%len(pool)])
	}
	e.evals = 0
	var n, transitions int
	for b.Loop() {
		// Rounds of one message per device, ten seconds apart.
		dev := n % benchDevices
		ts := t0.Add(time.Duration(1+n/benchDevices) * 10 * time.Second)
		transitions += len(e.Observe(devs[dev], ts, pool[(n/benchDevices+dev*37)%len(pool)]))
		n++
	}
	secs := b.Elapsed().Seconds()
	b.ReportMetric(float64(n)/secs, "msgs/s")
	b.ReportMetric(float64(e.evals)/secs, "evals/s")
	b.ReportMetric(float64(e.evals)/float64(n), "evals/msg")
	b.ReportMetric(float64(transitions)/float64(n), "transitions/msg")
}

// BenchmarkObserve: 10,000 devices × 10 rules of every kind, messages of
// seven metrics.
func BenchmarkObserve(b *testing.B) {
	runObserveBench(b, benchMixed(), benchMetrics)
}

// BenchmarkObserveThreshold: 10,000 devices × 10 threshold rules, messages
// of ten metrics.
func BenchmarkObserveThreshold(b *testing.B) {
	rules, metrics := benchThresholds()
	runObserveBench(b, rules, metrics)
}

// BenchmarkTick: one Tick over 10,000 devices × 10 mixed rules with no
// deadline due, the common case.
func BenchmarkTick(b *testing.B) {
	e, err := New(benchMixed())
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	pool := benchMessages(benchMetrics)
	for i := range benchDevices {
		d := DeviceFacts{ID: fmt.Sprintf("dev-%05d", i), TenantPath: "root/acme", Model: "VP-200"}
		e.Observe(d, t0, pool[i%len(pool)])
	}
	for b.Loop() {
		e.Tick(t0.Add(time.Minute))
	}
	b.ReportMetric(float64(benchDevices)*float64(b.N)/b.Elapsed().Seconds(), "devices/s")
}
