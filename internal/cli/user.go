package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/identity"
)

const userUsage = `user <subcommand> [flags]

Subcommands:
  create --email E --role R --first-name F --last-name L [--tenant T] [--phone P] [--company C] [address flags]
                        make an account in T (default: your tenant); prints
                        only its id on stdout. The person gets an activation
                        link by e-mail; without a mail server the link is
                        printed (on stderr), to hand over or to use with
                        "warden account activate LINK". Supporters get a
                        supporter id (SUP-XXXX-XXXX) that owners grant
                        access to.
  list [--tenant T]     list the accounts you can see, of T and below
  show ID               print an account
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

// checkRole is a usage error for a role that does not exist.
func (in *invocation) checkRole(r string) error {
	if identity.Role(r).Valid() {
		return nil
	}
	names := make([]string, len(identity.Roles))
	for i, x := range identity.Roles {
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
	one := arity{1, 1, "an account id", withToken}
	err = in.parse(args, map[string]arity{"create": {}, "list": {}, "show": one, "update": one,
		"disable": one, "enable": one, "unlock": one, "delete": one, "activation": one})
	if err != nil {
		return err
	}
	profile := apiv1.Profile{FirstName: in.stringGiven("first-name"), LastName: in.stringGiven("last-name"),
		Phone: in.stringGiven("phone"), Company: in.stringGiven("company")}
	patch := apiv1.UserPatch{Role: in.stringGiven("role"), Profile: profile}
	_, addrGiven := addr.merge(in, apiv1.Address{})
	switch in.sub {
	case "create":
		if err := in.require("email", "role", "first-name", "last-name"); err != nil {
			return err
		}
		if err := in.checkRole(*role); err != nil {
			return err
		}
		if a, ok := addr.merge(in, apiv1.Address{}); ok {
			profile.Address = &a
		}
	case "update":
		// The e-mail address (the sign-in name) cannot be changed.
		if in.given["role"] {
			if err := in.checkRole(*role); err != nil {
				return err
			}
		}
		if patch == (apiv1.UserPatch{}) && !addrGiven {
			return in.usageError("nothing to change: give --role, --first-name, --last-name, --phone, --company or address flags")
		}
	case "disable":
		patch = apiv1.UserPatch{Status: apiv1.Ptr("disabled")}
	case "enable":
		patch = apiv1.UserPatch{Status: apiv1.Ptr("active")}
	case "unlock":
		patch = apiv1.UserPatch{Unlock: true}
	}
	c, err := in.client()
	if err != nil {
		return err
	}
	uid := in.arg(0)
	switch in.sub {
	case "create":
		u, err := c.CreateUser(ctx, apiv1.NewUser{TenantID: *tenant, Email: in.fs.Lookup("email").Value.String(),
			Role: *role, Profile: profile})
		if err != nil {
			return fmt.Errorf("create user: %w", err)
		}
		if in.json {
			return printJSON(env, u)
		}
		fmt.Fprintln(env.Stdout, u.ID)
		fmt.Fprintf(env.Stderr, "user %s created: %s, %s in tenant %s, waiting for activation\n", u.ID, u.Email, u.Role, u.TenantID)
		if u.SupporterID != "" {
			fmt.Fprintf(env.Stderr, "supporter id: %s (owners grant access to this id)\n", u.SupporterID)
		}
		printActivation(env, env.Stderr, u.Email, client.Activation{Link: u.ActivationLink, Mailed: u.ActivationMailed})
	case "list":
		us, err := c.Users(ctx, *tenant)
		if err != nil {
			return fmt.Errorf("list users: %w", err)
		}
		return printList(in, us, "no accounts", []string{"ID", "EMAIL", "NAME", "ROLE", "STATUS", "TENANT", "SUPPORTER ID"},
			func(u apiv1.User) []any {
				return []any{u.ID, u.Email, shorten(u.FirstName+" "+u.LastName, 40), u.Role, u.Status, u.TenantID, dash(u.SupporterID)}
			})
	case "show":
		u, err := c.User(ctx, uid)
		if err != nil {
			return fmt.Errorf("show user: %w", err)
		}
		return printObject(in, u)
	case "update", "disable", "enable", "unlock":
		if in.sub == "update" && addrGiven {
			cur, err := c.User(ctx, uid)
			if err != nil {
				return fmt.Errorf("%s user %s: %w", in.sub, uid, err)
			}
			a, _ := addr.merge(in, cur.Address)
			patch.Address = &a
		}
		u, err := c.UpdateUser(ctx, uid, patch)
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
		printActivation(env, env.Stdout, "", a)
	}
	return nil
}

// activationPrefix comes before an activation link the admin must hand
// over.
const activationPrefix = "no mail server configured: give this link to the person (or use it with warden account activate): "

// printActivation says where the activation link went: a link to hand over
// goes to w, the rest to stderr.
func printActivation(env *Env, w io.Writer, email string, a client.Activation) {
	switch {
	case a.Link != "":
		fmt.Fprintln(w, activationPrefix+a.Link)
	case a.Mailed && email != "":
		fmt.Fprintf(env.Stderr, "the activation link went by e-mail to %s\n", email)
	case a.Mailed:
		fmt.Fprintln(env.Stderr, "the activation link went out by e-mail")
	default:
		fmt.Fprintln(env.Stderr, "the activation link could not be sent; send a new one with: warden user activation <id>")
	}
}
