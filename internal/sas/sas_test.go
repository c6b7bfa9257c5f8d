package sas

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

// Vectors below were produced with Node.js crypto and the
// encodeUriComponentStrict function of azure-iot-common, i.e. exactly what
// the Azure IoT Node device SDK sends.
var (
	// testKey is the bytes 0x00..0x1f, base64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".
	testKey = func() []byte {
		k := make([]byte, 32)
		for i := range k {
			k[i] = byte(i)
		}
		return k
	}()
	testGroupKey = []byte("warden-group-key-0123456789abcdef")
	testExpiry   = time.Unix(1795439015, 0)
	beforeExpiry = testExpiry.Add(-time.Minute)
)

const (
	nodeHubToken    = "SharedAccessSignature sr=localhost%2Fdevices%2Fsmoke-device-01&sig=dMjUKgJ3%2FAyM3zTdJxF6lQ3oPW8DHRqWZbhHMTOyu9U%3D&se=1795439015"
	nodePortToken   = "SharedAccessSignature sr=localhost%3A8884%2Fdevices%2Fdev%281%29%21%2a%27~%20x&sig=4HxYtkKcJqsuD6pYzx%2FuMxQUTnKPH3q82kvkXXc1Fqo%3D&se=1795439015"
	nodeDPSToken    = "SharedAccessSignature sr=0ne00000001/registrations/smoke-device-01&sig=vEUkOALXtgxXf4%2B4yMUNF6d9%2BXMaq2Ar46VQ0f0fRuM%3D&skn=registration&se=1795439015"
	nodeDerivedKey  = "9z4pdFUw4/y2xB18VKwvaaVC70Q3/vwBbgqJ/jE6EVk="
	nodeUnicodeSR   = "warden.example.com%2Fdevices%2Fd%C3%A9v-%C3%BC_1.2"
	nodeUnicodeSig  = "C1VO74LH7Ldu7%2FFC7LUt7aE6izvZds25iFv5XUGlM5s%3D"
	nodeUnicodeSE   = "1700000000"
	nodeUnicodeRes  = "warden.example.com/devices/dév-ü_1.2"
	nodeUnicodeTime = 1700000000
)

func TestSignMatchesNode(t *testing.T) {
	derived := mustBase64(t, nodeDerivedKey)
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"hub device", Sign(testKey, "localhost/devices/smoke-device-01", testExpiry), nodeHubToken},
		{"host with port and strict escapes", Sign(testKey, "localhost:8884/devices/dev(1)!*'~ x", testExpiry), nodePortToken},
		{"dps raw sr with skn", SignRaw(derived, "0ne00000001/registrations/smoke-device-01", "registration", testExpiry), nodeDPSToken},
		{"utf-8 device id", Sign(testKey, nodeUnicodeRes, time.Unix(nodeUnicodeTime, 0)),
			Prefix + "sr=" + nodeUnicodeSR + "&sig=" + nodeUnicodeSig + "&se=" + nodeUnicodeSE},
		{"sub-second expiry truncated", Sign(testKey, "localhost/devices/smoke-device-01", testExpiry.Add(999*time.Millisecond)), nodeHubToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got  %s\nwant %s", tt.got, tt.want)
			}
		})
	}
}

