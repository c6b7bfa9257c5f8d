package bench

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/warden-iot/warden/internal/alarm"
	"github.com/warden-iot/warden/internal/clock/clocktest"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/monitor"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/telemetry"
	"github.com/warden-iot/warden/internal/tenancy"
)

// AlarmsOptions sizes the alarm evaluation benchmark.
type AlarmsOptions struct {
	// Dir holds the throw-away SQLite database (default: a temporary one).
	Dir string
	// Open, if set, opens the store to use instead (e.g. PostgreSQL); it
	// must be empty.
	Open func(ctx context.Context) (store.Store, error)
	// Devices each get Rounds messages of ten metrics, evaluated against
	// ten rules of every kind.
	Devices int
	Rounds  int
	// Batch is how many messages one Observe call carries (one group
	// commit's worth).
	Batch int
	Log   *slog.Logger
	// Progress receives a note every few seconds of a long step (nil:
	// none).
	Progress io.Writer
}

// AlarmsResult is what the benchmark measured.
type AlarmsResult struct {
	Messages    int
	Seconds     float64
	MsgsPerSec  float64
	Transitions int
	Shards      int
}

func (o *AlarmsOptions) defaults() {
	if o.Devices <= 0 {
		o.Devices = 10_000
	}
	if o.Rounds <= 0 {
		o.Rounds = 20
	}
	if o.Batch <= 0 {
		o.Batch = 500
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// benchAlarmModel is the model the benchmark's rules watch.
const benchAlarmModel = "bench-pump"

// benchAlarmRules is ten rules of every kind on one model; a message with
// every metric evaluates nine (offline listens for activity only).
func benchAlarmRules() []alarm.Rule {
	d := func(x time.Duration) alarm.Duration { return alarm.Duration(x) }
	f := func(v float64) *float64 { return &v }
	mk := func(id string, set func(r *alarm.Rule)) alarm.Rule {
		r := alarm.Rule{ID: id, TenantID: tenancy.RootTenantID, Name: id, Severity: alarm.Warning,
			Scope: alarm.Scope{Model: benchAlarmModel}, Enabled: true}
		set(&r)
		return r
	}
	return []alarm.Rule{
		mk("hot", func(r *alarm.Rule) {
			r.Severity = alarm.Critical
			r.Threshold = &alarm.Threshold{Metric: "outlet_temp", Op: alarm.Above, Value: f(90), Hysteresis: 2, MinDuration: d(time.Minute)}
		}),
		mk("vacuum-lost", func(r *alarm.Rule) {
			r.Threshold = &alarm.Threshold{Metric: "pressure", Op: alarm.Above, Value: f(0.56)}
		}),
		mk("vibration", func(r *alarm.Rule) {
			r.Threshold = &alarm.Threshold{Metric: "vibration", Op: alarm.Outside, Low: f(0), High: f(4.5), Hysteresis: 0.2}
		}),
		mk("overcurrent", func(r *alarm.Rule) {
			r.Threshold = &alarm.Threshold{Metric: "current", Op: alarm.Above, Value: f(11), Hysteresis: 0.5}
		}),
		mk("oil-low", func(r *alarm.Rule) {
			r.Threshold = &alarm.Threshold{Metric: "oil_level", Op: alarm.Below, Value: f(44), Hysteresis: 1}
		}),
		mk("heating-fast", func(r *alarm.Rule) {
			r.RateOfChange = &alarm.RateOfChange{Metric: "outlet_temp", MaxRatePerMinute: 5, Direction: alarm.Up}
		}),
		mk("pressure-jump", func(r *alarm.Rule) {
			r.RateOfChange = &alarm.RateOfChange{Metric: "pressure", MaxRatePerMinute: 1, MinDuration: d(time.Minute)}
		}),
		mk("delta-t", func(r *alarm.Rule) {
			r.Expression = &alarm.Expression{Expr: "outlet_temp - inlet_temp > 48 && pump_on == 1", MinDuration: d(time.Minute)}
		}),
		mk("pressure-stale", func(r *alarm.Rule) { r.Stale = &alarm.Stale{Metric: "pressure", After: d(10 * time.Minute)} }),
		mk("offline", func(r *alarm.Rule) { r.Offline = &alarm.Offline{After: d(15 * time.Minute)} }),
	}
}

var benchAlarmMetrics = []string{"outlet_temp", "inlet_temp", "pressure", "vibration", "current", "oil_level", "pump_on",
	"flow", "speed", "hours"}

// Alarms measures how many messages per second the alarm monitor
// evaluates — ten rules per device, alarm changes stored — and prints
// "name: value unit" lines.
func Alarms(ctx context.Context, o AlarmsOptions, out io.Writer) (AlarmsResult, error) {
	o.defaults()
	dir := o.Dir
	if dir == "" && o.Open == nil {
		var err error
		if dir, err = os.MkdirTemp("", "warden-bench-alarms-"); err != nil {
			return AlarmsResult{}, err
		}
		defer os.RemoveAll(dir)
	}
	st, _, closeStore, err := openStore(ctx, o.Open, dir, "alarms")
	if err != nil {
		return AlarmsResult{}, fmt.Errorf("bench alarms: open store: %w", err)
	}
	defer closeStore()
	// Alarms are machine data: the store seals them.
	master := make([]byte, keyring.KeySize)
	rand.Read(master)
	keys, err := keyring.New(ctx, master, st, time.Now)
	if err != nil {
		return AlarmsResult{}, fmt.Errorf("bench alarms: %w", err)
	}
	st.SetSealer(keys)

	fmt.Fprintf(out, "# registering %d devices and %d rules\n", o.Devices, len(benchAlarmRules()))
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var made atomic.Int64
	stop := ticker(o.Progress, "registering devices", func() string { return fmt.Sprintf("%d of %d", made.Load(), o.Devices) })
	defer stop()
	for i := range o.Devices {
		made.Add(1)
		d := registry.Device{ID: fmt.Sprintf("alarm-bench-%05d", i), TenantID: tenancy.RootTenantID, Status: registry.DeviceEnabled,
			PrimaryKey: make([]byte, 32), SecondaryKey: make([]byte, 32), CreatedAt: t0, Info: registry.DeviceInfo{Model: benchAlarmModel}}
		if err := st.CreateDevice(ctx, d); err != nil {
			return AlarmsResult{}, fmt.Errorf("bench alarms: %w", err)
		}
	}
	for _, r := range benchAlarmRules() {
		spec, _ := json.Marshal(r)
		if err := st.CreateAlarmRule(ctx, alarm.StoredRule{ID: r.ID, TenantID: r.TenantID, Name: r.Name, Enabled: true,
			Spec: spec, CreatedAt: t0, UpdatedAt: t0}); err != nil {
			return AlarmsResult{}, fmt.Errorf("bench alarms: %w", err)
		}
	}
	var changes atomic.Int64 // shards call back concurrently
	m := monitor.New(st, monitor.Config{TickEvery: time.Hour, SaveEvery: time.Hour}, func(context.Context, alarm.Record, string) {
		changes.Add(1)
	}, o.Log, clocktest.New(t0)) // time stands at t0: the rules see the samples' times only
	if err := m.Start(ctx); err != nil {
		return AlarmsResult{}, err
	}
	defer m.Close(context.WithoutCancel(ctx))

	// Values drift slowly around the rules' limits, so that alarms raise
	// and clear now and then, as in life.
	rnd := mrand.New(mrand.NewPCG(1, 2))
	base := []float64{80, 40, 0.5, 4, 10, 50, 1, 20, 1500, 100}
	value := func(dev, round, k int) float64 {
		phase := 2*math.Pi*float64(round+dev*7)/60 + float64(k)
		v := base[k] * (1 + 0.12*math.Sin(phase) + 0.002*rnd.NormFloat64())
		if k == 6 {
			v = math.Round(0.5 + 0.5*math.Sin(phase))
		}
		return v
	}
	msg := func(dev, round int) telemetry.Message {
		ts := t0.Add(time.Duration(round) * 10 * time.Second)
		pts := make([]telemetry.Point, len(benchAlarmMetrics))
		for k, name := range benchAlarmMetrics {
			pts[k] = telemetry.Point{Metric: name, TS: ts, Value: value(dev, round, k)}
		}
		return telemetry.Message{TenantID: tenancy.RootTenantID, DeviceID: fmt.Sprintf("alarm-bench-%05d", dev), ReceivedAt: ts, Points: pts}
	}
	stop()
	stop = ticker(o.Progress, "warm-up: every device seen once", nil)
	// Warm-up: every device seen once (facts loaded, states made).
	batch := make([]telemetry.Message, 0, o.Batch)
	for dev := range o.Devices {
		batch = append(batch, msg(dev, 0))
		if len(batch) == o.Batch {
			m.Observe(ctx, batch)
			batch = batch[:0]
		}
	}
	m.Observe(ctx, batch)
	if err := m.Flush(ctx); err != nil {
		return AlarmsResult{}, err
	}
	changes.Store(0)
	fmt.Fprintf(out, "# evaluating %d rounds of %d messages on %d shards\n", o.Rounds, o.Devices, runtime.GOMAXPROCS(0))
	// Messages are made before timing, so the figure is the monitor's.
	msgs := make([][]telemetry.Message, 0, o.Rounds*o.Devices/o.Batch+1)
	batch = nil
	for round := 1; round <= o.Rounds; round++ {
		for dev := range o.Devices {
			batch = append(batch, msg(dev, round))
			if len(batch) == o.Batch {
				msgs = append(msgs, batch)
				batch = nil
			}
		}
	}
	if len(batch) > 0 {
		msgs = append(msgs, batch)
	}
	stop()
	var observed atomic.Int64
	stop = ticker(o.Progress, "evaluating", func() string {
		return fmt.Sprintf("%d of %d batches", observed.Load(), len(msgs))
	})
	start := time.Now()
	for _, b := range msgs {
		m.Observe(ctx, b)
		observed.Add(1)
	}
	if err := m.Flush(ctx); err != nil {
		return AlarmsResult{}, err
	}
	stop()
	el := time.Since(start)
	n := o.Rounds * o.Devices
	res := AlarmsResult{Messages: n, Seconds: el.Seconds(), MsgsPerSec: float64(n) / el.Seconds(), Transitions: int(changes.Load()),
		Shards: runtime.GOMAXPROCS(0)}
	fmt.Fprintf(out, "alarm_devices: %d\n", o.Devices)
	fmt.Fprintf(out, "alarm_rules_per_device: %d\n", len(benchAlarmRules()))
	fmt.Fprintf(out, "alarm_eval_msgs_per_s: %.0f\n", res.MsgsPerSec)
	fmt.Fprintf(out, "alarm_eval_rules_per_s: %.0f\n", res.MsgsPerSec*9)
	fmt.Fprintf(out, "alarm_changes_stored: %d\n", res.Transitions)
	return res, nil
}
