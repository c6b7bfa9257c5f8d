package mail_test

import (
	"strings"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/mail"
	"github.com/warden-iot/warden/internal/mail/mailtest"
)

func TestAccountMails(t *testing.T) {
	warsaw, err := time.LoadLocation("Europe/Warsaw")
	if err != nil {
		warsaw = time.FixedZone("CET", 3600)
	}
	// 16:09 in Warsaw is 15:09 UTC; the mail states UTC.
	expires := time.Date(2026, 3, 14, 16, 9, 0, 0, warsaw)
	const when = "Saturday, 14 March 2026 at 15:09 UTC"
	const link = "https://warden.example.com/a?token=abc_DEF-123"

	tests := []struct {
		name    string
		m       mail.Message
		subject string
		says    []string
	}{
		{
			name:    "activation",
			m:       mail.Activation("jan@example.com", "Jan", link, expires, "Acme IoT"),
			subject: "Activate your Acme IoT account",
			says:    []string{"Hello Jan,", "activate your account", "used only once", when, "did not sign up for Acme IoT", "ignore this e-mail"},
		},
		{
			name:    "password reset",
			m:       mail.PasswordReset("jan@example.com", "", link, expires, ""),
			subject: "Reset your Warden password",
			says:    []string{"Hello,", "reset the password of your Warden account", "used only once", when, "did not request a password reset, you can ignore this e-mail"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.m
			if m.To != "jan@example.com" || m.Subject != tt.subject {
				t.Errorf("To %q, Subject %q; want jan@example.com, %q", m.To, m.Subject, tt.subject)
			}
			for _, s := range tt.says {
				if !strings.Contains(m.Text, s) {
					t.Errorf("text lacks %q:\n%s", s, m.Text)
				}
				if !strings.Contains(m.HTML, s) {
					t.Errorf("HTML lacks %q:\n%s", s, m.HTML)
				}
			}
			if got := mailtest.FindLink(m.Text, "https://warden.example.com/"); got != link {
				t.Errorf("link in text %q, want %q", got, link)
			}
			if !strings.Contains(m.HTML, `<a href="`+link+`"`) {
				t.Errorf("HTML lacks a link to %q:\n%s", link, m.HTML)
			}
		})
	}
}

func TestAccountMailHTMLIsEscaped(t *testing.T) {
	m := mail.Activation("a@example.com", `<script>alert("name")</script>`, `javascript:alert(1)`, time.Now(), `<b>Evil & Co</b>`)
	for _, bad := range []string{"<script>", "<b>", `href="javascript:`} {
		if strings.Contains(m.HTML, bad) {
			t.Errorf("HTML contains %q:\n%s", bad, m.HTML)
		}
	}
	for _, want := range []string{"&lt;script&gt;", "&lt;b&gt;Evil &amp; Co&lt;/b&gt;", `href="#ZgotmplZ"`} {
		if !strings.Contains(m.HTML, want) {
			t.Errorf("HTML lacks %q:\n%s", want, m.HTML)
		}
	}
	// The text part is plain text: nothing to escape.
	if !strings.Contains(m.Text, `Hello <script>alert("name")</script>,`) {
		t.Errorf("text mangles the name:\n%s", m.Text)
	}
}
