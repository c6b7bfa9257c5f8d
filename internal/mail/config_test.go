package mail

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		in   string
		want Config
	}{
		{
			in: "smtp://user:pass@smtp.example.com:587?from=warden@example.com&tls=starttls",
			want: Config{Host: "smtp.example.com", Port: 587, Username: "user", Password: "pass",
				From: "warden@example.com", TLS: TLSStartTLS},
		},
		{
			in:   "smtp://smtp.example.com?from=warden@example.com",
			want: Config{Host: "smtp.example.com", Port: 587, From: "warden@example.com", TLS: TLSStartTLS},
		},
		{
			in:   "smtp://smtp.example.com:465",
			want: Config{Host: "smtp.example.com", Port: 465, TLS: TLSImplicit},
		},
		{
			in:   "smtps://smtp.example.com/",
			want: Config{Host: "smtp.example.com", Port: 465, TLS: TLSImplicit},
		},
		{
			in:   "smtps://u@smtp.example.com:2465?tls=tls",
			want: Config{Host: "smtp.example.com", Port: 2465, Username: "u", TLS: TLSImplicit},
		},
		{
			in:   "smtp://localhost?tls=none",
			want: Config{Host: "localhost", Port: 25, TLS: TLSNone},
		},
		{
			in:   "smtp://[::1]:1025?tls=none",
			want: Config{Host: "::1", Port: 1025, TLS: TLSNone},
		},
		{
			// Escaped password and user, display name in from.
			in: "smtp://me%40example.com:p%40ss%3Aw%2Fo%23rd%20%25@mail.example.com:587?from=Warden%20%3Cwarden@example.com%3E",
			want: Config{Host: "mail.example.com", Port: 587, Username: "me@example.com", Password: "p@ss:w/o#rd %",
				From: "Warden <warden@example.com>", TLS: TLSStartTLS},
		},
		{
			in: "smtp://mail.example.com?timeout=5s&insecure_skip_verify=true",
			want: Config{Host: "mail.example.com", Port: 587, TLS: TLSStartTLS,
				Timeout: 5 * time.Second, InsecureSkipVerify: true},
		},
	}
	for _, tt := range tests {
		got, err := ParseURL(tt.in)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseURL(%q)\n got %+v\nwant %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseURLErrors(t *testing.T) {
	const secret = "s3cr3t-pw"
	tests := []struct{ in, want string }{
		{"", "missing scheme"},
		{"smtp.example.com:587", "unsupported scheme"},
		{"http://smtp.example.com", `unsupported scheme "http"`},
		{"smtp:smtp.example.com", "want smtp://host"},
		{"smtp://", "missing host"},
		{"smtp://u:" + secret + "@:587", "missing host"},
		{"smtp://u:" + secret + "@smtp.example.com:0", "out of range"},
		{"smtp://u:" + secret + "@smtp.example.com:70000", "out of range"},
		{"smtp://u:" + secret + "@smtp.example.com:abc", "invalid port"},
		{"smtp://u:" + secret + "%zz@smtp.example.com", "invalid %-escape"},
		{"smtp://u:" + secret + "#x@smtp.example.com", "escape '/' as %2F"},
		{"smtp://u:" + secret + "/x@smtp.example.com", "escape '/' as %2F"},
		{"smtp://u:" + secret + "@smtp.example.com#x", "fragment"},
		{"smtp://u:" + secret + "@smt p.example.com", "invalid character in host name"},
		{"smtp://:" + secret + "@smtp.example.com", "without user name"},
		{"smtp://u:" + secret + "@smtp.example.com/inbox", "unexpected path"},
		{"smtp://u:" + secret + "@smtp.example.com?tls=ssl", `tls="ssl"`},
		{"smtps://u:" + secret + "@smtp.example.com?tls=starttls", "contradicts scheme smtps"},
		{"smtp://u:" + secret + "@smtp.example.com?from=not-an-address", "invalid sender address"},
		{"smtp://u:" + secret + "@smtp.example.com?from=", "empty from"},
		{"smtp://u:" + secret + "@smtp.example.com?timeout=soon", "timeout="},
		{"smtp://u:" + secret + "@smtp.example.com?timeout=-1s", "positive duration"},
		{"smtp://u:" + secret + "@smtp.example.com?insecure_skip_verify=maybe", "want true or false"},
		{"smtp://u:" + secret + "@smtp.example.com?form=a@b.c", `unknown parameter "form"`},
		{"smtp://u:" + secret + "@smtp.example.com?tls=none&tls=tls", "given 2 times"},
		{"smtp://u:" + secret + "@smtp.example.com?a=%zz", "invalid %-escape"},
	}
	for _, tt := range tests {
		_, err := ParseURL(tt.in)
		if err == nil {
			t.Errorf("ParseURL(%q): no error, want one containing %q", tt.in, tt.want)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tt.want) {
			t.Errorf("ParseURL(%q) = %q, want it to contain %q", tt.in, msg, tt.want)
		}
		if !strings.HasPrefix(msg, "mail: parse URL: ") {
			t.Errorf("ParseURL(%q) = %q, want prefix %q", tt.in, msg, "mail: parse URL: ")
		}
		if strings.Contains(msg, "s3cr3t") {
			t.Errorf("ParseURL(%q) = %q: error reveals the password", tt.in, msg)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		in       Config
		port     int
		tlsMode  string
		wantsErr string
	}{
		{in: Config{Host: "h"}, port: 587, tlsMode: TLSStartTLS},
		{in: Config{Host: "h", Port: 465}, port: 465, tlsMode: TLSImplicit},
		{in: Config{Host: "h", TLS: TLSImplicit}, port: 465, tlsMode: TLSImplicit},
		{in: Config{Host: "h", TLS: TLSNone}, port: 25, tlsMode: TLSNone},
		{in: Config{Host: "h", Port: 2525}, port: 2525, tlsMode: TLSStartTLS},
		{in: Config{}, wantsErr: "missing host"},
		{in: Config{Host: "h", Port: 65536}, wantsErr: "out of range"},
		{in: Config{Host: "h", TLS: "ssl"}, wantsErr: "unknown TLS mode"},
		{in: Config{Host: "h", Password: "x"}, wantsErr: "without username"},
		{in: Config{Host: "h", Timeout: -time.Second}, wantsErr: "negative timeout"},
	}
	for _, tt := range tests {
		got, err := tt.in.resolve()
		if tt.wantsErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantsErr) {
				t.Errorf("resolve(%+v) error = %v, want %q", tt.in, err, tt.wantsErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("resolve(%+v): %v", tt.in, err)
			continue
		}
		if got.Port != tt.port || got.TLS != tt.tlsMode || got.Timeout != DefaultTimeout {
			t.Errorf("resolve(%+v) = port %d, TLS %q, timeout %s; want %d, %q, %s",
				tt.in, got.Port, got.TLS, got.Timeout, tt.port, tt.tlsMode, DefaultTimeout)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := Config{Host: "smtp.example.com", From: "warden@example.com"}
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate(%+v): %v", ok, err)
	}
	noFrom := Config{Host: "smtp.example.com"}
	if err := noFrom.Validate(); err == nil || !strings.Contains(err.Error(), "missing sender") {
		t.Errorf("Validate without From = %v, want missing sender", err)
	}
	if (Config{}).Enabled() || !ok.Enabled() {
		t.Error("Enabled: want false for the zero Config, true with a host")
	}
}

func TestConfigNeverPrintsPassword(t *testing.T) {
	c := Config{Host: "smtp.example.com", Port: 587, Username: "warden", Password: "hunter2-secret", From: "warden@example.com"}
	if s := c.String(); strings.Contains(s, "hunter2") || !strings.Contains(s, "warden:xxxxx@smtp.example.com:587") {
		t.Errorf("String() = %q, want the URL without the password", s)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "smtp", c)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "smtp", c)
	if strings.Contains(buf.String(), "hunter2") {
		t.Errorf("slog output reveals the password: %s", buf.String())
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"smtp://user:pass@smtp.example.com:587?from=warden@example.com&tls=starttls",
		"smtps://smtp.example.com",
		"smtp://[::1]:25?tls=none&timeout=3s",
		"smtp://me%40x:p%40ss%3Aw%2Fo%23rd@h?from=Warden%20%3Cw@example.com%3E&insecure_skip_verify=1",
		"smtp://h:0", "smtp://:p@h", "smtp:h", "smtp://h/x#y", "smtp://h?tls=none&tls=tls",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseURL(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "mail: parse URL: ") {
				t.Fatalf("ParseURL(%q) error %q lacks the prefix", s, err)
			}
			return
		}
		if c.Host == "" || c.Port < 1 || c.Port > 65535 || c.Timeout < 0 {
			t.Fatalf("ParseURL(%q) = %+v: invalid host, port or timeout", s, c)
		}
		switch c.TLS {
		case TLSStartTLS, TLSImplicit, TLSNone:
		default:
			t.Fatalf("ParseURL(%q) = %+v: TLS %q", s, c, c.TLS)
		}
		if c.Password != "" && c.Username == "" {
			t.Fatalf("ParseURL(%q) = %+v: password without user", s, c)
		}
		// What ParseURL returns, it reads back the same from c's URL...
		back, err := ParseURL(c.url().String())
		if err != nil {
			t.Fatalf("ParseURL(%q) = %+v, but its URL %q fails: %v", s, c, c.url(), err)
		}
		if back != c {
			t.Fatalf("round trip of %q:\n got %+v\nwant %+v", s, back, c)
		}
		// ...and from String, the same but for the password.
		red, err := ParseURL(c.String())
		if err != nil {
			t.Fatalf("ParseURL(String() of %+v): %v", c, err)
		}
		want := c
		if c.Password != "" {
			want.Password = "xxxxx"
		}
		if red != want {
			t.Fatalf("String() of %+v reads back as %+v", c, red)
		}
	})
}
