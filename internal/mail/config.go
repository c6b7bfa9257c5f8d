package mail

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	netmail "net/mail"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Values of Config.TLS.
const (
	// TLSStartTLS connects in plain text and upgrades with STARTTLS; a
	// server without STARTTLS is an error. Default unless Port is 465.
	TLSStartTLS = "starttls"
	// TLSImplicit speaks TLS from the first byte ("SMTPS"). Default for
	// port 465.
	TLSImplicit = "tls"
	// TLSNone never encrypts. Credentials are then only sent to a server
	// on localhost.
	TLSNone = "none"
)

// DefaultTimeout bounds one Send when Config.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// Config says how to reach the SMTP server. The zero Config is disabled.
type Config struct {
	Host string
	// Port defaults to 465 for TLS "tls", 25 for "none" and 587 otherwise.
	Port               int
	Username, Password string
	// From is the sender, "warden@example.com" or
	// "Warden <warden@example.com>".
	From string
	// TLS is TLSStartTLS, TLSImplicit or TLSNone; empty picks TLSImplicit
	// for port 465 and TLSStartTLS otherwise.
	TLS                string
	InsecureSkipVerify bool
	// Timeout bounds a whole Send: connecting, TLS, AUTH and transfer.
	// Zero means DefaultTimeout.
	Timeout time.Duration
}

// Enabled reports whether mail is configured at all.
func (c Config) Enabled() bool { return c.Host != "" }

// Validate reports whether c is complete and usable by a Sender.
func (c Config) Validate() error {
	if _, err := c.resolve(); err != nil {
		return fmt.Errorf("mail: config: %w", err)
	}
	if c.From == "" {
		return errors.New("mail: config: missing sender address (From)")
	}
	return nil
}

// resolve checks c except for a missing From and fills in the defaults of
// Port, TLS and Timeout. Its errors lack a "mail: …" prefix.
func (c Config) resolve() (Config, error) {
	if c.Host == "" {
		return c, errors.New("missing host")
	}
	if !validHost(c.Host) {
		return c, fmt.Errorf("invalid host %q: want a DNS name or an IP address", c.Host)
	}
	if c.Port < 0 || c.Port > 65535 {
		return c, fmt.Errorf("port %d out of range 1-65535", c.Port)
	}
	switch c.TLS {
	case "":
		c.TLS = TLSStartTLS
		if c.Port == 465 {
			c.TLS = TLSImplicit
		}
	case TLSStartTLS, TLSImplicit, TLSNone:
	default:
		return c, fmt.Errorf("unknown TLS mode %q (want %q, %q or %q)",
			c.TLS, TLSStartTLS, TLSImplicit, TLSNone)
	}
	if c.Port == 0 {
		switch c.TLS {
		case TLSImplicit:
			c.Port = 465
		case TLSNone:
			c.Port = 25
		default:
			c.Port = 587
		}
	}
	if c.Password != "" && c.Username == "" {
		return c, errors.New("password given without username")
	}
	if c.From != "" {
		if _, err := netmail.ParseAddress(c.From); err != nil {
			return c, fmt.Errorf("invalid sender address %q: %w", c.From, err)
		}
	}
	if c.Timeout < 0 {
		return c, fmt.Errorf("negative timeout %s", c.Timeout)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c, nil
}

// validHost reports whether h is an IP address or looks like a DNS name.
func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	for _, r := range h {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '-', r == '.', r == '_':
		default:
			return false
		}
	}
	return true
}

// addr is host:port of the server.
func (c Config) addr() string {
	return net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
}

// URL parameters understood by ParseURL.
const (
	paramFrom               = "from"
	paramTLS                = "tls"
	paramTimeout            = "timeout"
	paramInsecureSkipVerify = "insecure_skip_verify"
)

