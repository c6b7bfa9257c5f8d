package simulate

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/sas"
)

// RunOptions configure Run. (Options is taken by the machine models.)
type RunOptions struct {
	// Client registers the devices; required.
	Client *client.Client
	// MQTTAddr is the server's MQTT TLS address, host:port. Empty: the
	// hub host name of the devices' connection strings (port 8883 if it
	// names none).
	MQTTAddr string
	// RootCAs verifies the server certificate (nil: the system roots).
	RootCAs *x509.CertPool
	// Devices is the number of simulated devices (default 1).
	Devices int
	// Interval is the time between two messages of a device (default 10 s).
	Interval time.Duration
	// Prefix starts every device id, as in "sim-pump-0001" (default "sim").
	Prefix string
	// Kinds are assigned to the devices round robin (default Kinds()).
	Kinds []Kind
	// Seed is the fleet seed; device i gets DeviceSeed(Seed, i).
	Seed int64
	// Duration ends the run after this long; 0 runs until ctx is done.
	Duration time.Duration
	// Machine are the options of every machine (faults, wear, location);
	// a forced fault applies to the machines whose kind has it.
	Machine Options
	// DialConcurrency bounds the registrations and connections in
	// progress at once (default 32).
	DialConcurrency int
	// SummaryEvery is the period of the summary log line (default 30 s).
	SummaryEvery time.Duration
	// IDs, if set, are the device ids (registration ids with
	// Provisioning) instead of Prefix-kind-0001…; Devices is then
	// len(IDs). An id naming a kind's short name (pump, coffee, heater,
	// meter) gets that kind, others get Kinds round robin.
	IDs []string
	// Provisioning, if set, registers the devices through the Device
	// Provisioning Service with an enrollment group instead of the
	// registry API.
	Provisioning *Provisioning
}

// Provisioning is how the simulator registers its devices through DPS.
type Provisioning struct {
	// Group is the enrollment group.
	Group string
	// GroupKey is the group's key; nil: read through Client (the caller
	// must be allowed to read the group's keys).
	GroupKey []byte
	// IDScope is the tenant's ID scope; empty: read through Client.
	IDScope string
	// Host is the provisioning endpoint, host[:port] (default: the one
	// the server names, port 8883).
	Host string
}

// Run registers opts.Devices simulated machines with the server (reusing
// devices that already exist), connects each as an MQTT device and
// publishes one sample per interval and device until ctx is done or
// opts.Duration has passed. The devices' first messages are spread evenly
// over the first interval. A device in an "offline" fault publishes
// nothing. Lost connections are re-established with a fresh token. Run
// returns an error only if the devices cannot be set up; a run stopped by
// ctx returns nil.
func Run(ctx context.Context, opts RunOptions, log *slog.Logger) error {
	if opts.Client == nil && opts.Provisioning == nil {
		return errors.New("simulate: no API client")
	}
	if len(opts.IDs) > 0 {
		opts.Devices = len(opts.IDs)
	}
	if opts.Devices <= 0 {
		opts.Devices = 1
	}
	if opts.Interval <= 0 {
		opts.Interval = 10 * time.Second
	}
	if opts.Prefix == "" {
		opts.Prefix = "sim"
	}
	if len(opts.Kinds) == 0 {
		opts.Kinds = Kinds()
	}
	for _, k := range opts.Kinds {
		if !k.Valid() {
			return fmt.Errorf("simulate: invalid machine kind %q", k)
		}
	}
	if opts.DialConcurrency <= 0 {
		opts.DialConcurrency = 32
	}
	if opts.SummaryEvery <= 0 {
		opts.SummaryEvery = 30 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Duration)
		defer cancel()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		fatal     error
		fatalOnce sync.Once
	)

	r := &runner{opts: opts, log: log, t0: time.Now(), sem: make(chan struct{}, opts.DialConcurrency)}
	if opts.Provisioning != nil {
		prov, err := newProvisioner(ctx, opts)
		if err != nil {
			return err
		}
		r.prov = prov
		log.Info("registering through the provisioning service", "group", opts.Provisioning.Group,
			"endpoint", prov.Addr, "id_scope", prov.IDScope)
	}
	r.sims = make([]*sim, opts.Devices)
	width := max(4, len(strconv.Itoa(opts.Devices)))
	for i := range r.sims {
		kind := opts.Kinds[i%len(opts.Kinds)]
		id := fmt.Sprintf("%s-%s-%0*d", opts.Prefix, shortKind(kind), width, i+1)
		if len(opts.IDs) > 0 {
			id = opts.IDs[i]
			kind = kindOfID(id, kind)
		}
		r.sims[i] = &sim{index: i, id: id, kind: kind, seed: DeviceSeed(opts.Seed, i)}
	}
	log.Info("simulation starting", "devices", opts.Devices, "interval", opts.Interval,
		"kinds", opts.Kinds, "first", r.sims[0].id)

	var wg sync.WaitGroup
	for _, s := range r.sims {
		wg.Go(func() {
			if err := r.device(ctx, s); err != nil {
				fatalOnce.Do(func() { fatal = err; cancel() })
			}
		})
	}
	summaryDone := make(chan struct{})
	go func() {
		defer close(summaryDone)
		t := time.NewTicker(opts.SummaryEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				r.summary("simulation running")
			}
		}
	}()
	wg.Wait()
	<-summaryDone
	r.summary("simulation stopped")
	return fatal
}

