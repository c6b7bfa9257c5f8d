package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/identity"
)

const accountUsage = `account <subcommand> [flags]

Subcommands:
  activate LINK         set the first password of a new account with the
                        activation link "warden user create" printed (or the
                        link's token), without a browser; the server is the
                        link's unless --server or WARDEN_SERVER says otherwise
  show                  your account
  password              change your password
  sessions              your signed-in sessions
  end-session ID        sign one of them out
  totp start            make a TOTP secret; add it to an authenticator
  totp confirm CODE     turn two-factor sign-in on with a code from it
  totp off              turn it off (asks for the password)

All but activate act with a token of yours (warden login).
Passwords are read from WARDEN_PASSWORD (activate, totp off, and the
current one of password) and WARDEN_NEW_PASSWORD (the new one of password),
else from the terminal without echo, else as lines of standard input. A new
password has at least 12 characters.`

func runAccount(ctx context.Context, env *Env, args []string) error {
	in, args, err := begin(env, "account", accountUsage, args)
	if err != nil {
		return err
	}
	err = in.parse(args, map[string]arity{"activate": {1, 1, "the activation link or its token", anonymous}, "show": {},
		"password": {}, "sessions": {}, "end-session": {1, 1, "a session id", withToken},
		"totp start": {}, "totp confirm": {1, 1, "a code of your authenticator app", withToken}, "totp off": {}})
	if err != nil {
		return err
	}
	if in.sub == "activate" {
		return accountActivate(ctx, in)
	}
	c, err := in.client()
	if err != nil {
		return err
	}
	switch in.sub {
	case "show":
		var u apiv1.User
		if err := c.Do(ctx, http.MethodGet, "/api/v1/me", nil, nil, &u); err != nil {
			return selfError("show your account", err)
		}
		return printObject(in, u)
	case "password":
		rd := bufio.NewReader(env.Stdin)
		cur, err := readSecret(env, rd, "WARDEN_PASSWORD", "Current password: ")
		if err != nil {
			return err
		}
		next, err := readSecret(env, rd, "WARDEN_NEW_PASSWORD", "New password: ")
		if err != nil {
			return err
		}
		if err := identity.CheckPassword(next, ""); err != nil {
			return fmt.Errorf("new password: %w", err)
		}
		if err := c.Do(ctx, http.MethodPut, "/api/v1/me/password", nil, apiv1.PasswordChange{CurrentPassword: cur, NewPassword: next}, nil); err != nil {
			return selfError("change the password", err)
		}
		fmt.Fprintln(env.Stderr, "password changed; your other sessions are signed out")
	case "sessions":
		var out apiv1.SessionList
		if err := c.Do(ctx, http.MethodGet, "/api/v1/me/sessions", nil, nil, &out); err != nil {
			return selfError("list sessions", err)
		}
		return printList(in, out.Sessions, "no signed-in sessions", []string{"ID", "SINCE", "LAST SEEN", "EXPIRES", "IP", "BROWSER"},
			func(s apiv1.SessionInfo) []any {
				return []any{s.ID, localTime(s.CreatedAt), localTime(s.LastSeenAt), localTime(s.ExpiresAt), s.IP, dash(shorten(s.UserAgent, 60))}
			})
	case "end-session":
		if err := c.Do(ctx, http.MethodDelete, "/api/v1/me/sessions/"+url.PathEscape(in.arg(0)), nil, nil, nil); err != nil {
			return selfError("end session "+in.arg(0), err)
		}
		fmt.Fprintf(env.Stderr, "session %s ended\n", in.arg(0))
	case "totp start":
		var k apiv1.TOTPSetup
		if err := c.Do(ctx, http.MethodPost, "/api/v1/me/totp", nil, nil, &k); err != nil {
			return selfError("start two-factor sign-in", err)
		}
		if err := printObject(in, k); err != nil {
			return err
		}
		fmt.Fprintln(env.Stderr, "add it to an authenticator app, then: warden account totp confirm CODE")
	case "totp confirm":
		if err := c.Do(ctx, http.MethodPost, "/api/v1/me/totp/confirm", nil, apiv1.TOTPCode{Code: in.arg(0)}, nil); err != nil {
			return selfError("confirm two-factor sign-in", err)
		}
		fmt.Fprintln(env.Stderr, "two-factor sign-in is on: warden login now needs --totp")
	case "totp off":
		pw, err := readPassword(env)
		if err != nil {
			return err
		}
		if err := c.Do(ctx, http.MethodDelete, "/api/v1/me/totp", nil, apiv1.PasswordCheck{Password: pw}, nil); err != nil {
			return selfError("turn two-factor sign-in off", err)
		}
		fmt.Fprintln(env.Stderr, "two-factor sign-in is off")
	}
	return nil
}

// accountActivate sets a new account's first password with its activation
// link.
func accountActivate(ctx context.Context, in *invocation) error {
	link := in.arg(0)
	token := link
	if u, err := url.Parse(link); err == nil && u.Scheme != "" && u.Host != "" {
		token = u.Query().Get("token")
		if token == "" {
			return in.usageError("%s is not an activation link: it has no token", link)
		}
		// The link names the server people reach; use it unless told
		// otherwise.
		if !in.given["server"] {
			in.cf.server = u.Scheme + "://" + u.Host
		}
	}
	password, err := readPassword(in.env)
	if err != nil {
		return err
	}
	if err := identity.CheckPassword(password, ""); err != nil {
		return fmt.Errorf("%w: choose another password", err)
	}
	anon, err := client.NewAnonymous(in.cf.server, in.cf.caFile())
	if err != nil {
		return err
	}
	u, err := anon.Activate(ctx, token, password)
	if err != nil {
		var ae *client.Error
		if errors.As(err, &ae) && ae.Status == http.StatusBadRequest && strings.Contains(ae.Message, "password") {
			return fmt.Errorf("activate: %w: choose another password", err)
		}
		return fmt.Errorf("activate: %w", err)
	}
	if in.json {
		return printJSON(in.env, u)
	}
	fmt.Fprintf(in.env.Stderr, "account %s (%s) activated; sign in with: warden login --email %s\n", u.ID, u.Email, shellQuote(u.Email))
	return nil
}
