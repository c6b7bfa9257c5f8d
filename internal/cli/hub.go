package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/warden-iot/warden/internal/client"
)

// errNotBuilt answers commands that do not exist yet.
var errNotBuilt = errors.New("not built yet")

// hubArgs splits the leading positional arguments from the flags (flags may
// also come first, or positional arguments after them) and parses.
func hubArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		pos, args = append(pos, args[0]), args[1:]
	}
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	return append(pos, fs.Args()...), nil
}

// subcommand takes the subcommand off args, printing usage if there is none.
func subcommand(env *Env, usage string, args []string) (string, []string, error) {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(env.Stderr, "Usage: warden "+usage)
		if len(args) == 0 {
			return "", nil, errUsage
		}
		return "", nil, flag.ErrHelp
	}
	return args[0], args[1:], nil
}

func jsonFlag(name, value string) (json.RawMessage, error) {
	if value == "" {
		return nil, nil
	}
	if !json.Valid([]byte(value)) {
		return nil, fmt.Errorf("--%s is not valid JSON: %s", name, value)
	}
	return json.RawMessage(value), nil
}

const twinUsage = `twin <subcommand> [flags]

Subcommands:
  get <device-id>      print the device twin (tags, desired and reported properties)
  set <device-id> [--desired JSON] [--tags JSON] [--if-match ETAG]
                       merge a JSON patch into the desired properties and/or the
                       tags (a null value deletes a key); a connected device gets
                       the desired patch at once`

func runTwin(ctx context.Context, env *Env, args []string) error {
	sub, args, err := subcommand(env, twinUsage, args)
	if err != nil {
		return err
	}
	fs := newFlagSet("twin "+sub, twinUsage, env.Stderr)
	var cf clientFlags
	cf.register(fs)
	desired := fs.String("desired", "", `desired-properties patch, e.g. '{"interval":10}' (set)`)
	tags := fs.String("tags", "", `tags patch, e.g. '{"site":"berlin"}' (set)`)
	ifMatch := fs.String("if-match", "", "change only if the twin still has this etag (set)")
	pos, err := hubArgs(fs, args)
	if err != nil {
		return err
	}
	if (sub == "get" || sub == "set") && len(pos) != 1 {
		fs.Usage()
		return fmt.Errorf("%w: want one device id", errUsage)
	}
	switch sub {
	case "get":
		c, err := cf.client()
		if err != nil {
			return err
		}
		tw, err := c.Twin(ctx, pos[0])
		if err != nil {
			return err
		}
		return printJSON(env, tw)
	case "set":
		var p client.TwinPatch
		if p.Desired, err = jsonFlag("desired", *desired); err != nil {
			return err
		}
		if p.Tags, err = jsonFlag("tags", *tags); err != nil {
			return err
		}
		if p.Desired == nil && p.Tags == nil {
			fs.Usage()
			return fmt.Errorf("%w: give --desired and/or --tags", errUsage)
		}
		p.IfMatch = *ifMatch
		c, err := cf.client()
		if err != nil {
			return err
		}
		tw, err := c.UpdateTwin(ctx, pos[0], p)
		if err != nil {
			return err
		}
		return printJSON(env, tw)
	default:
		fs.Usage()
		return fmt.Errorf("%w: unknown subcommand %q", errUsage, sub)
	}
}

const methodUsage = `method invoke <device-id> <method> [--payload JSON] [--timeout 30s]

Calls a direct method on a connected device and prints its answer,
{"status": …, "payload": …}. The timeout is from 5s to 5m. Exits with 1 if the
device is offline, does not answer in time, or answers with a status of 400
or more.`

