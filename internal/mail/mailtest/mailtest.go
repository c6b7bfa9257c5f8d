// Package mailtest runs a real SMTP server in the test process that keeps
// every message it receives, so tests can read the mails Warden sends.
package mailtest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/warden-iot/warden/internal/mail"
)

// Received is one message as the sink got it.
type Received struct {
	From string   // envelope sender (MAIL FROM)
	To   []string // envelope recipients (RCPT TO)
	Raw  []byte   // the message as transferred, headers and body
	// Header is the parsed header of Raw.
	Header netmail.Header
	// Subject is the decoded Subject header.
	Subject string
	// Text is the first text/plain part, transfer-decoded; HTML the first
	// text/html part.
	Text, HTML string
	// User is the name the client authenticated as, empty without AUTH.
	User string
	// TLS reports whether the message came over an encrypted connection.
	TLS bool
}

// Sink is an SMTP server on 127.0.0.1 that accepts every message and
// every AUTH PLAIN login.
type Sink struct {
	addr    *net.TCPAddr
	log     *testLogger
	tlsMode string

	mu       sync.Mutex
	messages []Received
	arrived  chan struct{} // closed and replaced when a message arrives
}

// Start runs a plain-text sink until the test ends.
func Start(t testing.TB) *Sink {
	t.Helper()
	return start(t, mail.TLSNone)
}

// StartTLS runs a sink speaking TLS from the first byte (mode
// mail.TLSImplicit) or offering STARTTLS (mail.TLSStartTLS), with a
// self-signed certificate for 127.0.0.1.
func StartTLS(t testing.TB, mode string) *Sink {
	t.Helper()
	if mode != mail.TLSImplicit && mode != mail.TLSStartTLS {
		t.Fatalf("mailtest: StartTLS(%q): want %q or %q", mode, mail.TLSImplicit, mail.TLSStartTLS)
	}
	return start(t, mode)
}

func start(t testing.TB, mode string) *Sink {
	t.Helper()
	var (
		ln        net.Listener
		tlsConfig *tls.Config
		err       error
	)
	if mode != mail.TLSNone {
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}, MinVersion: tls.VersionTLS12}
	}
	if mode == mail.TLSImplicit {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", tlsConfig)
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatalf("mailtest: listen: %v", err)
	}
	logger := &testLogger{t: t}
	s := &Sink{addr: ln.Addr().(*net.TCPAddr), log: logger, tlsMode: mode, arrived: make(chan struct{})}

	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{sink: s, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.TLSConfig = tlsConfig // offers STARTTLS on a plain listener
	srv.MaxMessageBytes = 10 << 20
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.ErrorLog = logger

	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		// Close misses the listener if Serve has not registered it yet.
		_ = ln.Close()
		if err := <-done; err != nil && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			t.Errorf("mailtest: serve: %v", err)
		}
		logger.stop()
	})
	return s
}

// selfSigned is a fresh certificate for 127.0.0.1 and localhost.
func selfSigned(t testing.TB) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("mailtest: key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mailtest"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("mailtest: certificate: %v", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// Addr is the sink's host:port.
func (s *Sink) Addr() string { return s.addr.String() }

// Config is a mail configuration sending to the sink from
// warden@example.com, without credentials. Its TLS is "none" for a sink
// made by Start; for StartTLS, the sink's mode, without verifying the
// self-signed certificate.
func (s *Sink) Config() mail.Config {
	return mail.Config{
		Host:               s.addr.IP.String(),
		Port:               s.addr.Port,
		From:               "Warden <warden@example.com>",
		TLS:                s.tlsMode,
		InsecureSkipVerify: s.tlsMode != mail.TLSNone,
		Timeout:            10 * time.Second,
	}
}

// Messages returns the messages received so far, oldest first.
func (s *Sink) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.messages...)
}

// Wait returns the messages once at least n have arrived. If ctx ends
// first, it returns those that did with an error.
func (s *Sink) Wait(ctx context.Context, n int) ([]Received, error) {
	for {
		s.mu.Lock()
		msgs, arrived := append([]Received(nil), s.messages...), s.arrived
		s.mu.Unlock()
		if len(msgs) >= n {
			return msgs, nil
		}
		select {
		case <-arrived:
		case <-ctx.Done():
			return msgs, fmt.Errorf("mailtest: waiting for %d messages, got %d: %w", n, len(msgs), context.Cause(ctx))
		}
	}
}

