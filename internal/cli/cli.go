// Package cli implements the warden command: one file per command, each
// parsing its flags and calling into the packages that do the work.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/peterbourgon/ff/v3"

	"github.com/warden-iot/warden/internal/client"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *Env, args []string) error
}

// Env is what a command may use of the process.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

func commands() []command {
	return []command{
		{"serve", "run the Warden server", runServe},
		{"device", "register and manage devices (create, list, show, token, enable, disable, delete, regenerate-key, rejected)", runDevice},
		{"telemetry", "read telemetry (latest, history)", runTelemetry},
		{"twin", "read a device twin and set desired properties", runTwin},
		{"method", "invoke a direct method on a device", runMethod},
		{"c2d", "send and list cloud-to-device messages", runC2D},
		{"enrollment", "manage provisioning enrollment groups and individual enrollments", runEnrollment},
		{"registration", "list and delete provisioning registrations", runRegistration},
		{"tenant", "manage customers and sub-customers (create, list, show, update, delete)", runTenant},
		{"site", "manage sites and their factory service access switch", runSite},
		{"user", "manage accounts (create, list, show, update, disable, enable, unlock, delete, activation)", runUser},
		{"grant", "grant supporters access to a site or device, list and revoke grants", runGrant},
		{"token", "make, list and revoke API tokens of an account", runToken},
		{"login", "sign in with e-mail and password and make an API token for the command line", runLogin},
		{"account", "your own account: show, password, sessions, two-factor sign-in (TOTP)", runAccount},
		{"audit", "verify the tamper-evident audit log (offline) and list its entries", runAudit},
		{"rule", "manage alarm rules (create, list, show, update, delete)", runRule},
		{"alarm", "list, show, acknowledge and clear alarms", runAlarm},
		{"webhook", "manage a tenant's alarm webhooks (create, list, delete)", runWebhook},
		{"escalation", "set or show the escalation of unacknowledged critical alarms", runEscalation},
		{"deliveries", "list alarm notifications sent, pending and failed", runDeliveries},
		{"kpi", "key figures from the alarm history: availability, MTBF, MTTR, utilisation", runKPI},
		{"notifications", "show or set your alarm e-mail preferences", runNotifications},
		{"simulate", "run simulated machines against a server", runSimulate},
		{"bench", "measure a running server (ingest)", runBench},
		{"version", "print the version", runVersion},
	}
}

// Version is set at build time with -ldflags "-X ...cli.Version=…".
var Version = "dev"

func runVersion(_ context.Context, env *Env, _ []string) error {
	fmt.Fprintln(env.Stdout, "warden", Version)
	return nil
}

// errUsage marks an error for which the command's usage has been printed.
var errUsage = errors.New("usage")

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	env := &Env{Stdin: stdin, Stdout: stdout, Stderr: stderr}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, env, args[1:])
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		default:
			fmt.Fprintf(stderr, "warden %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "warden: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: warden <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun \"warden <command> --help\" for a command's flags.")
}

// parse parses flags with the precedence flags > WARDEN_* environment
// variables > config file (when the flag set has a "config" flag).
func parse(fs *flag.FlagSet, args []string) error {
	opts := []ff.Option{ff.WithEnvVarPrefix("WARDEN")}
	if fs.Lookup("config") != nil {
		opts = append(opts, ff.WithConfigFileFlag("config"), ff.WithConfigFileParser(ff.PlainParser))
	}
	if err := ff.Parse(fs, args, opts...); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

// newFlagSet makes a flag set whose usage lists every flag with the
// environment variable that can set it.
func newFlagSet(name, synopsis string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: warden %s\n\nFlags (each can also be set by the environment variable shown):\n", synopsis)
		fs.VisitAll(func(f *flag.Flag) {
			env := "WARDEN_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(f.Name))
			def := ""
			if f.DefValue != "" {
				def = fmt.Sprintf(" (default %q)", f.DefValue)
			}
			fmt.Fprintf(out, "  --%s  [%s]\n      %s%s\n", f.Name, env, f.Usage, def)
		})
	}
	return fs
}

// clientFlags are the flags of every command that talks to a server.
type clientFlags struct {
	server string
	token  string
	ca     string
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.server, "server", "https://localhost:8443", "Warden server URL")
	fs.StringVar(&c.token, "token", "", "API token")
	fs.StringVar(&c.ca, "ca", "", "CA certificate file to trust (default: ./warden-data/ca.pem if present)")
}

func (c *clientFlags) client() (*client.Client, error) {
	return client.New(c.server, c.token, c.caFile())
}

// caFile is the CA file the client trusts, as resolved by client().
func (c *clientFlags) caFile() string {
	if c.ca != "" {
		return c.ca
	}
	if _, err := os.Stat(filepath.Join("warden-data", "ca.pem")); err == nil {
		return filepath.Join("warden-data", "ca.pem")
	}
	return ""
}

// newLogger makes the process logger.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("%w: --log-format %q: want text or json", errUsage, format)
	}
}
