package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/sas"
	"github.com/warden-iot/warden/internal/simulate"
)

// DPSOptions configure DPS.
type DPSOptions struct {
	// Client is the caller's API client: it reads /metrics and, without
	// Tenant, makes a throw-away tenant for the benchmark.
	Client *client.Client
	// Tenant is where the enrollment group is made and the devices are
	// provisioned (nil: a throw-away tenant, deleted afterwards).
	Tenant *Tenant
	// MQTTAddr overrides the MQTT TLS address (default: the provisioning
	// host the server names).
	MQTTAddr string
	// RootCAs verifies the server's certificate (nil: the system roots).
	RootCAs *x509.CertPool
	// Clients is the number of concurrent provisioning clients (default 64).
	Clients int
	// Duration is the measured window (default 20 s).
	Duration time.Duration
	// Warmup runs before the window, not counted (default 3 s; negative
	// for none).
	Warmup time.Duration
	// Group is the enrollment group, created if absent (default
	// "bench-dps").
	Group string
	// Prefix starts the registration ids (default "dps-bench").
	Prefix string
	// IDs, if positive, cycles through that many registration ids, so
	// that most registrations are re-registrations; 0 registers a new id,
	// so a new device, every time.
	IDs int
	// PollDelay is the wait between the 202 and the poll (default none;
	// the SDK waits the retry-after of 1 s).
	PollDelay time.Duration
	// Progress receives progress notes (nil: none).
	Progress io.Writer
}

// DPSResult are the figures of a run.
type DPSResult struct {
	Clients          int
	Registrations    int64 // completed within the window
	Window           time.Duration
	PerSec           float64
	P50, P99         time.Duration // one whole registration: TLS dial to UNSUBACK
	Errors           int64         // failed registrations, whole run
	BenchCPUSeconds  float64       // NaN if unknown
	ServerCPUSeconds float64       // NaN if unknown
	ServerRSSMB      float64       // NaN if unknown
}

