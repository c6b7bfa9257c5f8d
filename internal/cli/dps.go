package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/sas"
)

const enrollmentUsage = `enrollment <subcommand> [flags]

Devices provision themselves through Warden's device provisioning service
(Azure DPS over MQTT, on the MQTT TLS listener) with the tenant's ID scope
and a key: one derived from an enrollment group's key, or the key of an
individual enrollment.

Subcommands:
  scope                 print the tenant's ID scope and the provisioning host
  group create <id> [--initial-twin JSON] [--disabled] [--primary-key B64] [--secondary-key B64]
                        create an enrollment group (keys: new random ones
                        unless imported); prints the ID scope and the group key
  group list            list enrollment groups
  group show <id>       print a group as JSON, with its keys
  group enable <id>     admit the group's devices again
  group disable <id>    refuse the group's devices (provisioned devices stay)
  group set-twin <id> --initial-twin JSON
                        replace the initial twin of new devices ("null": none)
  group regenerate-key <id> [--key primary|secondary|both]
                        replace keys; devices holding keys derived from the
                        old ones can no longer provision
  group delete <id>     delete the group (provisioned devices stay)
  group device-key <id> <registration-id> [--key primary|secondary]
                        print the device key derived from the group key:
                        what a factory puts on the device
  individual create <registration-id> [--device-id ID] [--initial-twin JSON] [--disabled]
                        enroll one device with keys of its own; prints its key
  individual list|show|enable|disable|set-twin|regenerate-key|delete <registration-id>
                        as for groups`

const registrationUsage = `registration <subcommand> [flags]

Subcommands:
  list                  list the devices' registrations
  show <id>             print a registration as JSON
  delete <id>           delete a registration record (the device stays; to
                        provision it again, delete the device too)`

// splitArgs parses flags that may come before or after the positional
// arguments ("warden enrollment group create g1 --initial-twin …"), and
// returns the positional ones.
func splitArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		pos, args = append(pos, args[0]), args[1:]
	}
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	return append(pos, fs.Args()...), nil
}

func wantUsage(env *Env, usage string, args []string) (bool, error) {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(env.Stderr, "Usage: warden "+usage)
		if len(args) == 0 {
			return true, errUsage
		}
		return true, nil
	}
	return false, nil
}

