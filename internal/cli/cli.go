// Package cli implements the warden command: one file per command, each
// parsing its flags with the one grammar of this file and calling into the
// packages that do the work.
//
// The grammar: warden COMMAND [SUBCOMMAND] [ARGUMENTS] [FLAGS], flags
// before, between or after the arguments ("--" ends the flags); every
// command has --help; client commands take --server, --token and --ca
// (read from WARDEN_SERVER, WARDEN_TOKEN and WARDEN_CA when not given) and
// --json; lists print a table, single objects "field  value" lines.
package cli

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/peterbourgon/ff/v3"
	"golang.org/x/term"

	"github.com/warden-iot/warden/internal/client"
)

// command is one top-level command.
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
		{"device", "register and manage devices, their keys and credentials", runDevice},
		{"telemetry", "read telemetry (latest, history)", runTelemetry},
		{"twin", "read a device twin and set desired properties", runTwin},
		{"method", "invoke a direct method on a device", runMethod},
		{"c2d", "send and list cloud-to-device messages", runC2D},
		{"enrollment", "manage provisioning enrollment groups and individual enrollments", runEnrollment},
		{"registration", "list and delete provisioning registrations", runRegistration},
		{"tenant", "manage customers and sub-customers", runTenant},
		{"site", "manage sites and their factory service access switch", runSite},
		{"user", "manage accounts", runUser},
		{"grant", "grant supporters access to a site or device, list and revoke grants", runGrant},
		{"token", "make, list and revoke API tokens of an account", runToken},
		{"login", "sign in with e-mail and password and make an API token for the command line", runLogin},
		{"account", "your own account: activate, show, password, sessions, two-factor sign-in", runAccount},
		{"audit", "verify the tamper-evident audit log (offline) and list its entries", runAudit},
		{"rule", "manage alarm rules", runRule},
		{"alarm", "list, show, acknowledge and clear alarms", runAlarm},
		{"webhook", "manage a tenant's alarm webhooks", runWebhook},
		{"escalation", "set or show the escalation of unacknowledged critical alarms", runEscalation},
		{"deliveries", "list alarm notifications sent, pending and failed", runDeliveries},
		{"kpi", "key figures from the alarm history: availability, MTBF, MTTR, utilisation", runKPI},
		{"notifications", "show or set your alarm e-mail preferences", runNotifications},
		{"simulate", "run simulated machines against a server", runSimulate},
		{"bench", "measure a running server or the storage engine", runBench},
		{"version", "print the version", runVersion},
	}
}

