package cli

// The commands for people and access: tenant, site, user, grant, token and
// login. (Written by the CLI work of issue 5.)

import (
	"golang.org/x/term"

	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/warden-iot/warden/internal/api"
	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/store"
)

const tenantUsage = `tenant <subcommand> [flags]

Customers and sub-customers form a tree below the operator's tenant.

Subcommands:
  create --name N [--id ID] [--parent P] [address flags] [contact flags] [--retention-days D]
                        make a tenant below P (default: your tenant); prints its id
  list [--tenant T]     list T (default: your tenant) and the tenants below it
  show [ID]             print a tenant as JSON (default: your tenant)
  update ID [flags of create]
                        change only what the given flags say; address and
                        contact fields not given keep their values
  delete ID             delete a tenant without sub-tenants, with all its
                        sites, devices, data and accounts (cannot be undone)

Address flags: --street --postal-code --city --country
Contact flags: --contact-name --contact-email --contact-phone
--retention-days: keep telemetry this many days; 0 keeps it until deleted.`

const siteUsage = `site <subcommand> [flags]

A site is an installation: a building or place that holds devices.

Subcommands:
  create --name N [--tenant T] [address flags]
                        make a site in T (default: your tenant); prints its id
  list [--tenant T]     list the sites you can see, of T and below
  show ID               print a site as JSON
  update ID [--name N] [address flags]
                        change only what the given flags say
  delete ID             delete a site; its devices stay, unassigned
  factory-access ID on|off
                        the owner's switch: while it is on, the operator's
                        service desk sees the site's machines (the owner's
                        admins flip it, not the operator)

Address flags: --street --postal-code --city --country`

const userUsage = `user <subcommand> [flags]

Subcommands:
  create --email E --role R --first-name F --last-name L [--tenant T] [--phone P] [--company C] [address flags]
                        make an account in T (default: your tenant). The
                        person gets an activation link by e-mail; without a
                        mail server the link is printed, to hand over.
                        Supporters get a supporter id (SUP-XXXX-XXXX) that
                        owners grant access to.
  list [--tenant T]     list the accounts you can see, of T and below
  show ID               print an account as JSON
  update ID [--role R] [--first-name F] [--last-name L] [--phone P] [--company C] [address flags]
                        change only what the given flags say
  disable ID            refuse the account's sign-ins and tokens, end its sessions
  enable ID             let a disabled account in again
  unlock ID             lift the lock after too many failed sign-ins
  delete ID             delete the account
  activation ID         send a new activation link (printed without a mail server)

Roles: operator-admin and operator-service (the operator's tenant only),
customer-admin and customer-user (customers' tenants only), supporter.
Address flags: --street --postal-code --city --country`

const grantUsage = `grant <subcommand> [flags]

Owners (customer admins) give a supporter (installer, technician) access to
one site or one device; the supporter tells them their supporter id.

Subcommands:
  create --supporter SUP-XXXX-XXXX (--site ID | --device ID) [--until TIME]
                        grant access; prints the grant id. TIME is RFC 3339
                        (2026-07-01T18:00:00Z) or a duration from now (72h,
                        14d); default: until revoked
  list [--tenant T] [--active] [--site ID] [--device ID]
                        list grants you can see (as owner, or as supporter
                        your own); --active: only those in force now
  show ID               print a grant as JSON
  revoke ID             end a grant; effective on the supporter's next request`

const tokenUsage = `token <subcommand> [flags]

API tokens act for the account that makes them, so these commands need a
token of a person's account ("warden login" makes one), not the operator's
bootstrap token.

Subcommands:
  create --name N [--read-only] [--ttl 720h]
                        make a token; prints its secret, shown only this once
  list                  list your tokens (without secrets)
  revoke ID             revoke one of your tokens`

const loginUsage = `login --email E [--totp CODE] [--ttl 720h] [--server URL] [--ca FILE]

Signs in with e-mail and password (and a one-time code with --totp if the
account has two-factor sign-in), makes an API token named
"warden cli <hostname>" and prints the shell lines that use it:

  export WARDEN_SERVER=…
  export WARDEN_TOKEN=…

so that  eval "$(warden login --email you@example.com)"  signs the shell in.

The password is read from WARDEN_PASSWORD, or from the terminal without
echo, or else as one line from standard input.`

