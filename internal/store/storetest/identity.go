package storetest

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/tenancy"
)

// identityTests cover store.IdentityStore and the identity fields of the
// basic methods (tenant paths and details, device info, the audit trail's
// owner tenant). Users, sessions and tokens are identitysql's suite.
// basic methods (device info, API tokens of users). Tenants and sites are
// tested in tenancy/tenancysql, grants in access/accesssql, the audit
// trail in audit/auditsql.
var identityTests = []suiteTest{
	{"DeviceInfo", testDeviceInfo},
	{"FindDevices", testFindDevices},
}

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

func mustDevice(t *testing.T, s store.Store, id, tenant string, info store.DeviceInfo) store.Device {
	t.Helper()
	d := store.Device{ID: id, TenantID: tenant, Status: store.DeviceEnabled, PrimaryKey: key(1), SecondaryKey: key(2),
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

func testDeviceInfo(t *testing.T, s store.Store) {
	subTenant(t, s, "acme", tenancy.RootTenantID)
	subTenant(t, s, "beta", tenancy.RootTenantID)
	mustSite(t, s, "acme-1", "acme")
	mustSite(t, s, "acme-2", "acme")
	mustSite(t, s, "beta-1", "beta")
	info := store.DeviceInfo{SiteID: "acme-1", Name: "Boiler", SerialNumber: "P1234567", MeterNumber: "M-9",
		MeasurementLocation: "cellar", InstallationPlace: "room 3", Model: "WX-2", FirmwareVersion: "1.4.2"}
	mustDevice(t, s, "dev", "acme", info)
	got, err := s.GetDevice(ctx(t), "dev")
	if err != nil || got.Info != info {
		t.Fatalf("GetDevice.Info = %+v, %v; want %+v", got.Info, err, info)
	}
	if list, _ := s.ListDevices(ctx(t), "acme"); len(list) != 1 || list[0].Info != info {
		t.Fatalf("ListDevices = %+v", list)
	}
	if list, _ := s.FindDevices(ctx(t), store.DeviceFilter{}); len(list) != 1 || list[0].Info != info {
		t.Fatalf("FindDevices = %+v", list)
	}
	if got, _ := s.GetDevice(ctx(t), "dev"); !got.LastSeen.IsZero() || got.Status != store.DeviceEnabled {
		t.Fatalf("GetDevice = %+v", got)
	}

	info2 := store.DeviceInfo{SiteID: "acme-2", Name: "Boiler 2", Model: "WX-3"}
	if err := s.SetDeviceInfo(ctx(t), "acme", "dev", info2); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetDevice(ctx(t), "dev"); got.Info != info2 {
		t.Fatalf("after SetDeviceInfo: %+v, want %+v", got.Info, info2)
	}
	wantErr(t, "SetDeviceInfo with another tenant's site",
		s.SetDeviceInfo(ctx(t), "acme", "dev", store.DeviceInfo{SiteID: "beta-1"}), database.ErrNotFound)
	wantErr(t, "SetDeviceInfo with a missing site",
		s.SetDeviceInfo(ctx(t), "acme", "dev", store.DeviceInfo{SiteID: "ghost"}), database.ErrNotFound)
	wantErr(t, "SetDeviceInfo of another tenant's device",
		s.SetDeviceInfo(ctx(t), "beta", "dev", store.DeviceInfo{}), database.ErrNotFound)
	wantErr(t, "SetDeviceInfo of a missing device",
		s.SetDeviceInfo(ctx(t), "acme", "ghost", store.DeviceInfo{}), database.ErrNotFound)
	if got, _ := s.GetDevice(ctx(t), "dev"); got.Info != info2 {
		t.Fatalf("failed SetDeviceInfo changed the device: %+v", got.Info)
	}
	// Unassigning.
	if err := s.SetDeviceInfo(ctx(t), "acme", "dev", store.DeviceInfo{Name: "spare"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetDevice(ctx(t), "dev"); got.Info != (store.DeviceInfo{Name: "spare"}) {
		t.Fatalf("after unassigning: %+v", got.Info)
	}

	d := store.Device{ID: "dev2", TenantID: "acme", Status: store.DeviceEnabled, PrimaryKey: key(1), SecondaryKey: key(2),
		CreatedAt: t0, Info: store.DeviceInfo{SiteID: "beta-1"}}
	wantErr(t, "CreateDevice with another tenant's site", s.CreateDevice(ctx(t), d), database.ErrNotFound)
	if _, err := s.GetDevice(ctx(t), "dev2"); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("device created with another tenant's site: %v", err)
	}
}

func testFindDevices(t *testing.T, s store.Store) {
	subTenant(t, s, "acme", tenancy.RootTenantID)
	subTenant(t, s, "beta", tenancy.RootTenantID)
	mustSite(t, s, "sa", "acme")
	mustSite(t, s, "sb", "beta")
	mustDevice(t, s, "a1", "acme", store.DeviceInfo{SiteID: "sa", Model: "X"})
	mustDevice(t, s, "a2", "acme", store.DeviceInfo{Model: "Y"})
	mustDevice(t, s, "a3", "acme", store.DeviceInfo{SiteID: "sa", Model: "Y"})
	mustDevice(t, s, "b1", "beta", store.DeviceInfo{SiteID: "sb", Model: "X"})
	mustDevice(t, s, "r1", tenancy.RootTenantID, store.DeviceInfo{})
	for _, tc := range []struct {
		f    store.DeviceFilter
		want []string
	}{
		{store.DeviceFilter{}, []string{"a1", "a2", "a3", "b1", "r1"}},
		{store.DeviceFilter{TenantIDs: []string{"acme"}}, []string{"a1", "a2", "a3"}},
		{store.DeviceFilter{TenantIDs: []string{"beta", tenancy.RootTenantID}}, []string{"b1", "r1"}},
		{store.DeviceFilter{TenantIDs: []string{}}, []string{}},
		{store.DeviceFilter{SiteIDs: []string{"sa"}}, []string{"a1", "a3"}},
		{store.DeviceFilter{SiteIDs: []string{"sa", "sb"}}, []string{"a1", "a3", "b1"}},
		{store.DeviceFilter{SiteIDs: []string{}}, []string{}},
		{store.DeviceFilter{IDs: []string{"r1", "a2", "ghost"}}, []string{"a2", "r1"}},
		{store.DeviceFilter{IDs: []string{}}, []string{}},
		{store.DeviceFilter{Model: "X"}, []string{"a1", "b1"}},
		{store.DeviceFilter{Model: "Y", SiteIDs: []string{"sa"}}, []string{"a3"}},
		{store.DeviceFilter{TenantIDs: []string{"acme"}, IDs: []string{"a1", "b1"}}, []string{"a1"}},
		{store.DeviceFilter{After: "a2"}, []string{"a3", "b1", "r1"}},
		{store.DeviceFilter{Limit: 2}, []string{"a1", "a2"}},
		{store.DeviceFilter{After: "a2", Limit: 2}, []string{"a3", "b1"}},
		{store.DeviceFilter{TenantIDs: []string{"acme"}, After: "a1", Limit: 1}, []string{"a2"}},
		{store.DeviceFilter{After: "r1"}, []string{}},
	} {
		got, err := s.FindDevices(ctx(t), tc.f)
		if err != nil || got == nil || !slices.Equal(ids(got), tc.want) {
			t.Errorf("FindDevices(%+v) = %v, %v; want %v", tc.f, ids(got), err, tc.want)
		}
	}
}