// errUsage marks an error for which the command's usage has been printed.
var errUsage = errors.New("usage")

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	env := &Env{Stdin: stdin, Stdout: stdout, Stderr: stderr}
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	if args[0] == "help" && len(args) > 1 {
		args = append(args[1:], "--help")
	}
	if isHelp(args[0]) || args[0] == "help" {
		usage(stdout)
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" || args[0] == "-v" {
		args = []string{"version"}
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
			fmt.Fprintf(stderr, "warden %s: %v\n", c.name, explain(err))
			return 1
		}
	}
	fmt.Fprintf(stderr, "warden: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func isHelp(a string) bool { return a == "-h" || a == "--help" || a == "-help" }

func usage(w io.Writer) {
	cs := commands()
	width := 0
	for _, c := range cs {
		width = max(width, len(c.name))
	}
	fmt.Fprintln(w, "Usage: warden <command> [subcommand] [arguments] [flags]\n\nCommands:")
	for _, c := range cs {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun \"warden <command> --help\" for a command's subcommands and flags, \"warden --version\" for the version.")
}

// explain adds what to do to errors whose cause a user can fix: a server
// certificate the client does not trust.
func explain(err error) error {
	var unknown x509.UnknownAuthorityError
	var verify *tls.CertificateVerificationError
	var host x509.HostnameError
	switch {
	case errors.As(err, &host):
		return fmt.Errorf("%w\nthe server's certificate is not valid for the host name of --server (WARDEN_SERVER): "+
			"use a name the server was started with (serve --hostname), e.g. https://localhost:8443", err)
	case errors.As(err, &unknown), errors.As(err, &verify):
		return fmt.Errorf("%w\nthe server's certificate is not trusted: pass --ca (WARDEN_CA) with the server's ca.pem, "+
			"found in its data directory (warden-data/ca.pem)", err)
	}
	return err
}

// arity is what a subcommand takes: how many positional arguments, and
// whether it talks to a server.
type arity struct {
	min, max int
	what     string // "a site id", "a device id and a method name"
	access   access
}

// access says which client flags a subcommand has.
type access int

const (
	withToken access = iota // --server, --token, --ca
	anonymous               // --server, --ca: signing in, activation links
	local                   // no server
)

// invocation is one parsed command line.
type invocation struct {
	env   *Env
	cmd   string // "tenant"
	name  string // "tenant create"
	usage string
	sub   string // "create", "group create"; "" for commands without subcommands
	fs    *flag.FlagSet
	cf    clientFlags
	json  bool
	pos   []string
	given map[string]bool // the flags set on the command line or by the environment
}

// begin takes the subcommand off args and makes its flag set; the command
// then adds its own flags and calls parse.
func begin(env *Env, cmd, usage string, args []string) (*invocation, []string, error) {
	if len(args) == 0 {
		fmt.Fprintln(env.Stderr, "Usage: warden "+usage)
		return nil, nil, errUsage
	}
	if isHelp(args[0]) {
		fmt.Fprintf(env.Stdout, "Usage: warden %s\n\nRun \"warden %s <subcommand> --help\" for its flags.\n", usage, cmd)
		return nil, nil, flag.ErrHelp
	}
	in := beginPlain(env, cmd, usage)
	in.sub, in.name = args[0], cmd+" "+args[0]
	in.fs.Init(in.name, flag.ContinueOnError)
	return in, args[1:], nil
}

// beginPlain is begin for a command without subcommands.
// Help asked for goes to stdout, usage after a mistake to stderr.
func beginPlain(env *Env, cmd, usage string) *invocation {
	fs := newFlagSet(cmd, usage, env.Stderr)
	fs.Usage = func() { printUsage(env.Stdout, fs, usage) }
	return &invocation{env: env, cmd: cmd, name: cmd, usage: usage, given: map[string]bool{}, fs: fs}
}

// parse checks the subcommand (a two-word one like "group create" takes
// its second word off args), adds the client flags and --json, and parses
// flags and positional arguments.
func (in *invocation) parse(args []string, subs map[string]arity) error {
	n, ok := subs[in.sub]
	if !ok && len(args) > 0 {
		if n, ok = subs[in.sub+" "+args[0]]; ok {
			in.sub, in.name, args = in.sub+" "+args[0], in.name+" "+args[0], args[1:]
			in.fs.Init(in.name, flag.ContinueOnError)
		}
	}
	if !ok {
		var more []string
		for k := range subs {
			if rest, found := strings.CutPrefix(k, in.sub+" "); found {
				more = append(more, rest)
			}
		}
		if len(more) > 0 && len(args) > 0 && isHelp(args[0]) {
			fmt.Fprintln(in.env.Stdout, "Usage: warden "+in.usage)
			return flag.ErrHelp
		}
		fmt.Fprintln(in.env.Stderr, "Usage: warden "+in.usage)
		if len(more) > 0 {
			slices.Sort(more)
			return usageError(in.env, in.cmd, "%s: want one of %s", in.sub, strings.Join(more, ", "))
		}
		return usageError(in.env, in.cmd, "unknown subcommand %q", in.sub)
	}
	switch n.access {
	case withToken:
		in.cf.register(in.fs)
	case anonymous:
		in.cf.registerAnonymous(in.fs)
	}
	in.fs.BoolVar(&in.json, "json", false, "print JSON instead of text")
	pos, err := parseArgs(in.fs, args)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(in.env.Stderr, "Run \"warden %s --help\" for its flags.\n", in.name)
		}
		return err
	}
	in.fs.Visit(func(f *flag.Flag) { in.given[f.Name] = true })
	if len(pos) < n.min || len(pos) > n.max {
		if n.max == 0 {
			return in.usageError("takes no arguments, got %q", strings.Join(pos, " "))
		}
		return in.usageError("takes %s, got %d argument(s)", n.what, len(pos))
	}
	in.pos = pos
	return nil
}

// usageError reports a mistake on the command line (exit status 2).
func (in *invocation) usageError(format string, a ...any) error {
	err := usageError(in.env, in.name, format, a...)
	fmt.Fprintf(in.env.Stderr, "Run \"warden %s --help\" for its flags.\n", in.name)
	return err
}

// require is a usage error for the first of the flags that is empty.
func (in *invocation) require(flags ...string) error {
	for _, f := range flags {
		if in.fs.Lookup(f).Value.String() == "" {
			return in.usageError("--%s is required", f)
		}
	}
	return nil
}

func (in *invocation) client() (*client.Client, error) { return in.cf.client() }

// arg is the i-th positional argument.
func (in *invocation) arg(i int) string {
	if i < len(in.pos) {
		return in.pos[i]
	}
	return ""
}

// stringGiven is the value of a string flag if it was given (even empty),
// else nil: a field of a patch.
func (in *invocation) stringGiven(name string) *string {
	if !in.given[name] {
		return nil
	}
	v := in.fs.Lookup(name).Value.String()
	return &v
}

// deref is *p, or "" for nil.
func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// parseArgs parses flags that may come before, between or after the
// positional arguments, and returns the positional ones. "--" ends the
// flags.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		for len(args) > 0 && (len(args[0]) < 2 || args[0][0] != '-') {
			pos, args = append(pos, args[0]), args[1:]
		}
		if len(args) == 0 {
			break
		}
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		args = rest
	}
	return pos, applyEnv(fs)
}

// parseFlags parses args, printing a short error (not the whole usage) for
// a mistake and the usage for --help.
func parseFlags(fs *flag.FlagSet, args []string) error {
	usage, out := fs.Usage, fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.Usage = usage
	fs.SetOutput(out)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		fs.Usage()
		return err
	}
	msg := strings.NewReplacer("flag: -", "flag: --", "flag -", "flag --", "defined: -", "defined: --").Replace(err.Error())
	fmt.Fprintf(out, "warden %s: %s\n", fs.Name(), msg)
	return fmt.Errorf("%w: %s", errUsage, msg)
}

