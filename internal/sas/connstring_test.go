package sas

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestConnectionStringString(t *testing.T) {
	c := ConnectionString{HostName: "localhost:8884", DeviceID: "smoke-device-01", SharedAccessKey: testKey}
	want := "HostName=localhost:8884;DeviceId=smoke-device-01;SharedAccessKey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	if got := c.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestParseConnectionString(t *testing.T) {
	const key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	tests := []struct {
		name        string
		in          string
		host, dev   string
		wantErr     string
		wantModule  bool
		keyInErrors bool
	}{
		{name: "canonical", in: "HostName=localhost;DeviceId=smoke-device-01;SharedAccessKey=" + key, host: "localhost", dev: "smoke-device-01"},
		{name: "any order with port", in: "SharedAccessKey=" + key + ";DeviceId=d;HostName=localhost:8884", host: "localhost:8884", dev: "d"},
		{name: "whitespace and empty parts", in: "  HostName = localhost ;\n DeviceId=d ;; SharedAccessKey= " + key + " ;", host: "localhost", dev: "d"},
		{name: "known extras ignored", in: "HostName=h;DeviceId=d;SharedAccessKey=" + key + ";GatewayHostName=gw;SharedAccessKeyName=p", host: "h", dev: "d"},
		{name: "missing host", in: "DeviceId=d;SharedAccessKey=" + key, wantErr: "missing HostName"},
		{name: "empty host", in: "HostName=;DeviceId=d;SharedAccessKey=" + key, wantErr: "missing HostName"},
		{name: "missing device", in: "HostName=h;SharedAccessKey=" + key, wantErr: "missing DeviceId"},
		{name: "missing key", in: "HostName=h;DeviceId=d", wantErr: "missing SharedAccessKey"},
		{name: "key names are case-sensitive", in: "hostname=h;DeviceId=d;SharedAccessKey=" + key, wantErr: "missing HostName"},
		{name: "signature instead of key", in: "HostName=h;DeviceId=d;SharedAccessSignature=SharedAccessSignature sr=a&sig=b&se=1", wantErr: "missing SharedAccessKey"},
		{name: "bad base64", in: "HostName=h;DeviceId=d;SharedAccessKey=not*base64", wantErr: "not valid base64"},
		{name: "url-safe base64", in: "HostName=h;DeviceId=d;SharedAccessKey=_-8=", wantErr: "not valid base64"},
		{name: "part without =", in: "HostName=h;DeviceId=d;" + key[:10], wantErr: "part 3 has no '='"},
		{name: "duplicate key", in: "HostName=h;DeviceId=d;SharedAccessKey=" + key + ";SharedAccessKey=" + key, wantErr: "duplicate SharedAccessKey"},
		{name: "module", in: "HostName=h;DeviceId=d;ModuleId=m;SharedAccessKey=" + key, wantErr: "module", wantModule: true},
		{name: "slash in device", in: "HostName=h;DeviceId=d/e;SharedAccessKey=" + key, wantErr: "DeviceId contains"},
		{name: "slash in host", in: "HostName=h/x;DeviceId=d;SharedAccessKey=" + key, wantErr: "HostName contains"},
		{name: "empty", in: "", wantErr: "missing HostName"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConnectionString(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), key[:10]) {
					t.Errorf("error %q contains key material", err)
				}
				if got := errors.Is(err, ErrModuleUnsupported); got != tt.wantModule {
					t.Errorf("errors.Is(ErrModuleUnsupported) = %v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseConnectionString: %v", err)
			}
			if c.HostName != tt.host || c.DeviceID != tt.dev || !bytes.Equal(c.SharedAccessKey, testKey) {
				t.Errorf("got %q, %q, key %x", c.HostName, c.DeviceID, c.SharedAccessKey)
			}
		})
	}
}

func TestConnectionStringRoundTrip(t *testing.T) {
	key, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	in := ConnectionString{HostName: "warden.example.com", DeviceID: "pump-17", SharedAccessKey: key}
	out, err := ParseConnectionString(in.String())
	if err != nil {
		t.Fatal(err)
	}
	if out.HostName != in.HostName || out.DeviceID != in.DeviceID || !bytes.Equal(out.SharedAccessKey, in.SharedAccessKey) {
		t.Errorf("round trip: got %+v", out)
	}
}
