package api_test

import (
	"strings"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/mail/mailtest"
	"github.com/warden-iot/warden/internal/server"
	"github.com/warden-iot/warden/internal/server/servertest"
	"github.com/warden-iot/warden/internal/tenancy"
)

// operatorAccount makes an active operator-admin account in the store and
// returns a client signed in with it.
func operatorAccount(t *testing.T, srv *server.Server, op *client.Client) *client.Client {
	t.Helper()
	hash, err := identity.HashPassword(alarmTestPassword, identity.DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	u := identity.User{ID: "usr_mailwarn", TenantID: tenancy.RootTenantID, Email: "ops@example.com", FirstName: "O", LastName: "P",
		Role: identity.RoleOperatorAdmin, Status: identity.UserActive, PasswordHash: hash, CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	if err := srv.Store().CreateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	sc, _, err := op.Anonymous().Login(t.Context(), u.Email, alarmTestPassword, "")
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	return sc
}

// TestMailSettingsWarnWithoutMailServer: e-mail preferences and an
// escalation e-mail are accepted without a mail server, and their answers
// (and the GETs) say that no mail is sent; with a mail server, or with
// e-mail off, there is no warning.
func TestMailSettingsWarnWithoutMailServer(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  server.Config
		warn bool
	}{
		{"no mail server", server.Config{}, true},
		{"mail server", server.Config{SMTP: mailtest.Start(t).Config()}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, op := servertest.Start(t, tc.cfg, nil)
			c := operatorAccount(t, srv, op)
			ctx := t.Context()
			check := func(what string, warnings []string, want bool, about string) {
				t.Helper()
				if !want {
					if len(warnings) != 0 {
						t.Errorf("%s: warnings %q", what, warnings)
					}
					return
				}
				if len(warnings) != 1 || !strings.HasPrefix(warnings[0], "no mail server is configured (--smtp-url): ") ||
					!strings.Contains(warnings[0], about) {
					t.Errorf("%s: warnings %q, want one about the missing mail server and %s", what, warnings, about)
				}
			}

			p, err := c.SetNotificationPrefs(ctx, apiv1.NotificationPrefs{Email: true})
			if err != nil || !p.Email {
				t.Fatalf("e-mail on: %+v, %v", p, err)
			}
			check("PUT e-mail on", p.Warnings, tc.warn, "alarm e-mails")
			// A round trip of what GET answered is accepted.
			if p, err = c.NotificationPrefs(ctx); err != nil || !p.Email {
				t.Fatalf("GET: %+v, %v", p, err)
			}
			check("GET e-mail on", p.Warnings, tc.warn, "alarm e-mails")
			p.Email = false
			if p, err = c.SetNotificationPrefs(ctx, p); err != nil || p.Email {
				t.Fatalf("e-mail off: %+v, %v", p, err)
			}
			check("PUT e-mail off", p.Warnings, false, "")
			var raw map[string]any
			if err := c.Do(ctx, "GET", "/api/v1/me/notifications", nil, nil, &raw); err != nil {
				t.Fatal(err)
			}
			if _, ok := raw["warnings"]; ok {
				t.Errorf("warnings shown with e-mail off: %v", raw)
			}

			e, err := c.SetEscalation(ctx, "", 15, "chief@example.com")
			if err != nil || e.DelayMinutes != 15 {
				t.Fatalf("escalation: %+v, %v", e, err)
			}
			check("PUT escalation", e.Warnings, tc.warn, "escalation e-mails")
			if e, err = c.Escalation(ctx, ""); err != nil || e.Email != "chief@example.com" {
				t.Fatalf("GET escalation: %+v, %v", e, err)
			}
			check("GET escalation", e.Warnings, tc.warn, "escalation e-mails")
			if e, err = c.SetEscalation(ctx, "", 0, ""); err != nil {
				t.Fatal(err)
			}
			check("escalation removed", e.Warnings, false, "")
		})
	}
}
