// Package identity holds people's accounts, their sessions and their API
// tokens: the model, the narrow stores that keep it (UserStore,
// SignInStore, TokenStore; implemented by package identitysql), and the
// secrets of the accounts: argon2id password hashes, random link and
// session secrets, supporter ids and TOTP second factors; and Users, the
// service that invites, changes and deletes accounts.
package identity

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters (OWASP's recommendation:
// 19 MiB, two passes, one lane).
type Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// DefaultParams is what new hashes use.
func DefaultParams() Params { return Params{Memory: 19 * 1024, Time: 2, Threads: 1} }

const (
	saltLen = 16
	keyLen  = 32
)

// Password rules.
const (
	MinPasswordLen = 12
	MaxPasswordLen = 256
)

// CheckPassword says what is wrong with a new password, if anything.
func CheckPassword(password, email string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case n < MinPasswordLen:
		return fmt.Errorf("the password must have at least %d characters", MinPasswordLen)
	case len(password) > MaxPasswordLen:
		return fmt.Errorf("the password must have at most %d bytes", MaxPasswordLen)
	case email != "" && strings.EqualFold(password, email):
		return errors.New("the password must not be the e-mail address")
	}
	return nil
}

// HashPassword returns the argon2id hash of password in PHC string form:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash> (unpadded base64).
func HashPassword(password string, p Params) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, keyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// VerifyPassword says whether password matches the PHC hash; a malformed
// hash is an error.
func VerifyPassword(password, hash string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return false, errors.New("verify password: not an argon2id hash")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, fmt.Errorf("verify password: unsupported argon2 version %q", parts[2])
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return false, fmt.Errorf("verify password: parameters %q: %w", parts[3], err)
	}
	if p.Memory == 0 || p.Memory > 1<<22 || p.Time == 0 || p.Time > 16 || p.Threads == 0 {
		return false, fmt.Errorf("verify password: parameters %q out of range", parts[3])
	}
	enc := base64.RawStdEncoding
	salt, err := enc.DecodeString(parts[4])
	if err != nil {
		return false, fmt.Errorf("verify password: salt: %w", err)
	}
	want, err := enc.DecodeString(parts[5])
	if err != nil || len(want) == 0 || len(want) > 128 {
		return false, errors.New("verify password: bad key")
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// NewSecret returns a random 256-bit secret, URL-safe base64 (43
// characters), for session cookies, link tokens and API tokens. It never
// begins with "-", so that it can be given on a command line without being
// taken for a flag.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	for {
		if _, err := rand.Read(b); err != nil {
			return "", fmt.Errorf("new secret: %w", err)
		}
		if s := base64.RawURLEncoding.EncodeToString(b); s[0] != '-' {
			return s, nil
		}
	}
}

// HashSecret is how secrets are stored: their SHA-256. They are 256-bit
// random strings, so a fast hash is enough.
func HashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// NewID returns a random identifier with a prefix, e.g. "usr_3kq9…".
func NewID(prefix string) (string, error) {
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("new id: %w", err)
	}
	return prefix + "_" + strings.ToLower(base32NoPad(b)), nil
}

// crockford is Crockford's base-32 alphabet: no I, L, O or U, so an id
// read aloud over the phone survives.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

func base32NoPad(b []byte) string {
	var sb strings.Builder
	var acc uint32
	bits := 0
	for _, c := range b {
		acc = acc<<8 | uint32(c)
		bits += 8
		for bits >= 5 {
			bits -= 5
			sb.WriteByte(crockford[(acc>>uint(bits))&31])
		}
	}
	if bits > 0 {
		sb.WriteByte(crockford[(acc<<uint(5-bits))&31])
	}
	return sb.String()
}

// NewSupporterID returns a short public supporter id a technician can tell
// a customer, like "SUP-7KQ3-M9XD" (40 random bits).
func NewSupporterID() (string, error) {
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("new supporter id: %w", err)
	}
	s := base32NoPad(b)
	return "SUP-" + s[:4] + "-" + s[4:8], nil
}

// NormalizeSupporterID turns a supporter id as typed ("sup 7kq3 m9xd",
// "7KQ3M9XD") into its canonical form "SUP-7KQ3-M9XD", mapping the letters
// Crockford's alphabet leaves out to the digits they look like. Anything
// else is returned upper-cased, to match nothing.
func NormalizeSupporterID(s string) string {
	s = strings.ToUpper(strings.TrimSpace(s))
	s = strings.TrimPrefix(strings.TrimPrefix(s, "SUP"), "-")
	s = strings.NewReplacer("-", "", " ", "", "O", "0", "I", "1", "L", "1").Replace(s)
	if len(s) != 8 || strings.Trim(s, crockford) != "" {
		return s
	}
	return "SUP-" + s[:4] + "-" + s[4:]
}

// TOTP is a new time-based one-time-password secret.
type TOTP struct {
	Secret string // base-32, for authenticator apps
	URL    string // otpauth:// URL, for a QR code
}

// NewTOTP makes a TOTP secret for an account.
func NewTOTP(issuer, account string) (TOTP, error) {
	k, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: account, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return TOTP{}, fmt.Errorf("new totp: %w", err)
	}
	return TOTP{Secret: k.Secret(), URL: k.URL()}, nil
}

// totpPeriod is the TOTP time step.
const totpPeriod = 30

// TOTPStep is the time step (Unix time / 30 s) whose code code is, within
// one step of t either way; ok is false if it is none of them. Callers
// remember the step so that a code cannot be used twice.
func TOTPStep(code, secret string, t time.Time) (step int64, ok bool) {
	code = strings.TrimSpace(code)
	if len(code) != 6 {
		return 0, false
	}
	now := t.Unix() / totpPeriod
	for _, s := range []int64{now, now - 1, now + 1} {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(s*totpPeriod, 0), totp.ValidateOpts{
			Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return s, true
		}
	}
	return 0, false
}

// TOTPCode returns the code for secret at t (for tests and tools).
func TOTPCode(secret string, t time.Time) (string, error) {
	return totp.GenerateCodeCustom(secret, t, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
}
