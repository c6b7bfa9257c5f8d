package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/warden-iot/warden/internal/bench"
	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/postgres"
)

const benchUsage = `bench <benchmark> [flags]

Benchmarks:
  ingest    MQTT telemetry ingest of a running server (or any MQTT broker): msg/s, PUBACK latency, server CPU
  storage   the telemetry engine in process, on a throw-away database: bytes per point, query times
  dps       device provisioning of a running server: registrations/s, then direct methods and desired properties
  alarms    the alarm monitor in process (messages evaluated/s), or with --latency publish → alarm visible
  connections  idle device connections of a running server, level by level: connect rate, memory per connection,
            PUBACK latency of a probe device; memory after they close

Benchmarks against a running server work in a throw-away tenant they make and delete afterwards (also when
interrupted), through an account of their own in it. With --tenant, or when the token may not make tenants,
they work in an existing tenant, refuse one that holds other devices (unless --allow-existing-devices) and
delete what they made there. Progress and warnings go to stderr, figures ("name: value unit") to stdout.
"warden bench <benchmark> --help" lists a benchmark's flags.`

// tenantFlags choose where a benchmark against a running server works.
type tenantFlags struct {
	tenant        string
	allowExisting bool
}

func (t *tenantFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.tenant, "tenant", "", "work in this existing tenant instead of a throw-away one (what the benchmark makes there is deleted afterwards)")
	fs.BoolVar(&t.allowExisting, "allow-existing-devices", false, "run even in a tenant that holds devices other than benchmark devices (only without a throw-away tenant)")
}

func (t *tenantFlags) options(c *client.Client, progress io.Writer) bench.TenantOptions {
	return bench.TenantOptions{Caller: c, Tenant: t.tenant, AllowExistingDevices: t.allowExisting, Progress: progress}
}

