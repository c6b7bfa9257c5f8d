// Package mail sends Warden's e-mails through SMTP.
//
// A Sender opens one SMTP connection per message: mails are rare (account
// activation, password reset), so there is no pool to keep healthy. Bodies
// are UTF-8, quoted-printable; a message with HTML is sent as
// multipart/alternative with the text first.
package mail

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	netmail "net/mail"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Message is one e-mail to one recipient.
type Message struct {
	// To is the recipient, "bob@example.com" or "Bob <bob@example.com>".
	To string
	// ToName, if set, is the recipient's display name, replacing one in To.
	ToName string
	// Subject is one line of any UTF-8 text.
	Subject string
	// Text is the plain-text body, required; end it with a newline, as
	// a received body always ends with one.
	Text string
	// HTML is an optional HTML alternative of Text.
	HTML string
}

// Sender sends messages through the configured SMTP server. It is safe
// for concurrent use.
type Sender struct {
	cfg    Config
	cfgErr error
	log    *slog.Logger
}

// New makes a Sender. A bad cfg is not reported here but by every Send;
// call cfg.Validate at startup to fail early. log may be nil.
func New(cfg Config, log *slog.Logger) *Sender {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sender{log: log}
	r, err := cfg.resolve()
	switch {
	case !cfg.Enabled():
		s.cfgErr = errors.New("mail: not configured (no SMTP host)")
	case err != nil:
		s.cfgErr = fmt.Errorf("mail: config: %w", err)
	case cfg.From == "":
		s.cfgErr = errors.New("mail: config: missing sender address (From)")
	}
	s.cfg = r
	return s
}

// Send delivers m to the server, within ctx and the configured Timeout.
// It returns once the server accepted the message, with an error wrapping
// ctx's error if ctx ended first.
func (s *Sender) Send(ctx context.Context, m Message) error {
	if s.cfgErr != nil {
		return s.cfgErr
	}
	msg, err := s.compose(m)
	if err != nil {
		return err
	}
	addr := s.cfg.addr()

	ctx, cancel := context.WithTimeoutCause(ctx, s.cfg.Timeout,
		fmt.Errorf("timeout of %s exceeded: %w", s.cfg.Timeout, context.DeadlineExceeded))
	defer cancel()
	if ctx.Err() != nil {
		return fmt.Errorf("mail: send via %s: %w", addr, context.Cause(ctx))
	}

	client, err := gomail.NewClient(s.cfg.Host, s.clientOptions(ctx)...)
	if err != nil {
		return fmt.Errorf("mail: send via %s: %w", addr, err)
	}
	start := time.Now()
	err = client.DialAndSendWithContext(ctx, msg)
	switch {
	case err != nil && msg.IsDelivered():
		// The server took the message; only QUIT or closing failed.
		// Reporting failure would invite a second, duplicate mail.
		s.log.Debug("mail delivered, closing the connection failed", "server", addr, "err", err)
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("mail: send via %s: %w", addr, context.Cause(ctx))
	case err != nil:
		return fmt.Errorf("mail: send via %s: %w", addr, err)
	}
	s.log.Debug("mail sent", "server", addr, "to", m.To, "subject", m.Subject,
		"message_id", msg.GetMessageID(), "took", time.Since(start))
	return nil
}

// compose turns m into a go-mail message with all headers set.
func (s *Sender) compose(m Message) (*gomail.Msg, error) {
	if m.To == "" {
		return nil, errors.New("mail: message without recipient")
	}
	to, err := netmail.ParseAddress(m.To)
	if err != nil {
		// The address itself stays out of the error: errors get logged.
		return nil, fmt.Errorf("mail: invalid recipient address: %w", err)
	}
	if m.ToName != "" {
		to.Name = m.ToName
	}
	if m.Subject == "" {
		return nil, errors.New("mail: message without subject")
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		return nil, errors.New("mail: subject contains a line break")
	}
	if m.Text == "" {
		return nil, errors.New("mail: message without text body")
	}
	from, err := netmail.ParseAddress(s.cfg.From)
	if err != nil {
		return nil, fmt.Errorf("mail: invalid sender address: %w", err)
	}
	id, err := messageID(from.Address)
	if err != nil {
		return nil, err
	}

	msg := gomail.NewMsg(gomail.WithCharset(gomail.CharsetUTF8), gomail.WithEncoding(gomail.EncodingQP),
		gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(from)
	msg.ToMailAddress(to)
	msg.Subject(m.Subject)
	msg.SetDateWithValue(time.Now())
	msg.SetMessageIDWithValue(id)
	// RFC 3834: no vacation replies to account mails.
	msg.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

// messageID is a fresh Message-ID, without angle brackets, in the domain
// of the sender address.
func messageID(sender string) (string, error) {
	domain := "localhost"
	if i := strings.LastIndexByte(sender, '@'); i >= 0 && i < len(sender)-1 {
		domain = sender[i+1:]
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("mail: message ID: %w", err)
	}
	return hex.EncodeToString(b) + "@" + domain, nil
}

// clientOptions configure a go-mail client for one Send under ctx.
func (s *Sender) clientOptions(ctx context.Context) []gomail.Option {
	tlsConfig := &tls.Config{
		ServerName:         s.cfg.Host,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: s.cfg.InsecureSkipVerify, //nolint:gosec // operator's explicit choice
	}
	opts := []gomail.Option{
		gomail.WithPort(s.cfg.Port),
		// The whole Send is bounded by ctx, which closes the connection
		// when it ends; go-mail's per-command deadlines are a backstop that
		// must not fire first, or the error would not name the timeout.
		gomail.WithTimeout(s.cfg.Timeout + time.Second),
		gomail.WithTLSConfig(tlsConfig),
		gomail.WithDialContextFunc(s.dialer(ctx, tlsConfig)),
	}
	switch s.cfg.TLS {
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if s.cfg.Username != "" {
		// The first of these the server offers is used. PLAIN and LOGIN
		// refuse to run unencrypted except to localhost.
		opts = append(opts,
			gomail.WithOpportunisticSMTPAuth(
				gomail.SMTPAuthPlain, gomail.SMTPAuthLogin,
				gomail.SMTPAuthSCRAMSHA256, gomail.SMTPAuthSCRAMSHA1, gomail.SMTPAuthCramMD5),
			gomail.WithUsername(s.cfg.Username),
			gomail.WithPassword(s.cfg.Password))
	}
	return opts
}

// dialer connects to the server, with TLS from the start for TLSImplicit.
// The connection is closed when sendCtx ends, which aborts a conversation
// stuck past a cancellation and reaps connections go-mail leaves open on
// some errors.
func (s *Sender) dialer(sendCtx context.Context, tlsConfig *tls.Config) gomail.DialContextFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var (
			d    net.Dialer
			conn net.Conn
			err  error
		)
		if s.cfg.TLS == TLSImplicit {
			// A *tls.Conn, unwrapped, so go-mail sees the connection is
			// encrypted.
			conn, err = (&tls.Dialer{NetDialer: &d, Config: tlsConfig}).DialContext(ctx, network, addr)
		} else {
			conn, err = d.DialContext(ctx, network, addr)
		}
		if err != nil {
			return nil, err
		}
		context.AfterFunc(sendCtx, func() { _ = conn.Close() })
		return conn, nil
	}
}