func TestDeriveDeviceKeyMatchesNode(t *testing.T) {
	got := base64.StdEncoding.EncodeToString(DeriveDeviceKey(testGroupKey, "smoke-device-01"))
	if got != nodeDerivedKey {
		t.Errorf("DeriveDeviceKey = %s, want %s", got, nodeDerivedKey)
	}
	if other := DeriveDeviceKey(testGroupKey, "smoke-device-02"); string(other) == string(mustBase64(t, nodeDerivedKey)) {
		t.Error("different registration ids derived the same key")
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  Token
		wantE string // substring of the error; empty means success
	}{
		{
			name: "node hub token",
			in:   nodeHubToken,
			want: Token{Resource: "localhost%2Fdevices%2Fsmoke-device-01", Signature: "dMjUKgJ3/AyM3zTdJxF6lQ3oPW8DHRqWZbhHMTOyu9U=", Expiry: testExpiry},
		},
		{
			name: "dps token keeps + and reads skn",
			in:   nodeDPSToken,
			want: Token{Resource: "0ne00000001/registrations/smoke-device-01", Signature: "vEUkOALXtgxXf4+4yMUNF6d9+XMaq2Ar46VQ0f0fRuM=", KeyName: "registration", Expiry: testExpiry},
		},
		{
			name: "literal + in sig is not a space",
			in:   Prefix + "sr=a&sig=ab+c/d=&se=10",
			want: Token{Resource: "a", Signature: "ab+c/d=", Expiry: time.Unix(10, 0)},
		},
		{
			name: "any field order, unknown fields ignored, = in value",
			in:   Prefix + "se=10&foo=bar&skn=my%20policy&sig=x%3D%3D&sr=h%2fdevices%2fd",
			want: Token{Resource: "h%2fdevices%2fd", Signature: "x==", KeyName: "my policy", Expiry: time.Unix(10, 0)},
		},
		{name: "no prefix", in: "sr=a&sig=b&se=1", wantE: "prefix"},
		{name: "lower-case prefix", in: "sharedaccesssignature sr=a&sig=b&se=1", wantE: "prefix"},
		{name: "empty", in: "", wantE: "prefix"},
		{name: "prefix only", in: Prefix, wantE: "no '='"},
		{name: "missing sr", in: Prefix + "sig=b&se=1", wantE: "missing sr"},
		{name: "empty sr", in: Prefix + "sr=&sig=b&se=1", wantE: "missing sr"},
		{name: "missing sig", in: Prefix + "sr=a&se=1", wantE: "missing sig"},
		{name: "missing se", in: Prefix + "sr=a&sig=b", wantE: "missing se"},
		{name: "field without =", in: Prefix + "sr=a&sig=b&se=1&junk", wantE: "field 4 has no '='"},
		{name: "trailing &", in: Prefix + "sr=a&sig=b&se=1&", wantE: "field 4 has no '='"},
		{name: "duplicate sr", in: Prefix + "sr=a&sig=b&se=1&sr=c", wantE: "duplicate sr"},
		{name: "duplicate se", in: Prefix + "sr=a&se=2&sig=b&se=1", wantE: "duplicate se"},
		{name: "se not a number", in: Prefix + "sr=a&sig=b&se=soon", wantE: "se: not an integer"},
		{name: "se negative", in: Prefix + "sr=a&sig=b&se=-1", wantE: "se: not an integer"},
		{name: "se with plus", in: Prefix + "sr=a&sig=b&se=+1", wantE: "se: not an integer"},
		{name: "se fractional", in: Prefix + "sr=a&sig=b&se=1.5", wantE: "se: not an integer"},
		{name: "se overflow", in: Prefix + "sr=a&sig=b&se=99999999999999999999", wantE: "se: out of range"},
		{name: "bad escape in sig", in: Prefix + "sr=a&sig=ab%zz&se=1", wantE: "sig is not valid percent-encoding"},
		{name: "bad escape in sr", in: Prefix + "sr=a%2&sig=b&se=1", wantE: "sr is not valid percent-encoding"},
		{name: "bad escape in skn", in: Prefix + "sr=a&sig=b&skn=%&se=1", wantE: "skn is not valid percent-encoding"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.wantE != "" {
				if err == nil {
					t.Fatalf("Parse succeeded with %+v, want error containing %q", got, tt.wantE)
				}
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("error %v does not wrap ErrMalformed", err)
				}
				if !strings.Contains(err.Error(), tt.wantE) {
					t.Errorf("error %q does not contain %q", err, tt.wantE)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got.Resource != tt.want.Resource || got.Signature != tt.want.Signature ||
				got.KeyName != tt.want.KeyName || !got.Expiry.Equal(tt.want.Expiry) {
				t.Errorf("Parse = %+v\nwant    %+v", got, tt.want)
			}
		})
	}
}

func TestParseErrorDoesNotLeakSignature(t *testing.T) {
	const secret = "SECRETSIG"
	_, err := Parse(Prefix + "sr=a&sig=" + secret + "%zz&se=1")
	if err == nil || strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "%zz") {
		t.Errorf("error %v mentions the signature", err)
	}
}

