package factory

import (
	"errors"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/tenancy"
)

func TestValid(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	cred := StaffCredential{ID: "stf_1", TenantID: "acme", DeviceID: "pump", SiteID: "s1",
		CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	dev := registry.Device{ID: "pump", TenantID: "acme", Info: registry.DeviceInfo{SiteID: "s1"}}
	open := tenancy.Site{ID: "s1", TenantID: "acme", FactoryAccess: true, FactoryAccessChangedAt: t0.Add(-time.Minute)}
	moved := dev
	moved.Info.SiteID = "s2"
	other := dev
	other.ID = "fan"
	closed := open
	closed.FactoryAccess = false
	reopened := open
	reopened.FactoryAccessChangedAt = t0.Add(time.Minute)
	for _, c := range []struct {
		name string
		d    registry.Device
		s    tenancy.Site
		at   time.Time
		ok   bool
	}{
		{"open", dev, open, t0.Add(time.Minute), true},
		{"expired", dev, open, t0.Add(time.Hour), false},
		{"switched off", dev, closed, t0.Add(time.Minute), false},
		{"switched off and on again", dev, reopened, t0.Add(2 * time.Minute), false},
		{"device moved", moved, tenancy.Site{ID: "s2", TenantID: "acme", FactoryAccess: true}, t0.Add(time.Minute), false},
		{"device without site", registry.Device{ID: "pump", TenantID: "acme"}, tenancy.Site{}, t0.Add(time.Minute), false},
		{"another device", other, open, t0.Add(time.Minute), false},
	} {
		err := Valid(cred, c.d, c.s, c.at)
		if (err == nil) != c.ok {
			t.Errorf("%s: Valid = %v, want ok=%v", c.name, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("%s: %v does not wrap ErrClosed", c.name, err)
		}
	}
}

func TestKeyNameAndDerivedKey(t *testing.T) {
	id, ok := CredentialID(KeyName("stf_abc"))
	if !ok || id != "stf_abc" {
		t.Fatalf("CredentialID(KeyName) = %q, %v", id, ok)
	}
	for _, skn := range []string{"", "registration", KeyNamePrefix} {
		if _, ok := CredentialID(skn); ok {
			t.Errorf("%q taken for a staff credential", skn)
		}
	}
	k := []byte("0123456789abcdef0123456789abcdef")
	a, b := DeriveKey(k, KeyName("stf_a")), DeriveKey(k, KeyName("stf_b"))
	if string(a) == string(b) || string(a) == string(k) || len(a) != 32 {
		t.Error("derived keys must differ per credential and from the device key")
	}
	if DeriveKey(nil, KeyName("stf_a")) != nil {
		t.Error("a missing device key must derive no key")
	}
}