type runner struct {
	opts RunOptions
	prov *groupProvisioner // nil: the registry API
	log  *slog.Logger
	t0   time.Time
	sem  chan struct{} // bounds registrations and dials in progress
	sims []*sim

	connected atomic.Int64 // devices connected at least once
	sent      atomic.Int64
	errors    atomic.Int64
	offline   atomic.Int64 // messages skipped during an offline fault
	lost      atomic.Int64
	lastSent  int64 // at the previous summary (summary goroutine only)
	lastAt    time.Time
}

type sim struct {
	index int
	id    string
	kind  Kind
	seed  int64
	dev   atomic.Pointer[Device]
}

func (r *runner) summary(msg string) {
	sent, now := r.sent.Load(), time.Now()
	from := r.lastAt
	if from.IsZero() {
		from = r.t0
	}
	rate := float64(sent-r.lastSent) / now.Sub(from).Seconds()
	r.lastSent, r.lastAt = sent, now
	open := 0
	for _, s := range r.sims {
		if d := s.dev.Load(); d != nil && d.Connected() {
			open++
		}
	}
	r.log.Info(msg, "devices", len(r.sims), "connected", open, "sent", sent,
		"msg_per_s", math.Round(rate*10)/10, "errors", r.errors.Load(),
		"offline_skipped", r.offline.Load(), "connections_lost", r.lost.Load())
}

// device sets up one simulated device and publishes until ctx is done.
func (r *runner) device(ctx context.Context, s *sim) error {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return nil
	}
	dev, err := r.connect(ctx, s)
	<-r.sem
	if err != nil || dev == nil { // dev is nil when ctx ended the setup
		return err
	}
	s.dev.Store(dev)
	defer dev.Close()
	if n := r.connected.Add(1); n == int64(len(r.sims)) {
		r.log.Info("all devices connected", "devices", n, "after", time.Since(r.t0).Round(time.Millisecond))
	}

	// Forced faults apply to the machines whose kind has them.
	mo := r.opts.Machine
	mo.Faults = nil
	for _, f := range r.opts.Machine.Faults {
		if slices.Contains(s.kind.Faults(), f.Fault) {
			mo.Faults = append(mo.Faults, f)
		}
	}
	m := NewMachineWithOptions(s.kind, s.seed, time.Now(), mo)
	ag := newAgent(dev, s.kind, r.opts.Interval, r.log)
	if err := ag.start(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		r.log.Warn("twin, methods and cloud-to-device messages not set up", "device", s.id, "err", err)
	}
	names := s.kind.Metrics()
	values := make(map[string]float64, len(names))
	var body []byte
	interval := ag.Interval()
	// Spread the devices' first messages evenly over one interval.
	next := r.t0.Add(time.Duration(int64(interval) * int64(s.index) / int64(len(r.sims))))
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		if behind := now.Sub(next); behind > 0 { // skip missed slots rather than burst
			next = next.Add((behind/interval + 1) * interval)
		}
		timer.Reset(next.Sub(now))
		select {
		case <-ctx.Done():
			return nil
		case <-ag.Changed():
			// The cloud set another interval: the next message one new
			// interval from now.
			interval = ag.Interval()
			next = time.Now().Add(interval)
			continue
		case <-timer.C:
		}
		next = next.Add(interval)
		at := time.Now()
		if ag.Paused(at) {
			continue // rebooting
		}
		fault := m.ActiveFault(at)
		if fault == FaultOffline {
			r.offline.Add(1)
			continue
		}
		m.SampleInto(at, values)
		ag.sampled(at, values, fault)
		body = appendSample(body[:0], at, names, values)
		mid := s.id + "-" + strconv.FormatInt(at.UnixMilli(), 10)
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := dev.Publish(pctx, mid, body)
		cancel()
		switch {
		case err == nil:
			r.sent.Add(1)
		case ctx.Err() != nil:
			return nil
		default:
			body = nil // the client may still send the old buffer
			if n := r.errors.Add(1); n <= 10 || n%1000 == 0 {
				r.log.Warn("publish failed", "device", s.id, "errors", n, "err", err)
			}
		}
	}
}

