package mail_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/mail"
	"github.com/warden-iot/warden/internal/mail/mailtest"
)

// wait returns the sink's first n messages, failing the test after 10s.
func wait(t *testing.T, sink *mailtest.Sink, n int) []mailtest.Received {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	msgs, err := sink.Wait(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func TestSendWithAuth(t *testing.T) {
	sink := mailtest.Start(t)
	cfg := sink.Config()
	cfg.Username = "warden-smtp"
	cfg.Password = "hunter2-very-secret"
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	m := mail.Message{
		To:      "jan@example.com",
		ToName:  "Jan Brzęczyszczykiewicz",
		Subject: "Zażółć gęślą jaźń",
		Text:    "Grüße aus Köln!\nZażółć gęślą jaźń — ☃\n",
		HTML:    "<p>Grüße aus Köln!</p>",
	}
	if err := mail.New(cfg, log).Send(t.Context(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := wait(t, sink, 1)[0]

	if got.User != "warden-smtp" {
		t.Errorf("authenticated as %q, want warden-smtp", got.User)
	}
	if got.From != "warden@example.com" {
		t.Errorf("MAIL FROM %q, want warden@example.com", got.From)
	}
	if len(got.To) != 1 || got.To[0] != "jan@example.com" {
		t.Errorf("RCPT TO %q, want [jan@example.com]", got.To)
	}
	if got.Subject != m.Subject {
		t.Errorf("Subject %q, want %q", got.Subject, m.Subject)
	}
	if got.Text != m.Text {
		t.Errorf("Text %q, want %q", got.Text, m.Text)
	}
	if got.HTML != m.HTML {
		t.Errorf("HTML %q, want %q", got.HTML, m.HTML)
	}

	to, err := got.Header.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Name != m.ToName || to[0].Address != m.To {
		t.Errorf("To header %q = %v, %v; want %s <%s>", got.Header.Get("To"), to, err, m.ToName, m.To)
	}
	from, err := got.Header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Name != "Warden" || from[0].Address != "warden@example.com" {
		t.Errorf("From header %q = %v, %v", got.Header.Get("From"), from, err)
	}
	date, err := got.Header.Date()
	if err != nil || time.Since(date).Abs() > time.Minute {
		t.Errorf("Date header %q = %v, %v; want about now", got.Header.Get("Date"), date, err)
	}
	if id := got.Header.Get("Message-Id"); !regexp.MustCompile(`^<[0-9a-f]{32}@example\.com>$`).MatchString(id) {
		t.Errorf("Message-ID %q, want <hex@example.com>", id)
	}
	if v := got.Header.Get("Auto-Submitted"); v != "auto-generated" {
		t.Errorf("Auto-Submitted %q, want auto-generated", v)
	}
	if ct := got.Header.Get("Content-Type"); !strings.HasPrefix(ct, "multipart/alternative") {
		t.Errorf("Content-Type %q, want multipart/alternative", ct)
	}
	// 7-bit clean on the wire: the UTF-8 is encoded, not sent raw.
	for i, b := range got.Raw {
		if b >= 0x80 {
			t.Errorf("raw message has byte %#x at %d; want 7-bit", b, i)
			break
		}
	}

	if strings.Contains(logs.String(), "hunter2") {
		t.Errorf("log reveals the password:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "jan@example.com") || !strings.Contains(logs.String(), "level=DEBUG") {
		t.Errorf("want a debug line with the recipient, got:\n%s", logs.String())
	}
}

func TestSendTLS(t *testing.T) {
	for _, mode := range []string{mail.TLSImplicit, mail.TLSStartTLS} {
		t.Run(mode, func(t *testing.T) {
			sink := mailtest.StartTLS(t, mode)
			cfg := sink.Config()
			cfg.Username, cfg.Password = "warden-smtp", "secret"
			m := mail.Message{To: "jan@example.com", Subject: "Zażółć gęślą jaźń", Text: "Grüße\n"}
			if err := mail.New(cfg, nil).Send(t.Context(), m); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := wait(t, sink, 1)[0]
			if !got.TLS || got.User != "warden-smtp" || got.Subject != m.Subject || got.Text != m.Text {
				t.Errorf("got TLS %v, user %q, subject %q, text %q", got.TLS, got.User, got.Subject, got.Text)
			}

			// Without InsecureSkipVerify the self-signed certificate fails.
			cfg.InsecureSkipVerify = false
			err := mail.New(cfg, nil).Send(t.Context(), m)
			if err == nil || !strings.Contains(err.Error(), "certificate") {
				t.Errorf("Send with an untrusted certificate = %v, want a certificate error", err)
			}
		})
	}
}

func TestSendWithoutAuth(t *testing.T) {
	sink := mailtest.Start(t)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	m := mail.Message{To: "Ana <ana@example.org>", Subject: "Grüße", Text: "Grüße\n"}
	if err := mail.New(sink.Config(), log).Send(t.Context(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := wait(t, sink, 1)[0]
	if got.User != "" || got.TLS {
		t.Errorf("User %q, TLS %v; want none, false", got.User, got.TLS)
	}
	if got.Subject != "Grüße" || got.Text != "Grüße\n" || got.HTML != "" {
		t.Errorf("got subject %q, text %q, html %q", got.Subject, got.Text, got.HTML)
	}
	if ct := got.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") || !strings.Contains(strings.ToLower(ct), "utf-8") {
		t.Errorf("Content-Type %q, want text/plain; charset=UTF-8", ct)
	}
	if to, err := got.Header.AddressList("To"); err != nil || to[0].Name != "Ana" {
		t.Errorf("To %q: want the name from the address", got.Header.Get("To"))
	}
	if logs.Len() != 0 {
		t.Errorf("logged above debug: %s", logs.String())
	}
}

func TestSendConcurrently(t *testing.T) {
	sink := mailtest.Start(t)
	s := mail.New(sink.Config(), nil)
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- s.Send(t.Context(), mail.Message{
				To: fmt.Sprintf("user%d@example.com", i), Subject: fmt.Sprintf("mail %d", i), Text: "hi",
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	ids := map[string]bool{}
	for _, m := range wait(t, sink, n) {
		ids[m.Header.Get("Message-Id")] = true
	}
	if len(ids) != n {
		t.Errorf("%d distinct Message-IDs among %d mails", len(ids), n)
	}
}

// token43 is as long as a base64url-encoded 32-byte token.
const token43 = "abc_DEF-123abc_DEF-123abc_DEF-123abc_DEF-12"

func TestLinkSurvivesEncoding(t *testing.T) {
	if len(token43) != 43 {
		t.Fatalf("token is %d characters, want 43", len(token43))
	}
	const prefix = "https://warden.example.com/"
	expires := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	for _, link := range []string{
		prefix + "activate?token=abc_DEF-123",
		prefix + "account/activate?token=" + token43,
		prefix + "account/activate?token=" + token43 + "&next=%2Fdevices%3Fpage%3D2",
	} {
		t.Run(link[len(prefix):], func(t *testing.T) {
			sink := mailtest.Start(t)
			m := mail.Activation("jan@example.com", "Jan Kowalski", link, expires, "Warden")
			if err := mail.New(sink.Config(), nil).Send(t.Context(), m); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := wait(t, sink, 1)[0]
			if l := mailtest.FindLink(got.Text, prefix); l != link {
				t.Errorf("link in text: %q\nwant %q\ntext:\n%s", l, link, got.Text)
			}
			if !strings.Contains(got.HTML, `href="`+strings.ReplaceAll(link, "&", "&amp;")+`"`) {
				t.Errorf("HTML lacks href of %q:\n%s", link, got.HTML)
			}
			if len(prefix+"account/activate?token=")+len(token43) > 76 && strings.Contains(string(got.Raw), link) {
				t.Errorf("link appears unencoded on the wire; the test does not exercise line wrapping")
			}
		})
	}
}

func TestSendUnreachable(t *testing.T) {
	// A port that was free a moment ago: nothing listens there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close()

	cfg := mail.Config{Host: "127.0.0.1", Port: addr.Port, From: "warden@example.com", TLS: mail.TLSNone}
	err = mail.New(cfg, nil).Send(t.Context(), mail.Message{To: "a@example.com", Subject: "s", Text: "t"})
	if err == nil {
		t.Fatal("Send to a closed port succeeded")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), addr.String()) {
		t.Errorf("error %q: want connection refused, naming %s", err, addr)
	}
}

// silentServer accepts connections and never says a word.
func silentServer(t *testing.T) *net.TCPAddr {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().(*net.TCPAddr)
}

func TestSendCancelled(t *testing.T) {
	msg := mail.Message{To: "a@example.com", Subject: "s", Text: "t"}

	t.Run("before", func(t *testing.T) {
		sink := mailtest.Start(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := mail.New(sink.Config(), nil).Send(ctx, msg)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Send = %v, want context.Canceled", err)
		}
		if n := len(sink.Messages()); n != 0 {
			t.Errorf("sink got %d messages", n)
		}
	})

	t.Run("during", func(t *testing.T) {
		addr := silentServer(t)
		cfg := mail.Config{Host: "127.0.0.1", Port: addr.Port, From: "warden@example.com", TLS: mail.TLSNone, Timeout: time.Minute}
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := mail.New(cfg, nil).Send(ctx, msg)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Send = %v, want context.DeadlineExceeded", err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("Send took %s after its context ended", took)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		addr := silentServer(t)
		cfg := mail.Config{Host: "127.0.0.1", Port: addr.Port, From: "warden@example.com", TLS: mail.TLSNone, Timeout: 200 * time.Millisecond}
		err := mail.New(cfg, nil).Send(t.Context(), msg)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timeout of 200ms exceeded") {
			t.Errorf("Send = %v, want the timeout named", err)
		}
	})
}

func TestSendRequiresSTARTTLS(t *testing.T) {
	sink := mailtest.Start(t)
	cfg := sink.Config()
	cfg.TLS = mail.TLSStartTLS
	err := mail.New(cfg, nil).Send(t.Context(), mail.Message{To: "a@example.com", Subject: "s", Text: "t"})
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("Send to a server without STARTTLS = %v, want an error about STARTTLS", err)
	}
}

func TestSendRejects(t *testing.T) {
	sink := mailtest.Start(t)
	s := mail.New(sink.Config(), nil)
	ok := mail.Message{To: "a@example.com", Subject: "s", Text: "t"}
	tests := []struct {
		name string
		edit func(*mail.Message)
		want string
	}{
		{"no recipient", func(m *mail.Message) { m.To = "" }, "without recipient"},
		{"bad recipient", func(m *mail.Message) { m.To = "not an address" }, "invalid recipient"},
		{"no subject", func(m *mail.Message) { m.Subject = "" }, "without subject"},
		{"header injection", func(m *mail.Message) { m.Subject = "hi\r\nBcc: x@example.com" }, "line break"},
		{"no text", func(m *mail.Message) { m.Text = "" }, "without text"},
	}
	for _, tt := range tests {
		m := ok
		tt.edit(&m)
		if err := s.Send(t.Context(), m); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Send = %v, want %q", tt.name, err, tt.want)
		}
	}
	if n := len(sink.Messages()); n != 0 {
		t.Errorf("sink got %d messages", n)
	}

	if err := mail.New(mail.Config{}, nil).Send(t.Context(), ok); err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Errorf("Send without config = %v, want not configured", err)
	}
	noFrom := sink.Config()
	noFrom.From = ""
	if err := mail.New(noFrom, nil).Send(t.Context(), ok); err == nil || !strings.Contains(err.Error(), "missing sender") {
		t.Errorf("Send without From = %v, want missing sender", err)
	}
}

func TestNameCannotInjectHeaders(t *testing.T) {
	sink := mailtest.Start(t)
	m := mail.Message{To: "a@example.com", ToName: "Eve\" <eve@evil.example>\r\nBcc: eve@evil.example", Subject: "s", Text: "t"}
	if err := mail.New(sink.Config(), nil).Send(t.Context(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := wait(t, sink, 1)[0]
	if len(got.To) != 1 || got.To[0] != "a@example.com" || got.Header.Get("Bcc") != "" {
		t.Errorf("recipients %q, Bcc %q: name leaked into headers", got.To, got.Header.Get("Bcc"))
	}
	to, err := got.Header.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Address != "a@example.com" {
		t.Errorf("To header %q = %v, %v", got.Header.Get("To"), to, err)
	}
}
