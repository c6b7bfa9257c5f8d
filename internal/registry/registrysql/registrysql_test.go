package registrysql_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/access"
	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/registry/registrysql"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/enginetest"
	"github.com/warden-iot/warden/internal/tenancy"
	"github.com/warden-iot/warden/internal/tsdb/tsdbstore"
)

// TestStore is the conformance suite of registry.Store on each engine. Each
// test gets a fresh engine (e, for tenants, sites, users, grants and
// telemetry) with a keyring, and a registrysql.Store on its database.
func TestStore(t *testing.T) {
	enginetest.RunTests(t, registrysql.New, []enginetest.Test[*registrysql.Store]{
		{Name: "DeviceLifecycle", Fn: testDeviceLifecycle},
		{Name: "DeviceTenantIsolation", Fn: testDeviceTenantIsolation},
		{Name: "DeviceInfo", Fn: testDeviceInfo},
		{Name: "FindDevices", Fn: testFindDevices},
		{Name: "FindDevicesUnder", Fn: testFindDevicesUnder},
		{Name: "DeleteDeviceRemovesData", Fn: testDeleteDeviceRemovesData},
		{Name: "DeleteDeviceTakesGrants", Fn: testDeleteDeviceTakesGrants},
	})
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ctx(t *testing.T) context.Context { return t.Context() }

func key(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func grantIDs(gs []access.Grant) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.ID
	}
	return out
}

func testDeviceLifecycle(t *testing.T, e store.Store, s *registrysql.Store) {
	want := enginetest.RootDevice(t, s, "pump-1")
	if err := s.CreateDevice(ctx(t), want); !errors.Is(err, database.ErrConflict) {
		t.Fatalf("second CreateDevice error = %v, want ErrConflict", err)
	}
	got, err := s.GetDevice(ctx(t), "pump-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != want.ID || got.TenantID != want.TenantID || got.Status != registry.DeviceEnabled ||
		!bytes.Equal(got.PrimaryKey, want.PrimaryKey) || !bytes.Equal(got.SecondaryKey, want.SecondaryKey) ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.LastSeen.IsZero() || got.LastIP != "" {
		t.Fatalf("GetDevice = %+v, want %+v", got, want)
	}

	if err := s.SetDeviceStatus(ctx(t), tenancy.RootTenantID, "pump-1", registry.DeviceDisabled); err != nil {
		t.Fatal(err)
	}
	newKey := bytes.Repeat([]byte{9}, 32)
	if err := s.SetDeviceKeys(ctx(t), tenancy.RootTenantID, "pump-1", newKey, want.SecondaryKey); err != nil {
		t.Fatal(err)
	}
	seen := t0.Add(time.Hour)
	if err := s.TouchDevices(ctx(t), []registry.DeviceSeen{{ID: "pump-1", At: seen, IP: "192.0.2.7"}, {ID: "ghost", At: seen}}); err != nil {
		t.Fatal(err)
	}
	got, err = s.GetDevice(ctx(t), "pump-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != registry.DeviceDisabled || !bytes.Equal(got.PrimaryKey, newKey) ||
		!got.LastSeen.Equal(seen) || got.LastIP != "192.0.2.7" {
		t.Fatalf("after updates GetDevice = %+v", got)
	}

	enginetest.RootDevice(t, s, "heater-P1234")
	list, err := s.ListDevices(ctx(t), tenancy.RootTenantID)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "heater-P1234" || list[1].ID != "pump-1" {
		t.Fatalf("ListDevices = %v, want heater-P1234, pump-1 in id order", enginetest.DeviceIDs(list))
	}

	if err := s.DeleteDevice(ctx(t), tenancy.RootTenantID, "pump-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetDevice(ctx(t), "pump-1"); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("GetDevice after delete error = %v, want ErrNotFound", err)
	}
	for name, err := range map[string]error{
		"SetDeviceStatus": s.SetDeviceStatus(ctx(t), tenancy.RootTenantID, "pump-1", registry.DeviceEnabled),
		"SetDeviceKeys":   s.SetDeviceKeys(ctx(t), tenancy.RootTenantID, "pump-1", newKey, newKey),
		"DeleteDevice":    s.DeleteDevice(ctx(t), tenancy.RootTenantID, "pump-1"),
	} {
		if !errors.Is(err, database.ErrNotFound) {
			t.Errorf("%s on a deleted device error = %v, want ErrNotFound", name, err)
		}
	}
}

func testDeviceTenantIsolation(t *testing.T, e store.Store, s *registrysql.Store) {
	enginetest.RootDevice(t, s, "d1")
	const other = "another-tenant"
	if err := s.SetDeviceStatus(ctx(t), other, "d1", registry.DeviceDisabled); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("SetDeviceStatus from another tenant error = %v, want ErrNotFound", err)
	}
	if err := s.DeleteDevice(ctx(t), other, "d1"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("DeleteDevice from another tenant error = %v, want ErrNotFound", err)
	}
	list, err := s.ListDevices(ctx(t), other)
	if err != nil || len(list) != 0 {
		t.Errorf("ListDevices(other) = %v, %v; want none", enginetest.DeviceIDs(list), err)
	}
	if _, err := e.LatestBlob(ctx(t), other, "d1"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("LatestBlob from another tenant error = %v, want ErrNotFound", err)
	}
	if _, err := e.ListRejected(ctx(t), other, "d1", 10); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("ListRejected from another tenant error = %v, want ErrNotFound", err)
	}
	if _, _, err := e.ReadSeries(ctx(t), other, "d1", "m", 0, 1<<50); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("ReadSeries from another tenant error = %v, want ErrNotFound", err)
	}
	if blobs, err := e.LatestBlobs(ctx(t), other, "", 10); err != nil || len(blobs) != 0 {
		t.Errorf("LatestBlobs(other) = %v, %v; want none", blobs, err)
	}
	d, err := s.GetDevice(ctx(t), "d1")
	if err != nil || d.Status != registry.DeviceEnabled {
		t.Errorf("device changed by another tenant: %+v, %v", d, err)
	}
}