func runBench(ctx context.Context, env *Env, args []string) error {
	if len(args) > 0 && args[0] == "storage" {
		return runBenchStorage(ctx, env, args[1:])
	}
	if len(args) > 0 && args[0] == "dps" {
		return runBenchDPS(ctx, env, args[1:])
	}
	if len(args) > 0 && args[0] == "alarms" {
		return runBenchAlarms(ctx, env, args[1:])
	}
	if len(args) > 0 && args[0] == "connections" {
		return runBenchConnections(ctx, env, args[1:])
	}
	if len(args) == 0 || args[0] != "ingest" {
		switch {
		case len(args) == 0:
		case args[0] == "-h" || args[0] == "--help" || args[0] == "help":
			fmt.Fprintln(env.Stderr, "Usage: warden "+benchUsage)
			return nil
		default:
			fmt.Fprintf(env.Stderr, "warden bench: unknown benchmark %q (want ingest, storage, dps, alarms or connections)\n\n", args[0])
		}
		fmt.Fprintln(env.Stderr, "Usage: warden "+benchUsage)
		return errUsage
	}
	fs := newFlagSet("bench ingest", `bench ingest [flags]

--devices MQTT devices publish at QoS 1, each with --inflight messages outstanding, for --warmup and then
--duration; prints msg/s, points/s, PUBACK p50/p99, errors and the server's CPU and memory. Targets the
Warden server of --server (devices bench-<run>-0001… in a throw-away tenant), or any MQTT broker with
--broker mqtt[s]://host:port (anonymous). --compare URL alternates runs against Warden and that broker and
prints the medians and ratio_vs_reference.`, env.Stderr)
	var (
		cf      clientFlags
		tf      tenantFlags
		o       bench.IngestOptions
		compare string
		rounds  int
	)
	cf.register(fs)
	tf.register(fs)
	fs.IntVar(&o.Devices, "devices", 1000, "number of device connections")
	fs.IntVar(&o.Metrics, "metrics", 10, "numeric values per message")
	fs.IntVar(&o.InFlight, "inflight", 1, "messages each device keeps outstanding")
	durationVar(fs, &o.Duration, "duration", 20*time.Second, "measured time per run")
	durationVar(fs, &o.Warmup, "warmup", 3*time.Second, "load before the measured time, not counted")
	fs.StringVar(&o.Prefix, "prefix", "bench", "device id prefix")
	fs.StringVar(&o.MQTTAddr, "mqtt-addr", "", "Warden MQTT TLS address host:port (default: the hub host name of the connection strings)")
	fs.StringVar(&o.Broker, "broker", "", "measure this MQTT broker instead of Warden: mqtt://host:port or mqtts://host:port, anonymous")
	fs.StringVar(&compare, "compare", "", "also measure this reference broker (mqtt:// or mqtts://), alternating with Warden")
	fs.IntVar(&rounds, "rounds", 3, "runs against each target with --compare")
	fs.BoolVar(&o.Insecure, "insecure", false, "do not verify the certificate of the --broker or --compare broker")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if o.Broker != "" && compare != "" {
		return usageError(env, "bench ingest", "--broker and --compare exclude each other")
	}
	if o.Devices <= 0 || o.Metrics <= 0 || o.InFlight <= 0 || o.Duration <= 0 || o.Warmup < 0 || rounds <= 0 {
		return usageError(env, "bench ingest", "--devices, --metrics, --inflight, --duration and --rounds must be positive, --warmup not negative")
	}
	if o.Warmup == 0 {
		o.Warmup = -1 // bench: negative means none, 0 the default
	}
	o.Progress = env.Stderr
	var err error
	if o.RootCAs, err = cf.roots(); err != nil {
		return err
	}
	if o.Broker == "" {
		if o.Client, err = cf.client(); err != nil {
			return err
		}
	}
	if o.Broker != "" {
		_, err = bench.Ingest(ctx, o, env.Stdout)
		return err
	}
	return bench.InTenant(ctx, tf.options(o.Client, env.Stderr), func(t *bench.Tenant) error {
		o.Tenant = t
		if compare == "" {
			_, err := bench.Ingest(ctx, o, env.Stdout)
			return err
		}
		ref := o
		ref.Client, ref.Tenant, ref.Broker, ref.MQTTAddr = nil, nil, compare, ""
		o.Insecure = false
		_, err := bench.Compare(ctx, bench.CompareOptions{Warden: o, Reference: ref, Rounds: rounds}, env.Stdout)
		return err
	})
}

func runBenchStorage(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet("bench storage", `bench storage [flags]

The telemetry engine in process, on a throw-away database: bytes per point on disk (simulator data and a
random-walk/counter/constant shape), ingest and sealing points/s, a year of one metric downsampled to 1,000
buckets, latest values of 10,000 devices.`, env.Stderr)
	var o bench.StorageOptions
	var database string
	fs.IntVar(&o.SimDevices, "devices", 40, "simulated machines (and random-walk devices)")
	fs.Float64Var(&o.SimDays, "days", 1, "days of data per machine")
	durationVar(fs, &o.SimInterval, "interval", 10*time.Second, "sampling interval of the machines")
	fs.IntVar(&o.FleetDevices, "fleet", 10_000, "devices in the latest-values query")
	fs.IntVar(&o.Runs, "runs", 9, "runs of each timed query (the median is printed)")
	fs.StringVar(&o.Dir, "dir", "", "directory for the throw-away SQLite databases (default: a temporary one)")
	fs.StringVar(&database, "database", "", "measure on this empty PostgreSQL database instead (postgres://…); its tables are created and filled")
	if err := parse(fs, args); err != nil {
		return err
	}
	if database != "" {
		o.Open = func(ctx context.Context) (store.Store, error) {
			st, err := postgres.Open(ctx, database)
			if err != nil {
				return nil, err
			}
			return st, st.Reset(ctx)
		}
	}
	o.Progress = env.Stderr
	return bench.Storage(ctx, o, env.Stdout)
}

