package identity

import (
	"strings"
	"testing"
	"time"
)

func TestPasswordHash(t *testing.T) {
	p := Params{Memory: 1024, Time: 1, Threads: 1}
	h, err := HashPassword("correct horse battery", p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Fatalf("hash %q is not PHC argon2id", h)
	}
	for pw, want := range map[string]bool{"correct horse battery": true, "correct horse batterY": false, "": false} {
		ok, err := VerifyPassword(pw, h)
		if err != nil || ok != want {
			t.Errorf("VerifyPassword(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
	h2, _ := HashPassword("correct horse battery", p)
	if h2 == h {
		t.Error("two hashes of one password are equal: salt not random")
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=1,t=1,p=1$AA$AA", "$argon2id$v=19$m=x$AA$AA", "$argon2id$v=19$m=1024,t=1,p=1$!!$AA",
		"$argon2id$v=19$m=99999999,t=1,p=1$AA$AA", "$argon2id$v=18$m=1024,t=1,p=1$AA$AA"} {
		if ok, err := VerifyPassword("x", bad); err == nil || ok {
			t.Errorf("VerifyPassword(%q) = %v, %v; want an error", bad, ok, err)
		}
	}
}

func FuzzVerifyPassword(f *testing.F) {
	h, _ := HashPassword("pw", Params{Memory: 64, Time: 1, Threads: 1})
	f.Add("pw", h)
	f.Add("x", "$argon2id$v=19$m=64,t=1,p=1$AA$AA")
	f.Fuzz(func(t *testing.T, pw, hash string) {
		if len(hash) > 300 {
			return
		}
		_, _ = VerifyPassword(pw, hash) // must not panic or run away
	})
}

func TestCheckPassword(t *testing.T) {
	if CheckPassword("short", "") == nil {
		t.Error("short password accepted")
	}
	if CheckPassword("ana@example.com", "ANA@example.com") == nil {
		t.Error("password equal to the e-mail accepted")
	}
	if err := CheckPassword("łódź-żółć-gęś", "a@b.c"); err != nil {
		t.Errorf("13-rune password refused: %v", err)
	}
}

func TestSupporterID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id, err := NewSupporterID()
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != 13 || !strings.HasPrefix(id, "SUP-") || id[8] != '-' {
			t.Fatalf("supporter id %q has the wrong shape", id)
		}
		if NormalizeSupporterID(strings.ToLower(strings.ReplaceAll(id, "-", " "))) != id {
			t.Fatalf("%q does not survive normalisation", id)
		}
		seen[id] = true
	}
	if len(seen) < 100 {
		t.Error("supporter ids repeat")
	}
	if got := NormalizeSupporterID("sup-o1il-2345"); got != "SUP-0111-2345" {
		t.Errorf("look-alike letters: %q", got)
	}
}

func TestTOTP(t *testing.T) {
	k, err := NewTOTP("Warden", "ana@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k.URL, "otpauth://totp/Warden:ana@example.com?") {
		t.Errorf("url %q", k.URL)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	code, err := TOTPCode(k.Secret, now)
	if err != nil {
		t.Fatal(err)
	}
	valid := func(code string, at time.Time) bool { _, ok := TOTPStep(code, k.Secret, at); return ok }
	if !valid(code, now) || !valid(code, now.Add(30*time.Second)) {
		t.Error("valid code refused")
	}
	if valid(code, now.Add(5*time.Minute)) {
		t.Error("stale code accepted")
	}
	step, ok := TOTPStep(code, k.Secret, now.Add(30*time.Second))
	if !ok || step != now.Unix()/30 {
		t.Errorf("TOTPStep = %d, %v; want the step of the code, %d", step, ok, now.Unix()/30)
	}
	if _, ok := TOTPStep("12345", k.Secret, now); ok {
		t.Error("a five-digit code passed")
	}
}

func TestNewID(t *testing.T) {
	a, _ := NewID("usr")
	b, _ := NewID("usr")
	if a == b || !strings.HasPrefix(a, "usr_") || len(a) != 4+16 {
		t.Errorf("ids %q %q", a, b)
	}
}
