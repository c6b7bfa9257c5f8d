// Package sas implements the shared access signatures (SAS tokens) and
// device connection strings of the Azure IoT Hub and Device Provisioning
// Service device protocol, as produced by the official Azure IoT device SDKs.
//
// A token has the form
//
//	SharedAccessSignature sr={resource}&sig={signature}[&skn={keyName}]&se={expiry}
//
// where sig is base64(HMAC-SHA256(key, sr + "\n" + se)), percent-encoded,
// computed over sr and se exactly as they appear in the token. Servers
// therefore verify a token with [Parse] followed by [Verify], and only then
// look at what the resource means ([Token.DecodedResource],
// [DeviceFromResource]).
//
// Nothing in this package logs, and no error it returns contains key
// material or signatures.
package sas

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Prefix starts every SAS token.
const Prefix = "SharedAccessSignature "

// Errors returned (possibly wrapped) by this package; test with errors.Is.
var (
	// ErrMalformed reports a token that cannot be parsed.
	ErrMalformed = errors.New("sas: malformed token")
	// ErrExpired reports a token whose signature is valid but whose expiry
	// time has passed.
	ErrExpired = errors.New("sas: token expired")
	// ErrBadSignature reports a token that was not signed by any of the keys
	// it was checked against.
	ErrBadSignature = errors.New("sas: signature does not match")
)

// Token is a parsed SAS token.
type Token struct {
	// Resource is the sr field exactly as sent, still percent-encoded if the
	// sender encoded it. The signature covers this form; use
	// DecodedResource for its meaning.
	Resource string
	// Signature is the sig field after percent-decoding: base64 text.
	Signature string
	// KeyName is the percent-decoded skn field, empty if absent. DPS
	// symmetric-key tokens carry "registration"; hub device tokens carry
	// none.
	KeyName string
	// Expiry is the se field: the instant the token stops being valid.
	Expiry time.Time

	// rawExpiry is se exactly as sent; the signature covers this form.
	rawExpiry string
}

// Parse parses a SAS token. The fields may come in any order; sr, sig and se
// are required, skn is optional, and unknown fields are ignored. Parse checks
// only the syntax: use Verify to check the signature and expiry.
//
// Errors wrap ErrMalformed.
func Parse(s string) (Token, error) {
	rest, ok := strings.CutPrefix(s, Prefix)
	if !ok {
		return Token{}, fmt.Errorf("%w: missing %q prefix", ErrMalformed, Prefix)
	}
	fields := make(map[string]string, 4)
	for i, field := range strings.Split(rest, "&") {
		name, value, ok := strings.Cut(field, "=")
		if !ok {
			return Token{}, fmt.Errorf("%w: field %d has no '='", ErrMalformed, i+1)
		}
		switch name {
		case "sr", "sig", "se", "skn":
		default:
			continue // unknown fields are not signed over; ignore them
		}
		if _, dup := fields[name]; dup {
			return Token{}, fmt.Errorf("%w: duplicate %s field", ErrMalformed, name)
		}
		fields[name] = value
	}
	for _, name := range []string{"sr", "sig", "se"} {
		if fields[name] == "" {
			return Token{}, fmt.Errorf("%w: missing %s", ErrMalformed, name)
		}
	}
	sr, sig, se := fields["sr"], fields["sig"], fields["se"]

	var t Token
	if _, err := url.PathUnescape(sr); err != nil {
		return Token{}, fmt.Errorf("%w: sr is not valid percent-encoding: %w", ErrMalformed, err)
	}
	t.Resource = sr

	// Path-style unescaping: a literal '+' stays '+'. The decoder's error
	// would quote part of the signature, so it is not wrapped.
	decoded, err := url.PathUnescape(sig)
	if err != nil {
		return Token{}, fmt.Errorf("%w: sig is not valid percent-encoding", ErrMalformed)
	}
	t.Signature = decoded

	if skn, ok := fields["skn"]; ok {
		if t.KeyName, err = url.PathUnescape(skn); err != nil {
			return Token{}, fmt.Errorf("%w: skn is not valid percent-encoding: %w", ErrMalformed, err)
		}
	}

	secs, err := parseEpoch(se)
	if err != nil {
		return Token{}, fmt.Errorf("%w: se: %w", ErrMalformed, err)
	}
	t.Expiry = time.Unix(secs, 0).UTC()
	t.rawExpiry = se
	return t, nil
}

