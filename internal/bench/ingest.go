// Package bench measures ingest throughput and latency of Warden, or of any
// MQTT broker, with a fleet of simulated devices over real MQTT connections.
package bench

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/simulate"
)

// IngestOptions configure Ingest. Exactly one target: a Warden server
// (Client set, Broker empty) or another MQTT broker (Broker set).
type IngestOptions struct {
	// Client is the API client of the Warden target: it reads /metrics
	// and, without Tenant, makes a throw-away tenant for the devices.
	Client *client.Client
	// Tenant is where the devices (ids Prefix-0001…) are registered (nil:
	// a throw-away tenant, deleted afterwards).
	Tenant *Tenant
	// MQTTAddr overrides the Warden target's MQTT TLS address (default: the
	// hub host name of the connection strings).
	MQTTAddr string
	// Broker is another MQTT broker, mqtt://host:port (plain) or
	// mqtts://host:port (TLS), with anonymous access.
	Broker string
	// RootCAs verifies the target's certificate (nil: the system roots).
	RootCAs *x509.CertPool
	// Insecure skips certificate verification for a Broker target.
	Insecure bool
	// Devices is the number of connections (default 1000).
	Devices int
	// Metrics is the number of numeric values per message (default 10).
	Metrics int
	// InFlight is the number of messages each device keeps outstanding
	// (default 1).
	InFlight int
	// Duration is the measured window (default 20 s).
	Duration time.Duration
	// Warmup runs before the window; its messages are not counted
	// (default 3 s; negative for none).
	Warmup time.Duration
	// Prefix starts the device ids (default "bench").
	Prefix string
	// DialConcurrency bounds registrations and connections in progress
	// (default 32).
	DialConcurrency int
	// Progress receives progress notes (nil: none).
	Progress io.Writer
}

// IngestResult are the figures of one run.
type IngestResult struct {
	Target          string
	Devices         int // connected devices
	ConnectFailures int
	Messages        int64 // acknowledged within the window
	Window          time.Duration
	MessagesPerSec  float64
	PointsPerSec    float64
	P50, P99        time.Duration // PUBACK latency within the window
	Errors          int64         // failed or unacknowledged publishes, whole run
	ConnectionsLost int64
	BenchCPUSeconds float64 // the load generator's own CPU over the window; NaN if unknown
	// Server figures, NaN when the target is not a Warden server.
	ServerRSSMB      float64
	ServerCPUSeconds float64
	ServerRejected   float64 // messages rejected by the server during the run
	ServerDuplicates float64 // messages dropped as duplicates during the run
	// ServerStoredPerSec is the rate at which the server wrote messages to
	// its database over the window; ServerApplyLag the messages it had
	// acknowledged but not yet written at the window's end. An
	// acknowledgement rate above the stored rate lasts only while the
	// commit log takes up the difference.
	ServerStoredPerSec float64
	ServerApplyLag     float64
}