// parse parses flags with the precedence flags > environment variables >
// config file. A flag set with a "config" flag (serve) reads every flag
// from WARDEN_<FLAG> and the file; any other reads only the variables
// envVar names (WARDEN_SERVER, WARDEN_TOKEN, WARDEN_CA).
func parse(fs *flag.FlagSet, args []string) error {
	if fs.Lookup("config") != nil {
		err := ff.Parse(fs, args, ff.WithEnvVarPrefix("WARDEN"), ff.WithConfigFileFlag("config"),
			ff.WithConfigFileParser(ff.PlainParser))
		if err != nil && !errors.Is(err, flag.ErrHelp) {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		return err
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return applyEnv(fs)
}

// clientEnv are the variables of the client flags.
var clientEnv = map[string]string{"server": "WARDEN_SERVER", "token": "WARDEN_TOKEN", "ca": "WARDEN_CA"}

// envVar is the environment variable that sets flag name of fs, or "".
func envVar(fs *flag.FlagSet, name string) string {
	if fs.Lookup("config") != nil {
		return "WARDEN_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(name))
	}
	return clientEnv[name]
}

// applyEnv sets the flags not given on the command line that have an
// environment variable from it.
func applyEnv(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		v := envVar(fs, f.Name)
		if v == "" || given[f.Name] || err != nil {
			return
		}
		if s, ok := os.LookupEnv(v); ok && s != "" {
			if e := fs.Set(f.Name, s); e != nil {
				err = fmt.Errorf("%w: %s=%q: %v", errUsage, v, s, e)
				fmt.Fprintf(fs.Output(), "warden %s: %s=%q: %v\n", fs.Name(), v, s, e)
			}
		}
	})
	return err
}

// newFlagSet makes a flag set whose usage prints synopsis and then the
// flags in aligned columns, each with its environment variable if it has
// one.
func newFlagSet(name, synopsis string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() { printUsage(out, fs, synopsis) }
	return fs
}

// printUsage prints "Usage: warden <synopsis>" and the flags of fs, their
// descriptions all starting in one column.
func printUsage(out io.Writer, fs *flag.FlagSet, synopsis string) {
	fmt.Fprintf(out, "Usage: warden %s\n\nFlags:\n", synopsis)
	type line struct{ left, right string }
	var lines []line
	width := 0
	fs.VisitAll(func(f *flag.Flag) {
		kind, right := flag.UnquoteUsage(f)
		switch f.Value.(type) {
		case *durationFlag:
			kind = "duration"
		case *listFlag:
			kind = "list"
		case propsFlag:
			kind = "key=value"
		}
		left := "  --" + f.Name
		if kind != "" {
			left += " " + kind
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "[]" {
			right += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		if v := envVar(fs, f.Name); v != "" {
			right += " [$" + v + "]"
		}
		lines = append(lines, line{left, right})
		width = max(width, len(left))
	})
	for _, l := range lines {
		fmt.Fprintf(out, "%-*s  %s\n", width, l.left, l.right)
	}
}

// clientFlags are the flags of every command that talks to a server.
type clientFlags struct {
	server string
	token  string
	ca     string
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	c.registerAnonymous(fs)
	fs.StringVar(&c.token, "token", "", "API token")
}

// registerAnonymous registers the flags of a command that needs no token.
func (c *clientFlags) registerAnonymous(fs *flag.FlagSet) {
	fs.StringVar(&c.server, "server", "https://localhost:8443", "Warden server URL")
	fs.StringVar(&c.ca, "ca", "", "CA certificate file to trust, the server's ca.pem (default: ./warden-data/ca.pem if present)")
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

// readPassword takes the password from WARDEN_PASSWORD, the terminal
// (without echo) or a line of standard input.
func readPassword(env *Env) (string, error) {
	return readSecret(env, bufio.NewReader(env.Stdin), "WARDEN_PASSWORD", "Password: ")
}

// readSecret takes a secret from the variable envVar, else from the
// terminal without echo (after prompt), else as the next line of in.
func readSecret(env *Env, in *bufio.Reader, envVar, prompt string) (string, error) {
	if p, ok := os.LookupEnv(envVar); ok && p != "" {
		return p, nil
	}
	if f, ok := env.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(env.Stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(env.Stderr)
		if err != nil {
			return "", fmt.Errorf("read the password: %w", err)
		}
		if len(b) == 0 {
			return "", errors.New("no password given")
		}
		return string(b), nil
	}
	line, err := in.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("no password: set %s or give it as a line on standard input", envVar)
	}
	return line, nil
}

// oneOf is a usage error unless v is one of want.
func (in *invocation) oneOf(flag, v string, want ...string) error {
	if slices.Contains(want, v) {
		return nil
	}
	return in.usageError("--%s %q: want %s", flag, v, strings.Join(want, ", "))
}
