package cli

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/warden-iot/warden/internal/client"
)

const loginUsage = `login --email E [--totp CODE] [--ttl 30d] [--server URL] [--ca FILE]

Signs in with e-mail and password (and a one-time code with --totp if the
account has two-factor sign-in), makes an API token named
"warden cli <hostname>" and prints the shell lines that use it:

  export WARDEN_SERVER=…
  export WARDEN_TOKEN=…

so that  eval "$(warden login --email you@example.com)"  signs the shell in.

The password is read from WARDEN_PASSWORD, or from the terminal without
echo, or else as one line from standard input.`

func runLogin(ctx context.Context, env *Env, args []string) error {
	in := beginPlain(env, "login", loginUsage)
	email := in.fs.String("email", "", "your e-mail address")
	totp := in.fs.String("totp", "", "the one-time code of your authenticator app, if two-factor sign-in is on")
	ttl := durationFlagOf(in.fs, "ttl", 30*day, "lifetime of the API token, e.g. 30d or 12h; 0: until revoked")
	if err := in.parse(args, map[string]arity{"": {access: anonymous}}); err != nil {
		return err
	}
	if err := in.require("email"); err != nil {
		return err
	}
	if *ttl < 0 {
		return in.usageError("--ttl must not be negative")
	}
	password, err := readPassword(env)
	if err != nil {
		return err
	}
	anon, err := client.NewAnonymous(in.cf.server, in.cf.caFile())
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
	tok, err := sc.CreateToken(ctx, shorten("warden cli "+host, 100), nil, ttlString(*ttl))
	if err != nil {
		return fmt.Errorf("make an API token: %w", err)
	}
	// The token is what the shell uses; the session is no longer needed.
	if err := sc.Logout(ctx); err != nil {
		fmt.Fprintf(env.Stderr, "warden login: could not end the sign-in session (it ends by itself): %v\n", err)
	}
	if in.json {
		return printJSON(env, tok)
	}
	fmt.Fprintf(env.Stdout, "export WARDEN_SERVER=%s\n", shellQuote(in.cf.server))
	if ca := in.cf.caFile(); ca != "" {
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
