package cli

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/identity"
)

const tokenUsage = `token <subcommand> [flags]

API tokens act for the account that makes them, so these commands need a
token of a person's account ("warden login" makes one), not the operator's
bootstrap token.

Subcommands:
  create --name N [--read-only] [--ttl 30d]
                        make a token; prints only its secret, shown only
                        this once
  list                  list your tokens (without secrets)
  revoke ID             revoke one of your tokens`

func runToken(ctx context.Context, env *Env, args []string) error {
	in, args, err := begin(env, "token", tokenUsage, args)
	if err != nil {
		return err
	}
	fs := in.fs
	name := fs.String("name", "", "what the token is for (create)")
	readOnly := fs.Bool("read-only", false, "the token may only read (create)")
	ttl := durationFlagOf(fs, "ttl", 0, "lifetime, e.g. 30d or 12h, at most that of the token used (create; default: until revoked, or until the token used ends)")
	err = in.parse(args, map[string]arity{"create": {}, "list": {}, "revoke": {1, 1, "a token id", withToken}})
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
			scopes = []string{identity.ScopeRead}
		}
		t, err := c.CreateToken(ctx, *name, scopes, ttlString(*ttl))
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
		return printList(in, ts, "no tokens", []string{"ID", "NAME", "SCOPES", "CREATED", "EXPIRES", "LAST USED"},
			func(t apiv1.Token) []any {
				return []any{t.ID, shorten(t.Name, 40), tokenScopes(t), localTime(t.CreatedAt),
					localTimePtr(t.ExpiresAt, "never"), localTimePtr(t.LastUsedAt, "never")}
			})
	case "revoke":
		if err := c.RevokeToken(ctx, in.arg(0)); err != nil {
			return selfError("revoke token "+in.arg(0), err)
		}
		fmt.Fprintf(env.Stderr, "token %s revoked\n", in.arg(0))
	}
	return nil
}

// ttlString is a lifetime as the API reads it (a Go duration); "" for 0.
func ttlString(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return d.String()
}

// tokenScopes are what a token may do; none listed means both.
func tokenScopes(t apiv1.Token) string {
	if len(t.Scopes) == 0 {
		return identity.ScopeRead + "," + identity.ScopeWrite
	}
	return strings.Join(t.Scopes, ",")
}

func tokenValidity(t apiv1.Token) string {
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
