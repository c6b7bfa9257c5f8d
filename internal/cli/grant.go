package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/client"
)

const grantUsage = `grant <subcommand> [flags]

Owners (customer admins) give a supporter (installer, technician) access to
one site or one device; the supporter tells them their supporter id.

Subcommands:
  create --supporter SUP-XXXX-XXXX (--site ID | --device ID) [--until TIME]
                        grant access; prints only the grant id. TIME is RFC
                        3339 (2026-07-01T18:00:00Z), a date (2026-07-01) or
                        a duration from now (72h, 30d, 2w); default: until
                        revoked
  list [--tenant T] [--active] [--site ID] [--device ID]
                        list grants you can see (as owner, or as supporter
                        your own); --active: only those in force now
  show ID               print a grant
  revoke ID             end a grant; effective on the supporter's next request`

func runGrant(ctx context.Context, env *Env, args []string) error {
	in, args, err := begin(env, "grant", grantUsage, args)
	if err != nil {
		return err
	}
	fs := in.fs
	supporter := fs.String("supporter", "", "the supporter's id, SUP-XXXX-XXXX (create)")
	site := fs.String("site", "", "the site to open (create), or only grants of this site (list)")
	device := fs.String("device", "", "the device to open (create), or only grants of this device (list)")
	until := fs.String("until", "", "end of the grant: RFC 3339 time, date, or a duration from now like 72h or 30d (create; default: until revoked)")
	tenant := fs.String("tenant", "", "only grants of this tenant and below (list; default: yours)")
	active := fs.Bool("active", false, "only grants in force now (list)")
	one := arity{1, 1, "a grant id", withToken}
	err = in.parse(args, map[string]arity{"create": {}, "list": {}, "show": one, "revoke": one})
	if err != nil {
		return err
	}
	body := apiv1.NewGrant{SupporterID: *supporter, SiteID: *site, DeviceID: *device}
	if in.sub == "create" {
		if err := in.require("supporter"); err != nil {
			return err
		}
		if (*site == "") == (*device == "") {
			return in.usageError("give exactly one of --site and --device")
		}
		if *until != "" {
			t, err := timeOrFromNow(*until, time.Now())
			if err != nil {
				return in.usageError("--until %q: %v", *until, err)
			}
			t = t.UTC()
			body.ExpiresAt = &t
		}
	}
	c, err := in.client()
	if err != nil {
		return err
	}
	switch in.sub {
	case "create":
		g, err := c.CreateGrant(ctx, body)
		if err != nil {
			return fmt.Errorf("grant: %w", err)
		}
		if in.json {
			return printJSON(env, g)
		}
		fmt.Fprintln(env.Stdout, g.ID)
		fmt.Fprintf(env.Stderr, "%s %s may now see %s %s, %s; revoke with: warden grant revoke %s\n", g.SupporterID, g.Supporter,
			grantKind(g), grantTarget(g), grantUntil(g), g.ID)
	case "list":
		gs, err := c.Grants(ctx, client.GrantFilter{Tenant: *tenant, Site: *site, Device: *device, Active: *active})
		if err != nil {
			return fmt.Errorf("list grants: %w", err)
		}
		return printList(in, gs, "no grants", []string{"ID", "STATE", "SUPPORTER ID", "SUPPORTER", "OPENS", "TENANT", "EXPIRES", "CREATED"},
			func(g apiv1.Grant) []any {
				return []any{g.ID, g.State, g.SupporterID, shorten(g.Supporter, 40), grantKind(g) + " " + grantTarget(g),
					g.TenantID, localTimePtr(g.ExpiresAt, "never"), localTime(g.CreatedAt)}
			})
	case "show":
		g, err := c.GrantByID(ctx, in.arg(0))
		if err != nil {
			return fmt.Errorf("show grant: %w", err)
		}
		return printObject(in, g)
	case "revoke":
		if err := c.RevokeGrant(ctx, in.arg(0)); err != nil {
			return fmt.Errorf("revoke grant %s: %w", in.arg(0), err)
		}
		fmt.Fprintf(env.Stderr, "grant %s revoked\n", in.arg(0))
	}
	return nil
}

func grantKind(g apiv1.Grant) string {
	if g.SiteID != "" {
		return "site"
	}
	return "device"
}

func grantTarget(g apiv1.Grant) string { return g.SiteID + g.DeviceID }

func grantUntil(g apiv1.Grant) string {
	if g.ExpiresAt == nil {
		return "until revoked"
	}
	return "until " + localTime(*g.ExpiresAt)
}