// runBenchConnections is "warden bench connections".
func runBenchConnections(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet("bench connections", `bench connections [flags]

Idle device connections (MQTT over TLS, SAS token, keep-alive 0) opened level by level in a throw-away
tenant; at each level it prints the connect rate, the server's memory per open connection (RSS and Go heap
above the idle server) and the PUBACK latency of one more device publishing QoS 1; then it closes them
and prints the server's memory again. The load generator holds a socket per connection: its open-file
limit (ulimit -n) and the server's bound the highest level.`, env.Stderr)
	var (
		cf     clientFlags
		tf     tenantFlags
		o      bench.ConnectionsOptions
		levels string
	)
	cf.register(fs)
	tf.register(fs)
	fs.StringVar(&levels, "levels", "1000,5000,10000", "numbers of open connections to measure at, rising, comma-separated")
	fs.StringVar(&o.MQTTAddr, "mqtt-addr", "", "Warden MQTT TLS address host:port (default: the hub host name of the connection strings)")
	fs.IntVar(&o.DialConcurrency, "concurrency", 64, "connections being made at once")
	fs.IntVar(&o.Probes, "probes", 50, "QoS 1 messages the probe device sends at each level")
	durationVar(fs, &o.Settle, "settle", 3*time.Second, "time the server is left alone at each level before its memory is read")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	for _, f := range strings.Split(levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 || len(o.Levels) > 0 && n <= o.Levels[len(o.Levels)-1] {
			return usageError(env, "bench connections", "--levels must be positive numbers, rising")
		}
		o.Levels = append(o.Levels, n)
	}
	if o.DialConcurrency <= 0 || o.Probes <= 0 || o.Settle <= 0 {
		return usageError(env, "bench connections", "--concurrency, --probes and --settle must be positive")
	}
	o.Progress = env.Stderr
	var err error
	if o.RootCAs, err = cf.roots(); err != nil {
		return err
	}
	if o.Client, err = cf.client(); err != nil {
		return err
	}
	return bench.InTenant(ctx, tf.options(o.Client, env.Stderr), func(t *bench.Tenant) error {
		o.Tenant = t
		_, err := bench.Connections(ctx, o, env.Stdout)
		return err
	})
}

// runBenchDPS is "warden bench dps".
func runBenchDPS(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet("bench dps", `bench dps [flags]

Provisioning registrations per second with a group key (--clients concurrent TLS clients), then
direct-method round trips and desired-property delivery through the REST API (--hub-calls), in a
throw-away tenant.`, env.Stderr)
	var (
		cf       clientFlags
		tf       tenantFlags
		o        bench.DPSOptions
		hubCalls int
	)
	cf.register(fs)
	tf.register(fs)
	fs.IntVar(&o.Clients, "clients", 64, "concurrent provisioning clients, each registering one device after another")
	durationVar(fs, &o.Duration, "duration", 20*time.Second, "measured time")
	durationVar(fs, &o.Warmup, "warmup", 3*time.Second, "load before the measured time, not counted")
	fs.StringVar(&o.Group, "group", "bench-dps", "enrollment group (created if absent)")
	fs.StringVar(&o.Prefix, "prefix", "dps-bench", "registration id prefix")
	fs.IntVar(&o.IDs, "ids", 0, "register this many registration ids over and over (re-registrations); 0: a new id, so a new device, every time")
	fs.StringVar(&o.MQTTAddr, "mqtt-addr", "", "MQTT TLS address host:port (default: the provisioning host of the server)")
	fs.IntVar(&hubCalls, "hub-calls", 500, "then this many direct-method calls and desired-property patches through the REST API, timed (0: skip)")
	durationVar(fs, &o.PollDelay, "poll-delay", 0, "wait this long after the 202 before polling (the SDK waits retry-after, 1 s)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if o.Clients <= 0 || o.Duration <= 0 || o.Warmup < 0 || o.IDs < 0 || o.PollDelay < 0 {
		return usageError(env, "bench dps", "--clients and --duration must be positive, --warmup, --ids and --poll-delay not negative")
	}
	if o.Warmup == 0 {
		o.Warmup = -1 // bench: negative means none, 0 the default
	}
	o.Progress = env.Stderr
	var err error
	if o.RootCAs, err = cf.roots(); err != nil {
		return err
	}
	if o.Client, err = cf.client(); err != nil {
		return err
	}
	return bench.InTenant(ctx, tf.options(o.Client, env.Stderr), func(t *bench.Tenant) error {
		o.Tenant = t
		if _, err := bench.DPS(ctx, o, env.Stdout); err != nil || hubCalls == 0 {
			return err
		}
		// The other device channels: direct methods and desired
		// properties, through the REST API, against connected devices.
		return bench.Hub(ctx, bench.HubOptions{Client: o.Client, Tenant: t, RootCAs: o.RootCAs, MQTTAddr: o.MQTTAddr,
			Calls: hubCalls, Parallel: 4, Progress: env.Stderr}, env.Stdout)
	})
}

