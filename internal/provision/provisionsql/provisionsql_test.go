package provisionsql_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/provision"
	"github.com/warden-iot/warden/internal/provision/provisionsql"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/enginetest"
	"github.com/warden-iot/warden/internal/tenancy"
)

// TestStore runs the conformance suite of provision.Store on each engine.
// The engine makes the prerequisites (tenants, devices) and seals with a
// keyring, as the server does; the suite's calls go to a provisionsql.Store
// on the engine's database.
func TestStore(t *testing.T) {
	enginetest.RunTests(t, func(db database.DB) provision.Store { return provisionsql.New(db) }, dpsTests)
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ctx(t *testing.T) context.Context { return t.Context() }

func key(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

var twin = []byte(`{"tags":{"site":"Lyon"},"properties":{"desired":{"interval":30}}}`)

// dpsTests cover provision.Store.
var dpsTests = []enginetest.Test[provision.Store]{
	{Name: "IDScopes", Fn: testIDScopes},
	{Name: "EnrollmentGroups", Fn: testEnrollmentGroups},
	{Name: "EnrollmentGroupLimit", Fn: testEnrollmentGroupLimit},
	{Name: "Enrollments", Fn: testEnrollments},
	{Name: "AssignRegistrations", Fn: testAssignRegistrations},
	{Name: "AssignConflicts", Fn: testAssignConflicts},
	{Name: "AssignBatchWithRepeats", Fn: testAssignBatchWithRepeats},
	{Name: "RegistrationPages", Fn: testRegistrationPages},
	{Name: "DeleteTenantTakesProvisioning", Fn: testDeleteTenantTakesProvisioning},
}

func testIDScopes(t *testing.T, s store.Store, p provision.Store) {
	enginetest.Tenant(t, s, "acme", tenancy.RootTenantID)
	scope, err := p.IDScope(ctx(t), tenancy.RootTenantID)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^0ne[0-9A-F]{8}$`).MatchString(scope) {
		t.Fatalf("IDScope = %q, want 0ne and 8 upper-case hex digits", scope)
	}
	if again, err := p.IDScope(ctx(t), tenancy.RootTenantID); err != nil || again != scope {
		t.Fatalf("second IDScope = %q, %v; want %q", again, err, scope)
	}
	acme, err := p.IDScope(ctx(t), "acme")
	if err != nil || acme == scope {
		t.Fatalf("IDScope(acme) = %q, %v; want another scope than root's %q", acme, err, scope)
	}
	for _, q := range []string{scope, strings.ToLower(scope), strings.ToUpper(scope)} {
		if got, err := p.TenantByIDScope(ctx(t), q); err != nil || got != tenancy.RootTenantID {
			t.Errorf("TenantByIDScope(%q) = %q, %v; want root", q, got, err)
		}
	}
	if got, err := p.TenantByIDScope(ctx(t), acme); err != nil || got != "acme" {
		t.Errorf("TenantByIDScope(%q) = %q, %v; want acme", acme, got, err)
	}
	if _, err := p.TenantByIDScope(ctx(t), "0ne00000000"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("TenantByIDScope(unknown) error = %v, want ErrNotFound", err)
	}
	if _, err := p.IDScope(ctx(t), "ghost"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("IDScope(unknown tenant) error = %v, want ErrNotFound", err)
	}
}

func testEnrollmentGroups(t *testing.T, s store.Store, p provision.Store) {
	enginetest.Tenant(t, s, "acme", tenancy.RootTenantID)
	g := provision.EnrollmentGroup{ID: "factory-b", TenantID: tenancy.RootTenantID, Enabled: true, PrimaryKey: key(1), SecondaryKey: key(2),
		InitialTwin: twin, CreatedAt: t0, UpdatedAt: t0}
	if err := p.CreateEnrollmentGroup(ctx(t), g); err != nil {
		t.Fatal(err)
	}
	if err := p.CreateEnrollmentGroup(ctx(t), g); !errors.Is(err, database.ErrConflict) {
		t.Fatalf("second CreateEnrollmentGroup error = %v, want ErrConflict", err)
	}
	a := g
	a.ID, a.InitialTwin = "factory-a", nil
	if err := p.CreateEnrollmentGroup(ctx(t), a); err != nil {
		t.Fatal(err)
	}
	// Another tenant may use the same id.
	other := g
	other.TenantID = "acme"
	if err := p.CreateEnrollmentGroup(ctx(t), other); err != nil {
		t.Fatal(err)
	}
	got, err := p.GetEnrollmentGroup(ctx(t), tenancy.RootTenantID, "factory-b")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != g.ID || got.TenantID != g.TenantID || !got.Enabled || !bytes.Equal(got.PrimaryKey, g.PrimaryKey) ||
		!bytes.Equal(got.SecondaryKey, g.SecondaryKey) || string(got.InitialTwin) != string(twin) ||
		!got.CreatedAt.Equal(t0) || !got.UpdatedAt.Equal(t0) {
		t.Fatalf("GetEnrollmentGroup = %+v, want %+v", got, g)
	}
	if got, err := p.GetEnrollmentGroup(ctx(t), tenancy.RootTenantID, "factory-a"); err != nil || got.InitialTwin != nil {
		t.Fatalf("group without initial twin = %+v, %v; want InitialTwin nil", got, err)
	}
	list, err := p.ListEnrollmentGroups(ctx(t), tenancy.RootTenantID)
	if err != nil || len(list) != 2 || list[0].ID != "factory-a" || list[1].ID != "factory-b" {
		t.Fatalf("ListEnrollmentGroups = %+v, %v; want factory-a, factory-b", list, err)
	}
	if _, err := p.GetEnrollmentGroup(ctx(t), "acme", "factory-a"); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("group of another tenant: error = %v, want ErrNotFound", err)
	}

	// Updates change only what they name.
	off := false
	t1 := t0.Add(time.Hour)
	u, err := p.UpdateEnrollmentGroup(ctx(t), tenancy.RootTenantID, "factory-b", provision.EnrollmentUpdate{Enabled: &off, UpdatedAt: t1})
	if err != nil || u.Enabled || !bytes.Equal(u.PrimaryKey, key(1)) || string(u.InitialTwin) != string(twin) || !u.UpdatedAt.Equal(t1) || !u.CreatedAt.Equal(t0) {
		t.Fatalf("disable = %+v, %v", u, err)
	}
	u, err = p.UpdateEnrollmentGroup(ctx(t), tenancy.RootTenantID, "factory-b", provision.EnrollmentUpdate{PrimaryKey: key(7), UpdatedAt: t1})
	if err != nil || u.Enabled || !bytes.Equal(u.PrimaryKey, key(7)) || !bytes.Equal(u.SecondaryKey, key(2)) {
		t.Fatalf("new primary key = %+v, %v", u, err)
	}
	u, err = p.UpdateEnrollmentGroup(ctx(t), tenancy.RootTenantID, "factory-b", provision.EnrollmentUpdate{SetInitialTwin: true, UpdatedAt: t1})
	if err != nil || u.InitialTwin != nil {
		t.Fatalf("remove initial twin = %+v, %v", u, err)
	}
	newTwin := []byte(`{"tags":{"site":"Brno"}}`)
	on := true
	u, err = p.UpdateEnrollmentGroup(ctx(t), tenancy.RootTenantID, "factory-b", provision.EnrollmentUpdate{Enabled: &on, SetInitialTwin: true, InitialTwin: newTwin, UpdatedAt: t1})
	if err != nil || !u.Enabled || string(u.InitialTwin) != string(newTwin) {
		t.Fatalf("enable with new twin = %+v, %v", u, err)
	}
	if got, _ := p.GetEnrollmentGroup(ctx(t), tenancy.RootTenantID, "factory-b"); string(got.InitialTwin) != string(newTwin) || !got.Enabled {
		t.Fatalf("after updates GetEnrollmentGroup = %+v", got)
	}
	if _, err := p.UpdateEnrollmentGroup(ctx(t), tenancy.RootTenantID, "ghost", provision.EnrollmentUpdate{Enabled: &on, UpdatedAt: t1}); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("update unknown group error = %v, want ErrNotFound", err)
	}
	if err := p.DeleteEnrollmentGroup(ctx(t), tenancy.RootTenantID, "factory-b"); err != nil {
		t.Fatal(err)
	}
	if err := p.DeleteEnrollmentGroup(ctx(t), tenancy.RootTenantID, "factory-b"); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("second delete error = %v, want ErrNotFound", err)
	}
	if _, err := p.GetEnrollmentGroup(ctx(t), "acme", "factory-b"); err != nil {
		t.Fatalf("the other tenant's group of the same id: %v", err)
	}
}

func testEnrollmentGroupLimit(t *testing.T, s store.Store, p provision.Store) {
	for i := range provision.MaxEnrollmentGroups {
		g := provision.EnrollmentGroup{ID: fmt.Sprintf("g%03d", i), TenantID: tenancy.RootTenantID, Enabled: true,
			PrimaryKey: key(1), SecondaryKey: key(2), CreatedAt: t0, UpdatedAt: t0}
		if err := p.CreateEnrollmentGroup(ctx(t), g); err != nil {
			t.Fatalf("group %d: %v", i, err)
		}
	}
	g := provision.EnrollmentGroup{ID: "one-too-many", TenantID: tenancy.RootTenantID, PrimaryKey: key(1), SecondaryKey: key(2), CreatedAt: t0, UpdatedAt: t0}
	if err := p.CreateEnrollmentGroup(ctx(t), g); !errors.Is(err, provision.ErrLimit) {
		t.Fatalf("group %d: error = %v, want ErrLimit", provision.MaxEnrollmentGroups+1, err)
	}
}

func testEnrollments(t *testing.T, s store.Store, p provision.Store) {
	e := provision.Enrollment{RegistrationID: "boiler-7", TenantID: tenancy.RootTenantID, DeviceID: "boiler-7-dev", Enabled: true,
		PrimaryKey: key(3), SecondaryKey: key(4), InitialTwin: twin, CreatedAt: t0, UpdatedAt: t0}
	if err := p.CreateEnrollment(ctx(t), e); err != nil {
		t.Fatal(err)
	}
	if err := p.CreateEnrollment(ctx(t), e); !errors.Is(err, database.ErrConflict) {
		t.Fatalf("second CreateEnrollment error = %v, want ErrConflict", err)
	}
	a := e
	a.RegistrationID, a.DeviceID, a.InitialTwin = "aaa", "aaa", nil
	if err := p.CreateEnrollment(ctx(t), a); err != nil {
		t.Fatal(err)
	}
	got, err := p.GetEnrollment(ctx(t), tenancy.RootTenantID, "boiler-7")
	if err != nil || got.DeviceID != "boiler-7-dev" || !got.Enabled || !bytes.Equal(got.PrimaryKey, key(3)) ||
		!bytes.Equal(got.SecondaryKey, key(4)) || string(got.InitialTwin) != string(twin) || !got.CreatedAt.Equal(t0) {
		t.Fatalf("GetEnrollment = %+v, %v", got, err)
	}
	list, err := p.ListEnrollments(ctx(t), tenancy.RootTenantID)
	if err != nil || len(list) != 2 || list[0].RegistrationID != "aaa" || list[1].RegistrationID != "boiler-7" {
		t.Fatalf("ListEnrollments = %+v, %v", list, err)
	}
	off := false
	u, err := p.UpdateEnrollment(ctx(t), tenancy.RootTenantID, "boiler-7", provision.EnrollmentUpdate{Enabled: &off, SecondaryKey: key(9), UpdatedAt: t0.Add(time.Minute)})
	if err != nil || u.Enabled || !bytes.Equal(u.SecondaryKey, key(9)) || !bytes.Equal(u.PrimaryKey, key(3)) || u.DeviceID != "boiler-7-dev" {
		t.Fatalf("UpdateEnrollment = %+v, %v", u, err)
	}
	if _, err := p.GetEnrollment(ctx(t), "acme", "boiler-7"); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("enrollment of another tenant: error = %v", err)
	}
	if err := p.DeleteEnrollment(ctx(t), tenancy.RootTenantID, "boiler-7"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.GetEnrollment(ctx(t), tenancy.RootTenantID, "boiler-7"); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("deleted enrollment: error = %v", err)
	}
	if err := p.DeleteEnrollment(ctx(t), tenancy.RootTenantID, "boiler-7"); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("second delete error = %v", err)
	}
}

func testAssignRegistrations(t *testing.T, s store.Store, p provision.Store) {
	a := enginetest.Assignment(tenancy.RootTenantID, "sensor-1", "factory", 10, t0)
	a.Registration.Payload = []byte(`{"model":"X2"}`)
	a.Registration.InitialTwin = twin
	res := enginetest.Assign(t, p, a)
	r := res[0].Registration
	if res[0].Err != nil || r.Status != provision.RegistrationAssigned || r.Substatus != provision.SubstatusInitialAssignment ||
		!r.CreatedAt.Equal(t0) || !r.UpdatedAt.Equal(t0) || r.DeviceID != "sensor-1" {
		t.Fatalf("first assignment = %+v, %v", r, res[0].Err)
	}
	d, err := s.GetDevice(ctx(t), "sensor-1")
	if err != nil || d.TenantID != tenancy.RootTenantID || d.Status != registry.DeviceEnabled ||
		!bytes.Equal(d.PrimaryKey, key(10)) || !bytes.Equal(d.SecondaryKey, key(11)) || !d.CreatedAt.Equal(t0) {
		t.Fatalf("assigned device = %+v, %v", d, err)
	}
	got, err := p.GetRegistration(ctx(t), tenancy.RootTenantID, "sensor-1")
	if err != nil || got.EnrollmentKind != provision.EnrollmentGroupKind || got.EnrollmentID != "factory" ||
		got.OperationID != a.Registration.OperationID || got.ETag != a.Registration.ETag || string(got.Payload) != `{"model":"X2"}` ||
		string(got.InitialTwin) != string(twin) || got.Substatus != provision.SubstatusInitialAssignment || !got.CreatedAt.Equal(t0) {
		t.Fatalf("GetRegistration = %+v, %v", got, err)
	}

	// Re-registration: new keys, same device, status kept, created kept.
	if err := s.SetDeviceStatus(ctx(t), tenancy.RootTenantID, "sensor-1", registry.DeviceDisabled); err != nil {
		t.Fatal(err)
	}
	t1 := t0.Add(time.Hour)
	b := enginetest.Assignment(tenancy.RootTenantID, "sensor-1", "factory", 20, t1)
	res = enginetest.Assign(t, p, b)
	r = res[0].Registration
	if res[0].Err != nil || r.Substatus != provision.SubstatusDeviceDataReset || !r.CreatedAt.Equal(t0) || !r.UpdatedAt.Equal(t1) {
		t.Fatalf("re-registration = %+v, %v", r, res[0].Err)
	}
	d, _ = s.GetDevice(ctx(t), "sensor-1")
	if d.Status != registry.DeviceDisabled || !bytes.Equal(d.PrimaryKey, key(20)) || !bytes.Equal(d.SecondaryKey, key(21)) {
		t.Fatalf("re-registered device = %+v; want keys replaced and status kept", d)
	}
	got, _ = p.GetRegistration(ctx(t), tenancy.RootTenantID, "sensor-1")
	if got.Payload != nil || got.OperationID != b.Registration.OperationID || !got.UpdatedAt.Equal(t1) || got.Substatus != provision.SubstatusDeviceDataReset {
		t.Fatalf("registration after re-registration = %+v", got)
	}

	// A deleted device comes back on the next registration.
	if err := s.DeleteDevice(ctx(t), tenancy.RootTenantID, "sensor-1"); err != nil {
		t.Fatal(err)
	}
	res = enginetest.Assign(t, p, enginetest.Assignment(tenancy.RootTenantID, "sensor-1", "factory", 30, t1))
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	if d, err := s.GetDevice(ctx(t), "sensor-1"); err != nil || !bytes.Equal(d.PrimaryKey, key(30)) || d.Status != registry.DeviceEnabled {
		t.Fatalf("device assigned again after deletion = %+v, %v", d, err)
	}

	if err := p.DeleteRegistration(ctx(t), tenancy.RootTenantID, "sensor-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.GetRegistration(ctx(t), tenancy.RootTenantID, "sensor-1"); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("deleted registration: error = %v", err)
	}
	if err := p.DeleteRegistration(ctx(t), tenancy.RootTenantID, "sensor-1"); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("second delete error = %v", err)
	}
	if _, err := s.GetDevice(ctx(t), "sensor-1"); err != nil {
		t.Fatalf("the device stays when its registration is deleted: %v", err)
	}
}

func testAssignConflicts(t *testing.T, s store.Store, p provision.Store) {
	enginetest.Tenant(t, s, "acme", tenancy.RootTenantID)
	enginetest.RootDevice(t, s, "by-hand") // made through the API, not provisioned
	other := registry.Device{ID: "acme-7", TenantID: "acme", Status: registry.DeviceEnabled, PrimaryKey: key(5), SecondaryKey: key(6), CreatedAt: t0}
	if err := s.CreateDevice(ctx(t), other); err != nil {
		t.Fatal(err)
	}
	enginetest.Assign(t, p, enginetest.Assignment(tenancy.RootTenantID, "via-a", "group-a", 40, t0))

	viaB := enginetest.Assignment(tenancy.RootTenantID, "via-a", "group-b", 50, t0.Add(time.Minute))
	individual := enginetest.Assignment(tenancy.RootTenantID, "via-a", "via-a", 50, t0.Add(time.Minute))
	individual.Registration.EnrollmentKind = provision.EnrollmentIndividualKind
	otherDevice := enginetest.Assignment(tenancy.RootTenantID, "via-a", "group-a", 50, t0.Add(time.Minute))
	otherDevice.Registration.DeviceID = "by-hand"
	ok := enginetest.Assignment(tenancy.RootTenantID, "fresh", "group-a", 60, t0)
	res := enginetest.Assign(t, p,
		enginetest.Assignment(tenancy.RootTenantID, "by-hand", "group-a", 50, t0), // a device made by hand
		enginetest.Assignment(tenancy.RootTenantID, "acme-7", "group-a", 50, t0),  // another tenant's device
		viaB,        // provisioned through another group
		individual,  // … or through an individual enrollment of the same id
		otherDevice, // the same registration, but another device id
		ok,
	)
	for i, r := range res[:5] {
		if !errors.Is(r.Err, database.ErrConflict) {
			t.Errorf("assignment %d: error = %v, want ErrConflict", i, r.Err)
		}
	}
	if res[5].Err != nil || res[5].Registration.Substatus != provision.SubstatusInitialAssignment {
		t.Errorf("the other assignment of the batch = %+v, %v", res[5].Registration, res[5].Err)
	}
	// Nothing changed for the refused ones.
	for id, want := range map[string][]byte{"by-hand": bytes.Repeat([]byte{1}, 32), "acme-7": key(5), "via-a": key(40)} {
		if d, err := s.GetDevice(ctx(t), id); err != nil || !bytes.Equal(d.PrimaryKey, want) {
			t.Errorf("device %s after refused assignments: %+v, %v", id, d, err)
		}
	}
	if r, err := p.GetRegistration(ctx(t), tenancy.RootTenantID, "via-a"); err != nil || r.EnrollmentID != "group-a" || !r.UpdatedAt.Equal(t0) {
		t.Errorf("registration via-a after refused assignments: %+v, %v", r, err)
	}
	for _, id := range []string{"by-hand", "acme-7"} {
		if _, err := p.GetRegistration(ctx(t), tenancy.RootTenantID, id); !errors.Is(err, database.ErrNotFound) {
			t.Errorf("registration %s recorded although refused: %v", id, err)
		}
	}
}

func testAssignBatchWithRepeats(t *testing.T, s store.Store, p provision.Store) {
	// The same device twice in a batch (two connections at once): the
	// second is a re-registration of the first.
	res := enginetest.Assign(t, p,
		enginetest.Assignment(tenancy.RootTenantID, "twice", "g", 70, t0),
		enginetest.Assignment(tenancy.RootTenantID, "twice", "g", 80, t0.Add(time.Second)))
	if res[0].Err != nil || res[1].Err != nil || res[0].Registration.Substatus != provision.SubstatusInitialAssignment ||
		res[1].Registration.Substatus != provision.SubstatusDeviceDataReset {
		t.Fatalf("results = %+v", res)
	}
	if d, _ := s.GetDevice(ctx(t), "twice"); !bytes.Equal(d.PrimaryKey, key(80)) {
		t.Fatalf("device keys = %x, want the second assignment's", d.PrimaryKey)
	}
	if res, err := p.AssignRegistrations(ctx(t), nil); err != nil || len(res) != 0 {
		t.Fatalf("empty batch = %v, %v", res, err)
	}
}

func testRegistrationPages(t *testing.T, s store.Store, p provision.Store) {
	enginetest.Tenant(t, s, "acme", tenancy.RootTenantID)
	var as []provision.Assignment
	for i := range 5 {
		as = append(as, enginetest.Assignment(tenancy.RootTenantID, fmt.Sprintf("r%d", 4-i), "g", 1, t0))
	}
	as = append(as, enginetest.Assignment("acme", "acme-r", "g", 1, t0))
	for _, r := range enginetest.Assign(t, p, as...) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	var got []string
	after := ""
	for {
		page, err := p.ListRegistrations(ctx(t), tenancy.RootTenantID, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			got = append(got, r.RegistrationID)
		}
		after = page[len(page)-1].RegistrationID
	}
	if strings.Join(got, ",") != "r0,r1,r2,r3,r4" {
		t.Fatalf("pages = %v, want r0…r4", got)
	}
	if _, err := p.GetRegistration(ctx(t), tenancy.RootTenantID, "acme-r"); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("registration of another tenant: %v", err)
	}
}

func testDeleteTenantTakesProvisioning(t *testing.T, s store.Store, p provision.Store) {
	enginetest.Tenant(t, s, "acme", tenancy.RootTenantID)
	scope, err := p.IDScope(ctx(t), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.CreateEnrollmentGroup(ctx(t), provision.EnrollmentGroup{ID: "g", TenantID: "acme", PrimaryKey: key(1), SecondaryKey: key(2), CreatedAt: t0, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := p.CreateEnrollment(ctx(t), provision.Enrollment{RegistrationID: "e", TenantID: "acme", DeviceID: "e", PrimaryKey: key(1), SecondaryKey: key(2), CreatedAt: t0, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	enginetest.Assign(t, p, enginetest.Assignment("acme", "acme-dev", "g", 1, t0))
	if err := s.DeleteTenant(ctx(t), "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.TenantByIDScope(ctx(t), scope); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("scope of a deleted tenant: %v", err)
	}
	if gs, err := p.ListEnrollmentGroups(ctx(t), "acme"); err != nil || len(gs) != 0 {
		t.Errorf("groups of a deleted tenant: %v, %v", gs, err)
	}
	if es, err := p.ListEnrollments(ctx(t), "acme"); err != nil || len(es) != 0 {
		t.Errorf("enrollments of a deleted tenant: %v, %v", es, err)
	}
	if rs, err := p.ListRegistrations(ctx(t), "acme", "", 10); err != nil || len(rs) != 0 {
		t.Errorf("registrations of a deleted tenant: %v, %v", rs, err)
	}
	// Its ID could be used again, with a new scope.
	enginetest.Tenant(t, s, "acme", tenancy.RootTenantID)
	if again, err := p.IDScope(ctx(t), "acme"); err != nil || again == scope {
		t.Errorf("scope of the new tenant acme = %q, %v; want a new one", again, err)
	}
}