func (o *DPSOptions) defaults() error {
	if o.Client == nil {
		return errors.New("bench: want a Warden server")
	}
	if o.Clients <= 0 {
		o.Clients = 64
	}
	if o.Duration <= 0 {
		o.Duration = 20 * time.Second
	}
	if o.Warmup == 0 {
		o.Warmup = 3 * time.Second
	} else if o.Warmup < 0 {
		o.Warmup = 0
	}
	if o.Group == "" {
		o.Group = "bench-dps"
	}
	if o.Prefix == "" {
		o.Prefix = "dps-bench"
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return nil
}

// DPS measures device provisioning: o.Clients clients each register one
// device after another through the group o.Group, the way the Azure IoT
// provisioning SDK does (TLS connection, CONNECT with a SAS token made with
// the key derived from the group key, SUBSCRIBE, register PUT → 202, poll →
// 200 assigned, UNSUBSCRIBE, DISCONNECT), for a warm-up and then
// o.Duration. It writes registrations per second and the latency of a whole
// registration, one figure per line as "name: value unit".
func DPS(ctx context.Context, o DPSOptions, out io.Writer) (DPSResult, error) {
	if err := o.defaults(); err != nil {
		return DPSResult{}, err
	}
	if o.Tenant == nil {
		var res DPSResult
		err := InTenant(ctx, TenantOptions{Caller: o.Client, Progress: o.Progress}, func(t *Tenant) error {
			o.Tenant = t
			var err error
			res, err = DPS(ctx, o, out)
			return err
		})
		return res, err
	}
	res := DPSResult{Clients: o.Clients, Window: o.Duration, BenchCPUSeconds: math.NaN(), ServerCPUSeconds: math.NaN(), ServerRSSMB: math.NaN()}
	info, err := o.Tenant.DPSInfo(ctx)
	if err != nil {
		return res, fmt.Errorf("bench: provisioning info: %w", err)
	}
	g, err := o.Tenant.EnrollmentGroup(ctx, o.Group)
	if err != nil {
		return res, fmt.Errorf("bench: enrollment group %s: %w", o.Group, err)
	}
	if !g.Enabled {
		return res, fmt.Errorf("bench: enrollment group %s is disabled", o.Group)
	}
	groupKey, err := base64.StdEncoding.DecodeString(g.PrimaryKey)
	if err != nil {
		return res, fmt.Errorf("bench: enrollment group %s: key: %w", o.Group, err)
	}
	addr := o.MQTTAddr
	if addr == "" {
		addr = info.ProvisioningHost
		if _, _, err := net.SplitHostPort(addr); err != nil {
			addr = net.JoinHostPort(addr, "8883")
		}
	}
	// Resolved once: a name lookup at every dial would cost this load
	// generator more than the dial.
	if ta, err := net.ResolveTCPAddr("tcp", addr); err == nil {
		addr = ta.String()
	}
	host := info.ProvisioningHost
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	d := &dpsDialer{groupKey: groupKey, prov: simulate.Provisioner{
		Addr: addr, IDScope: info.IDScope, PollDelay: o.PollDelay,
		TLS: &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12,
			// What Node offers first; Go's default hybrid post-quantum
			// exchange would cost this load generator CPU the server
			// needs.
			CurvePreferences: []tls.CurveID{tls.X25519},
			// The chain is verified once, then the certificate pinned
			// (see certPin). The server's proof that it holds the key is
			// checked at every handshake all the same.
			InsecureSkipVerify: true,
			VerifyConnection:   (&certPin{roots: o.RootCAs, host: host}).verify,
		},
	}}

	nonce := strconv.FormatInt(time.Now().UnixMilli(), 36)
	prefix := o.Tenant.DevicePrefix(o.Prefix)
	var seq atomic.Int64
	nextID := func() string {
		n := seq.Add(1)
		id := prefix + "-" + nonce + "-" + strconv.FormatInt(n, 10)
		if o.IDs > 0 {
			id = fmt.Sprintf("%s-%06d", prefix, n%int64(o.IDs))
			if n > int64(o.IDs) {
				return id
			}
		}
		o.Tenant.registered(id)
		return id
	}

	begin := time.Now()
	wStart := begin.Add(o.Warmup)
	wEnd := wStart.Add(o.Duration)
	runCtx, cancel := context.WithDeadline(ctx, wEnd.Add(40*time.Second))
	defer cancel()
	fmt.Fprintf(o.Progress, "bench: %d provisioning clients against %s (scope %s, group %s); warm-up %v, measuring %v\n",
		o.Clients, addr, info.IDScope, o.Group, o.Warmup, o.Duration)

	workers := make([]dpsWorker, o.Clients)
	var wg sync.WaitGroup
	for i := range workers {
		w := &workers[i]
		wg.Go(func() { w.run(runCtx, d, nextID, wStart, wEnd) })
	}
	stop := ticker(o.Progress, "provisioning", func() string {
		var n int64
		for i := range workers {
			n += workers[i].done.Load()
		}
		phase := "warm-up"
		if now := time.Now(); !now.Before(wEnd) {
			phase = "waiting for the last registrations"
		} else if !now.Before(wStart) {
			phase = fmt.Sprintf("measuring, %s left", wEnd.Sub(now).Round(time.Second))
		}
		return fmt.Sprintf("%s, %d registrations done", phase, n)
	})
	defer stop()
	cpu0, cpu1 := math.NaN(), math.NaN()
	var m1, m2 map[string]float64
	if sleepUntil(ctx, wStart) {
		cpu0, m1 = processCPU(), serverFigures(ctx, o.Client, o.Progress)
	}
	if sleepUntil(ctx, wEnd) {
		cpu1, m2 = processCPU(), serverFigures(ctx, o.Client, o.Progress)
	}
	wg.Wait()
	stop()
	if err := ctx.Err(); err != nil {
		return res, err
	}

	var lat []uint32
	var firstErr error
	for i := range workers {
		w := &workers[i]
		res.Registrations += w.counted
		res.Errors += w.errors
		lat = append(lat, w.lat...)
		if firstErr == nil {
			firstErr = w.firstErr
		}
	}
	if firstErr != nil {
		fmt.Fprintf(o.Progress, "warning: %d registrations failed; first error: %v\n", res.Errors, firstErr)
	}
	res.PerSec = float64(res.Registrations) / o.Duration.Seconds()
	res.P50, res.P99 = percentile(lat, 0.50), percentile(lat, 0.99)
	res.BenchCPUSeconds = cpu1 - cpu0
	res.ServerCPUSeconds = metric(m2, "process_cpu_seconds_total") - metric(m1, "process_cpu_seconds_total")
	res.ServerRSSMB = metric(m2, "process_resident_memory_bytes") / 1e6
	if res.Registrations == 0 {
		res.Write(out)
		return res, fmt.Errorf("bench: no registration completed: %w", firstErr)
	}
	return res, res.Write(out)
}

