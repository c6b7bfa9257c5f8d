package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/warden-iot/warden/internal/clock"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/simulate"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/sqlite"
	"github.com/warden-iot/warden/internal/telemetry"
	"github.com/warden-iot/warden/internal/tenancy"
	"github.com/warden-iot/warden/internal/tsdb"
)

// StorageOptions sizes the storage benchmark.
type StorageOptions struct {
	// Dir holds the throw-away SQLite database (default: a temporary one).
	Dir string
	// Open, if set, opens the store to measure instead (e.g. PostgreSQL);
	// it must be empty. bytes_per_point then counts blob bytes only.
	Open func(ctx context.Context) (store.Store, error)
	// SimDevices simulated machines send for SimDays at SimInterval.
	SimDevices  int
	SimDays     float64
	SimInterval time.Duration
	// FleetDevices have latest values for the fleet query.
	FleetDevices int
	// Runs of each timed query; the median is reported.
	Runs int
	Log  *slog.Logger
	// Progress receives a note every few seconds of a long step (nil:
	// none).
	Progress io.Writer
}

func (o *StorageOptions) defaults() {
	if o.SimDevices <= 0 {
		o.SimDevices = 40
	}
	if o.SimDays <= 0 {
		o.SimDays = 1
	}
	if o.SimInterval <= 0 {
		o.SimInterval = 10 * time.Second
	}
	if o.FleetDevices <= 0 {
		o.FleetDevices = 10_000
	}
	if o.Runs <= 0 {
		o.Runs = 9
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// storageEnv is one fresh engine on one fresh store.
type storageEnv struct {
	st     store.Store
	engine *tsdb.Engine
	path   string // SQLite file, or "" for another store
	close  func()
}

// openStore opens a throw-away, migrated store: open's, if set, else a
// SQLite file name.db in dir. close removes the SQLite file.
func openStore(ctx context.Context, open func(context.Context) (store.Store, error), dir, name string) (st store.Store, path string, close func(), err error) {
	if open != nil {
		st, err = open(ctx)
		close = func() { st.Close() }
	} else {
		path = filepath.Join(dir, name+".db")
		var s *sqlite.Store
		s, err = sqlite.Open(ctx, path)
		st = s
		close = func() { s.Close(); os.Remove(path); os.Remove(path + "-wal"); os.Remove(path + "-shm") }
	}
	if err != nil {
		return nil, "", nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		close()
		return nil, "", nil, err
	}
	return st, path, close, nil
}

func newStorageEnv(ctx context.Context, o StorageOptions, name string) (*storageEnv, error) {
	env := &storageEnv{}
	var err error
	if env.st, env.path, env.close, err = openStore(ctx, o.Open, o.Dir, name); err != nil {
		return nil, err
	}
	master := make([]byte, keyring.KeySize)
	rand.Read(master)
	keys, err := keyring.New(ctx, master, env.st, time.Now)
	if err != nil {
		env.close()
		return nil, err
	}
	env.st.SetSealer(keys)
	env.engine = tsdb.New(tsdb.Config{}, env.st, keys, o.Log, clock.Real())
	return env, nil
}

func (env *storageEnv) devices(ctx context.Context, ids []string) error {
	for _, id := range ids {
		if err := env.st.CreateDevice(ctx, registry.Device{ID: id, TenantID: tenancy.RootTenantID, Status: registry.DeviceEnabled,
			PrimaryKey: []byte{1}, SecondaryKey: []byte{2}, CreatedAt: time.Now()}); err != nil {
			return err
		}
	}
	return nil
}

// writeAll commits messages in batches of 1,000 and returns the time taken.
func (env *storageEnv) writeAll(ctx context.Context, msgs []telemetry.Message) (time.Duration, error) {
	start := time.Now()
	for len(msgs) > 0 {
		n := min(len(msgs), 1000)
		if _, err := env.engine.Write(ctx, msgs[:n]); err != nil {
			return 0, err
		}
		msgs = msgs[n:]
	}
	return time.Since(start), nil
}

// sealAll seals every head and returns the points sealed and the time.
func (env *storageEnv) sealAll(ctx context.Context, ids []string) (int, time.Duration, error) {
	start := time.Now()
	total := 0
	for _, id := range ids {
		n, err := env.engine.SealDevice(ctx, tenancy.RootTenantID, id)
		if err != nil {
			return 0, 0, err
		}
		total += n
	}
	return total, time.Since(start), nil
}

// size returns the bytes the telemetry takes: the SQLite file after VACUUM
// (everything: chunks, their index, the rest of the schema), and the chunk
// blobs alone.
func (env *storageEnv) size(ctx context.Context, ids []string, metrics []string) (file, blobs int64, err error) {
	for _, id := range ids {
		for _, m := range metrics {
			_, chunks, err := env.st.ReadSeries(ctx, tenancy.RootTenantID, id, m, math.MinInt64, math.MaxInt64)
			if err != nil {
				return 0, 0, err
			}
			for _, c := range chunks {
				blobs += int64(len(c.Blob))
			}
		}
	}
	if env.path == "" {
		return 0, blobs, nil
	}
	if v, ok := env.st.(interface{ Vacuum(context.Context) error }); ok {
		if err := v.Vacuum(ctx); err != nil {
			return 0, 0, err
		}
	}
	fi, err := os.Stat(env.path)
	if err != nil {
		return 0, 0, err
	}
	return fi.Size(), blobs, nil
}

// shape is one data set for the size and ingest figures.
type shape struct {
	name    string
	ids     []string
	metrics []string
	msgs    []telemetry.Message
	points  int
}

func simulatorShape(o StorageOptions) shape {
	s := shape{name: "sim"}
	start := time.Now().Add(-time.Duration(o.SimDays * 24 * float64(time.Hour))).Truncate(time.Second)
	n := int(time.Duration(o.SimDays*24*float64(time.Hour)) / o.SimInterval)
	seen := map[string]bool{}
	kinds := simulate.Kinds()
	for d := range o.SimDevices {
		kind := kinds[d%len(kinds)]
		id := fmt.Sprintf("sim-%04d", d)
		s.ids = append(s.ids, id)
		m := simulate.NewMachine(kind, simulate.DeviceSeed(1, d), start)
		for _, name := range kind.Metrics() {
			if !seen[name] {
				seen[name] = true
				s.metrics = append(s.metrics, name)
			}
		}
		vals := map[string]float64{}
		for i := range n {
			t := start.Add(time.Duration(i) * o.SimInterval)
			m.SampleInto(t, vals)
			msg := telemetry.Message{TenantID: tenancy.RootTenantID, DeviceID: id, ReceivedAt: t}
			for _, name := range kind.Metrics() {
				msg.Points = append(msg.Points, telemetry.Point{Metric: name, TS: t, Value: vals[name]})
			}
			s.points += len(msg.Points)
			s.msgs = append(s.msgs, msg)
		}
	}
	return s
}

// walkShape is an independent shape: per device a random walk with two
// decimals, an integer counter and a constant, every 10 s with jitter.
func walkShape(devices, n int) shape {
	s := shape{name: "walk", metrics: []string{"pressure", "cycles", "setpoint"}}
	start := time.Now().Add(-time.Duration(n) * 10 * time.Second).Truncate(time.Second)
	for d := range devices {
		id := fmt.Sprintf("walk-%04d", d)
		s.ids = append(s.ids, id)
		r := mrand.New(mrand.NewPCG(uint64(d), 42))
		p, c := 1013.25, 0.0
		for i := range n {
			t := start.Add(time.Duration(i)*10*time.Second + time.Duration(r.IntN(41)-20)*time.Millisecond)
			p = math.Round((p+float64(r.IntN(21)-10)/100)*100) / 100
			c += float64(r.IntN(3))
			s.msgs = append(s.msgs, telemetry.Message{TenantID: tenancy.RootTenantID, DeviceID: id, ReceivedAt: t, Points: []telemetry.Point{
				{Metric: "pressure", TS: t, Value: p}, {Metric: "cycles", TS: t, Value: c}, {Metric: "setpoint", TS: t, Value: 21.5}}})
			s.points += 3
		}
	}
	return s
}

// Storage measures the telemetry engine in process and prints its figures
// as "name: value unit" lines.
func Storage(ctx context.Context, o StorageOptions, out io.Writer) error {
	o.defaults()
	if o.Dir == "" && o.Open == nil {
		dir, err := os.MkdirTemp("", "warden-bench-storage-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		o.Dir = dir
	}
	step := func(what string, fn func() error) error {
		stop := ticker(o.Progress, what, nil)
		defer stop()
		return fn()
	}
	var sim, walk shape
	step("making the simulator and random-walk data", func() error {
		sim = simulatorShape(o)
		walk = walkShape(o.SimDevices, len(sim.msgs)/o.SimDevices)
		return nil
	})
	for _, sh := range []shape{sim, walk} {
		if err := step("writing, sealing and sizing the "+sh.name+" data", func() error { return measureShape(ctx, o, sh, out) }); err != nil {
			return fmt.Errorf("shape %s: %w", sh.name, err)
		}
	}
	if err := step("a year of one metric, downsampled", func() error { return measureYear(ctx, o, out) }); err != nil {
		return fmt.Errorf("year query: %w", err)
	}
	if err := step("latest values of the fleet", func() error { return measureFleet(ctx, o, out) }); err != nil {
		return fmt.Errorf("fleet latest: %w", err)
	}
	return nil
}

func measureShape(ctx context.Context, o StorageOptions, sh shape, out io.Writer) error {
	env, err := newStorageEnv(ctx, o, sh.name)
	if err != nil {
		return err
	}
	defer env.close()
	if err := env.devices(ctx, sh.ids); err != nil {
		return err
	}
	o.Log.Info("writing", "shape", sh.name, "messages", len(sh.msgs), "points", sh.points)
	took, err := env.writeAll(ctx, sh.msgs)
	if err != nil {
		return err
	}
	sealed, sealTook, err := env.sealAll(ctx, sh.ids)
	if err != nil {
		return err
	}
	if sealed != sh.points {
		return fmt.Errorf("sealed %d points, wrote %d", sealed, sh.points)
	}
	file, blobs, err := env.size(ctx, sh.ids, sh.metrics)
	if err != nil {
		return err
	}
	p := float64(sh.points)
	fmt.Fprintf(out, "%s_points: %d points\n", sh.name, sh.points)
	if file > 0 {
		fmt.Fprintf(out, "%s_bytes_per_point: %.3f bytes/point\n", sh.name, float64(file)/p)
	}
	fmt.Fprintf(out, "%s_chunk_bytes_per_point: %.3f bytes/point\n", sh.name, float64(blobs)/p)
	fmt.Fprintf(out, "%s_ingest_points_per_s: %.0f points/s\n", sh.name, p/took.Seconds())
	fmt.Fprintf(out, "%s_ingest_messages_per_s: %.0f msg/s\n", sh.name, float64(len(sh.msgs))/took.Seconds())
	fmt.Fprintf(out, "%s_seal_points_per_s: %.0f points/s\n", sh.name, p/sealTook.Seconds())
	if sh.name == "sim" { // the headline figures are those of the simulator's data
		if file > 0 {
			fmt.Fprintf(out, "bytes_per_point: %.3f bytes/point\n", float64(file)/p)
		} else {
			fmt.Fprintf(out, "bytes_per_point: %.3f bytes/point\n", float64(blobs)/p)
		}
		fmt.Fprintf(out, "ingest_points_per_s: %.0f points/s\n", p/took.Seconds())
	}
	return nil
}

// measureYear stores one metric for a year at one point a minute and times
// a 1,000-bucket downsample of it.
func measureYear(ctx context.Context, o StorageOptions, out io.Writer) error {
	env, err := newStorageEnv(ctx, o, "year")
	if err != nil {
		return err
	}
	defer env.close()
	if err := env.devices(ctx, []string{"year-1"}); err != nil {
		return err
	}
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-365 * 24 * time.Hour)
	r := mrand.New(mrand.NewPCG(7, 7))
	v := 60.0
	var msgs []telemetry.Message
	var msg telemetry.Message
	for t := start; t.Before(end); t = t.Add(time.Minute) {
		v = math.Round((v+float64(r.IntN(11)-5)/10)*10) / 10
		if len(msg.Points) == 1000 { // an edge box's buffer upload
			msgs = append(msgs, msg)
			msg = telemetry.Message{}
		}
		msg.TenantID, msg.DeviceID, msg.ReceivedAt = tenancy.RootTenantID, "year-1", t
		msg.Points = append(msg.Points, telemetry.Point{Metric: "temperature", TS: t, Value: v})
	}
	msgs = append(msgs, msg)
	if _, err := env.writeAll(ctx, msgs); err != nil {
		return err
	}
	if _, _, err := env.sealAll(ctx, []string{"year-1"}); err != nil {
		return err
	}
	times := make([]time.Duration, o.Runs)
	for i := range times {
		t0 := time.Now()
		bs, err := env.engine.Downsample(ctx, tenancy.RootTenantID, "year-1", "temperature", start, end.Add(time.Minute), mustWidth(start, end.Add(time.Minute), 1000))
		times[i] = time.Since(t0)
		if err != nil {
			return err
		}
		if len(bs) < 990 {
			return fmt.Errorf("downsample gave %d buckets", len(bs))
		}
	}
	fmt.Fprintf(out, "year_points: %d points\n", 365*24*60)
	fmt.Fprintf(out, "year_downsample_ms: %.2f ms\n", ms(median(times)))
	return nil
}

func mustWidth(from, to time.Time, n int) time.Duration {
	w, _ := tsdb.BucketWidth(from, to, n)
	return w
}

// measureFleet gives FleetDevices devices ten latest values each and times
// reading all of them.
func measureFleet(ctx context.Context, o StorageOptions, out io.Writer) error {
	env, err := newStorageEnv(ctx, o, "fleet")
	if err != nil {
		return err
	}
	defer env.close()
	ids := make([]string, o.FleetDevices)
	var msgs []telemetry.Message
	now := time.Now()
	for i := range ids {
		ids[i] = fmt.Sprintf("fleet-%05d", i)
		m := telemetry.Message{TenantID: tenancy.RootTenantID, DeviceID: ids[i], ReceivedAt: now}
		for k := range 10 {
			m.Points = append(m.Points, telemetry.Point{Metric: fmt.Sprintf("metric%02d", k), TS: now, Value: float64(i + k)})
		}
		msgs = append(msgs, m)
	}
	if err := env.devices(ctx, ids); err != nil {
		return err
	}
	if _, err := env.writeAll(ctx, msgs); err != nil {
		return err
	}
	times := make([]time.Duration, o.Runs)
	for i := range times {
		t0 := time.Now()
		page, err := env.engine.FleetLatest(ctx, tenancy.RootTenantID, "", o.FleetDevices)
		times[i] = time.Since(t0)
		if err != nil {
			return err
		}
		if len(page) != o.FleetDevices || len(page[len(page)-1].Metrics) != 10 {
			return fmt.Errorf("fleet page of %d devices", len(page))
		}
	}
	fmt.Fprintf(out, "fleet_devices: %d devices\n", o.FleetDevices)
	fmt.Fprintf(out, "fleet_latest_ms: %.2f ms\n", ms(median(times)))
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