func TestVerify(t *testing.T) {
	derived := mustBase64(t, nodeDerivedKey)
	otherKey := []byte("another key, 32 bytes long......")
	tampered := strings.Replace(nodeHubToken, "se=1795439015", "se=1795439016", 1)
	padded := strings.Replace(nodeHubToken, "se=1795439015", "se=01795439015", 1)
	resigned := Sign(testKey, "localhost/devices/smoke-device-01", testExpiry)

	tests := []struct {
		name    string
		token   string
		now     time.Time
		keys    [][]byte
		wantErr error
	}{
		{"node hub token", nodeHubToken, beforeExpiry, [][]byte{testKey}, nil},
		{"node token with port and strict escapes", nodePortToken, beforeExpiry, [][]byte{testKey}, nil},
		{"node dps token with + in sig", nodeDPSToken, beforeExpiry, [][]byte{derived}, nil},
		{"round trip of Sign", resigned, beforeExpiry, [][]byte{testKey}, nil},
		{"second key matches", nodeHubToken, beforeExpiry, [][]byte{otherKey, testKey}, nil},
		{"first key matches", nodeHubToken, beforeExpiry, [][]byte{testKey, otherKey}, nil},
		{"lower-case hex in sr is signed as sent",
			SignRaw(testKey, "localhost%2fdevices%2fsmoke-device-01", "", testExpiry), beforeExpiry, [][]byte{testKey}, nil},
		{"expired at se", nodeHubToken, testExpiry, [][]byte{testKey}, ErrExpired},
		{"expired after se", nodeHubToken, testExpiry.Add(time.Hour), [][]byte{testKey}, ErrExpired},
		{"wrong key", nodeHubToken, beforeExpiry, [][]byte{otherKey}, ErrBadSignature},
		{"no keys", nodeHubToken, beforeExpiry, nil, ErrBadSignature},
		{"empty key never matches", SignRaw(nil, "a", "", testExpiry), beforeExpiry, [][]byte{{}}, ErrBadSignature},
		{"tampered se", tampered, beforeExpiry, [][]byte{testKey}, ErrBadSignature},
		{"se padded with zero", padded, beforeExpiry, [][]byte{testKey}, ErrBadSignature},
		{"tampered sr", strings.Replace(nodeHubToken, "smoke-device-01", "smoke-device-02", 1), beforeExpiry, [][]byte{testKey}, ErrBadSignature},
		{"sr decoded before signing is a different message",
			strings.Replace(nodeHubToken, "localhost%2Fdevices%2F", "localhost/devices/", 1), beforeExpiry, [][]byte{testKey}, ErrBadSignature},
		{"dps key on hub token", nodeHubToken, beforeExpiry, [][]byte{derived}, ErrBadSignature},
		{"wrong key and expired reports the signature", nodeHubToken, testExpiry.Add(time.Hour), [][]byte{otherKey}, ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := Parse(tt.token)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			err = Verify(tok, tt.now, tt.keys...)
			if tt.wantErr == nil && err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestVerifyHandBuiltToken(t *testing.T) {
	tok := Token{
		Resource:  "localhost%2Fdevices%2Fsmoke-device-01",
		Signature: "dMjUKgJ3/AyM3zTdJxF6lQ3oPW8DHRqWZbhHMTOyu9U=",
		Expiry:    testExpiry,
	}
	if err := Verify(tok, beforeExpiry, testKey); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	tok.Signature = strings.Replace(tok.Signature, "/", " ", 1) // what a form decoder would do to '+'
	if err := Verify(tok, beforeExpiry, testKey); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("Verify = %v, want ErrBadSignature", err)
	}
}

func TestDecodedResource(t *testing.T) {
	tests := []struct {
		sr   string
		want string
	}{
		{"localhost%2Fdevices%2Fsmoke-device-01", "localhost/devices/smoke-device-01"},
		{"localhost%2fdevices%2fsmoke-device-01", "localhost/devices/smoke-device-01"},
		{"localhost%3A8884%2Fdevices%2Fdev%281%29%21%2a%27~%20x", "localhost:8884/devices/dev(1)!*'~ x"},
		{"0ne00000001/registrations/smoke-device-01", "0ne00000001/registrations/smoke-device-01"},
		{"h%2Fdevices%2Fa+b", "h/devices/a+b"},
		{nodeUnicodeSR, nodeUnicodeRes},
	}
	for _, tt := range tests {
		got, err := Token{Resource: tt.sr}.DecodedResource()
		if err != nil || got != tt.want {
			t.Errorf("DecodedResource(%q) = %q, %v; want %q", tt.sr, got, err, tt.want)
		}
	}
	if _, err := (Token{Resource: "%G0"}).DecodedResource(); err == nil {
		t.Error("DecodedResource accepted an invalid escape")
	}
}

func TestMatchesResource(t *testing.T) {
	tok := Token{Resource: "LocalHost%2fDevices%2fsmoke-device-01"}
	if !tok.MatchesResource(DeviceResource("localhost", "smoke-device-01")) {
		t.Error("case-insensitive match failed")
	}
	if tok.MatchesResource(DeviceResource("localhost", "smoke-device-02")) {
		t.Error("matched another device")
	}
	if (Token{Resource: "%zz"}).MatchesResource("%zz") {
		t.Error("matched an undecodable resource")
	}
}

func TestDeviceFromResource(t *testing.T) {
	tests := []struct {
		res        string
		host, dev  string
		wantErr    string
		wantModule bool
	}{
		{res: "localhost/devices/smoke-device-01", host: "localhost", dev: "smoke-device-01"},
		{res: "localhost:8884/devices/d", host: "localhost:8884", dev: "d"},
		{res: "Hub.Example.COM/DEVICES/Dev-1", host: "Hub.Example.COM", dev: "Dev-1"},
		{res: "[::1]:8883/devices/d", host: "[::1]:8883", dev: "d"},
		{res: "h/devices/dev(1)!*'~ x", host: "h", dev: "dev(1)!*'~ x"},
		{res: "h/devices/d/modules/m", wantErr: "module", wantModule: true},
		{res: "h/devices/d/Modules/m", wantErr: "module", wantModule: true},
		{res: "h/devices/d/modules/", wantErr: "segments after"},
		{res: "h/devices/d/modules/m/x", wantErr: "segments after"},
		{res: "h/devices/d/", wantErr: "segments after"},
		{res: "h/devices/d/x", wantErr: "segments after"},
		{res: "h/devices/", wantErr: "empty device id"},
		{res: "h/devices", wantErr: "not of the form"},
		{res: "h/registrations/d", wantErr: "not of the form"},
		{res: "0ne00000001/registrations/smoke-device-01", wantErr: "not of the form"},
		{res: "/devices/d", wantErr: "no host"},
		{res: "localhost", wantErr: "no host"},
		{res: "", wantErr: "no host"},
	}
	for _, tt := range tests {
		host, dev, err := DeviceFromResource(tt.res)
		if tt.wantErr == "" {
			if err != nil || host != tt.host || dev != tt.dev {
				t.Errorf("DeviceFromResource(%q) = %q, %q, %v; want %q, %q", tt.res, host, dev, err, tt.host, tt.dev)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("DeviceFromResource(%q) error = %v, want it to contain %q", tt.res, err, tt.wantErr)
		}
		if got := errors.Is(err, ErrModuleUnsupported); got != tt.wantModule {
			t.Errorf("DeviceFromResource(%q): errors.Is(ErrModuleUnsupported) = %v", tt.res, got)
		}
	}
}

func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"AZaz09-_.~", "AZaz09-_.~"},
		{"localhost/devices/d", "localhost%2Fdevices%2Fd"},
		{"localhost:8884", "localhost%3A8884"},
		{"!'()*", "%21%27%28%29%2a"},
		{"a+b=c/d", "a%2Bb%3Dc%2Fd"},
		{" %&;?#@$,", "%20%25%26%3B%3F%23%40%24%2C"},
		{"é€", "%C3%A9%E2%82%AC"},
		{"\x00\xff", "%00%FF"},
	}
	for _, tt := range tests {
		if got := Escape(tt.in); got != tt.want {
			t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNewKey(t *testing.T) {
	a, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != KeySize || len(b) != KeySize {
		t.Fatalf("key lengths %d, %d; want %d", len(a), len(b), KeySize)
	}
	if string(a) == string(b) {
		t.Error("two keys are equal")
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	key, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, res := range []string{"localhost/devices/a", "localhost:8884/devices/dev(1)*", "hub/devices/ü+x y"} {
		tok, err := Parse(Sign(key, res, now.Add(time.Hour)))
		if err != nil {
			t.Fatalf("Parse(Sign(%q)): %v", res, err)
		}
		if err := Verify(tok, now, key); err != nil {
			t.Errorf("Verify(Sign(%q)): %v", res, err)
		}
		if !tok.MatchesResource(res) {
			t.Errorf("Sign(%q) resource does not match", res)
		}
		host, dev, err := func() (string, string, error) {
			r, err := tok.DecodedResource()
			if err != nil {
				return "", "", err
			}
			return DeviceFromResource(r)
		}()
		if err != nil || DeviceResource(host, dev) != res {
			t.Errorf("DeviceFromResource(%q) = %q, %q, %v", res, host, dev, err)
		}
	}
}

func mustBase64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