// serverFigures reads the server's /metrics; nil if it cannot.
func serverFigures(ctx context.Context, c *client.Client, progress io.Writer) map[string]float64 {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	text, err := c.Metrics(ctx)
	if err != nil {
		fmt.Fprintf(progress, "bench: server metrics: %v\n", err)
		return nil
	}
	return parseMetrics(text)
}

// Write prints the figures that are known.
func (r DPSResult) Write(w io.Writer) error {
	var b strings.Builder
	line := func(name string, v float64, prec int, unit string) {
		if !math.IsNaN(v) {
			fmt.Fprintf(&b, "%s: %s %s\n", name, strconv.FormatFloat(v, 'f', prec, 64), unit)
		}
	}
	line("dps_clients", float64(r.Clients), 0, "clients")
	line("dps_registrations", float64(r.Registrations), 0, "reg")
	line("dps_registrations_per_s", r.PerSec, 0, "reg/s")
	line("dps_register_p50_ms", ms(r.P50), 2, "ms")
	line("dps_register_p99_ms", ms(r.P99), 2, "ms")
	line("dps_errors", float64(r.Errors), 0, "errors")
	line("bench_cpu_s", r.BenchCPUSeconds, 2, "s")
	line("server_cpu_s", r.ServerCPUSeconds, 2, "s")
	// The server's CPU per registration tells its capacity on a machine
	// whose CPU it does not share with this load generator.
	if r.Registrations > 0 {
		line("dps_server_cpu_ms_per_reg", r.ServerCPUSeconds*1000/float64(r.Registrations), 3, "ms")
	}
	line("server_rss_mb", r.ServerRSSMB, 1, "MB")
	_, err := io.WriteString(w, b.String())
	return err
}

// certPin verifies the server's certificate chain the first time, then
// accepts the same certificate without verifying its chain again: the
// server's signature of each handshake still proves it holds the key. The
// load generator's CPU is the server's too, on one machine.
type certPin struct {
	roots *x509.CertPool
	host  string
	leaf  atomic.Pointer[[]byte]
}

func (p *certPin) verify(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("no server certificate")
	}
	leaf := cs.PeerCertificates[0]
	if pinned := p.leaf.Load(); pinned != nil && bytes.Equal(*pinned, leaf.Raw) {
		return nil
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: p.roots, Intermediates: inter, DNSName: p.host}); err != nil {
		return err
	}
	p.leaf.Store(&leaf.Raw)
	return nil
}

// dpsWorker is one provisioning client, registering again and again.
type dpsWorker struct {
	done     atomic.Int64 // completed, whole run (progress)
	counted  int64
	errors   int64
	firstErr error
	lat      []uint32 // µs
}

func (w *dpsWorker) run(ctx context.Context, d *dpsDialer, nextID func() string, wStart, wEnd time.Time) {
	w.lat = make([]uint32, 0, 1024)
	for ctx.Err() == nil {
		start := time.Now()
		if !start.Before(wEnd) {
			return
		}
		err := d.register(ctx, nextID())
		done := time.Now()
		if err != nil {
			w.errors++
			if w.firstErr == nil {
				w.firstErr = err
			}
			if !sleepUntil(ctx, done.Add(100*time.Millisecond)) {
				return
			}
			continue
		}
		w.done.Add(1)
		if !done.Before(wStart) && done.Before(wEnd) {
			w.counted++
			w.lat = append(w.lat, uint32(min(done.Sub(start)/time.Microsecond, math.MaxUint32)))
		}
	}
}

// dpsDialer registers devices of one enrollment group.
type dpsDialer struct {
	prov     simulate.Provisioner
	groupKey []byte
}

// register provisions regID once, on a connection of its own.
func (d *dpsDialer) register(ctx context.Context, regID string) error {
	_, err := d.prov.Register(ctx, regID, sas.DeriveDeviceKey(d.groupKey, regID))
	return err
}