// runBenchAlarms is "warden bench alarms".
func runBenchAlarms(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet("bench alarms", `bench alarms [flags]

The alarm monitor in process, on a throw-away database: --devices devices × ten rules of every kind,
--rounds messages each; prints messages evaluated per second with alarm changes stored. With --latency:
publish → alarm visible in the API (p50/p99) on the running server of --server while --rate messages/s of
background load run, in a throw-away tenant.`, env.Stderr)
	var (
		o        bench.AlarmsOptions
		database string
		latency  bool
		lo       bench.AlarmLatencyOptions
		cf       clientFlags
		tf       tenantFlags
	)
	cf.register(fs)
	tf.register(fs)
	fs.BoolVar(&latency, "latency", false, "instead: time publish → alarm visible in the API on the running server of --server")
	fs.Float64Var(&lo.Rate, "rate", 3000, "with --latency: background messages per second (half what bench ingest measured as the maximum)")
	fs.IntVar(&lo.Probes, "probes", 200, "with --latency: alarms raised and timed")
	fs.IntVar(&lo.Devices, "load-devices", 100, "with --latency: devices publishing the background load")
	fs.StringVar(&lo.MQTTAddr, "mqtt-addr", "", "with --latency: Warden MQTT TLS address host:port (default: the hub host name of the connection strings)")
	fs.IntVar(&o.Devices, "devices", 10_000, "devices, each watched by ten rules")
	fs.IntVar(&o.Rounds, "rounds", 20, "messages per device")
	fs.IntVar(&o.Batch, "batch", 500, "messages per evaluation call (a group commit's worth)")
	fs.StringVar(&o.Dir, "dir", "", "directory for the throw-away SQLite database (default: a temporary one)")
	fs.StringVar(&database, "database", "", "use this empty PostgreSQL database instead (postgres://…)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if latency {
		var err error
		if lo.RootCAs, err = cf.roots(); err != nil {
			return err
		}
		if lo.Client, err = cf.client(); err != nil {
			return err
		}
		if lo.Rate < 0 || lo.Probes < 0 || lo.Devices <= 0 {
			return usageError(env, "bench alarms", "--load-devices must be positive, --rate and --probes not negative")
		}
		lo.Progress = env.Stderr
		return bench.InTenant(ctx, tf.options(lo.Client, env.Stderr), func(t *bench.Tenant) error {
			lo.Tenant = t
			return bench.AlarmLatency(ctx, lo, env.Stdout)
		})
	}
	if o.Devices <= 0 || o.Rounds <= 0 || o.Batch <= 0 {
		return usageError(env, "bench alarms", "--devices, --rounds and --batch must be positive")
	}
	if database != "" {
		o.Open = func(ctx context.Context) (store.Store, error) {
			st, err := postgres.Open(ctx, database)
			if err != nil {
				return nil, err
			}
			return st, st.Reset(ctx)
		}
	}
	o.Progress = env.Stderr
	_, err := bench.Alarms(ctx, o, env.Stdout)
	return err
}