func (o *IngestOptions) defaults() error {
	if (o.Client == nil) == (o.Broker == "") {
		return errors.New("bench: want either a Warden server or a broker URL")
	}
	if o.Devices <= 0 {
		o.Devices = 1000
	}
	if o.Metrics <= 0 {
		o.Metrics = 10
	}
	if o.InFlight <= 0 {
		o.InFlight = 1
	}
	if o.Duration <= 0 {
		o.Duration = 20 * time.Second
	}
	if o.Warmup == 0 {
		o.Warmup = 3 * time.Second
	} else if o.Warmup < 0 {
		o.Warmup = 0
	}
	if o.Prefix == "" {
		o.Prefix = "bench"
	}
	if o.DialConcurrency <= 0 {
		o.DialConcurrency = 32
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return nil
}

// Ingest drives o.Devices devices publishing telemetry at QoS 1 to
// devices/{id}/messages/events/%24.mid={id}, each with o.InFlight messages
// outstanding, for a warm-up and then o.Duration, records the latency of
// every PUBACK and writes the figures to out, one per line as
// "name: value unit".
func Ingest(ctx context.Context, o IngestOptions, out io.Writer) (IngestResult, error) {
	if err := o.defaults(); err != nil {
		return IngestResult{}, err
	}
	if o.Broker == "" && o.Tenant == nil {
		var res IngestResult
		err := InTenant(ctx, TenantOptions{Caller: o.Client, Progress: o.Progress}, func(t *Tenant) error {
			o.Tenant = t
			var err error
			res, err = Ingest(ctx, o, out)
			return err
		})
		return res, err
	}
	res := IngestResult{Target: o.target(), BenchCPUSeconds: math.NaN(), ServerRSSMB: math.NaN(),
		ServerCPUSeconds: math.NaN(), ServerRejected: math.NaN(), ServerDuplicates: math.NaN(),
		ServerStoredPerSec: math.NaN(), ServerApplyLag: math.NaN()}
	cfgs, err := o.dialConfigs(ctx)
	if err != nil {
		return res, err
	}
	var lost atomic.Int64
	onLost := func(string, error) { lost.Add(1) }
	fmt.Fprintf(o.Progress, "bench: connecting %d devices to %s\n", len(cfgs), res.Target)
	devs, failures, firstErr := connectAll(ctx, cfgs, o.DialConcurrency, onLost, o.Progress)
	defer closeAll(devs)
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	res.ConnectFailures = failures
	res.Devices = len(cfgs) - failures
	if res.Devices == 0 {
		return res, fmt.Errorf("bench: no device connected: %w", firstErr)
	}
	if failures > 0 {
		fmt.Fprintf(o.Progress, "bench: %d of %d devices failed to connect; first error: %v\n", failures, len(cfgs), firstErr)
	}

	m0 := o.serverMetrics(ctx)
	begin := time.Now()
	wStart := begin.Add(o.Warmup)
	wEnd := wStart.Add(o.Duration)
	runCtx, cancel := context.WithDeadline(ctx, wEnd.Add(30*time.Second))
	defer cancel()
	fmt.Fprintf(o.Progress, "bench: %d devices × %d in flight, %d metrics per message; warm-up %v, measuring %v\n",
		res.Devices, o.InFlight, o.Metrics, o.Warmup, o.Duration)

	nonce := strconv.FormatInt(begin.UnixMilli(), 36)
	keys := metricKeys(o.Metrics)
	workers := make([]worker, 0, res.Devices*o.InFlight)
	for i, d := range devs {
		if d == nil {
			continue
		}
		for slot := range o.InFlight {
			workers = append(workers, worker{dev: d, keys: keys,
				midPrefix: nonce + "-" + strconv.Itoa(slot) + "-", rng: uint64(i*o.InFlight+slot)*0x9e3779b97f4a7c15 + 1})
		}
	}
	var wg sync.WaitGroup
	for i := range workers {
		w := &workers[i]
		wg.Go(func() { w.run(runCtx, wStart, wEnd) })
	}
	stopTicker := ticker(o.Progress, "publishing", func() string {
		var n int64
		for i := range workers {
			n += workers[i].sent.Load()
		}
		phase := "warm-up"
		if now := time.Now(); !now.Before(wEnd) {
			phase = "waiting for the last acknowledgements"
		} else if !now.Before(wStart) {
			phase = fmt.Sprintf("measuring, %s left", wEnd.Sub(now).Round(time.Second))
		}
		return fmt.Sprintf("%s, %d messages acknowledged", phase, n)
	})
	defer stopTicker()

	cpu0, cpu1 := math.NaN(), math.NaN()
	var m1, m2 map[string]float64
	if sleepUntil(ctx, wStart) {
		cpu0, m1 = processCPU(), o.serverMetrics(ctx)
	}
	if sleepUntil(ctx, wEnd) {
		cpu1, m2 = processCPU(), o.serverMetrics(ctx)
	}
	wg.Wait()
	stopTicker()
	if err := ctx.Err(); err != nil {
		return res, err
	}
	m3 := o.serverMetrics(ctx)

	var lat []uint32
	for i := range workers {
		w := &workers[i]
		res.Messages += w.counted
		res.Errors += w.errors
		lat = append(lat, w.lat...)
	}
	res.Window = o.Duration
	res.MessagesPerSec = float64(res.Messages) / o.Duration.Seconds()
	res.PointsPerSec = res.MessagesPerSec * float64(o.Metrics)
	res.P50, res.P99 = percentile(lat, 0.50), percentile(lat, 0.99)
	res.ConnectionsLost = lost.Load()
	res.BenchCPUSeconds = cpu1 - cpu0
	res.ServerRSSMB = metric(m2, "process_resident_memory_bytes") / 1e6
	res.ServerCPUSeconds = metric(m2, "process_cpu_seconds_total") - metric(m1, "process_cpu_seconds_total")
	res.ServerRejected = metric(m3, "warden_messages_rejected_total") - metric(m0, "warden_messages_rejected_total")
	res.ServerDuplicates = metric(m3, "warden_messages_duplicate_total") - metric(m0, "warden_messages_duplicate_total")
	res.ServerStoredPerSec = (metric(m2, "warden_messages_stored_total") - metric(m1, "warden_messages_stored_total")) / o.Duration.Seconds()
	res.ServerApplyLag = metric(m2, "warden_apply_lag_records")
	if err := res.Write(out, ""); err != nil {
		return res, err
	}
	shortfall(out, o.Progress, "devices_connected_ratio", "devices", float64(o.Devices), float64(res.Devices), "devices connected")
	if res.Errors > 0 {
		fmt.Fprintf(o.Progress, "warning: %d publishes failed or were not acknowledged\n", res.Errors)
	}
	if res.ServerStoredPerSec < 0.95*res.MessagesPerSec {
		fmt.Fprintf(o.Progress, "warning: the server stored %.0f msg/s while it acknowledged %.0f msg/s; %.0f acknowledged messages waited in its commit log at the end: the acknowledged rate lasts only until the log's bound is reached (run longer to see the sustained rate)\n",
			res.ServerStoredPerSec, res.MessagesPerSec, res.ServerApplyLag)
	}
	return res, nil
}

// Write prints the figures, each name prefixed with prefix, skipping
// figures that are unknown.
func (r IngestResult) Write(w io.Writer, prefix string) error {
	var b strings.Builder
	line := func(name string, v float64, prec int, unit string) {
		if !math.IsNaN(v) {
			fmt.Fprintf(&b, "%s%s: %s %s\n", prefix, name, strconv.FormatFloat(v, 'f', prec, 64), unit)
		}
	}
	line("devices", float64(r.Devices), 0, "devices")
	line("connect_failures", float64(r.ConnectFailures), 0, "devices")
	line("messages_per_s", r.MessagesPerSec, 0, "msg/s")
	line("points_per_s", r.PointsPerSec, 0, "points/s")
	line("puback_p50_ms", ms(r.P50), 2, "ms")
	line("puback_p99_ms", ms(r.P99), 2, "ms")
	line("errors", float64(r.Errors), 0, "errors")
	line("connections_lost", float64(r.ConnectionsLost), 0, "connections")
	line("bench_cpu_s", r.BenchCPUSeconds, 2, "s")
	line("server_rss_mb", r.ServerRSSMB, 1, "MB")
	line("server_cpu_s", r.ServerCPUSeconds, 2, "s")
	line("server_rejected", r.ServerRejected, 0, "msg")
	line("server_duplicates", r.ServerDuplicates, 0, "msg")
	line("server_stored_per_s", r.ServerStoredPerSec, 0, "msg/s")
	line("server_apply_lag", r.ServerApplyLag, 0, "msg")
	_, err := io.WriteString(w, b.String())
	return err
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func (o *IngestOptions) target() string {
	if o.Broker != "" {
		return o.Broker
	}
	return "warden"
}

// dialConfigs registers the Warden devices, or names the broker's clients.
func (o *IngestOptions) dialConfigs(ctx context.Context) ([]simulate.DialConfig, error) {
	width := max(4, len(strconv.Itoa(o.Devices)))
	cfgs := make([]simulate.DialConfig, o.Devices)
	prefix := o.Prefix
	if o.Tenant != nil && o.Broker == "" {
		prefix = o.Tenant.DevicePrefix(prefix)
	}
	for i := range cfgs {
		cfgs[i].DeviceID = fmt.Sprintf("%s-%0*d", prefix, width, i+1)
		cfgs[i].RootCAs = o.RootCAs
	}
	if o.Broker != "" {
		u, err := url.Parse(o.Broker)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("bench: broker %q: want mqtt://host:port or mqtts://host:port", o.Broker)
		}
		var plain bool
		switch u.Scheme {
		case "mqtt", "tcp":
			plain = true
		case "mqtts", "ssl", "tls":
		default:
			return nil, fmt.Errorf("bench: broker %q: want mqtt://host:port or mqtts://host:port", o.Broker)
		}
		addr := u.Host
		if u.Port() == "" {
			addr = net.JoinHostPort(u.Hostname(), map[bool]string{true: "1883", false: "8883"}[plain])
		}
		for i := range cfgs {
			cfgs[i].Addr, cfgs[i].Plain, cfgs[i].Insecure = addr, plain, o.Insecure
		}
		return cfgs, nil
	}
	return cfgs, registerAll(ctx, o.Tenant, cfgs, o.MQTTAddr, o.DialConcurrency, o.Progress)
}

// registerAll registers the devices of cfgs in t, at most conc at once,
// and fills in their keys and addresses.
func registerAll(ctx context.Context, t *Tenant, cfgs []simulate.DialConfig, mqttAddr string, conc int, progress io.Writer) error {
	fmt.Fprintf(progress, "bench: registering %d devices in tenant %s\n", len(cfgs), t.ID)
	var registered atomic.Int64
	stop := ticker(progress, "registering devices", func() string {
		return fmt.Sprintf("%d of %d", registered.Load(), len(cfgs))
	})
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, conc)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for i := range cfgs {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			c := &cfgs[i]
			cs, err := t.Register(ctx, c.DeviceID)
			if err != nil {
				once.Do(func() { first = fmt.Errorf("bench: register %s: %w", c.DeviceID, err); cancel() })
				return
			}
			registered.Add(1)
			c.HubHost, c.Key, c.Addr = cs.HostName, cs.SharedAccessKey, mqttAddr
			if c.Addr == "" {
				c.Addr = simulate.HubAddr(cs.HostName)
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// connectAll dials every device, at most conc at once; failed ones are nil.
func connectAll(ctx context.Context, cfgs []simulate.DialConfig, conc int, onLost func(string, error), progress io.Writer) ([]*simulate.Device, int, error) {
	devs := make([]*simulate.Device, len(cfgs))
	var connected atomic.Int64
	stop := ticker(progress, "connecting devices", func() string {
		return fmt.Sprintf("%d of %d connected", connected.Load(), len(cfgs))
	})
	defer stop()
	failures, first := eachLimited(ctx, len(cfgs), conc, func(i int) error {
		cfg := cfgs[i]
		cfg.OnConnectionLost = onLost
		d, err := simulate.Dial(ctx, cfg)
		if err != nil {
			return err
		}
		devs[i] = d
		connected.Add(1)
		return nil
	})
	return devs, failures, first
}

// eachLimited calls fn for 0 … n-1, at most conc at once, until ctx ends;
// it returns how many calls failed and the first error.
func eachLimited(ctx context.Context, n, conc int, fn func(i int) error) (int, error) {
	sem := make(chan struct{}, conc)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures int
		first    error
	)
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return failures, cmp.Or(first, ctx.Err())
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fn(i); err != nil {
				mu.Lock()
				failures++
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return failures, first
}

func closeAll(devs []*simulate.Device) {
	var wg sync.WaitGroup
	for _, d := range devs {
		if d != nil {
			wg.Go(d.Close)
		}
	}
	wg.Wait()
}

// worker is one outstanding-message slot of one device.
type worker struct {
	dev       *simulate.Device
	keys      [][]byte // `"m00":`…
	midPrefix string
	rng       uint64

	sent    atomic.Int64 // acknowledged, whole run (progress)
	counted int64        // acknowledged within the window
	errors  int64        // failed publishes
	lat     []uint32     // PUBACK latencies within the window, µs
}

func (w *worker) run(ctx context.Context, wStart, wEnd time.Time) {
	vals := make([]float64, len(w.keys))
	for i := range vals {
		vals[i] = float64(w.next()%100000) / 100
	}
	body := make([]byte, 0, 64+24*len(w.keys))
	mid := make([]byte, 0, 32)
	w.lat = make([]uint32, 0, 1024)
	for n := uint64(1); ; n++ {
		if ctx.Err() != nil {
			return
		}
		mid = strconv.AppendUint(append(mid[:0], w.midPrefix...), n, 10)
		now := time.Now()
		body = w.payload(body[:0], now, vals)
		err := w.dev.Publish(ctx, string(mid), body)
		done := time.Now()
		if err != nil {
			w.errors++
			body = make([]byte, 0, cap(body)) // the client may still hold the old one
			if !sleepUntil(ctx, done.Add(100*time.Millisecond)) {
				return
			}
		} else if w.sent.Add(1); !done.Before(wStart) && done.Before(wEnd) {
			w.counted++
			w.lat = append(w.lat, uint32(min(done.Sub(now)/time.Microsecond, math.MaxUint32)))
		}
		if !done.Before(wEnd) {
			return
		}
	}
}

// payload appends {"ts":"…","values":{"m00":…,…}}, the values random walks
// at 0.01 resolution.
func (w *worker) payload(b []byte, now time.Time, vals []float64) []byte {
	b = append(b, `{"ts":"`...)
	b = now.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","values":{`...)
	for i, k := range w.keys {
		if i > 0 {
			b = append(b, ',')
		}
		vals[i] += float64(int64(w.next()%201)-100) / 100
		b = append(b, k...)
		b = strconv.AppendFloat(b, math.Round(vals[i]*100)/100, 'f', -1, 64)
	}
	return append(b, "}}"...)
}

func (w *worker) next() uint64 { // xorshift64
	w.rng ^= w.rng << 13
	w.rng ^= w.rng >> 7
	w.rng ^= w.rng << 17
	return w.rng
}

func metricKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, `"m%02d":`, i)
	}
	return keys
}

func percentile(lat []uint32, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	if !slices.IsSorted(lat) {
		slices.Sort(lat)
	}
	i := int(math.Ceil(p*float64(len(lat)))) - 1
	return time.Duration(lat[max(i, 0)]) * time.Microsecond
}

// sleepUntil waits until t; false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// serverMetrics reads the unlabelled samples of a Warden target's /metrics;
// nil (every figure NaN) for another broker or if they cannot be read.
func (o *IngestOptions) serverMetrics(ctx context.Context) map[string]float64 {
	if o.Client == nil || o.Broker != "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	text, err := o.Client.Metrics(ctx)
	if err != nil {
		fmt.Fprintf(o.Progress, "bench: server metrics: %v\n", err)
		return nil
	}
	return parseMetrics(text)
}

// metric is a sample of m, NaN if absent.
func metric(m map[string]float64, name string) float64 {
	if v, ok := m[name]; ok {
		return v
	}
	return math.NaN()
}

// parseMetrics reads "name value" lines of the Prometheus text format.
func parseMetrics(text string) map[string]float64 {
	m := map[string]float64{}
	for line := range strings.Lines(text) {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		value, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			m[name] = v
		}
	}
	return m
}
