package cli

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/warden-iot/warden/internal/api"
)

const accountUsage = `account <subcommand> [flags]

Your own account, with a token of yours (warden login):
  show                          your account
  password                      change your password (current and new from
                                WARDEN_PASSWORD and WARDEN_NEW_PASSWORD, or
                                two lines of standard input)
  sessions                      your signed-in sessions
  end-session ID                sign one of them out
  totp start                    make a TOTP secret; add it to an authenticator
  totp confirm CODE             turn two-factor sign-in on with a code from it
  totp off                      turn it off (asks for the password)`

func runAccount(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(env.Stderr, "Usage: warden "+accountUsage)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	sub, rest := args[0], args[1:]
	if sub == "totp" && len(rest) > 0 {
		sub, rest = "totp "+rest[0], rest[1:]
	}
	fs := newFlagSet("account "+sub, accountUsage, env.Stderr)
	var cf clientFlags
	cf.register(fs)
	if err := parse(fs, rest); err != nil {
		return err
	}
	wantArgs := map[string]int{"end-session": 1, "totp confirm": 1}[sub]
	if fs.NArg() != wantArgs {
		return usageError(env, "account "+sub, "want %d argument(s), got %q", wantArgs, fs.Args())
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	switch sub {
	case "show":
		var u api.User
		if err := c.Do(ctx, http.MethodGet, "/api/v1/me", nil, nil, &u); err != nil {
			return err
		}
		return printJSON(env, u)
	case "password":
		in := bufio.NewReader(env.Stdin)
		cur, err := readSecret(env, in, "WARDEN_PASSWORD", "Current password: ")
		if err != nil {
			return err
		}
		next, err := readSecret(env, in, "WARDEN_NEW_PASSWORD", "New password: ")
		if err != nil {
			return err
		}
		if err := c.Do(ctx, http.MethodPut, "/api/v1/me/password", nil, map[string]string{"currentPassword": cur, "newPassword": next}, nil); err != nil {
			return err
		}
		fmt.Fprintln(env.Stderr, "password changed; your other sessions are signed out")
		return nil
	case "sessions":
		var out struct{ Sessions []api.SessionInfo }
		if err := c.Do(ctx, http.MethodGet, "/api/v1/me/sessions", nil, nil, &out); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSINCE\tLAST SEEN\tEXPIRES\tIP\tBROWSER")
		for _, s := range out.Sessions {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.CreatedAt.Local().Format(time.DateTime),
				s.LastSeenAt.Local().Format(time.DateTime), s.ExpiresAt.Local().Format(time.DateTime), s.IP, s.UserAgent)
		}
		return tw.Flush()
	case "end-session":
		return c.Do(ctx, http.MethodDelete, "/api/v1/me/sessions/"+fs.Arg(0), nil, nil, nil)
	case "totp start":
		var k struct{ Secret, URL string }
		if err := c.Do(ctx, http.MethodPost, "/api/v1/me/totp", nil, nil, &k); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "secret: %s\nurl: %s\n", k.Secret, k.URL)
		fmt.Fprintln(env.Stderr, "add it to an authenticator app, then: warden account totp confirm CODE")
		return nil
	case "totp confirm":
		if err := c.Do(ctx, http.MethodPost, "/api/v1/me/totp/confirm", nil, map[string]string{"code": fs.Arg(0)}, nil); err != nil {
			return err
		}
		fmt.Fprintln(env.Stderr, "two-factor sign-in is on: warden login now needs --totp")
		return nil
	case "totp off":
		pw, err := readPassword(env)
		if err != nil {
			return err
		}
		return c.Do(ctx, http.MethodDelete, "/api/v1/me/totp", nil, map[string]string{"password": pw}, nil)
	}
	fmt.Fprintln(env.Stderr, "Usage: warden "+accountUsage)
	return fmt.Errorf("%w: unknown subcommand %q", errUsage, sub)
}
