package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/sas"
)

const enrollmentUsage = `enrollment <subcommand> [flags]

Devices provision themselves through Warden's device provisioning service
(Azure DPS over MQTT, on the MQTT TLS listener) with the tenant's ID scope
and a key: one derived from an enrollment group's key, or the key of an
individual enrollment.

Subcommands:
  scope                 print the tenant's ID scope and the provisioning host
  group create ID [--initial-twin JSON] [--disabled] [--primary-key B64] [--secondary-key B64]
                        create an enrollment group (keys: new random ones
                        unless imported); prints the ID scope and the group key
  group list            list enrollment groups
  group show ID         print a group, with its keys
  group enable ID       admit the group's devices again
  group disable ID      refuse the group's devices (provisioned devices stay)
  group set-twin ID --initial-twin JSON
                        replace the initial twin of new devices ("null": none)
  group regenerate-key ID [--key primary|secondary|both]
                        replace keys; devices holding keys derived from the
                        old ones can no longer provision
  group delete ID       delete the group (provisioned devices stay)
  group device-key ID REGISTRATION-ID [--key primary|secondary]
                        print the device key derived from the group key:
                        what a factory puts on the device
  individual create REGISTRATION-ID [--device-id ID] [--initial-twin JSON] [--disabled]
                        enroll one device with keys of its own; prints its key
  individual list|show|enable|disable|set-twin|regenerate-key|delete REGISTRATION-ID
                        as for groups`

