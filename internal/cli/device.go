package cli

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/warden-iot/warden/internal/apiv1"
)

const deviceUsage = `device <subcommand> [flags]

Subcommands:
  create ID [--tenant T] [--site S] [--serial N] [--name N] [--model M]
                        register a device; prints only its connection string
  list                  list devices with status, connection and last seen
  show ID               print a device, with its keys and connection string
                        when you may read them
  update ID [--site S | --no-site] [--serial N] [--name N] [--model M]
                        change only what the given flags say
  token ID [--ttl 1h]   print a SAS token for the device
  credentials ID [--ttl 1h]
                        print MQTT_HOST, MQTT_PORT, MQTT_CLIENT_ID,
                        MQTT_USERNAME and MQTT_PASSWORD as shell assignments
                        for a plain MQTT client:
                        eval "$(warden device credentials pump-1)"
  enable ID             let the device connect again
  disable ID            refuse the device's connections (and close the current one)
  delete ID             remove the device and all its data
  regenerate-key ID [--key primary|secondary|both]
                        replace keys; prints the new connection string
  rejected ID [--limit 20]
                        list messages of the device that could not be stored`

// mqttAPIVersion is the IoT Hub API version put in MQTT user names.
const mqttAPIVersion = "2021-04-12"

func runDevice(ctx context.Context, env *Env, args []string) error {
	in, args, err := begin(env, "device", deviceUsage, args)
	if err != nil {
		return err
	}
	fs := in.fs
	ttl := durationFlagOf(fs, "ttl", time.Hour, "token lifetime, e.g. 1h, 30d or 2w (token, credentials)")
	key := fs.String("key", "both", "which key: primary, secondary or both (regenerate-key)")
	limit := fs.Int("limit", 20, "how many rejected messages, newest first (rejected)")
	tenant := fs.String("tenant", "", "the device's tenant (create; default: yours)")
	fs.String("site", "", "the device's site (create, update)")
	noSite := fs.Bool("no-site", false, "take the device out of its site (update)")
	fs.String("serial", "", "serial or control-unit number (create, update)")
	fs.String("name", "", "a name (create, update)")
	fs.String("model", "", "model, which alarm rules may scope to (create, update)")
	one := arity{1, 1, "a device id", withToken}
	err = in.parse(args, map[string]arity{"create": one, "list": {}, "show": one, "update": one, "token": one,
		"credentials": one, "enable": one, "disable": one, "delete": one, "regenerate-key": one, "rejected": one})
	if err != nil {
		return err
	}
	id := in.arg(0)
	patch := apiv1.DevicePatch{SiteID: in.stringGiven("site"), SerialNumber: in.stringGiven("serial"),
		Name: in.stringGiven("name"), Model: in.stringGiven("model")}
	switch in.sub {
	case "update":
		if *noSite {
			if in.given["site"] {
				return in.usageError("give --site or --no-site, not both")
			}
			patch.SiteID = apiv1.Ptr("")
		}
		if patch == (apiv1.DevicePatch{}) {
			return in.usageError("nothing to change: give --site, --no-site, --serial, --name or --model")
		}
	case "token", "credentials":
		if *ttl <= 0 {
			return in.usageError("--ttl must be positive")
		}
	case "regenerate-key":
		if err := in.oneOf("key", *key, "primary", "secondary", "both"); err != nil {
			return err
		}
	case "rejected":
		if *limit < 1 {
			return in.usageError("--limit must be positive")
		}
	}
	c, err := in.client()
	if err != nil {
		return err
	}
	switch in.sub {
	case "create":
		d, err := c.CreateDeviceWith(ctx, apiv1.NewDevice{ID: id, TenantID: *tenant, DeviceInfo: apiv1.DeviceInfo{
			SiteID: deref(patch.SiteID), SerialNumber: deref(patch.SerialNumber), Name: deref(patch.Name), Model: deref(patch.Model)}})
		if err != nil {
			return fmt.Errorf("create device %s: %w", id, err)
		}
		if in.json {
			return printJSON(env, d)
		}
		if d.ConnectionString == "" {
			fmt.Fprintf(env.Stderr, "device %s created in tenant %s; its owner reads the connection string\n", d.ID, d.TenantID)
			return nil
		}
		fmt.Fprintln(env.Stdout, d.ConnectionString)
	case "list":
		ds, err := c.Devices(ctx)
		if err != nil {
			return fmt.Errorf("list devices: %w", err)
		}
		return printList(in, ds, "no devices", []string{"ID", "TENANT", "SITE", "STATUS", "CONNECTED", "LAST SEEN", "LAST IP"},
			func(d apiv1.Device) []any {
				return []any{d.ID, d.TenantID, dash(d.SiteID), d.Status, d.Connected, localTimePtr(d.LastSeen, "never"), dash(d.LastIP)}
			})
	case "show":
		d, err := c.Device(ctx, id)
		if err != nil {
			return fmt.Errorf("show device %s: %w", id, err)
		}
		return printObject(in, d)
	case "update":
		d, err := c.UpdateDevice(ctx, id, patch)
		if err != nil {
			return fmt.Errorf("update device %s: %w", id, err)
		}
		if in.json {
			return printJSON(env, d)
		}
		fmt.Fprintf(env.Stderr, "device %s updated\n", d.ID)
	case "token":
		cred, err := c.DeviceCredential(ctx, id, *ttl)
		if err != nil {
			return fmt.Errorf("token of device %s: %w", id, err)
		}
		if in.json {
			return printJSON(env, cred)
		}
		fmt.Fprintln(env.Stdout, cred.Token)
	case "credentials":
		cred, err := c.DeviceCredential(ctx, id, *ttl)
		if err != nil {
			return fmt.Errorf("credentials of device %s: %w", id, err)
		}
		m, err := mqttCredentials(id, cred)
		if err != nil {
			return err
		}
		if in.json {
			return printJSON(env, m)
		}
		for _, kv := range [][2]string{{"MQTT_HOST", m.Host}, {"MQTT_PORT", strconv.Itoa(m.Port)}, {"MQTT_CLIENT_ID", m.ClientID},
			{"MQTT_USERNAME", m.Username}, {"MQTT_PASSWORD", m.Password}} {
			fmt.Fprintf(env.Stdout, "%s=%s\n", kv[0], shellQuote(kv[1]))
		}
		fmt.Fprintf(env.Stderr, "MQTT credentials of device %s over TLS, valid until %s\n", id, localTime(cred.ExpiresAt))
	case "enable", "disable":
		d, err := c.SetDeviceStatus(ctx, id, in.sub+"d")
		if err != nil {
			return fmt.Errorf("%s device %s: %w", in.sub, id, err)
		}
		if in.json {
			return printJSON(env, d)
		}
		fmt.Fprintf(env.Stderr, "device %s %sd\n", id, in.sub)
	case "delete":
		if err := c.DeleteDevice(ctx, id); err != nil {
			return fmt.Errorf("delete device %s: %w", id, err)
		}
		fmt.Fprintf(env.Stderr, "device %s deleted with its data\n", id)
	case "regenerate-key":
		d, err := c.RegenerateKeys(ctx, id, *key)
		if err != nil {
			return fmt.Errorf("regenerate keys of device %s: %w", id, err)
		}
		if in.json {
			return printJSON(env, d)
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
			return fmt.Errorf("rejected messages of device %s: %w", id, err)
		}
		return printList(in, rs, "no rejected messages", []string{"ID", "RECEIVED", "REASON", "SIZE", "TOPIC", "SHA-256", "PAYLOAD"},
			func(r apiv1.Rejected) []any {
				payload := r.Payload
				switch {
				case r.Unreadable:
					payload = "(unreadable)"
				case payload == "" && r.PayloadB64 != "":
					payload = "base64:" + r.PayloadB64
				}
				return []any{r.ID, localTime(r.ReceivedAt), r.Reason, r.Size, shorten(r.Topic, 50), shorten(r.SHA256, 16), dash(shorten(payload, 40))}
			})
	}
	return nil
}

// mqttCreds is what a plain MQTT client needs to connect as a device.
type mqttCreds struct {
	Host      string    `json:"host"`
	Port      int       `json:"port"`
	ClientID  string    `json:"clientId"`
	Username  string    `json:"username"`
	Password  string    `json:"password"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// mqttCredentials makes the MQTT connection settings of a device from a
// SAS token: host and port are the hub host name's (8883 when it has
// none), the user name "{hub host}/{device id}/?api-version=…" with the
// hub host as the token names it, port included.
func mqttCredentials(id string, cred apiv1.DeviceToken) (mqttCreds, error) {
	host, port := cred.HostName, 8883
	if h, p, err := net.SplitHostPort(cred.HostName); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return mqttCreds{}, fmt.Errorf("the server's hub host name %q has no valid port", cred.HostName)
		}
		host, port = h, n
	}
	if host == "" {
		return mqttCreds{}, fmt.Errorf("the server named no hub host for device %s", id)
	}
	return mqttCreds{Host: host, Port: port, ClientID: id, Password: cred.Token, ExpiresAt: cred.ExpiresAt,
		Username: cred.HostName + "/" + id + "/?api-version=" + mqttAPIVersion}, nil
}
