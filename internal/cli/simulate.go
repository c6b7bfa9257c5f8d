package cli

import (
	"context"
	"crypto/x509"
	"fmt"
	"slices"
	"time"

	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/simulate"
)

const simulateUsage = `simulate [flags]

Registers --devices simulated machines (ids like sim-pump-0001; existing
devices are reused), connects each over MQTT/TLS like an Azure IoT device and
publishes one sample per --interval until interrupted or --duration passes.`

func runSimulate(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet("simulate", simulateUsage, env.Stderr)
	var (
		cf    clientFlags
		kinds listFlag
		opts  simulate.RunOptions
	)
	cf.register(fs)
	fs.IntVar(&opts.Devices, "devices", 10, "number of simulated devices")
	fs.DurationVar(&opts.Interval, "interval", 10*time.Second, "time between two messages of a device")
	fs.StringVar(&opts.Prefix, "prefix", "sim", "device id prefix")
	fs.Var(&kinds, "kinds", "machine kinds, comma-separated, assigned round robin: vacuum-pump, coffee-machine, pellet-heater, lorawan-meter (default all)")
	fs.Int64Var(&opts.Seed, "seed", 1, "fleet seed; the same seed gives the same machines")
	fs.DurationVar(&opts.Duration, "duration", 0, "stop after this long (0: run until interrupted)")
	fs.StringVar(&opts.MQTTAddr, "mqtt-addr", "", "MQTT TLS address host:port (default: the hub host name of the devices' connection strings)")
	fs.Float64Var(&opts.Machine.FaultRatePerDay, "fault-rate", 0, "random faults per machine and day (0: the default rate; negative: none)")
	fault := fs.String("fault", "", "force this fault on every machine of a kind that has it (e.g. overheat, vacuum-leak, ignition-failure, heater-failure, leak, offline)")
	faultAfter := fs.Duration("fault-after", time.Minute, "with --fault: when it starts, after the run starts")
	faultFor := fs.Duration("fault-for", 10*time.Minute, "with --fault: how long it lasts")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if opts.Devices <= 0 || opts.Interval <= 0 || opts.Duration < 0 {
		return usageError(env, "simulate", "--devices and --interval must be positive, --duration not negative")
	}
	for _, k := range kinds {
		kind, err := simulate.ParseKind(k)
		if err != nil {
			return usageError(env, "simulate", "--kinds: %v", err)
		}
		opts.Kinds = append(opts.Kinds, kind)
	}
	if *fault != "" {
		if *faultAfter < 0 || *faultFor <= 0 {
			return usageError(env, "simulate", "--fault-after must not be negative and --fault-for must be positive")
		}
		known := false
		for _, k := range simulate.Kinds() {
			known = known || slices.Contains(k.Faults(), *fault)
		}
		if !known {
			return usageError(env, "simulate", "--fault: unknown fault %q", *fault)
		}
		from := time.Now().Add(*faultAfter)
		opts.Machine.Faults = []simulate.FaultWindow{{Fault: *fault, From: from, To: from.Add(*faultFor)}}
	}
	log, err := newLogger(env.Stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	if opts.Client, err = cf.client(); err != nil {
		return err
	}
	if opts.RootCAs, err = cf.roots(); err != nil {
		return err
	}
	return simulate.Run(ctx, opts, log)
}

// usageError prints a usage problem and returns errUsage.
func usageError(env *Env, cmd, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(env.Stderr, "warden %s: %s\n", cmd, msg)
	return fmt.Errorf("%w: %s", errUsage, msg)
}

// roots is the CA pool the client trusts (nil: the system roots).
func (c *clientFlags) roots() (*x509.CertPool, error) {
	if f := c.caFile(); f != "" {
		return client.LoadCA(f)
	}
	return nil, nil
}
