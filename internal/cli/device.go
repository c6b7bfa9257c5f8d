package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"
)

const deviceUsage = `device <subcommand> [flags] <device-id>

Subcommands:
  create <id>           register a device; prints its connection string
  list                  list devices with status, connection and last seen
  show <id>             print a device as JSON, with its keys
  token <id> [--ttl 1h] print a SAS token for the device
  enable <id>           let the device connect again
  disable <id>          refuse the device's connections (and close the current one)
  delete <id>           remove the device and all its data
  regenerate-key <id> [--key primary|secondary|both]
                        replace keys; prints the new connection string
  rejected <id>         list messages of the device that could not be stored`

func runDevice(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(env.Stderr, "Usage: warden "+deviceUsage)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("device "+sub, deviceUsage, env.Stderr)
	var cf clientFlags
	cf.register(fs)
	ttl := fs.Duration("ttl", time.Hour, "token lifetime (token)")
	key := fs.String("key", "", "which key: primary, secondary or both (regenerate-key; default both)")
	limit := fs.Int("limit", 20, "how many rejected messages (rejected)")
	// Flags may follow the device id: "warden device token pump-1 --ttl 2h".
	var id string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		id, args = args[0], args[1:]
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if id == "" && fs.NArg() > 0 {
		id = fs.Arg(0)
	}
	if sub != "list" && id == "" {
		fs.Usage()
		return fmt.Errorf("%w: missing device id", errUsage)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	switch sub {
	case "create":
		d, err := c.CreateDevice(ctx, id)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, d.ConnectionString)
	case "list":
		ds, err := c.Devices(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATUS\tCONNECTED\tLAST SEEN\tLAST IP")
		for _, d := range ds {
			seen := "never"
			if d.LastSeen != nil {
				seen = d.LastSeen.Local().Format(time.DateTime)
			}
			fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\n", d.ID, d.Status, d.Connected, seen, d.LastIP)
		}
		return tw.Flush()
	case "show":
		d, err := c.Device(ctx, id)
		if err != nil {
			return err
		}
		return printJSON(env, d)
	case "token":
		tok, err := c.DeviceToken(ctx, id, *ttl)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, tok)
	case "enable", "disable":
		if _, err := c.SetDeviceStatus(ctx, id, sub+"d"); err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "device %s %sd\n", id, sub)
	case "delete":
		if err := c.DeleteDevice(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "device %s deleted with its data\n", id)
	case "regenerate-key":
		which := *key
		if which == "" {
			which = "both"
		}
		d, err := c.RegenerateKeys(ctx, id, which)
		if err != nil {
			return err
		}
		if d.ConnectionString == "" {
			// The operator replaces a customer's keys but is not told them.
			fmt.Fprintf(env.Stderr, "keys of device %s replaced; its owner reads the new connection string\n", id)
			return nil
		}
		fmt.Fprintln(env.Stdout, d.ConnectionString)
	case "rejected":
		rs, err := c.Rejected(ctx, id, *limit)
		if err != nil {
			return err
		}
		return printJSON(env, rs)
	default:
		fs.Usage()
		return fmt.Errorf("%w: unknown subcommand %q", errUsage, sub)
	}
	return nil
}

func printJSON(env *Env, v any) error {
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