// invocation is one parsed command line of the people commands.
type invocation struct {
	env   *Env
	name  string // "tenant create"
	usage string
	sub   string
	fs    *flag.FlagSet
	cf    clientFlags
	json  bool
	pos   []string
	given map[string]bool // the flags set on the command line or by the environment
}

// arity is how many positional arguments a subcommand takes.
type arity struct {
	min, max int
	what     string // "ID", "ID on|off"
}

// begin takes the subcommand off args and makes its flag set, with the
// client flags and --json.
func begin(env *Env, cmd, usage string, args []string) (*invocation, []string, error) {
	sub, rest, err := subcommand(env, usage, args)
	if err != nil {
		return nil, nil, err
	}
	in := &invocation{env: env, name: cmd + " " + sub, usage: usage, sub: sub, given: map[string]bool{}}
	in.fs = newFlagSet(in.name, usage, env.Stderr)
	in.cf.register(in.fs)
	in.fs.BoolVar(&in.json, "json", false, "print the server's answer as JSON")
	return in, rest, nil
}

// parse checks the subcommand, parses flags and positional arguments.
func (in *invocation) parse(args []string, subs map[string]arity) error {
	n, ok := subs[in.sub]
	if !ok {
		fmt.Fprintln(in.env.Stderr, "Usage: warden "+in.usage)
		return usageError(in.env, strings.Fields(in.name)[0], "unknown subcommand %q", in.sub)
	}
	pos, err := splitArgs(in.fs, args)
	if err != nil {
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

// stringsGiven puts the given string flags into body under their keys.
func (in *invocation) stringsGiven(body map[string]any, flagToKey map[string]string) {
	for f, k := range flagToKey {
		if in.given[f] {
			body[k] = in.fs.Lookup(f).Value.String()
		}
	}
}

// addressFlags are the flags of a postal address.
type addressFlags struct{ street, postalCode, city, country string }

func (f *addressFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.street, "street", "", "street and number")
	fs.StringVar(&f.postalCode, "postal-code", "", "postal code")
	fs.StringVar(&f.city, "city", "", "city")
	fs.StringVar(&f.country, "country", "", "country")
}

// merge overlays the given address flags on cur; ok says whether any was
// given.
func (f *addressFlags) merge(in *invocation, cur store.Address) (a store.Address, ok bool) {
	for _, x := range []struct {
		flag string
		v    string
		dst  *string
	}{{"street", f.street, &cur.Street}, {"postal-code", f.postalCode, &cur.PostalCode},
		{"city", f.city, &cur.City}, {"country", f.country, &cur.Country}} {
		if in.given[x.flag] {
			*x.dst, ok = x.v, true
		}
	}
	return cur, ok
}

// contactFlags are the flags of a tenant's contact person.
type contactFlags struct{ name, email, phone string }

func (f *contactFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.name, "contact-name", "", "contact person's name")
	fs.StringVar(&f.email, "contact-email", "", "contact person's e-mail address")
	fs.StringVar(&f.phone, "contact-phone", "", "contact person's phone number")
}

func (f *contactFlags) merge(in *invocation, cur store.Contact) (c store.Contact, ok bool) {
	for _, x := range []struct {
		flag string
		v    string
		dst  *string
	}{{"contact-name", f.name, &cur.Name}, {"contact-email", f.email, &cur.Email}, {"contact-phone", f.phone, &cur.Phone}} {
		if in.given[x.flag] {
			*x.dst, ok = x.v, true
		}
	}
	return cur, ok
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

func localTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}

