package identity

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// MaxEmailLen is the longest e-mail address an account may have (RFC 5321's
// path limit less the angle brackets).
const MaxEmailLen = 254

// EmailKey is the form an address is stored and looked up in: surrounding
// space removed, Unicode NFKC, lower case. It never fails, so that a
// sign-in with an address NormalizeEmail would refuse is looked up (and
// counted) like any unknown address.
func EmailKey(s string) string {
	return strings.ToLower(norm.NFKC.String(strings.TrimSpace(s)))
}

// NormalizeEmail checks an e-mail address an account, a contact or a
// recipient is to have and returns its EmailKey. It refuses what is not
// one plain address (no display name, no comments), addresses with
// invisible characters (controls, zero-width and bidirectional
// formatting characters, which look like nothing on screen) and parts that
// mix scripts the way look-alike spoofing does (a Cyrillic "а" among Latin
// letters).
func NormalizeEmail(s string) (string, error) {
	key := EmailKey(s)
	if key == "" {
		return "", errors.New("an e-mail address is required")
	}
	if len(key) > MaxEmailLen {
		return "", fmt.Errorf("an e-mail address has at most %d bytes", MaxEmailLen)
	}
	for _, r := range key {
		if invisible(r) {
			return "", fmt.Errorf("%q is not a usable e-mail address: it contains the invisible character %U", key, r)
		}
	}
	addr, err := mail.ParseAddress(key)
	if err != nil || addr.Address != key || addr.Name != "" {
		return "", fmt.Errorf("%q is not an e-mail address", key)
	}
	local, domain, _ := strings.Cut(key, "@")
	if err := singleScript(local); err != nil {
		return "", fmt.Errorf("%q is not a usable e-mail address: the part before @ %w", key, err)
	}
	for label := range strings.SplitSeq(domain, ".") {
		if err := singleScript(label); err != nil {
			return "", fmt.Errorf("%q is not a usable e-mail address: the domain part %q %w", key, label, err)
		}
	}
	return key, nil
}

// invisible says whether r shows as nothing (or moves text around) on a
// screen: control and format characters (zero-width spaces and joiners,
// bidirectional marks and overrides, the BOM), separators other than the
// plain space, and unassigned or private-use code points.
func invisible(r rune) bool {
	switch {
	case r == unicode.ReplacementChar:
		return true
	case unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs, unicode.Zl, unicode.Zp):
		return true
	case unicode.IsSpace(r) && r != ' ':
		return true
	case unicode.In(r, unicode.Zs) && r != ' ':
		return true
	case r == '\u115f' || r == '\u1160' || r == '\u3164' || r == '\uffa0': // Hangul fillers, blank glyphs
		return true
	case !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Zs):
		return true // unassigned
	}
	return false
}

// scriptSets are the mixes of scripts one word may have without being a
// spoof (Unicode TS 39's "highly restrictive" level): Japanese, Chinese
// and Korean writing, each also with Latin.
var scriptSets = [][]string{
	{"Latin", "Han", "Hiragana", "Katakana"},
	{"Latin", "Han", "Bopomofo"},
	{"Latin", "Han", "Hangul"},
}

// singleScript refuses s if its letters and digits come from scripts that
// do not belong together. Common and inherited characters (digits,
// punctuation, combining marks) fit any script.
func singleScript(s string) error {
	var scripts []string
	for _, r := range s {
		name := scriptOf(r)
		if name == "" {
			continue
		}
		found := false
		for _, x := range scripts {
			if x == name {
				found = true
				break
			}
		}
		if !found {
			scripts = append(scripts, name)
		}
	}
	if len(scripts) <= 1 {
		return nil
	}
	for _, set := range scriptSets {
		all := true
		for _, x := range scripts {
			in := false
			for _, y := range set {
				if x == y {
					in = true
					break
				}
			}
			if !in {
				all = false
				break
			}
		}
		if all {
			return nil
		}
	}
	return fmt.Errorf("mixes the scripts %s (a look-alike of another address)", strings.Join(scripts, " and "))
}

// scriptOf names the script of r, or "" for characters every script uses.
func scriptOf(r rune) string {
	if r < 0x80 {
		if ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') {
			return "Latin"
		}
		return ""
	}
	if unicode.In(r, unicode.Common, unicode.Inherited) {
		return ""
	}
	for name, tab := range unicode.Scripts {
		if name == "Common" || name == "Inherited" {
			continue
		}
		if unicode.Is(tab, r) {
			return name
		}
	}
	return ""
}