// connect registers s and dials it, retrying a failed dial twice.
func (r *runner) connect(ctx context.Context, s *sim) (*Device, error) {
	var (
		cs  sas.ConnectionString
		err error
	)
	if r.prov != nil {
		cs, err = r.prov.register(ctx, s.id)
		if err == nil {
			if cs.DeviceID != s.id {
				r.log.Info("provisioned under another device id", "registration", s.id, "device", cs.DeviceID)
			}
			r.log.Info("provisioned", "device", cs.DeviceID, "hub", cs.HostName)
			s.id = cs.DeviceID
			r.setModel(ctx, s, false)
		}
	} else {
		cs, err = Register(ctx, r.opts.Client, s.id)
		if err == nil {
			err = r.setModel(ctx, s, true)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil
		}
		return nil, fmt.Errorf("simulate: register %s: %w", s.id, err)
	}
	addr := r.opts.MQTTAddr
	if addr == "" {
		addr = HubAddr(cs.HostName)
	}
	cfg := DialConfig{
		Addr: addr, HubHost: cs.HostName, DeviceID: s.id, Key: cs.SharedAccessKey, RootCAs: r.opts.RootCAs,
		OnConnectionLost: func(id string, err error) {
			if n := r.lost.Add(1); n <= 10 || n%1000 == 0 {
				r.log.Warn("connection lost; reconnecting", "device", id, "lost", n, "err", err)
			}
		},
	}
	for attempt := 1; ; attempt++ {
		dev, err := Dial(ctx, cfg)
		if err == nil {
			return dev, nil
		}
		if ctx.Err() != nil {
			return nil, nil
		}
		if attempt == 3 {
			return nil, fmt.Errorf("simulate: %w", err)
		}
		r.log.Warn("connect failed; retrying", "device", s.id, "err", err)
		select {
		case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
		case <-ctx.Done():
			return nil, nil
		}
	}
}

// setModel sets the device's model to its kind, so that rules and
// maintenance plans scoped to a model apply to it. Without must, a
// failure (no API client, or one that may not change the device) is only
// logged: a provisioned device reports its kind in its twin all the same.
func (r *runner) setModel(ctx context.Context, s *sim, must bool) error {
	if r.opts.Client == nil {
		return nil
	}
	_, err := r.opts.Client.UpdateDevice(ctx, s.id, apiv1.DevicePatch{Model: apiv1.Ptr(string(s.kind))})
	if err != nil && !must {
		r.log.Warn("model not set; rules scoped to the model will not apply", "device", s.id, "err", err)
		return nil
	}
	return err
}

// kindOfID is the kind whose short name is a word of id, or def.
func kindOfID(id string, def Kind) Kind {
	words := strings.FieldsFunc(strings.ToLower(id), func(r rune) bool { return r == '-' || r == '_' || r == '.' || r == ':' || r == '@' })
	for _, k := range Kinds() {
		if slices.Contains(words, shortKind(k)) || slices.Contains(words, string(k)) {
			return k
		}
	}
	return def
}

// Register creates the device id through the API, or fetches it if it
// exists already, and returns its connection string.
func Register(ctx context.Context, c *client.Client, id string) (sas.ConnectionString, error) {
	d, err := c.CreateDevice(ctx, id)
	if client.IsConflict(err) {
		d, err = c.Device(ctx, id)
	}
	if err != nil {
		return sas.ConnectionString{}, err
	}
	return sas.ParseConnectionString(d.ConnectionString)
}

// HubAddr is the MQTT TLS address of a hub host name: the host name itself
// if it carries a port, else port 8883.
func HubAddr(hubHost string) string {
	if _, _, err := net.SplitHostPort(hubHost); err == nil {
		return hubHost
	}
	return net.JoinHostPort(hubHost, "8883")
}

// shortKind is the kind's short name used in device ids.
func shortKind(k Kind) string {
	switch k {
	case VacuumPump:
		return "pump"
	case CoffeeMachine:
		return "coffee"
	case PelletHeater:
		return "heater"
	case Meter:
		return "meter"
	}
	return string(k)
}

// appendSample appends {"ts":"…","values":{…}} with the named values.
func appendSample(b []byte, at time.Time, names []string, values map[string]float64) []byte {
	b = append(b, `{"ts":"`...)
	b = at.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","values":{`...)
	first := true
	for _, n := range names {
		v, ok := values[n]
		if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = strconv.AppendQuote(b, n)
		b = append(b, ':')
		b = strconv.AppendFloat(b, v, 'f', -1, 64)
	}
	return append(b, "}}"...)
}
