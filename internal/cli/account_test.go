package cli

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/server"
	"github.com/warden-iot/warden/internal/server/servertest"
)

func TestAccountCommands(t *testing.T) {
	const op = "cli-account-operator"
	srv, c := servertest.Start(t, server.Config{AdminToken: op}, nil)
	t.Setenv("WARDEN_SERVER", "https://"+srv.HTTPAddr())
	t.Setenv("WARDEN_TOKEN", op)
	t.Setenv("WARDEN_CA", srv.CAFile())
	u, err := c.CreateUser(t.Context(), apiv1.NewUser{Role: "operator-service", Email: "desk@maker.example", Profile: apiv1.Profile{FirstName: apiv1.Ptr("Dora"), LastName: apiv1.Ptr("Desk")}})
	if err != nil {
		t.Fatal(err)
	}
	link, _ := url.Parse(u.ActivationLink)
	if _, err := c.Anonymous().Activate(t.Context(), link.Query().Get("token"), peoplePassword); err != nil {
		t.Fatal(err)
	}
	t.Setenv("WARDEN_PASSWORD", peoplePassword)
	out, _ := mustRun(t, "login", "--email", "desk@maker.example")
	t.Setenv("WARDEN_TOKEN", exported(t, out, "WARDEN_TOKEN"))

	out, _ = mustRun(t, "account", "show", "--json")
	if me := decodeJSON[apiv1.User](t, out); me.Email != "desk@maker.example" || me.TOTPEnabled {
		t.Fatalf("account show: %+v", me)
	}
	mustRun(t, "account", "sessions")

	// Two-factor sign-in on, through the command line.
	out, _ = mustRun(t, "account", "totp", "start")
	var secret string
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "secret "); ok {
			secret = strings.TrimSpace(v)
		}
	}
	// Each use spends a code, so the three uses take the codes of three
	// steps, all within the one step of skew either way that is allowed.
	base := time.Now()
	code, err := identity.TOTPCode(secret, base.Add(-30*time.Second))
	if err != nil || secret == "" {
		t.Fatalf("totp start printed %q: %v", out, err)
	}
	wantFail(t, 1, []string{"does not match"}, "account", "totp", "confirm", "000000")
	mustRun(t, "account", "totp", "confirm", code)
	wantFail(t, 1, []string{"--totp"}, "login", "--email", "desk@maker.example")
	code, _ = identity.TOTPCode(secret, base)
	mustRun(t, "login", "--email", "desk@maker.example", "--totp", code)

	// A password change with both passwords on standard input.
	t.Setenv("WARDEN_PASSWORD", "")
	newPW := "a brand new passphrase"
	if _, errOut, code := runInput(t, peoplePassword+"\n"+newPW+"\n", "account", "password"); code != 0 {
		t.Fatalf("account password: exit %d: %s", code, errOut)
	}
	code, _ = identity.TOTPCode(secret, base.Add(30*time.Second))
	if _, _, err := c.Login(t.Context(), "desk@maker.example", newPW, code); err != nil {
		t.Errorf("sign-in with the new password: %v", err)
	}
	if _, errOut, code := runInput(t, newPW+"\n", "account", "totp", "off"); code != 0 {
		t.Fatalf("account totp off: exit %d: %s", code, errOut)
	}
	wantFail(t, 2, []string{"takes a session id"}, "account", "end-session")
}
