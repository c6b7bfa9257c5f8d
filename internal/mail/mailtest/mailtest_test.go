package mailtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// send hands raw to the sink with go-smtp's client, as user if not empty.
func send(t *testing.T, s *Sink, user string, raw string) {
	t.Helper()
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if user != "" {
		if err := c.Auth(sasl.NewPlainClient("", user, "any password")); err != nil {
			t.Fatalf("AUTH: %v", err)
		}
	}
	raw = strings.ReplaceAll(raw, "\n", "\r\n")
	if err := c.SendMail("from@example.com", []string{"to@example.com", "cc@example.com"}, strings.NewReader(raw)); err != nil {
		t.Fatalf("send: %v", err)
	}
	if err := c.Quit(); err != nil {
		t.Fatalf("QUIT: %v", err)
	}
}

func TestSinkDecodes(t *testing.T) {
	s := Start(t)
	send(t, s, "bob", `From: from@example.com
To: to@example.com
Subject: =?UTF-8?B?WmHFvMOzxYLEhyBnxJnFm2zEhSBqYcW6xYQ=?=
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"

--b1
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: base64

R3LDvMOfZSEKaHR0cHM6Ly9leGFtcGxlLmNvbS94P3Rva2Vu
PWFiY19ERUYtMTIz
--b1
Content-Type: text/html; charset=UTF-8
Content-Transfer-Encoding: quoted-printable

<a href=3D"https://example.com/x?token=3Dabc_DEF-123">Gr=C3=BC=C3=9Fe</a=
>
--b1--
`)
	send(t, s, "", `From: from@example.com
To: to@example.com
Subject: plain

just text
`)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	msgs, err := s.Wait(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	m := msgs[0]
	if m.Subject != "Zażółć gęślą jaźń" {
		t.Errorf("Subject %q", m.Subject)
	}
	if m.Text != "Grüße!\nhttps://example.com/x?token=abc_DEF-123" {
		t.Errorf("Text %q", m.Text)
	}
	if m.HTML != `<a href="https://example.com/x?token=abc_DEF-123">Grüße</a>` {
		t.Errorf("HTML %q", m.HTML)
	}
	if m.User != "bob" || m.From != "from@example.com" || strings.Join(m.To, ",") != "to@example.com,cc@example.com" {
		t.Errorf("User %q, From %q, To %q", m.User, m.From, m.To)
	}
	if p := msgs[1]; p.Text != "just text\n" || p.Subject != "plain" || p.User != "" {
		t.Errorf("second message: text %q, subject %q, user %q", p.Text, p.Subject, p.User)
	}
	if got := s.Messages(); len(got) != 2 {
		t.Errorf("Messages() has %d, want 2", len(got))
	}
}

func TestWaitEndsWithContext(t *testing.T) {
	s := Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if msgs, err := s.Wait(ctx, 1); err == nil || len(msgs) != 0 {
		t.Errorf("Wait on an empty sink = %d messages, %v; want an error", len(msgs), err)
	}
}

func TestFindLink(t *testing.T) {
	const p = "https://w.example/"
	tests := []struct{ text, want string }{
		{"open https://w.example/a?t=1 now", "https://w.example/a?t=1"},
		{"open https://w.example/a?t=1.", "https://w.example/a?t=1"},
		{"(https://w.example/a?t=1)", "https://w.example/a?t=1"},
		{`<a href="https://w.example/a?t=1&amp;x=2">`, "https://w.example/a?t=1&amp;x=2"},
		{"first https://other.example/ then\nhttps://w.example/b\n", "https://w.example/b"},
		{"no link here", ""},
		{"https://w.example/", "https://w.example/"},
	}
	for _, tt := range tests {
		if got := FindLink(tt.text, p); got != tt.want {
			t.Errorf("FindLink(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}