func localTimePtr(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return localTime(*t)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

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
	err = in.parse(args, map[string]arity{"create": {0, 0, ""}, "list": {0, 0, ""}, "show": {0, 1, "at most one tenant id"},
		"update": {1, 1, "a tenant id"}, "delete": {1, 1, "a tenant id"}})
	if err != nil {
		return err
	}
	body := map[string]any{}
	in.stringsGiven(body, map[string]string{"name": "name"})
	if in.given["retention-days"] {
		body["telemetryRetentionDays"] = *retention
	}
	switch in.sub {
	case "create":
		if err := in.require("name"); err != nil {
			return err
		}
		in.stringsGiven(body, map[string]string{"id": "id", "parent": "parentId"})
		if a, ok := addr.merge(in, store.Address{}); ok {
			body["address"] = a
		}
		if c, ok := contact.merge(in, store.Contact{}); ok {
			body["contact"] = c
		}
	case "update":
		_, addrGiven := addr.merge(in, store.Address{})
		_, contactGiven := contact.merge(in, store.Contact{})
		if len(body) == 0 && !addrGiven && !contactGiven {
			return in.usageError("nothing to change: give --name, address, contact or --retention-days flags")
		}
	}
	c, err := in.client()
	if err != nil {
		return err
	}
	switch in.sub {
	case "create":
		t, err := c.CreateTenant(ctx, body)
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
		if in.json {
			return printJSON(env, ts)
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tPATH\tCITY\tCONTACT\tRETENTION\tCREATED")
		for _, t := range ts {
			ret := "forever"
			if t.TelemetryRetentionDays > 0 {
				ret = fmt.Sprintf("%d days", t.TelemetryRetentionDays)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, shorten(t.Name, 40), t.Path, dash(t.Address.City),
				dash(shorten(strings.TrimSpace(t.Contact.Name+" "+t.Contact.Email), 40)), ret, localTime(t.CreatedAt))
		}
		return tw.Flush()
	case "show":
		t, err := c.Tenant(ctx, in.arg(0))
		if err != nil {
			return fmt.Errorf("show tenant: %w", err)
		}
		return printJSON(env, t)
	case "update":
		tid := in.arg(0)
		_, addrGiven := addr.merge(in, store.Address{})
		_, contactGiven := contact.merge(in, store.Contact{})
		if addrGiven || contactGiven {
			// The API replaces a whole address or contact: start from the
			// tenant's own so that fields not given keep their values.
			cur, err := c.Tenant(ctx, tid)
			if err != nil {
				return fmt.Errorf("update tenant %s: %w", tid, err)
			}
			if addrGiven {
				body["address"], _ = addr.merge(in, cur.Address)
			}
			if contactGiven {
				body["contact"], _ = contact.merge(in, cur.Contact)
			}
		}
		t, err := c.UpdateTenant(ctx, tid, body)
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
	err = in.parse(args, map[string]arity{"create": {0, 0, ""}, "list": {0, 0, ""}, "show": {1, 1, "a site id"},
		"update": {1, 1, "a site id"}, "delete": {1, 1, "a site id"}, "factory-access": {2, 2, "a site id and on or off"}})
	if err != nil {
		return err
	}
	body := map[string]any{}
	in.stringsGiven(body, map[string]string{"name": "name"})
	_, addrGiven := addr.merge(in, store.Address{})
	var on bool
	switch in.sub {
	case "create":
		if err := in.require("name"); err != nil {
			return err
		}
		if *tenant != "" {
			body["tenantId"] = *tenant
		}
		if a, ok := addr.merge(in, store.Address{}); ok {
			body["address"] = a
		}
	case "update":
		if len(body) == 0 && !addrGiven {
			return in.usageError("nothing to change: give --name or address flags")
		}
	case "factory-access":
		switch strings.ToLower(in.arg(1)) {
		case "on", "true", "enable":
			on = true
		case "off", "false", "disable":
		default:
			return in.usageError("want on or off, got %q", in.arg(1))
		}
	}
	c, err := in.client()
	if err != nil {
		return err
	}
	// one prints a site: JSON with --json, else msg on stderr.
	one := func(s api.Site, msg string) error {
		if in.json {
			return printJSON(env, s)
		}
		fmt.Fprintln(env.Stderr, msg)
		return nil
	}
	switch in.sub {
	case "create":
		s, err := c.CreateSiteWith(ctx, body)
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
		if in.json {
			return printJSON(env, ss)
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTENANT\tNAME\tADDRESS\tFACTORY ACCESS\tCREATED")
		for _, s := range ss {
			place := strings.TrimSpace(strings.Join([]string{s.Address.Street, strings.TrimSpace(s.Address.PostalCode + " " + s.Address.City)}, ", "))
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.TenantID, shorten(s.Name, 40),
				dash(shorten(strings.Trim(place, ", "), 50)), onOff(s.FactoryAccess), localTime(s.CreatedAt))
		}
		return tw.Flush()
	case "show":
		s, err := c.Site(ctx, in.arg(0))
		if err != nil {
			return fmt.Errorf("show site: %w", err)
		}
		return printJSON(env, s)
	case "update":
		sid := in.arg(0)
		if addrGiven {
			cur, err := c.Site(ctx, sid)
			if err != nil {
				return fmt.Errorf("update site %s: %w", sid, err)
			}
			body["address"], _ = addr.merge(in, cur.Address)
		}
		s, err := c.UpdateSite(ctx, sid, body)
		if err != nil {
			return fmt.Errorf("update site %s: %w", sid, err)
		}
		return one(s, "site "+s.ID+" updated")
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
		return one(s, msg)
	}
	return nil
}

// checkRole is a usage error for a role that does not exist.
func (in *invocation) checkRole(r string) error {
	if store.Role(r).Valid() {
		return nil
	}
	names := make([]string, len(store.Roles))
	for i, x := range store.Roles {
		names[i] = string(x)
	}
	return in.usageError("--role %q: want one of %s", r, strings.Join(names, ", "))
}

func runUser(ctx context.Context, env *Env, args []string) error {
	in, args, err := begin(env, "user", userUsage, args)
	if err != nil {
		return err
	}
	fs := in.fs
	fs.String("email", "", "e-mail address: where the activation link goes and the sign-in name (create; cannot be changed)")
	role := fs.String("role", "", "operator-admin, operator-service, customer-admin, customer-user or supporter (create, update)")
	fs.String("first-name", "", "first name (create, update)")
	fs.String("last-name", "", "last name (create, update)")
	fs.String("phone", "", "phone number (create, update)")
	fs.String("company", "", "company, e.g. a supporter's employer (create, update)")
	tenant := fs.String("tenant", "", "the account's tenant (create), or list this tenant and below (list); default: yours")
	var addr addressFlags
	addr.register(fs)
	one := arity{1, 1, "an account id"}
	err = in.parse(args, map[string]arity{"create": {0, 0, ""}, "list": {0, 0, ""}, "show": one, "update": one,
		"disable": one, "enable": one, "unlock": one, "delete": one, "activation": one})
	if err != nil {
		return err
	}
	body := map[string]any{}
	in.stringsGiven(body, map[string]string{"role": "role", "first-name": "firstName",
		"last-name": "lastName", "phone": "phone", "company": "company"})
	_, addrGiven := addr.merge(in, store.Address{})
	switch in.sub {
	case "create":
		if err := in.require("email", "role", "first-name", "last-name"); err != nil {
			return err
		}
		if err := in.checkRole(*role); err != nil {
			return err
		}
		body["email"] = in.fs.Lookup("email").Value.String()
		if *tenant != "" {
			body["tenantId"] = *tenant
		}
		if a, ok := addr.merge(in, store.Address{}); ok {
			body["address"] = a
		}
	case "update":
		// The e-mail address (the sign-in name) cannot be changed.
		if in.given["role"] {
			if err := in.checkRole(*role); err != nil {
				return err
			}
		}
		if len(body) == 0 && !addrGiven {
			return in.usageError("nothing to change: give --role, --first-name, --last-name, --phone, --company or address flags")
		}
	case "disable":
		body = map[string]any{"status": "disabled"}
	case "enable":
		body = map[string]any{"status": "active"}
	case "unlock":
		body = map[string]any{"unlock": true}
	}
	c, err := in.client()
	if err != nil {
		return err
	}
	uid := in.arg(0)
	switch in.sub {
	case "create":
		u, err := c.CreateUser(ctx, body)
		if err != nil {
			return fmt.Errorf("create user: %w", err)
		}
		if in.json {
			return printJSON(env, u)
		}
		fmt.Fprintf(env.Stdout, "user %s created: %s, %s in tenant %s, waiting for activation\n", u.ID, u.Email, u.Role, u.TenantID)
		if u.SupporterID != "" {
			fmt.Fprintf(env.Stdout, "supporter id: %s (owners grant access to this id)\n", u.SupporterID)
		}
		printActivation(env, u.Email, client.Activation{Link: u.ActivationLink, Mailed: u.ActivationMailed})
	case "list":
		us, err := c.Users(ctx, *tenant)
		if err != nil {
			return fmt.Errorf("list users: %w", err)
		}
		if in.json {
			return printJSON(env, us)
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tEMAIL\tNAME\tROLE\tSTATUS\tTENANT\tSUPPORTER ID")
		for _, u := range us {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", u.ID, u.Email, shorten(u.FirstName+" "+u.LastName, 40),
				u.Role, u.Status, u.TenantID, dash(u.SupporterID))
		}
		return tw.Flush()
	case "show":
		u, err := c.User(ctx, uid)
		if err != nil {
			return fmt.Errorf("show user: %w", err)
		}
		return printJSON(env, u)
	case "update", "disable", "enable", "unlock":
		if in.sub == "update" && addrGiven {
			cur, err := c.User(ctx, uid)
			if err != nil {
				return fmt.Errorf("%s user %s: %w", in.sub, uid, err)
			}
			body["address"], _ = addr.merge(in, cur.Address)
		}
		u, err := c.UpdateUser(ctx, uid, body)
		if err != nil {
			return fmt.Errorf("%s user %s: %w", in.sub, uid, err)
		}
		if in.json {
			return printJSON(env, u)
		}
		switch in.sub {
		case "disable":
			fmt.Fprintf(env.Stderr, "user %s (%s) disabled: its sessions ended and its tokens no longer work\n", u.ID, u.Email)
		case "enable":
			fmt.Fprintf(env.Stderr, "user %s (%s) enabled: status %s\n", u.ID, u.Email, u.Status)
		case "unlock":
			fmt.Fprintf(env.Stderr, "user %s (%s) unlocked: it may sign in again\n", u.ID, u.Email)
		default:
			fmt.Fprintf(env.Stderr, "user %s (%s) updated\n", u.ID, u.Email)
		}
	case "delete":
		if err := c.DeleteUser(ctx, uid); err != nil {
			return fmt.Errorf("delete user %s: %w", uid, err)
		}
		fmt.Fprintf(env.Stderr, "user %s deleted\n", uid)
	case "activation":
		a, err := c.ResendActivation(ctx, uid)
		if err != nil {
			return fmt.Errorf("new activation link for %s: %w", uid, err)
		}
		if in.json {
			return printJSON(env, a)
		}
		printActivation(env, "", a)
	}
	return nil
}

// activationPrefix comes before an activation link the admin must hand
// over.
const activationPrefix = "no mail server configured: give this link to the person: "

func printActivation(env *Env, email string, a client.Activation) {
	switch {
	case a.Link != "":
		fmt.Fprintln(env.Stdout, activationPrefix+a.Link)
	case a.Mailed && email != "":
		fmt.Fprintf(env.Stdout, "the activation link went by e-mail to %s\n", email)
	case a.Mailed:
		fmt.Fprintln(env.Stdout, "the activation link went out by e-mail")
	default:
		fmt.Fprintln(env.Stdout, "the activation link could not be sent; send a new one with: warden user activation <id>")
	}
}

// parseUntil reads an RFC 3339 time or a duration from now (Go syntax, or
// whole days like 14d).
func parseUntil(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if days, err := strconv.Atoi(n); err == nil && days > 0 {
			return now.AddDate(0, 0, days), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return time.Time{}, fmt.Errorf("--until %q: want an RFC 3339 time like 2026-07-01T18:00:00Z or a duration like 72h or 14d", s)
	}
	return now.Add(d), nil
}

func runGrant(ctx context.Context, env *Env, args []string) error {
	in, args, err := begin(env, "grant", grantUsage, args)
	if err != nil {
		return err
	}
	fs := in.fs
	supporter := fs.String("supporter", "", "the supporter's id, SUP-XXXX-XXXX (create)")
	site := fs.String("site", "", "the site to open (create), or only grants of this site (list)")
	device := fs.String("device", "", "the device to open (create), or only grants of this device (list)")
	until := fs.String("until", "", "end of the grant: RFC 3339 time or a duration from now like 72h or 14d (create; default: until revoked)")
	tenant := fs.String("tenant", "", "only grants of this tenant and below (list; default: yours)")
	active := fs.Bool("active", false, "only grants in force now (list)")
	err = in.parse(args, map[string]arity{"create": {0, 0, ""}, "list": {0, 0, ""}, "show": {1, 1, "a grant id"},
		"revoke": {1, 1, "a grant id"}})
	if err != nil {
		return err
	}
	var expires string
	if in.sub == "create" {
		if err := in.require("supporter"); err != nil {
			return err
		}
		if (*site == "") == (*device == "") {
			return in.usageError("give exactly one of --site and --device")
		}
		if *until != "" {
			t, err := parseUntil(*until, time.Now())
			if err != nil {
				return in.usageError("%v", err)
			}
			expires = t.UTC().Format(time.RFC3339Nano)
		}
	}
	c, err := in.client()
	if err != nil {
		return err
	}
	switch in.sub {
	case "create":
		g, err := c.Grant(ctx, *supporter, *site, *device, expires)
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
		if in.json {
			return printJSON(env, gs)
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATE\tSUPPORTER ID\tSUPPORTER\tOPENS\tTENANT\tEXPIRES\tCREATED")
		for _, g := range gs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s %s\t%s\t%s\t%s\n", g.ID, g.State, g.SupporterID, shorten(g.Supporter, 40),
				grantKind(g), grantTarget(g), g.TenantID, localTimePtr(g.ExpiresAt, "never"), localTime(g.CreatedAt))
		}
		return tw.Flush()
	case "show":
		g, err := c.GrantByID(ctx, in.arg(0))
		if err != nil {
			return fmt.Errorf("show grant: %w", err)
		}
		return printJSON(env, g)
	case "revoke":
		if err := c.RevokeGrant(ctx, in.arg(0)); err != nil {
			return fmt.Errorf("revoke grant %s: %w", in.arg(0), err)
		}
		fmt.Fprintf(env.Stderr, "grant %s revoked\n", in.arg(0))
	}
	return nil
}

func grantKind(g api.Grant) string {
	if g.SiteID != "" {
		return "site"
	}
	return "device"
}

func grantTarget(g api.Grant) string { return g.SiteID + g.DeviceID }

func grantUntil(g api.Grant) string {
	if g.ExpiresAt == nil {
		return "until revoked"
	}
	return "until " + localTime(*g.ExpiresAt)
}

// tokenScopes are what a token may do; none listed means both.
func tokenScopes(t api.Token) string {
	if len(t.Scopes) == 0 {
		return store.ScopeRead + "," + store.ScopeWrite
	}
	return strings.Join(t.Scopes, ",")
}

func tokenValidity(t api.Token) string {
	if t.ExpiresAt == nil {
		return "until revoked"
	}
	return "until " + localTime(*t.ExpiresAt)
}

// selfError explains the answer to an account's own endpoints called with
// the operator's bootstrap token.
func selfError(what string, err error) error {
	if client.StatusOf(err) == http.StatusForbidden && strings.Contains(err.Error(), "bootstrap") {
		return fmt.Errorf("%s: %w; API tokens belong to a person's account: sign in with \"warden login --email …\" and use the token it prints", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func runToken(ctx context.Context, env *Env, args []string) error {
	in, args, err := begin(env, "token", tokenUsage, args)
	if err != nil {
		return err
	}
	fs := in.fs
	name := fs.String("name", "", "what the token is for (create)")
	readOnly := fs.Bool("read-only", false, "the token may only read (create)")
	ttl := fs.Duration("ttl", 0, "lifetime, e.g. 720h, at most that of the token used (create; default: until revoked, or until the token used ends)")
	err = in.parse(args, map[string]arity{"create": {0, 0, ""}, "list": {0, 0, ""}, "revoke": {1, 1, "a token id"}})
	if err != nil {
		return err
	}
	if in.sub == "create" {
		if err := in.require("name"); err != nil {
			return err
		}
		if *ttl < 0 {
			return in.usageError("--ttl must be positive")
		}
	}
	c, err := in.client()
	if err != nil {
		return err
	}
	switch in.sub {
	case "create":
		var scopes []string
		if *readOnly {
			scopes = []string{store.ScopeRead}
		}
		life := ""
		if *ttl > 0 {
			life = ttl.String()
		}
		t, err := c.CreateToken(ctx, *name, scopes, life)
		if err != nil {
			return selfError("create token", err)
		}
		if in.json {
			return printJSON(env, t)
		}
		fmt.Fprintln(env.Stdout, t.Token)
		fmt.Fprintf(env.Stderr, "token %s (%q, %s) made, valid %s; its secret above is shown only now\n",
			t.ID, t.Name, tokenScopes(t), tokenValidity(t))
	case "list":
		ts, err := c.Tokens(ctx)
		if err != nil {
			return selfError("list tokens", err)
		}
		if in.json {
			return printJSON(env, ts)
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tCREATED\tEXPIRES\tLAST USED")
		for _, t := range ts {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, shorten(t.Name, 40), tokenScopes(t),
				localTime(t.CreatedAt), localTimePtr(t.ExpiresAt, "never"), localTimePtr(t.LastUsedAt, "never"))
		}
		return tw.Flush()
	case "revoke":
		if err := c.RevokeToken(ctx, in.arg(0)); err != nil {
			return selfError("revoke token "+in.arg(0), err)
		}
		fmt.Fprintf(env.Stderr, "token %s revoked\n", in.arg(0))
	}
	return nil
}

func runLogin(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet("login", loginUsage, env.Stderr)
	var cf clientFlags
	fs.StringVar(&cf.server, "server", "https://localhost:8443", "Warden server URL")
	fs.StringVar(&cf.ca, "ca", "", "CA certificate file to trust (default: ./warden-data/ca.pem if present)")
	email := fs.String("email", "", "your e-mail address")
	totp := fs.String("totp", "", "the one-time code of your authenticator app, if two-factor sign-in is on")
	ttl := fs.Duration("ttl", 30*24*time.Hour, "lifetime of the API token; 0: until revoked")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError(env, "login", "takes no arguments, got %q", strings.Join(fs.Args(), " "))
	}
	if *email == "" {
		return usageError(env, "login", "--email is required")
	}
	if *ttl < 0 {
		return usageError(env, "login", "--ttl must not be negative")
	}
	password, err := readPassword(env)
	if err != nil {
		return err
	}
	anon, err := client.NewAnonymous(cf.server, cf.caFile())
	if err != nil {
		return err
	}
	sc, s, err := anon.Login(ctx, *email, password, *totp)
	if err != nil {
		if client.StatusOf(err) == http.StatusUnauthorized && *totp == "" && strings.Contains(err.Error(), "TOTP") {
			return fmt.Errorf("sign in: %w: run again with --totp CODE from your authenticator app", err)
		}
		return fmt.Errorf("sign in: %w", err)
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown host"
	}
	life := ""
	if *ttl > 0 {
		life = ttl.String()
	}
	tok, err := sc.CreateToken(ctx, shorten("warden cli "+host, 100), nil, life)
	if err != nil {
		return fmt.Errorf("make an API token: %w", err)
	}
	// The token is what the shell uses; the session is no longer needed.
	if err := sc.Logout(ctx); err != nil {
		fmt.Fprintf(env.Stderr, "warden login: could not end the sign-in session (it ends by itself): %v\n", err)
	}
	fmt.Fprintf(env.Stdout, "export WARDEN_SERVER=%s\n", shellQuote(cf.server))
	if ca := cf.caFile(); ca != "" {
		if abs, err := filepath.Abs(ca); err == nil {
			ca = abs
		}
		fmt.Fprintf(env.Stdout, "export WARDEN_CA=%s\n", shellQuote(ca))
	}
	fmt.Fprintf(env.Stdout, "export WARDEN_TOKEN=%s\n", shellQuote(tok.Token))
	fmt.Fprintf(env.Stderr, "signed in as %s (%s in tenant %s); API token %s %q made, valid %s (warden token revoke %s ends it)\n",
		s.User.Email, s.User.Role, s.User.TenantID, tok.ID, tok.Name, tokenValidity(tok), tok.ID)
	return nil
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

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