func runEnrollment(ctx context.Context, env *Env, args []string) error {
	if done, err := wantUsage(env, enrollmentUsage, args); done {
		return err
	}
	kind, args := args[0], args[1:]
	sub := ""
	if kind != "scope" {
		if len(args) == 0 {
			fmt.Fprintln(env.Stderr, "Usage: warden "+enrollmentUsage)
			return fmt.Errorf("%w: missing subcommand after %q", errUsage, kind)
		}
		sub, args = args[0], args[1:]
	}
	fs := newFlagSet(strings.TrimSpace("enrollment "+kind+" "+sub), enrollmentUsage, env.Stderr)
	var cf clientFlags
	cf.register(fs)
	var f enrollFlags
	fs.StringVar(&f.initialTwin, "initial-twin", "", `initial twin of new devices, {"tags":{…},"properties":{"desired":{…}}} (create, set-twin)`)
	fs.BoolVar(&f.disabled, "disabled", false, "create the enrollment disabled")
	fs.StringVar(&f.primary, "primary-key", "", "import this primary key, base64 (create)")
	fs.StringVar(&f.secondary, "secondary-key", "", "import this secondary key, base64 (create)")
	fs.StringVar(&f.deviceID, "device-id", "", "device id of an individual enrollment (default: the registration id)")
	fs.StringVar(&f.key, "key", "", "which key: primary or secondary (device-key; default primary), or both (regenerate-key; default both)")
	pos, err := splitArgs(fs, args)
	if err != nil {
		return err
	}
	want := map[string]int{"scope": 0, "list": 0, "device-key": 2}
	n, ok := want[sub]
	if kind == "scope" {
		n, ok = 0, true
	}
	if !ok {
		n = 1
	}
	if len(pos) != n {
		fs.Usage()
		return fmt.Errorf("%w: enrollment %s %s takes %d argument(s), got %d", errUsage, kind, sub, n, len(pos))
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	switch kind {
	case "scope":
		info, err := c.DPSInfo(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "id scope:          %s\nprovisioning host: %s\n", info.IDScope, info.ProvisioningHost)
		return nil
	case "group":
		return runEnrollmentGroup(ctx, env, c, fs, sub, pos, f)
	case "individual":
		return runEnrollmentIndividual(ctx, env, c, fs, sub, pos, f)
	}
	fs.Usage()
	return fmt.Errorf("%w: unknown enrollment kind %q (want scope, group or individual)", errUsage, kind)
}

// enrollFlags are the flags of the enrollment subcommands.
type enrollFlags struct {
	initialTwin string
	disabled    bool
	primary     string
	secondary   string
	deviceID    string
	key         string
}

func (f enrollFlags) twin() json.RawMessage {
	if f.initialTwin != "" {
		return json.RawMessage(f.initialTwin)
	}
	return nil
}

func (f enrollFlags) enabled() *bool {
	on := !f.disabled
	return &on
}

// patch is the update of enable, disable, set-twin and regenerate-key.
func (f enrollFlags) patch(fs *flag.FlagSet, sub string) (client.EnrollmentPatch, error) {
	var p client.EnrollmentPatch
	switch sub {
	case "enable", "disable":
		on := sub == "enable"
		p.Enabled = &on
	case "set-twin":
		if f.twin() == nil {
			fs.Usage()
			return p, fmt.Errorf(`%w: set-twin needs --initial-twin (JSON, or "null" to remove it)`, errUsage)
		}
		p.InitialTwin = f.twin()
	case "regenerate-key":
		p.RegenerateKey = f.key
		if p.RegenerateKey == "" {
			p.RegenerateKey = "both"
		}
	}
	return p, nil
}

func runEnrollmentGroup(ctx context.Context, env *Env, c *client.Client, fs *flag.FlagSet, sub string, pos []string, f enrollFlags) error {
	switch sub {
	case "create":
		g, err := c.CreateEnrollmentGroup(ctx, client.NewEnrollmentGroup{ID: pos[0], Enabled: f.enabled(), InitialTwin: f.twin(),
			PrimaryKey: f.primary, SecondaryKey: f.secondary})
		if err != nil {
			return err
		}
		info, err := c.DPSInfo(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "id scope:          %s\nprovisioning host: %s\ngroup key:         %s\n", info.IDScope, info.ProvisioningHost, g.PrimaryKey)
		fmt.Fprintf(env.Stderr, "enrollment group %s created; a device's key is HMAC-SHA256(group key, registration id): warden enrollment group device-key %s <registration-id>\n", g.ID, g.ID)
	case "list":
		gs, err := c.EnrollmentGroups(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tENABLED\tINITIAL TWIN\tUPDATED")
		for _, g := range gs {
			fmt.Fprintf(tw, "%s\t%v\t%v\t%s\n", g.ID, g.Enabled, g.InitialTwin != nil, g.UpdatedAt.Local().Format(time.DateTime))
		}
		return tw.Flush()
	case "show":
		g, err := c.EnrollmentGroup(ctx, pos[0])
		if err != nil {
			return err
		}
		return printJSON(env, g)
	case "enable", "disable", "set-twin", "regenerate-key":
		p, err := f.patch(fs, sub)
		if err != nil {
			return err
		}
		g, err := c.UpdateEnrollmentGroup(ctx, pos[0], p)
		if err != nil {
			return err
		}
		if sub == "regenerate-key" {
			fmt.Fprintf(env.Stdout, "group key: %s\n", g.PrimaryKey)
		}
		fmt.Fprintf(env.Stderr, "enrollment group %s: %s done\n", g.ID, sub)
	case "delete":
		if err := c.DeleteEnrollmentGroup(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "enrollment group %s deleted (its devices stay)\n", pos[0])
	case "device-key":
		g, err := c.EnrollmentGroup(ctx, pos[0])
		if err != nil {
			return err
		}
		k := g.PrimaryKey
		switch f.key {
		case "", "primary":
		case "secondary":
			k = g.SecondaryKey
		default:
			fs.Usage()
			return fmt.Errorf(`%w: --key must be "primary" or "secondary"`, errUsage)
		}
		groupKey, err := base64.StdEncoding.DecodeString(k)
		if err != nil {
			return fmt.Errorf("group %s: key is not base64: %w", g.ID, err)
		}
		fmt.Fprintln(env.Stdout, base64.StdEncoding.EncodeToString(sas.DeriveDeviceKey(groupKey, pos[1])))
	default:
		fs.Usage()
		return fmt.Errorf("%w: unknown subcommand %q", errUsage, sub)
	}
	return nil
}

func runEnrollmentIndividual(ctx context.Context, env *Env, c *client.Client, fs *flag.FlagSet, sub string, pos []string, f enrollFlags) error {
	switch sub {
	case "create":
		e, err := c.CreateEnrollment(ctx, client.NewEnrollment{RegistrationID: pos[0], DeviceID: f.deviceID, Enabled: f.enabled(),
			InitialTwin: f.twin(), PrimaryKey: f.primary, SecondaryKey: f.secondary})
		if err != nil {
			return err
		}
		info, err := c.DPSInfo(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "id scope:          %s\nprovisioning host: %s\nregistration id:   %s\ndevice id:         %s\nkey:               %s\n",
			info.IDScope, info.ProvisioningHost, e.RegistrationID, e.DeviceID, e.PrimaryKey)
	case "list":
		es, err := c.Enrollments(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "REGISTRATION ID\tDEVICE ID\tENABLED\tINITIAL TWIN\tUPDATED")
		for _, e := range es {
			fmt.Fprintf(tw, "%s\t%s\t%v\t%v\t%s\n", e.RegistrationID, e.DeviceID, e.Enabled, e.InitialTwin != nil, e.UpdatedAt.Local().Format(time.DateTime))
		}
		return tw.Flush()
	case "show":
		e, err := c.Enrollment(ctx, pos[0])
		if err != nil {
			return err
		}
		return printJSON(env, e)
	case "enable", "disable", "set-twin", "regenerate-key":
		p, err := f.patch(fs, sub)
		if err != nil {
			return err
		}
		e, err := c.UpdateEnrollment(ctx, pos[0], p)
		if err != nil {
			return err
		}
		if sub == "regenerate-key" {
			fmt.Fprintf(env.Stdout, "key: %s\n", e.PrimaryKey)
		}
		fmt.Fprintf(env.Stderr, "individual enrollment %s: %s done\n", e.RegistrationID, sub)
	case "delete":
		if err := c.DeleteEnrollment(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "individual enrollment %s deleted (its device stays)\n", pos[0])
	default:
		fs.Usage()
		return fmt.Errorf("%w: unknown subcommand %q", errUsage, sub)
	}
	return nil
}

func runRegistration(ctx context.Context, env *Env, args []string) error {
	if done, err := wantUsage(env, registrationUsage, args); done {
		return err
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("registration "+sub, registrationUsage, env.Stderr)
	var cf clientFlags
	cf.register(fs)
	pos, err := splitArgs(fs, args)
	if err != nil {
		return err
	}
	if n := map[bool]int{true: 0, false: 1}[sub == "list"]; len(pos) != n {
		fs.Usage()
		return fmt.Errorf("%w: registration %s takes %d argument(s), got %d", errUsage, sub, n, len(pos))
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "REGISTRATION ID\tDEVICE ID\tENROLLMENT\tSTATUS\tSUBSTATUS\tUPDATED")
		for after := ""; ; {
			rs, next, err := c.Registrations(ctx, after, 0)
			if err != nil {
				return err
			}
			for _, r := range rs {
				fmt.Fprintf(tw, "%s\t%s\t%s/%s\t%s\t%s\t%s\n", r.RegistrationID, r.DeviceID, r.EnrollmentType, r.EnrollmentID,
					r.Status, r.Substatus, r.UpdatedAt.Local().Format(time.DateTime))
			}
			if next == "" {
				break
			}
			after = next
		}
		return tw.Flush()
	case "show":
		r, err := c.Registration(ctx, pos[0])
		if err != nil {
			return err
		}
		return printJSON(env, r)
	case "delete":
		if err := c.DeleteRegistration(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "registration %s deleted (the device stays)\n", pos[0])
	default:
		fs.Usage()
		return fmt.Errorf("%w: unknown subcommand %q", errUsage, sub)
	}
	return nil
}
