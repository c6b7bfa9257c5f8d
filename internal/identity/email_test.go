package identity

import (
	"strings"
	"testing"
)

func TestNormalizeEmail(t *testing.T) {
	for _, c := range []struct {
		in, want string
		refused  string // part of the error, when refused
	}{
		{"Anna.Berg@Example.COM", "anna.berg@example.com", ""},
		{"  chef@cafe.example \n", "chef@cafe.example", ""},
		{"ＡＮＮＡ@ｅｘａｍｐｌｅ.com", "anna@example.com", ""}, // full-width forms fold (NFKC)
		{"ﬁnn@example.com", "finn@example.com", ""},  // the "fi" ligature too
		{"müller@bäckerei.example", "müller@bäckerei.example", ""},
		{"mu\u0308ller@example.com", "müller@example.com", ""}, // decomposed ü composes
		{"иван@почта.рф", "иван@почта.рф", ""},                 // all Cyrillic is fine
		{"山田@例え.jp", "山田@例え.jp", ""},                           // Han with Hiragana
		{"yamada太郎@example.jp", "yamada太郎@example.jp", ""},     // Latin with Han
		{"user+tag@sub.example.org", "user+tag@sub.example.org", ""},

		{"", "", "required"},
		{"not an address", "", "not an e-mail address"},
		{"Anna <anna@example.com>", "", "not an e-mail address"},
		{"anna@example.com (work)", "", "not an e-mail address"},
		{"an\u200bna@example.com", "", "invisible"},   // zero-width space
		{"anna\u200d@example.com", "", "invisible"},   // zero-width joiner
		{"\u202eanna@example.com", "", "invisible"},   // right-to-left override
		{"anna@exam\u200eple.com", "", "invisible"},   // left-to-right mark
		{"anna@example.com\ufeff", "", "invisible"},   // BOM
		{"an\u00adna@example.com", "", "invisible"},   // soft hyphen
		{"an\u0007na@example.com", "", "invisible"},   // a control character
		{"an\u3164na@example.com", "", "invisible"},   // Hangul filler, blank
		{"p\u0430ypal@example.com", "", "mixes"},      // Cyrillic а in Latin
		{"paypal@ex\u0430mple.com", "", "mixes"},      // in the domain
		{"paypal@example.c\u03bfm", "", "mixes"},      // Greek ο in a label
		{"admin@\u0430pple.example.com", "", "mixes"}, // one label of several
		{strings.Repeat("a", 250) + "@x.io", "", "at most"},
	} {
		got, err := NormalizeEmail(c.in)
		switch {
		case c.refused == "" && err != nil:
			t.Errorf("NormalizeEmail(%q): %v", c.in, err)
		case c.refused == "" && got != c.want:
			t.Errorf("NormalizeEmail(%q) = %q, want %q", c.in, got, c.want)
		case c.refused != "" && err == nil:
			t.Errorf("NormalizeEmail(%q) = %q, want refused", c.in, got)
		case c.refused != "" && !strings.Contains(err.Error(), c.refused):
			t.Errorf("NormalizeEmail(%q): %v, want an error about %q", c.in, err, c.refused)
		}
	}
}

func TestEmailKeyMatchesNormalizeEmail(t *testing.T) {
	for _, s := range []string{"Anna@Example.com", " ＡＮＮＡ@ｅｘａｍｐｌｅ.com", "mu\u0308ller@example.com"} {
		n, err := NormalizeEmail(s)
		if err != nil {
			t.Fatal(err)
		}
		if k := EmailKey(s); k != n {
			t.Errorf("EmailKey(%q) = %q, NormalizeEmail = %q", s, k, n)
		}
	}
	// A refused address still has a key (it is looked up like any unknown one).
	if EmailKey("an\u200bna@example.com") == "" {
		t.Error("no key for a refused address")
	}
}