// parseEpoch parses unsigned decimal seconds since the Unix epoch. Unlike
// strconv.ParseInt it rejects signs, so the text that was signed and the
// value that is checked cannot disagree in surprising ways.
func parseEpoch(s string) (int64, error) {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not an integer number of seconds")
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errors.New("out of range")
	}
	return n, nil
}

// DecodedResource returns the percent-decoded resource, e.g.
// "localhost/devices/smoke-device-01". Compare it with the expected resource
// case-insensitively (strings.EqualFold), or use MatchesResource.
func (t Token) DecodedResource() (string, error) {
	res, err := url.PathUnescape(t.Resource)
	if err != nil {
		return "", fmt.Errorf("sas: decode resource: %w", err)
	}
	return res, nil
}

// MatchesResource reports whether the decoded resource of t equals want,
// ignoring case, which is how the service compares resources. want is the
// logical, unencoded resource such as DeviceResource(host, deviceID).
func (t Token) MatchesResource(want string) bool {
	res, err := t.DecodedResource()
	return err == nil && strings.EqualFold(res, want)
}

// Verify checks that tok was signed with one of keys and has not expired at
// now. It returns ErrBadSignature if no key produced the signature (keys of
// length zero never match) and ErrExpired, wrapped, if the signature is
// valid but the token's expiry is not after now. To allow for clock skew,
// pass a now that is earlier than the current time.
//
// The signature is computed over the sr and se fields exactly as they were
// sent. Every key is tried and compared in constant time, so the time taken
// does not reveal which key matched.
func Verify(tok Token, now time.Time, keys ...[]byte) error {
	se := tok.rawExpiry
	if se == "" { // a Token built by hand rather than by Parse
		se = strconv.FormatInt(tok.Expiry.Unix(), 10)
	}
	msg := stringToSign(tok.Resource, se)
	matched := false
	for _, key := range keys {
		if len(key) == 0 {
			continue
		}
		if hmac.Equal([]byte(signature(key, msg)), []byte(tok.Signature)) {
			matched = true
		}
	}
	if !matched {
		return ErrBadSignature
	}
	if !tok.Expiry.After(now) {
		return fmt.Errorf("%w at %s", ErrExpired, tok.Expiry.UTC().Format(time.RFC3339))
	}
	return nil
}

// Sign returns a device token for resource, such as
// "localhost/devices/smoke-device-01", exactly as the Azure IoT Node SDK
// builds it: sr is Escape(resource), no skn, and the fields are in the order
// sr, sig, se. The expiry is truncated to whole seconds and must not be
// before the Unix epoch.
func Sign(key []byte, resource string, expiry time.Time) string {
	return SignRaw(key, Escape(resource), "", expiry)
}

// SignRaw returns a token whose sr field is exactly sr, which must already be
// in the form to be sent: the Node DPS client, for example, sends
// "0ne00000001/registrations/smoke-device-01" unencoded with keyName
// "registration", while hub tokens use Escape(resource). keyName, if not
// empty, is escaped and sent as skn. Fields are in the Node SDK's order sr,
// sig, skn, se.
func SignRaw(key []byte, sr, keyName string, expiry time.Time) string {
	se := strconv.FormatInt(expiry.Unix(), 10)
	var b strings.Builder
	b.WriteString(Prefix)
	b.WriteString("sr=")
	b.WriteString(sr)
	b.WriteString("&sig=")
	b.WriteString(Escape(signature(key, stringToSign(sr, se))))
	if keyName != "" {
		b.WriteString("&skn=")
		b.WriteString(Escape(keyName))
	}
	b.WriteString("&se=")
	b.WriteString(se)
	return b.String()
}

// stringToSign is the message a SAS signature covers.
func stringToSign(sr, se string) string {
	return sr + "\n" + se
}

// signature returns base64(HMAC-SHA256(key, msg)).
func signature(key []byte, msg string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msg))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