func (s *Sink) add(r Received) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = append(s.messages, r)
	close(s.arrived)
	s.arrived = make(chan struct{})
}

// session is one SMTP connection to the sink.
type session struct {
	sink *Sink
	conn *smtp.Conn
	user string
	from string
	to   []string
}

func (ss *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, username, _ string) error {
		ss.user = username
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, encrypted := ss.conn.TLSConnectionState()
	rec := Received{From: ss.from, To: append([]string(nil), ss.to...), Raw: raw, User: ss.user, TLS: encrypted}
	if err := parse(&rec); err != nil {
		ss.sink.log.Printf("message from %s: %v", ss.from, err)
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "unparsable message: " + err.Error()}
	}
	ss.sink.add(rec)
	return nil
}

func (ss *session) Reset() {
	ss.from = ""
	ss.to = nil
}

func (ss *session) Logout() error { return nil }

// parse fills the decoded fields of r from r.Raw.
func parse(r *Received) error {
	msg, err := netmail.ReadMessage(bytes.NewReader(r.Raw))
	if err != nil {
		return fmt.Errorf("read message: %w", err)
	}
	r.Header = msg.Header
	var dec mime.WordDecoder
	if r.Subject, err = dec.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		return fmt.Errorf("decode subject: %w", err)
	}
	return walk(r, msg.Header, msg.Body)
}

// walk reads one MIME entity with header h and body, descending into
// multipart entities, and keeps the first text/plain and text/html.
func walk(r *Received, h map[string][]string, body io.Reader) error {
	get := func(key string) string {
		if v := h[key]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	ct := get("Content-Type")
	if ct == "" {
		ct = "text/plain; charset=us-ascii"
	}
	mediaType, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("content type %q: %w", ct, err)
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			// NextRawPart leaves the transfer encoding to decode, for
			// every encoding alike.
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: %w", mediaType, err)
			}
			if err := walk(r, p.Header, p); err != nil {
				return err
			}
		}
	}
	if mediaType != "text/plain" && mediaType != "text/html" {
		return nil
	}
	var dr io.Reader
	switch cte := strings.ToLower(strings.TrimSpace(get("Content-Transfer-Encoding"))); cte {
	case "quoted-printable":
		dr = quotedprintable.NewReader(body)
	case "base64":
		dr = base64.NewDecoder(base64.StdEncoding, body) // skips line breaks
	case "", "7bit", "8bit", "binary":
		dr = body
	default:
		return fmt.Errorf("unknown transfer encoding %q", cte)
	}
	b, err := io.ReadAll(dr)
	if err != nil {
		return fmt.Errorf("%s: decode: %w", mediaType, err)
	}
	if cs := strings.ToLower(params["charset"]); cs != "" && cs != "utf-8" && cs != "us-ascii" {
		return fmt.Errorf("%s: unsupported charset %q", mediaType, cs)
	}
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	switch {
	case mediaType == "text/plain" && r.Text == "":
		r.Text = text
	case mediaType == "text/html" && r.HTML == "":
		r.HTML = text
	}
	return nil
}

// FindLink returns the first URL in text that starts with prefix, or "".
// The URL ends at white space, a quote or angle bracket; punctuation that
// ends a sentence (".,;:!?)") is not part of it.
func FindLink(text, prefix string) string {
	if prefix == "" {
		return ""
	}
	i := strings.Index(text, prefix)
	if i < 0 {
		return ""
	}
	link := text[i:]
	if end := strings.IndexAny(link, " \t\r\n\"'<>"); end >= 0 {
		link = link[:end]
	}
	if trimmed := strings.TrimRight(link, ".,;:!?)"); len(trimmed) >= len(prefix) {
		link = trimmed
	}
	return link
}

// testLogger sends the server's error log to the test log while the test
// runs, and nowhere once it ended.
type testLogger struct {
	t       testing.TB
	mu      sync.Mutex
	stopped bool
}

func (l *testLogger) Printf(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.t.Logf("mailtest: "+format, v...)
	}
}

func (l *testLogger) Println(v ...any) {
	l.Printf("%s", strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}

func (l *testLogger) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
}
