package identity

import (
	"encoding/base64"
	"testing"
)

// TestNewSecretForCommandLines: secrets are 256 bits of URL-safe base64 and
// never begin with "-" (a command line would take one for a flag); 3,000
// draws meet about 47 that would have.
func TestNewSecretForCommandLines(t *testing.T) {
	seen := map[string]bool{}
	for range 3000 {
		s, err := NewSecret()
		if err != nil {
			t.Fatal(err)
		}
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(b) != 32 || len(s) != 43 {
			t.Fatalf("secret %q: %d bytes, %v", s, len(b), err)
		}
		if s[0] == '-' {
			t.Fatalf("secret %q begins with -", s)
		}
		if seen[s] {
			t.Fatalf("secret %q drawn twice", s)
		}
		seen[s] = true
	}
}
