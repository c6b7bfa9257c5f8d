package cli

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"slices"
	"time"

	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/simulate"
)

const simulateUsage = `simulate [flags]

Registers --devices simulated machines (ids like sim-pump-0001, or --ids;
existing devices are reused), connects each over MQTT/TLS like an Azure IoT
device and publishes one sample per --interval until interrupted or
--duration passes. With --enrollment-group the devices register through the
provisioning service instead (each key derived from the group key).

The devices behave like Azure IoT devices beyond telemetry: on connecting they
report kind, firmware and interval as reported properties; they apply the
desired property "interval" (seconds) and report it back; they answer the
direct methods reboot ({"delay": seconds}: no telemetry until then) and
getStatus (the latest values), 404 for others; and they log every
cloud-to-device message they receive, with its properties.`

func runSimulate(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet("simulate", simulateUsage, env.Stderr)
	var (
		cf    clientFlags
		kinds listFlag
		ids   listFlag
		opts  simulate.RunOptions
		prov  simulate.Provisioning
	)
	cf.register(fs)
	fs.Var(&ids, "ids", "device ids (registration ids with --enrollment-group), comma-separated, instead of --devices generated ones; an id naming a kind (pump, coffee, heater, meter) gets that kind")
	fs.StringVar(&prov.Group, "enrollment-group", "", "register the devices through the provisioning service with this enrollment group (its key is read through the API unless --group-key)")
	groupKey := fs.String("group-key", "", "with --enrollment-group: the group's key (base64), for callers who may not read it")
	fs.StringVar(&prov.IDScope, "id-scope", "", "with --enrollment-group: the tenant's ID scope (default: read through the API)")
	fs.StringVar(&prov.Host, "provisioning-host", "", "with --enrollment-group: the provisioning endpoint host[:port] (default: the one the server names)")
	fs.IntVar(&opts.Devices, "devices", 10, "number of simulated devices")
	durationVar(fs, &opts.Interval, "interval", 10*time.Second, "time between two messages of a device")
	fs.StringVar(&opts.Prefix, "prefix", "sim", "device id prefix")
	fs.Var(&kinds, "kinds", "machine kinds, comma-separated, assigned round robin: vacuum-pump, coffee-machine, pellet-heater, lorawan-meter (default all)")
	fs.Int64Var(&opts.Seed, "seed", 1, "fleet seed; the same seed gives the same machines")
	durationVar(fs, &opts.Duration, "duration", 0, "stop after this long (0: run until interrupted)")
	fs.StringVar(&opts.MQTTAddr, "mqtt-addr", "", "MQTT TLS address host:port (default: the hub host name of the devices' connection strings)")
	fs.Float64Var(&opts.Machine.FaultRatePerDay, "fault-rate", 0, "random faults per machine and day (0: the default rate; negative: none)")
	fault := fs.String("fault", "", "force this fault on every machine of a kind that has it (e.g. overheat, vacuum-leak, ignition-failure, heater-failure, leak, offline)")
	faultAfter := durationFlagOf(fs, "fault-after", time.Minute, "with --fault: when it starts, after the run starts (e.g. 5s)")
	faultFor := durationFlagOf(fs, "fault-for", 10*time.Minute, "with --fault: how long it lasts")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	opts.IDs = ids
	if prov.Group != "" || *groupKey != "" {
		if prov.Group == "" {
			return usageError(env, "simulate", "--group-key needs --enrollment-group")
		}
		if *groupKey != "" {
			k, err := base64.StdEncoding.DecodeString(*groupKey)
			if err != nil || len(k) == 0 {
				return usageError(env, "simulate", "--group-key: want the base64 key of the group")
			}
			prov.GroupKey = k
		}
		opts.Provisioning = &prov
	} else if prov.IDScope != "" || prov.Host != "" {
		return usageError(env, "simulate", "--id-scope and --provisioning-host go with --enrollment-group")
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
		opts.Machine.Faults = []simulate.FaultWindow{{Fault: *fault, From: from, To: from.Add(*faultFor), Demo: true}}
	}
	log, err := newLogger(env.Stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	// Provisioning with the group key, ID scope and host given needs no
	// API token; the devices' model is then not set.
	if opts.Provisioning == nil || cf.token != "" || prov.GroupKey == nil || prov.IDScope == "" || prov.Host == "" {
		if opts.Client, err = cf.client(); err != nil {
			return err
		}
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