// ParseURL reads a Config from a URL such as
//
//	smtp://user:pass@smtp.example.com:587?from=warden@example.com&tls=starttls
//	smtps://user:pass@smtp.example.com?from=Warden%20%3Cwarden@example.com%3E
//
// The scheme smtps means TLS "tls" (port 465 by default); smtp means
// STARTTLS unless the tls parameter says otherwise. User name and password
// are percent-decoded, so a password containing '@', ':' or '/' must be
// escaped. Parameters: from (sender address), tls (starttls, tls or none),
// timeout (a Go duration such as 10s) and insecure_skip_verify (a boolean).
// Unknown parameters are errors. Port and TLS of the result are filled in;
// From may be empty, which Validate reports.
//
// Errors never contain the password.
func ParseURL(s string) (Config, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Config{}, fmt.Errorf("mail: parse URL: %w", urlError(err))
	}
	var c Config
	switch u.Scheme {
	case "smtp":
	case "smtps":
		c.TLS = TLSImplicit
	case "":
		return Config{}, errors.New("mail: parse URL: missing scheme (want smtp:// or smtps://)")
	default:
		return Config{}, fmt.Errorf("mail: parse URL: unsupported scheme %q (want smtp or smtps)", u.Scheme)
	}
	if u.Opaque != "" {
		return Config{}, fmt.Errorf("mail: parse URL: want %s://host, not %s:…", u.Scheme, u.Scheme)
	}
	if u.Path != "" && u.Path != "/" {
		return Config{}, errors.New("mail: parse URL: unexpected path after host")
	}
	if u.Fragment != "" {
		return Config{}, errors.New("mail: parse URL: unexpected fragment (#…); escape '#' in the password as %23")
	}
	c.Host = u.Hostname()
	if c.Host == "" {
		return Config{}, errors.New("mail: parse URL: missing host")
	}
	if p := u.Port(); p != "" {
		port, err := strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			return Config{}, fmt.Errorf("mail: parse URL: port %q out of range 1-65535", p)
		}
		c.Port = port
	}
	if u.User != nil {
		c.Username = u.User.Username()
		c.Password, _ = u.User.Password()
		if c.Username == "" {
			return Config{}, errors.New("mail: parse URL: user info without user name")
		}
	}

	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Config{}, fmt.Errorf("mail: parse URL: query: %w", urlError(err))
	}
	for key, values := range q {
		if len(values) > 1 {
			return Config{}, fmt.Errorf("mail: parse URL: parameter %q given %d times", key, len(values))
		}
		v := values[0]
		switch key {
		case paramFrom:
			if v == "" {
				return Config{}, errors.New("mail: parse URL: empty from parameter")
			}
			c.From = v
		case paramTLS:
			switch v {
			case TLSStartTLS, TLSImplicit, TLSNone:
			default:
				return Config{}, fmt.Errorf("mail: parse URL: tls=%q: want %s, %s or %s", v, TLSStartTLS, TLSImplicit, TLSNone)
			}
			if u.Scheme == "smtps" && v != TLSImplicit {
				return Config{}, fmt.Errorf("mail: parse URL: tls=%s contradicts scheme smtps (use smtp://)", v)
			}
			c.TLS = v
		case paramTimeout:
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return Config{}, fmt.Errorf("mail: parse URL: timeout=%q: want a positive duration such as 10s", v)
			}
			c.Timeout = d
		case paramInsecureSkipVerify:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Config{}, fmt.Errorf("mail: parse URL: insecure_skip_verify=%q: want true or false", v)
			}
			c.InsecureSkipVerify = b
		default:
			return Config{}, fmt.Errorf("mail: parse URL: unknown parameter %q (want %s, %s, %s or %s)",
				key, paramFrom, paramTLS, paramTimeout, paramInsecureSkipVerify)
		}
	}

	timeout := c.Timeout
	r, err := c.resolve()
	if err != nil {
		return Config{}, fmt.Errorf("mail: parse URL: %w", err)
	}
	r.Timeout = timeout // zero stays zero: "the default"
	return r, nil
}

// urlError is err of package url without the URL or parts of it, which
// may hold the password: an unescaped '/', '?' or '#' in the password
// ends the authority early and makes the password look like a port.
func urlError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var (
		ee url.EscapeError
		he url.InvalidHostError
	)
	switch msg := err.Error(); {
	case errors.As(err, &ee):
		return errors.New("invalid %-escape")
	case errors.As(err, &he):
		return errors.New("invalid character in host name")
	case strings.HasPrefix(msg, "invalid port"):
		return errors.New(`invalid port after host (in user name and password, escape '/' as %2F, '?' as %3F, '#' as %23)`)
	case strings.ContainsAny(msg, "\"'"):
		return errors.New("malformed URL")
	default:
		return err
	}
}

// url is c as a URL that ParseURL reads back to c, password included.
func (c Config) url() *url.URL {
	u := &url.URL{Scheme: "smtp"}
	q := url.Values{}
	if c.TLS == TLSImplicit {
		u.Scheme = "smtps"
	} else if c.TLS != "" {
		q.Set(paramTLS, c.TLS)
	}
	u.Host = c.Host
	if strings.Contains(c.Host, ":") {
		u.Host = "[" + c.Host + "]"
	}
	if c.Port != 0 {
		u.Host = net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
	}
	switch {
	case c.Password != "":
		u.User = url.UserPassword(c.Username, c.Password)
	case c.Username != "":
		u.User = url.User(c.Username)
	}
	if c.From != "" {
		q.Set(paramFrom, c.From)
	}
	if c.Timeout != 0 {
		q.Set(paramTimeout, c.Timeout.String())
	}
	if c.InsecureSkipVerify {
		q.Set(paramInsecureSkipVerify, "true")
	}
	u.RawQuery = q.Encode()
	return u
}

// String is c as an smtp:// or smtps:// URL with the password replaced by
// "xxxxx".
func (c Config) String() string { return c.url().Redacted() }

// LogValue makes slog print c without its password.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }
