package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/warden-iot/warden/internal/apiv1"
)

const siteUsage = `site <subcommand> [flags]

A site is an installation: a building or place that holds devices.

Subcommands:
  create --name N [--tenant T] [address flags]
                        make a site in T (default: your tenant); prints only
                        its id, so that SITE=$(warden site create …) works
  list [--tenant T]     list the sites you can see, of T and below
  show ID               print a site
  update ID [--name N] [address flags]
                        change only what the given flags say
  delete ID             delete a site; its devices stay, unassigned
  factory-access ID on|off
                        the owner's switch: while it is on, the operator's
                        service desk sees the site's machines (the owner's
                        admins flip it, not the operator)

Address flags: --street --postal-code --city --country`

func runSite(ctx context.Context, env *Env, args []string) error {
	in, args, err := begin(env, "site", siteUsage, args)
	if err != nil {
		return err
	}
	fs := in.fs
	fs.String("name", "", "name (create, update)")
	tenant := fs.String("tenant", "", "the site's tenant (create), or list this tenant and below (list); default: yours")
	var addr addressFlags
	addr.register(fs)
	one := arity{1, 1, "a site id", withToken}
	err = in.parse(args, map[string]arity{"create": {}, "list": {}, "show": one, "update": one, "delete": one,
		"factory-access": {2, 2, "a site id and on or off", withToken}})
	if err != nil {
		return err
	}
	patch := apiv1.SitePatch{Name: in.stringGiven("name")}
	_, addrGiven := addr.merge(in, apiv1.Address{})
	var on bool
	switch in.sub {
	case "create":
		if err := in.require("name"); err != nil {
			return err
		}
		if a, ok := addr.merge(in, apiv1.Address{}); ok {
			patch.Address = &a
		}
	case "update":
		if patch == (apiv1.SitePatch{}) && !addrGiven {
			return in.usageError("nothing to change: give --name or address flags")
		}
	case "factory-access":
		var ok bool
		if on, ok = onOffArg(in.arg(1)); !ok {
			return in.usageError("want on or off, got %q", in.arg(1))
		}
	}
	c, err := in.client()
	if err != nil {
		return err
	}
	// done prints a changed site: JSON with --json, else msg on stderr.
	done := func(s apiv1.Site, msg string) error {
		if in.json {
			return printJSON(env, s)
		}
		fmt.Fprintln(env.Stderr, msg)
		return nil
	}
	switch in.sub {
	case "create":
		s, err := c.CreateSiteWith(ctx, apiv1.NewSite{TenantID: *tenant, SitePatch: patch})
		if err != nil {
			return fmt.Errorf("create site: %w", err)
		}
		if in.json {
			return printJSON(env, s)
		}
		fmt.Fprintln(env.Stdout, s.ID)
		fmt.Fprintf(env.Stderr, "site %s (%s) created in tenant %s; factory service access %s\n", s.ID, s.Name, s.TenantID, onOff(s.FactoryAccess))
	case "list":
		ss, err := c.Sites(ctx, *tenant)
		if err != nil {
			return fmt.Errorf("list sites: %w", err)
		}
		return printList(in, ss, "no sites", []string{"ID", "TENANT", "NAME", "ADDRESS", "FACTORY ACCESS", "CREATED"},
			func(s apiv1.Site) []any {
				place := strings.TrimSpace(strings.Join([]string{s.Address.Street, strings.TrimSpace(s.Address.PostalCode + " " + s.Address.City)}, ", "))
				return []any{s.ID, s.TenantID, shorten(s.Name, 40), dash(shorten(strings.Trim(place, ", "), 50)),
					onOff(s.FactoryAccess), localTime(s.CreatedAt)}
			})
	case "show":
		s, err := c.Site(ctx, in.arg(0))
		if err != nil {
			return fmt.Errorf("show site: %w", err)
		}
		return printObject(in, s)
	case "update":
		sid := in.arg(0)
		if addrGiven {
			cur, err := c.Site(ctx, sid)
			if err != nil {
				return fmt.Errorf("update site %s: %w", sid, err)
			}
			a, _ := addr.merge(in, cur.Address)
			patch.Address = &a
		}
		s, err := c.UpdateSite(ctx, sid, patch)
		if err != nil {
			return fmt.Errorf("update site %s: %w", sid, err)
		}
		return done(s, "site "+s.ID+" updated")
	case "delete":
		if err := c.DeleteSite(ctx, in.arg(0)); err != nil {
			return fmt.Errorf("delete site %s: %w", in.arg(0), err)
		}
		fmt.Fprintf(env.Stderr, "site %s deleted; its devices stay, without a site\n", in.arg(0))
	case "factory-access":
		s, err := c.SetFactoryAccess(ctx, in.arg(0), on)
		if err != nil {
			return fmt.Errorf("factory access of site %s: %w", in.arg(0), err)
		}
		msg := "site " + s.ID + ": factory service access off: the operator's service desk no longer sees its machines"
		if s.FactoryAccess {
			msg = "site " + s.ID + ": factory service access on: the operator's service desk sees its machines"
		}
		return done(s, msg)
	}
	return nil
}
