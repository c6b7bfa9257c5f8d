package storetest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/tenancy"
)

// subTenant creates tenant id below parent.
func subTenant(t *testing.T, s store.Store, id, parent string) {
	t.Helper()
	if err := s.CreateTenant(ctx(t), tenancy.Tenant{ID: id, ParentID: parent, Name: "Tenant " + id, CreatedAt: t0}); err != nil {
		t.Fatalf("CreateTenant(%q below %q): %v", id, parent, err)
	}
}

func mustSite(t *testing.T, s store.Store, id, tenant string) tenancy.Site {
	t.Helper()
	st := tenancy.Site{ID: id, TenantID: tenant, Name: "Site " + id, CreatedAt: t0,
		Address: tenancy.Address{Street: "1 Main St", PostalCode: "69001", City: "Lyon", Country: "FR"}}
	if err := s.CreateSite(ctx(t), st); err != nil {
		t.Fatalf("CreateSite(%q): %v", id, err)
	}
	return st
}

func mustDevice(t *testing.T, s store.Store, id, tenant string, info registry.DeviceInfo) registry.Device {
	t.Helper()
	d := registry.Device{ID: id, TenantID: tenant, Status: registry.DeviceEnabled, PrimaryKey: key(1), SecondaryKey: key(2),
		CreatedAt: t0, Info: info}
	if err := s.CreateDevice(ctx(t), d); err != nil {
		t.Fatalf("CreateDevice(%q): %v", id, err)
	}
	return d
}

func newUser(id, tenant string, role identity.Role) identity.User {
	return identity.User{ID: id, TenantID: tenant, Email: id + "@example.com", FirstName: "First " + id, LastName: "Last",
		Role: role, Status: identity.UserPending, CreatedBy: "test", CreatedAt: t0}
}

func mustUser(t *testing.T, s store.Store, u identity.User) identity.User {
	t.Helper()
	if err := s.CreateUser(ctx(t), u); err != nil {
		t.Fatalf("CreateUser(%q): %v", u.ID, err)
	}
	return u
}

// mustSupporter creates a supporter user with a supporter id.
func mustSupporter(t *testing.T, s store.Store, id, tenant string) identity.User {
	t.Helper()
	u := newUser(id, tenant, identity.RoleSupporter)
	u.SupporterID = "S-" + id
	return mustUser(t, s, u)
}

func hash(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func userIDs(us []identity.User) []string {
	out := []string{}
	for _, u := range us {
		out = append(out, u.ID)
	}
	return out
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: error = %v, want %v", what, err, want)
	}
}