func testDeviceInfo(t *testing.T, e store.Store, s *registrysql.Store) {
	enginetest.Tenant(t, e, "acme", tenancy.RootTenantID)
	enginetest.Tenant(t, e, "beta", tenancy.RootTenantID)
	enginetest.Site(t, e, "acme-1", "acme")
	enginetest.Site(t, e, "acme-2", "acme")
	enginetest.Site(t, e, "beta-1", "beta")
	info := registry.DeviceInfo{SiteID: "acme-1", Name: "Boiler", SerialNumber: "P1234567", MeterNumber: "M-9",
		MeasurementLocation: "cellar", InstallationPlace: "room 3", Model: "WX-2", FirmwareVersion: "1.4.2"}
	enginetest.Device(t, s, "dev", "acme", info)
	got, err := s.GetDevice(ctx(t), "dev")
	if err != nil || got.Info != info {
		t.Fatalf("GetDevice.Info = %+v, %v; want %+v", got.Info, err, info)
	}
	if list, _ := s.ListDevices(ctx(t), "acme"); len(list) != 1 || list[0].Info != info {
		t.Fatalf("ListDevices = %+v", list)
	}
	if list, _ := s.FindDevices(ctx(t), registry.DeviceFilter{}); len(list) != 1 || list[0].Info != info {
		t.Fatalf("FindDevices = %+v", list)
	}
	if got, _ := s.GetDevice(ctx(t), "dev"); !got.LastSeen.IsZero() || got.Status != registry.DeviceEnabled {
		t.Fatalf("GetDevice = %+v", got)
	}

	info2 := registry.DeviceInfo{SiteID: "acme-2", Name: "Boiler 2", Model: "WX-3"}
	if err := s.SetDeviceInfo(ctx(t), "acme", "dev", info2); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetDevice(ctx(t), "dev"); got.Info != info2 {
		t.Fatalf("after SetDeviceInfo: %+v, want %+v", got.Info, info2)
	}
	enginetest.WantErr(t, "SetDeviceInfo with another tenant's site",
		s.SetDeviceInfo(ctx(t), "acme", "dev", registry.DeviceInfo{SiteID: "beta-1"}), database.ErrNotFound)
	enginetest.WantErr(t, "SetDeviceInfo with a missing site",
		s.SetDeviceInfo(ctx(t), "acme", "dev", registry.DeviceInfo{SiteID: "ghost"}), database.ErrNotFound)
	enginetest.WantErr(t, "SetDeviceInfo of another tenant's device",
		s.SetDeviceInfo(ctx(t), "beta", "dev", registry.DeviceInfo{}), database.ErrNotFound)
	enginetest.WantErr(t, "SetDeviceInfo of a missing device",
		s.SetDeviceInfo(ctx(t), "acme", "ghost", registry.DeviceInfo{}), database.ErrNotFound)
	if got, _ := s.GetDevice(ctx(t), "dev"); got.Info != info2 {
		t.Fatalf("failed SetDeviceInfo changed the device: %+v", got.Info)
	}
	// Unassigning.
	if err := s.SetDeviceInfo(ctx(t), "acme", "dev", registry.DeviceInfo{Name: "spare"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetDevice(ctx(t), "dev"); got.Info != (registry.DeviceInfo{Name: "spare"}) {
		t.Fatalf("after unassigning: %+v", got.Info)
	}

	d := registry.Device{ID: "dev2", TenantID: "acme", Status: registry.DeviceEnabled, PrimaryKey: key(1), SecondaryKey: key(2),
		CreatedAt: t0, Info: registry.DeviceInfo{SiteID: "beta-1"}}
	enginetest.WantErr(t, "CreateDevice with another tenant's site", s.CreateDevice(ctx(t), d), database.ErrNotFound)
	if _, err := s.GetDevice(ctx(t), "dev2"); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("device created with another tenant's site: %v", err)
	}
}

func testFindDevices(t *testing.T, e store.Store, s *registrysql.Store) {
	enginetest.Tenant(t, e, "acme", tenancy.RootTenantID)
	enginetest.Tenant(t, e, "beta", tenancy.RootTenantID)
	enginetest.Site(t, e, "sa", "acme")
	enginetest.Site(t, e, "sb", "beta")
	enginetest.Device(t, s, "a1", "acme", registry.DeviceInfo{SiteID: "sa", Model: "X"})
	enginetest.Device(t, s, "a2", "acme", registry.DeviceInfo{Model: "Y"})
	enginetest.Device(t, s, "a3", "acme", registry.DeviceInfo{SiteID: "sa", Model: "Y"})
	enginetest.Device(t, s, "b1", "beta", registry.DeviceInfo{SiteID: "sb", Model: "X"})
	enginetest.Device(t, s, "r1", tenancy.RootTenantID, registry.DeviceInfo{})
	for _, tc := range []struct {
		f    registry.DeviceFilter
		want []string
	}{
		{registry.DeviceFilter{}, []string{"a1", "a2", "a3", "b1", "r1"}},
		{registry.DeviceFilter{TenantIDs: []string{"acme"}}, []string{"a1", "a2", "a3"}},
		{registry.DeviceFilter{TenantIDs: []string{"beta", tenancy.RootTenantID}}, []string{"b1", "r1"}},
		{registry.DeviceFilter{TenantIDs: []string{}}, []string{}},
		{registry.DeviceFilter{SiteIDs: []string{"sa"}}, []string{"a1", "a3"}},
		{registry.DeviceFilter{SiteIDs: []string{"sa", "sb"}}, []string{"a1", "a3", "b1"}},
		{registry.DeviceFilter{SiteIDs: []string{}}, []string{}},
		{registry.DeviceFilter{IDs: []string{"r1", "a2", "ghost"}}, []string{"a2", "r1"}},
		{registry.DeviceFilter{IDs: []string{}}, []string{}},
		{registry.DeviceFilter{Model: "X"}, []string{"a1", "b1"}},
		{registry.DeviceFilter{Model: "Y", SiteIDs: []string{"sa"}}, []string{"a3"}},
		{registry.DeviceFilter{TenantIDs: []string{"acme"}, IDs: []string{"a1", "b1"}}, []string{"a1"}},
		{registry.DeviceFilter{After: "a2"}, []string{"a3", "b1", "r1"}},
		{registry.DeviceFilter{Limit: 2}, []string{"a1", "a2"}},
		{registry.DeviceFilter{After: "a2", Limit: 2}, []string{"a3", "b1"}},
		{registry.DeviceFilter{TenantIDs: []string{"acme"}, After: "a1", Limit: 1}, []string{"a2"}},
		{registry.DeviceFilter{After: "r1"}, []string{}},
	} {
		got, err := s.FindDevices(ctx(t), tc.f)
		if err != nil || got == nil || !slices.Equal(enginetest.DeviceIDs(got), tc.want) {
			t.Errorf("FindDevices(%+v) = %v, %v; want %v", tc.f, enginetest.DeviceIDs(got), err, tc.want)
		}
	}
}

func testDeleteDeviceRemovesData(t *testing.T, e store.Store, s *registrysql.Store) {
	enginetest.RootDevice(t, s, "a")
	enginetest.WriteHead(t, e, enginetest.HeadRecord("a", "m", 1, 2))
	if err := e.SealHead(ctx(t), "a", nil, nil, []tsdbstore.ChunkRecord{enginetest.Chunk("a", "x", 0, 10)}); err != nil {
		t.Fatal(err)
	}
	if err := e.AddRejected(ctx(t), tsdbstore.Rejected{TenantID: tenancy.RootTenantID, DeviceID: "a", Reason: "r", ReceivedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDevice(ctx(t), tenancy.RootTenantID, "a"); err != nil {
		t.Fatal(err)
	}
	enginetest.RootDevice(t, s, "a") // a new device under the old name starts empty
	head, chunks, err := e.ReadSeries(ctx(t), tenancy.RootTenantID, "a", "x", 0, 1<<50)
	if err != nil || len(head) != 0 || len(chunks) != 0 {
		t.Fatalf("series of re-created device: %d head, %d chunks, %v; want none", len(head), len(chunks), err)
	}
	if b, err := e.LatestBlob(ctx(t), tenancy.RootTenantID, "a"); err != nil || b != nil {
		t.Fatalf("latest of re-created device = %q, %v", b, err)
	}
	if r, err := e.ListRejected(ctx(t), tenancy.RootTenantID, "a", 10); err != nil || len(r) != 0 {
		t.Fatalf("rejected of re-created device = %v, %v", r, err)
	}
	if due, _ := e.DevicesToSeal(ctx(t), 1, t0, 10); len(due) != 0 {
		t.Fatalf("deleted device still due for sealing: %v", due)
	}
	if res := enginetest.WriteHead(t, e, enginetest.HeadRecord("a", "m", 1, 2)); res[0].Duplicate {
		t.Fatal("message id of the deleted device still remembered")
	}
}

func testDeleteDeviceTakesGrants(t *testing.T, e store.Store, s *registrysql.Store) {
	enginetest.Site(t, e, "site", tenancy.RootTenantID)
	enginetest.Device(t, s, "dev", tenancy.RootTenantID, registry.DeviceInfo{SiteID: "site"})
	enginetest.Device(t, s, "dev2", tenancy.RootTenantID, registry.DeviceInfo{})
	enginetest.Supporter(t, e, "tech", tenancy.RootTenantID)
	for _, g := range []access.Grant{
		{ID: "g-dev", TenantID: tenancy.RootTenantID, SupporterUserID: "tech", DeviceID: "dev", CreatedBy: "op", CreatedAt: t0},
		{ID: "g-dev2", TenantID: tenancy.RootTenantID, SupporterUserID: "tech", DeviceID: "dev2", CreatedBy: "op", CreatedAt: t0},
		{ID: "g-site", TenantID: tenancy.RootTenantID, SupporterUserID: "tech", SiteID: "site", CreatedBy: "op", CreatedAt: t0},
	} {
		if err := e.CreateGrant(ctx(t), g); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteDevice(ctx(t), tenancy.RootTenantID, "dev"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.GetGrant(ctx(t), "g-dev"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("grant on a deleted device: %v; want it deleted", err)
	}
	for _, id := range []string{"g-dev2", "g-site"} {
		if g, err := e.GetGrant(ctx(t), id); err != nil || !g.RevokedAt.IsZero() {
			t.Errorf("grant %s = %+v, %v; want it untouched", id, g, err)
		}
	}
	// A device of the same id made later gets no old grants.
	enginetest.Device(t, s, "dev", tenancy.RootTenantID, registry.DeviceInfo{})
	if gs, _ := e.ListGrants(ctx(t), access.GrantFilter{DeviceID: "dev"}); len(gs) != 0 {
		t.Errorf("new device inherits grants %v", grantIDs(gs))
	}
}

// testFindDevicesUnder: Under takes a tenant's whole subtree, however
// deep, and no tenant whose id merely starts with the tenant's ("acme2",
// "acme-b", "acme_x"); FactoryAccess takes the devices at switched-on
// sites; both page with After and Limit.
func testFindDevicesUnder(t *testing.T, e store.Store, s *registrysql.Store) {
	enginetest.Tenant(t, e, "acme", tenancy.RootTenantID)
	enginetest.Tenant(t, e, "acme2", tenancy.RootTenantID)
	enginetest.Tenant(t, e, "acme-b", tenancy.RootTenantID)
	enginetest.Tenant(t, e, "acme_x", tenancy.RootTenantID)
	enginetest.Tenant(t, e, "east", "acme")
	enginetest.Tenant(t, e, "floor", "east")
	enginetest.Tenant(t, e, "bay", "floor")
	enginetest.Site(t, e, "s1", "acme")
	enginetest.Site(t, e, "s2", "acme2")
	enginetest.Device(t, s, "d-acme", "acme", registry.DeviceInfo{SiteID: "s1"})
	enginetest.Device(t, s, "d-acme2", "acme2", registry.DeviceInfo{SiteID: "s2"})
	enginetest.Device(t, s, "d-acmeb", "acme-b", registry.DeviceInfo{})
	enginetest.Device(t, s, "d-acmex", "acme_x", registry.DeviceInfo{})
	enginetest.Device(t, s, "d-east", "east", registry.DeviceInfo{})
	enginetest.Device(t, s, "d-floor", "floor", registry.DeviceInfo{})
	enginetest.Device(t, s, "d-bay", "bay", registry.DeviceInfo{})
	enginetest.Device(t, s, "d-root", tenancy.RootTenantID, registry.DeviceInfo{})
	if err := e.SetFactoryAccess(ctx(t), "s2", true, t0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		f    registry.DeviceFilter
		want []string
	}{
		{registry.DeviceFilter{Under: "acme"}, []string{"d-acme", "d-bay", "d-east", "d-floor"}},
		{registry.DeviceFilter{Under: "acme2"}, []string{"d-acme2"}},
		{registry.DeviceFilter{Under: "acme_x"}, []string{"d-acmex"}},
		{registry.DeviceFilter{Under: "east"}, []string{"d-bay", "d-east", "d-floor"}},
		{registry.DeviceFilter{Under: "bay"}, []string{"d-bay"}},
		{registry.DeviceFilter{Under: tenancy.RootTenantID}, []string{"d-acme", "d-acme2", "d-acmeb", "d-acmex", "d-bay", "d-east", "d-floor", "d-root"}},
		{registry.DeviceFilter{Under: "ghost"}, []string{}},
		{registry.DeviceFilter{Under: "acme", After: "d-bay", Limit: 1}, []string{"d-east"}},
		{registry.DeviceFilter{Under: "acme", SiteIDs: []string{"s1"}}, []string{"d-acme"}},
		{registry.DeviceFilter{FactoryAccess: true}, []string{"d-acme2"}},
		{registry.DeviceFilter{FactoryAccess: true, Under: "acme"}, []string{}},
	} {
		got, err := s.FindDevices(ctx(t), tc.f)
		if err != nil || got == nil || !slices.Equal(enginetest.DeviceIDs(got), tc.want) {
			t.Errorf("FindDevices(%+v) = %v, %v; want %v", tc.f, enginetest.DeviceIDs(got), err, tc.want)
		}
	}
}