func runEnrollment(ctx context.Context, env *Env, args []string) error {
	in, args, err := begin(env, "enrollment", enrollmentUsage, args)
	if err != nil {
		return err
	}
	fs := in.fs
	initialTwin := fs.String("initial-twin", "", `initial twin of new devices, {"tags":{…},"properties":{"desired":{…}}} (create, set-twin)`)
	disabled := fs.Bool("disabled", false, "create the enrollment disabled (create)")
	primary := fs.String("primary-key", "", "import this primary key, base64 (create)")
	secondary := fs.String("secondary-key", "", "import this secondary key, base64 (create)")
	deviceID := fs.String("device-id", "", "device id of an individual enrollment (individual create; default: the registration id)")
	key := fs.String("key", "", "which key: primary or secondary (device-key; default primary), or both (regenerate-key; default both)")
	subs := map[string]arity{"scope": {}, "group device-key": {2, 2, "a group id and a registration id", withToken}}
	for _, kind := range []string{"group", "individual"} {
		what := map[string]string{"group": "a group id", "individual": "a registration id"}[kind]
		subs[kind+" list"] = arity{}
		for _, s := range []string{"create", "show", "enable", "disable", "set-twin", "regenerate-key", "delete"} {
			subs[kind+" "+s] = arity{1, 1, what, withToken}
		}
	}
	if err := in.parse(args, subs); err != nil {
		return err
	}
	kind, sub, _ := strings.Cut(in.sub, " ")
	var twin json.RawMessage
	if *initialTwin != "" {
		if twin, err = jsonFlag("initial-twin", *initialTwin); err != nil {
			return in.usageError("%v", err)
		}
	}
	var patch apiv1.EnrollmentPatch
	switch sub {
	case "enable", "disable":
		on := sub == "enable"
		patch.Enabled = &on
	case "set-twin":
		if twin == nil {
			return in.usageError(`--initial-twin is required (JSON, or "null" to remove it)`)
		}
		patch.InitialTwin = twin
	case "regenerate-key":
		patch.RegenerateKey = *key
		if patch.RegenerateKey == "" {
			patch.RegenerateKey = "both"
		}
		if err := in.oneOf("key", patch.RegenerateKey, "primary", "secondary", "both"); err != nil {
			return err
		}
	case "device-key":
		if *key != "" {
			if err := in.oneOf("key", *key, "primary", "secondary"); err != nil {
				return err
			}
		}
	}
	enabled := !*disabled
	c, err := in.client()
	if err != nil {
		return err
	}
	id := in.arg(0)
	if kind == "scope" {
		info, err := c.DPSInfo(ctx)
		if err != nil {
			return fmt.Errorf("provisioning scope: %w", err)
		}
		return printObject(in, info)
	}
	if kind == "group" {
		switch sub {
		case "create":
			g, err := c.CreateEnrollmentGroup(ctx, apiv1.NewEnrollmentGroup{ID: id, Enabled: &enabled, InitialTwin: twin,
				PrimaryKey: *primary, SecondaryKey: *secondary})
			if err != nil {
				return fmt.Errorf("create enrollment group %s: %w", id, err)
			}
			info, err := c.DPSInfo(ctx)
			if err != nil {
				return fmt.Errorf("provisioning scope: %w", err)
			}
			if err := printObject(in, struct {
				IDScope          string `json:"idScope"`
				ProvisioningHost string `json:"provisioningHost"`
				GroupKey         string `json:"groupKey"`
			}{info.IDScope, info.ProvisioningHost, g.PrimaryKey}); err != nil {
				return err
			}
			fmt.Fprintf(env.Stderr, "enrollment group %s created; a device's key is HMAC-SHA256(group key, registration id): warden enrollment group device-key %s <registration-id>\n", g.ID, g.ID)
		case "list":
			gs, err := c.EnrollmentGroups(ctx)
			if err != nil {
				return fmt.Errorf("list enrollment groups: %w", err)
			}
			return printList(in, gs, "no enrollment groups", []string{"ID", "TENANT", "ENABLED", "INITIAL TWIN", "UPDATED"},
				func(g apiv1.EnrollmentGroup) []any {
					return []any{g.ID, g.TenantID, g.Enabled, g.InitialTwin != nil, localTime(g.UpdatedAt)}
				})
		case "show":
			g, err := c.EnrollmentGroup(ctx, id)
			if err != nil {
				return fmt.Errorf("show enrollment group %s: %w", id, err)
			}
			return printObject(in, g)
		case "enable", "disable", "set-twin", "regenerate-key":
			g, err := c.UpdateEnrollmentGroup(ctx, id, patch)
			if err != nil {
				return fmt.Errorf("%s enrollment group %s: %w", sub, id, err)
			}
			if in.json {
				return printJSON(env, g)
			}
			if sub == "regenerate-key" {
				fmt.Fprintf(env.Stdout, "groupKey  %s\n", g.PrimaryKey)
			}
			fmt.Fprintf(env.Stderr, "enrollment group %s: %s done\n", g.ID, sub)
		case "delete":
			if err := c.DeleteEnrollmentGroup(ctx, id); err != nil {
				return fmt.Errorf("delete enrollment group %s: %w", id, err)
			}
			fmt.Fprintf(env.Stderr, "enrollment group %s deleted (its devices stay)\n", id)
		case "device-key":
			g, err := c.EnrollmentGroup(ctx, id)
			if err != nil {
				return fmt.Errorf("enrollment group %s: %w", id, err)
			}
			k := g.PrimaryKey
			if *key == "secondary" {
				k = g.SecondaryKey
			}
			groupKey, err := base64.StdEncoding.DecodeString(k)
			if err != nil {
				return fmt.Errorf("group %s: key is not base64: %w", g.ID, err)
			}
			dk := base64.StdEncoding.EncodeToString(sas.DeriveDeviceKey(groupKey, in.arg(1)))
			if in.json {
				return printJSON(env, map[string]string{"registrationId": in.arg(1), "key": dk})
			}
			fmt.Fprintln(env.Stdout, dk)
		}
		return nil
	}
	switch sub {
	case "create":
		e, err := c.CreateEnrollment(ctx, apiv1.NewEnrollment{RegistrationID: id, DeviceID: *deviceID, Enabled: &enabled,
			InitialTwin: twin, PrimaryKey: *primary, SecondaryKey: *secondary})
		if err != nil {
			return fmt.Errorf("create enrollment %s: %w", id, err)
		}
		info, err := c.DPSInfo(ctx)
		if err != nil {
			return fmt.Errorf("provisioning scope: %w", err)
		}
		return printObject(in, struct {
			IDScope          string `json:"idScope"`
			ProvisioningHost string `json:"provisioningHost"`
			RegistrationID   string `json:"registrationId"`
			DeviceID         string `json:"deviceId"`
			Key              string `json:"key"`
		}{info.IDScope, info.ProvisioningHost, e.RegistrationID, e.DeviceID, e.PrimaryKey})
	case "list":
		es, err := c.Enrollments(ctx)
		if err != nil {
			return fmt.Errorf("list enrollments: %w", err)
		}
		return printList(in, es, "no individual enrollments", []string{"REGISTRATION ID", "DEVICE ID", "TENANT", "ENABLED", "INITIAL TWIN", "UPDATED"},
			func(e apiv1.Enrollment) []any {
				return []any{e.RegistrationID, e.DeviceID, e.TenantID, e.Enabled, e.InitialTwin != nil, localTime(e.UpdatedAt)}
			})
	case "show":
		e, err := c.Enrollment(ctx, id)
		if err != nil {
			return fmt.Errorf("show enrollment %s: %w", id, err)
		}
		return printObject(in, e)
	case "enable", "disable", "set-twin", "regenerate-key":
		e, err := c.UpdateEnrollment(ctx, id, patch)
		if err != nil {
			return fmt.Errorf("%s enrollment %s: %w", sub, id, err)
		}
		if in.json {
			return printJSON(env, e)
		}
		if sub == "regenerate-key" {
			fmt.Fprintf(env.Stdout, "key  %s\n", e.PrimaryKey)
		}
		fmt.Fprintf(env.Stderr, "individual enrollment %s: %s done\n", e.RegistrationID, sub)
	case "delete":
		if err := c.DeleteEnrollment(ctx, id); err != nil {
			return fmt.Errorf("delete enrollment %s: %w", id, err)
		}
		fmt.Fprintf(env.Stderr, "individual enrollment %s deleted (its device stays)\n", id)
	}
	return nil
}
