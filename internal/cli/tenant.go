package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/warden-iot/warden/internal/apiv1"
)

const tenantUsage = `tenant <subcommand> [flags]

Customers and sub-customers form a tree below the operator's tenant.

Subcommands:
  create --name N [--id ID] [--parent P] [address flags] [contact flags] [--retention-days D]
                        make a tenant below P (default: your tenant); prints
                        only its id
  list [--tenant T]     list T (default: your tenant) and the tenants below it
  show [ID]             print a tenant (default: your tenant)
  update ID [flags of create]
                        change only what the given flags say; address and
                        contact fields not given keep their values
  delete ID             delete a tenant without sub-tenants, with all its
                        sites, devices, data and accounts (cannot be undone)

Address flags: --street --postal-code --city --country
Contact flags: --contact-name --contact-email --contact-phone
--retention-days: keep telemetry this many days; 0 keeps it until deleted.`

func runTenant(ctx context.Context, env *Env, args []string) error {
	in, args, err := begin(env, "tenant", tenantUsage, args)
	if err != nil {
		return err
	}
	fs := in.fs
	fs.String("name", "", "name (create, update)")
	fs.String("id", "", "id of the new tenant: letters, digits, '-', '.', '_' (create; default: made up)")
	fs.String("parent", "", "the tenant to make it below (create; default: yours)")
	tenant := fs.String("tenant", "", "list this tenant and the ones below it (list; default: yours)")
	var addr addressFlags
	addr.register(fs)
	var contact contactFlags
	contact.register(fs)
	retention := fs.Int("retention-days", 0, "keep telemetry this many days; 0: until deleted (create, update)")
	err = in.parse(args, map[string]arity{"create": {}, "list": {}, "show": {0, 1, "at most one tenant id", withToken},
		"update": {1, 1, "a tenant id", withToken}, "delete": {1, 1, "a tenant id", withToken}})
	if err != nil {
		return err
	}
	patch := apiv1.TenantPatch{Name: in.stringGiven("name")}
	if in.given["retention-days"] {
		patch.TelemetryRetentionDays = retention
	}
	_, addrGiven := addr.merge(in, apiv1.Address{})
	_, contactGiven := contact.merge(in, apiv1.Contact{})
	switch in.sub {
	case "create":
		if err := in.require("name"); err != nil {
			return err
		}
		if a, ok := addr.merge(in, apiv1.Address{}); ok {
			patch.Address = &a
		}
		if ct, ok := contact.merge(in, apiv1.Contact{}); ok {
			patch.Contact = &ct
		}
	case "update":
		if patch == (apiv1.TenantPatch{}) && !addrGiven && !contactGiven {
			return in.usageError("nothing to change: give --name, address, contact or --retention-days flags")
		}
	}
	c, err := in.client()
	if err != nil {
		return err
	}
	switch in.sub {
	case "create":
		t, err := c.CreateTenant(ctx, apiv1.NewTenant{ID: deref(in.stringGiven("id")), ParentID: deref(in.stringGiven("parent")),
			TenantPatch: patch})
		if err != nil {
			return fmt.Errorf("create tenant: %w", err)
		}
		if in.json {
			return printJSON(env, t)
		}
		fmt.Fprintln(env.Stdout, t.ID)
		fmt.Fprintf(env.Stderr, "tenant %s (%s) created below %s\n", t.ID, t.Name, t.ParentID)
	case "list":
		ts, err := c.Tenants(ctx, *tenant)
		if err != nil {
			return fmt.Errorf("list tenants: %w", err)
		}
		return printList(in, ts, "no tenants", []string{"ID", "NAME", "PATH", "CITY", "CONTACT", "RETENTION", "CREATED"},
			func(t apiv1.Tenant) []any {
				ret := "forever"
				if t.TelemetryRetentionDays > 0 {
					ret = fmt.Sprintf("%d days", t.TelemetryRetentionDays)
				}
				return []any{t.ID, shorten(t.Name, 40), t.Path, dash(t.Address.City),
					dash(shorten(strings.TrimSpace(t.Contact.Name+" "+t.Contact.Email), 40)), ret, localTime(t.CreatedAt)}
			})
	case "show":
		t, err := c.Tenant(ctx, in.arg(0))
		if err != nil {
			return fmt.Errorf("show tenant: %w", err)
		}
		return printObject(in, t)
	case "update":
		tid := in.arg(0)
		if addrGiven || contactGiven {
			// The API replaces a whole address or contact: start from the
			// tenant's own so that fields not given keep their values.
			cur, err := c.Tenant(ctx, tid)
			if err != nil {
				return fmt.Errorf("update tenant %s: %w", tid, err)
			}
			if addrGiven {
				a, _ := addr.merge(in, cur.Address)
				patch.Address = &a
			}
			if contactGiven {
				ct, _ := contact.merge(in, cur.Contact)
				patch.Contact = &ct
			}
		}
		t, err := c.UpdateTenant(ctx, tid, patch)
		if err != nil {
			return fmt.Errorf("update tenant %s: %w", tid, err)
		}
		if in.json {
			return printJSON(env, t)
		}
		fmt.Fprintf(env.Stderr, "tenant %s updated\n", t.ID)
	case "delete":
		if err := c.DeleteTenant(ctx, in.arg(0)); err != nil {
			return fmt.Errorf("delete tenant %s: %w", in.arg(0), err)
		}
		fmt.Fprintf(env.Stderr, "tenant %s deleted with its sites, devices, data and accounts\n", in.arg(0))
	}
	return nil
}
