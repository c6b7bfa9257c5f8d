package sas

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		nodeHubToken,
		nodePortToken,
		nodeDPSToken,
		Prefix + "se=1&sig=a+b&sr=x",
		Prefix + "sr=a&sig=%zz&se=1",
		Prefix + "sr=a&sig=b&se=99999999999999999999",
		Prefix,
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := Parse(s)
		if err != nil {
			if tok != (Token{}) {
				t.Fatalf("Parse returned %+v with error %v", tok, err)
			}
			return
		}
		if tok.Resource == "" || tok.Signature == "" || tok.rawExpiry == "" {
			t.Fatalf("Parse(%q) = %+v: empty field", s, tok)
		}
		if got, want := strconv.FormatInt(tok.Expiry.Unix(), 10), strings.TrimLeft(tok.rawExpiry, "0"); got != want && !(got == "0" && want == "") {
			t.Fatalf("Parse(%q): Expiry %d does not match se %q", s, tok.Expiry.Unix(), tok.rawExpiry)
		}
		if _, err := tok.DecodedResource(); err != nil {
			t.Fatalf("parsed resource does not decode: %v", err)
		}
		// Must not panic, whatever was parsed.
		_ = Verify(tok, time.Unix(0, 0), []byte("fuzz key"))
	})
}

func FuzzSignRoundTrip(f *testing.F) {
	f.Add([]byte{1, 2, 3}, "localhost/devices/smoke-device-01", uint32(1795439015))
	f.Add([]byte("k"), "h:8884/devices/dev(1)!*'~ x&sig=y", uint32(1))
	f.Fuzz(func(t *testing.T, key []byte, resource string, se uint32) {
		if len(key) == 0 || resource == "" || se == 0 {
			return
		}
		expiry := time.Unix(int64(se), 0)
		tok, err := Parse(Sign(key, resource, expiry))
		if err != nil {
			t.Fatalf("Parse(Sign(%q)): %v", resource, err)
		}
		if err := Verify(tok, expiry.Add(-time.Second), key); err != nil {
			t.Fatalf("Verify(Sign(%q)): %v", resource, err)
		}
		if err := Verify(tok, expiry, key); !errors.Is(err, ErrExpired) {
			t.Fatalf("Verify at expiry = %v, want ErrExpired", err)
		}
		if got, err := tok.DecodedResource(); err != nil || got != resource {
			t.Fatalf("DecodedResource = %q, %v; want %q", got, err, resource)
		}
	})
}

func FuzzParseConnectionString(f *testing.F) {
	for _, s := range []string{
		"HostName=localhost;DeviceId=smoke-device-01;SharedAccessKey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		" HostName = h:8884 ;DeviceId=d;;SharedAccessKey=AA==;GatewayHostName=gw",
		"HostName=h;DeviceId=d;ModuleId=m;SharedAccessKey=AA==",
		"HostName=a=b;DeviceId==;SharedAccessKey=AA==",
		";;=;",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseConnectionString(s)
		if err != nil {
			return
		}
		if c.HostName == "" || c.DeviceID == "" || len(c.SharedAccessKey) == 0 {
			t.Fatalf("ParseConnectionString(%q) = %+v: empty field", s, c)
		}
		again, err := ParseConnectionString(c.String())
		if err != nil {
			t.Fatalf("reparse of %q: %v", c.String(), err)
		}
		if again.HostName != c.HostName || again.DeviceID != c.DeviceID || !bytes.Equal(again.SharedAccessKey, c.SharedAccessKey) {
			t.Fatalf("round trip changed %+v into %+v", c, again)
		}
	})
}