func runMethod(ctx context.Context, env *Env, args []string) error {
	sub, args, err := subcommand(env, methodUsage, args)
	if err != nil {
		return err
	}
	fs := newFlagSet("method "+sub, methodUsage, env.Stderr)
	var cf clientFlags
	cf.register(fs)
	payload := fs.String("payload", "", `request payload, JSON, e.g. '{"delay":3}' (default none: null)`)
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the device's answer")
	pos, err := hubArgs(fs, args)
	if err != nil {
		return err
	}
	if sub != "invoke" {
		fs.Usage()
		return fmt.Errorf("%w: unknown subcommand %q", errUsage, sub)
	}
	if len(pos) != 2 {
		fs.Usage()
		return fmt.Errorf("%w: want a device id and a method name", errUsage)
	}
	body, err := jsonFlag("payload", *payload)
	if err != nil {
		return err
	}
	if *timeout < 5*time.Second || *timeout > 5*time.Minute {
		return errors.New("--timeout must be from 5s to 5m")
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	res, err := c.InvokeMethod(ctx, pos[0], pos[1], body, *timeout)
	if err != nil {
		return err
	}
	if err := printJSON(env, res); err != nil {
		return err
	}
	if res.Status >= 400 {
		return fmt.Errorf("device %s answered %s with status %d", pos[0], pos[1], res.Status)
	}
	return nil
}

// propsFlag collects repeated --prop key=value flags.
type propsFlag map[string]string

func (p propsFlag) String() string {
	var parts []string
	for k, v := range p {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}

func (p propsFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	p[k] = v
	return nil
}

const c2dUsage = `c2d <subcommand> [flags]

Subcommands:
  send <device-id> <payload> [--prop key=value]... [--ttl 1h] [--message-id ID] [--correlation-id ID]
                       queue a cloud-to-device message (the payload is sent as
                       text); the device gets it when it is connected and
                       subscribed, at once or when it comes back
  list <device-id> [--limit N]
                       the device's messages, newest first, with their state:
                       queued, delivered, completed (acknowledged) or expired`

func runC2D(ctx context.Context, env *Env, args []string) error {
	sub, args, err := subcommand(env, c2dUsage, args)
	if err != nil {
		return err
	}
	fs := newFlagSet("c2d "+sub, c2dUsage, env.Stderr)
	var cf clientFlags
	cf.register(fs)
	props := propsFlag{}
	fs.Var(props, "prop", "application property key=value, repeatable (send)")
	ttl := fs.Duration("ttl", time.Hour, "time to live: not delivered after it (send; up to 48h)")
	messageID := fs.String("message-id", "", "message id (send; default: a new UUID)")
	correlationID := fs.String("correlation-id", "", "correlation id (send)")
	limit := fs.Int("limit", 0, "how many messages (list; default 100)")
	pos, err := hubArgs(fs, args)
	if err != nil {
		return err
	}
	switch sub {
	case "send":
		if len(pos) != 2 {
			fs.Usage()
			return fmt.Errorf("%w: want a device id and a payload", errUsage)
		}
		c, err := cf.client()
		if err != nil {
			return err
		}
		m, err := c.SendC2D(ctx, pos[0], client.C2DSend{Payload: pos[1], Properties: props, TTL: *ttl,
			MessageID: *messageID, CorrelationID: *correlationID})
		if err != nil {
			return err
		}
		return printJSON(env, m)
	case "list":
		if len(pos) != 1 {
			fs.Usage()
			return fmt.Errorf("%w: want one device id", errUsage)
		}
		c, err := cf.client()
		if err != nil {
			return err
		}
		ms, err := c.C2DMessages(ctx, pos[0], *limit)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATE\tCREATED\tEXPIRES\tDELIVERIES\tPAYLOAD")
		for _, m := range ms {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", m.ID, m.State, m.CreatedAt.Local().Format(time.DateTime),
				m.ExpiresAt.Local().Format(time.DateTime), m.DeliveryCount, shorten(m.Payload, 40))
		}
		return tw.Flush()
	default:
		fs.Usage()
		return fmt.Errorf("%w: unknown subcommand %q", errUsage, sub)
	}
}

// shorten cuts s to at most n characters on one line.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
