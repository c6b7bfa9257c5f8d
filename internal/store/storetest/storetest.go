// Package storetest is the behavioural suite every store.Store
// implementation must pass. Each engine's tests call Run with a factory that
// returns a fresh, empty, migrated store.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/provision"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/tenancy"
	"github.com/warden-iot/warden/internal/tsdb/tsdbstore"
)

// Factory returns a fresh, empty store that has been migrated. It registers
// its own cleanup with t.
type Factory func(t *testing.T) store.Store

type suiteTest struct {
	name string
	fn   func(t *testing.T, s store.Store)
}

// Run runs the whole suite.
func Run(t *testing.T, newStore Factory) {
	tests := []suiteTest{
		{"Meta", testMeta},
		{"DeviceLifecycle", testDeviceLifecycle},
		{"DeviceTenantIsolation", testDeviceTenantIsolation},
		{"ModelID", testModelID},
		{"DeleteDeviceRemovesData", testDeleteDeviceRemovesData},
		{"MigrateTwice", testMigrateTwice},
	}
	tests = append(tests, hubTests...)
	tests = append(tests, identityTests...)
	tests = append(tests, signInTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := withKeyring(t, newStore(t))
			tc.fn(t, s)
		})
	}
	for _, tc := range sealedTests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

// testMaster is the suite's master key.
var testMaster = bytes.Repeat([]byte{0x5e}, keyring.KeySize)

func withKeyring(t *testing.T, s store.Store) (store.Store, *keyring.Keyring) {
	return s, WithKeyring(t, s)
}

// WithKeyring gives a migrated store a keyring (over a fixed test master
// key) to seal machine data with, as the server does, and returns it.
func WithKeyring(t *testing.T, s store.Store) *keyring.Keyring {
	t.Helper()
	kr, err := keyring.New(t.Context(), testMaster, s, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	s.SetSealer(kr)
	return kr
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ctx(t *testing.T) context.Context { return t.Context() }

func mustCreate(t *testing.T, s store.Store, id string) store.Device {
	t.Helper()
	d := store.Device{
		ID:           id,
		TenantID:     tenancy.RootTenantID,
		Status:       store.DeviceEnabled,
		PrimaryKey:   bytes.Repeat([]byte{1}, 32),
		SecondaryKey: bytes.Repeat([]byte{2}, 32),
		CreatedAt:    t0,
	}
	if err := s.CreateDevice(ctx(t), d); err != nil {
		t.Fatalf("CreateDevice(%q): %v", id, err)
	}
	return d
}

func testMeta(t *testing.T, s store.Store) {
	if _, err := s.GetMeta(ctx(t), "missing"); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("GetMeta(missing) error = %v, want ErrNotFound", err)
	}
	for _, v := range []string{"one", "two"} {
		if err := s.SetMeta(ctx(t), "k", v); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetMeta(ctx(t), "k")
		if err != nil || got != v {
			t.Fatalf("GetMeta = %q, %v; want %q", got, err, v)
		}
	}
}

func testDeviceLifecycle(t *testing.T, s store.Store) {
	want := mustCreate(t, s, "pump-1")
	if err := s.CreateDevice(ctx(t), want); !errors.Is(err, database.ErrConflict) {
		t.Fatalf("second CreateDevice error = %v, want ErrConflict", err)
	}
	got, err := s.GetDevice(ctx(t), "pump-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != want.ID || got.TenantID != want.TenantID || got.Status != store.DeviceEnabled ||
		!bytes.Equal(got.PrimaryKey, want.PrimaryKey) || !bytes.Equal(got.SecondaryKey, want.SecondaryKey) ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.LastSeen.IsZero() || got.LastIP != "" {
		t.Fatalf("GetDevice = %+v, want %+v", got, want)
	}

	if err := s.SetDeviceStatus(ctx(t), tenancy.RootTenantID, "pump-1", store.DeviceDisabled); err != nil {
		t.Fatal(err)
	}
	newKey := bytes.Repeat([]byte{9}, 32)
	if err := s.SetDeviceKeys(ctx(t), tenancy.RootTenantID, "pump-1", newKey, want.SecondaryKey); err != nil {
		t.Fatal(err)
	}
	seen := t0.Add(time.Hour)
	if err := s.TouchDevices(ctx(t), []store.DeviceSeen{{ID: "pump-1", At: seen, IP: "192.0.2.7"}, {ID: "ghost", At: seen}}); err != nil {
		t.Fatal(err)
	}
	got, err = s.GetDevice(ctx(t), "pump-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != store.DeviceDisabled || !bytes.Equal(got.PrimaryKey, newKey) ||
		!got.LastSeen.Equal(seen) || got.LastIP != "192.0.2.7" {
		t.Fatalf("after updates GetDevice = %+v", got)
	}

	mustCreate(t, s, "heater-P1234")
	list, err := s.ListDevices(ctx(t), tenancy.RootTenantID)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "heater-P1234" || list[1].ID != "pump-1" {
		t.Fatalf("ListDevices = %v, want heater-P1234, pump-1 in id order", ids(list))
	}

	if err := s.DeleteDevice(ctx(t), tenancy.RootTenantID, "pump-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetDevice(ctx(t), "pump-1"); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("GetDevice after delete error = %v, want ErrNotFound", err)
	}
	for name, err := range map[string]error{
		"SetDeviceStatus": s.SetDeviceStatus(ctx(t), tenancy.RootTenantID, "pump-1", store.DeviceEnabled),
		"SetDeviceKeys":   s.SetDeviceKeys(ctx(t), tenancy.RootTenantID, "pump-1", newKey, newKey),
		"DeleteDevice":    s.DeleteDevice(ctx(t), tenancy.RootTenantID, "pump-1"),
	} {
		if !errors.Is(err, database.ErrNotFound) {
			t.Errorf("%s on a deleted device error = %v, want ErrNotFound", name, err)
		}
	}
}

func testDeviceTenantIsolation(t *testing.T, s store.Store) {
	mustCreate(t, s, "d1")
	const other = "another-tenant"
	if err := s.SetDeviceStatus(ctx(t), other, "d1", store.DeviceDisabled); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("SetDeviceStatus from another tenant error = %v, want ErrNotFound", err)
	}
	if err := s.DeleteDevice(ctx(t), other, "d1"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("DeleteDevice from another tenant error = %v, want ErrNotFound", err)
	}
	list, err := s.ListDevices(ctx(t), other)
	if err != nil || len(list) != 0 {
		t.Errorf("ListDevices(other) = %v, %v; want none", ids(list), err)
	}
	if _, err := s.LatestBlob(ctx(t), other, "d1"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("LatestBlob from another tenant error = %v, want ErrNotFound", err)
	}
	if _, err := s.ListRejected(ctx(t), other, "d1", 10); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("ListRejected from another tenant error = %v, want ErrNotFound", err)
	}
	if _, _, err := s.ReadSeries(ctx(t), other, "d1", "m", 0, 1<<50); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("ReadSeries from another tenant error = %v, want ErrNotFound", err)
	}
	if blobs, err := s.LatestBlobs(ctx(t), other, "", 10); err != nil || len(blobs) != 0 {
		t.Errorf("LatestBlobs(other) = %v, %v; want none", blobs, err)
	}
	d, err := s.GetDevice(ctx(t), "d1")
	if err != nil || d.Status != store.DeviceEnabled {
		t.Errorf("device changed by another tenant: %+v, %v", d, err)
	}
}

// rec is a head record of device dev with message id mid whose points lie
// in [minTS, maxTS]; its blob says which message it is.
func rec(dev, mid string, minTS, maxTS int64) tsdbstore.HeadRecord {
	return tsdbstore.HeadRecord{TenantID: tenancy.RootTenantID, DeviceID: dev, MessageID: mid,
		ReceivedAt: t0.Add(time.Duration(maxTS) * time.Millisecond), MinTS: minTS, MaxTS: maxTS,
		Blob: []byte(fmt.Sprintf("%s/%s/%d-%d", dev, mid, minTS, maxTS))}
}

// keepLatest is a LatestMerge that records, as the new blob, the old blob
// followed by the accepted indexes.
func keepLatest(tenantID, deviceID string, old []byte, accepted []int) ([]byte, error) {
	return fmt.Appendf(old, "%v;", accepted), nil
}

func writeHead(t *testing.T, s store.Store, recs ...store.HeadRecord) []tsdbstore.WriteResult {
	t.Helper()
	res, err := s.WriteHead(ctx(t), recs, keepLatest)
	if err != nil {
		t.Fatalf("WriteHead: %v", err)
	}
	if len(res) != len(recs) {
		t.Fatalf("WriteHead gave %d results for %d records", len(res), len(recs))
	}
	return res
}

func chunk(dev, metric string, start, end int64) tsdbstore.ChunkRecord {
	return tsdbstore.ChunkRecord{TenantID: tenancy.RootTenantID, DeviceID: dev, Metric: metric, StartTS: start, EndTS: end,
		Count: int(end-start) + 1, Blob: []byte(fmt.Sprintf("%s/%s/%d-%d", dev, metric, start, end))}
}

func testDeleteDeviceRemovesData(t *testing.T, s store.Store) {
	mustCreate(t, s, "a")
	writeHead(t, s, rec("a", "m", 1, 2))
	if err := s.SealHead(ctx(t), "a", nil, nil, []tsdbstore.ChunkRecord{chunk("a", "x", 0, 10)}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddRejected(ctx(t), tsdbstore.Rejected{TenantID: tenancy.RootTenantID, DeviceID: "a", Reason: "r", ReceivedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDevice(ctx(t), tenancy.RootTenantID, "a"); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "a") // a new device under the old name starts empty
	head, chunks, err := s.ReadSeries(ctx(t), tenancy.RootTenantID, "a", "x", 0, 1<<50)
	if err != nil || len(head) != 0 || len(chunks) != 0 {
		t.Fatalf("series of re-created device: %d head, %d chunks, %v; want none", len(head), len(chunks), err)
	}
	if b, err := s.LatestBlob(ctx(t), tenancy.RootTenantID, "a"); err != nil || b != nil {
		t.Fatalf("latest of re-created device = %q, %v", b, err)
	}
	if r, err := s.ListRejected(ctx(t), tenancy.RootTenantID, "a", 10); err != nil || len(r) != 0 {
		t.Fatalf("rejected of re-created device = %v, %v", r, err)
	}
	if due, _ := s.DevicesToSeal(ctx(t), 1, t0, 10); len(due) != 0 {
		t.Fatalf("deleted device still due for sealing: %v", due)
	}
	if res := writeHead(t, s, rec("a", "m", 1, 2)); res[0].Duplicate {
		t.Fatal("message id of the deleted device still remembered")
	}
}

func testMigrateTwice(t *testing.T, s store.Store) {
	mustCreate(t, s, "a")
	if err := s.Migrate(ctx(t)); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if _, err := s.GetDevice(ctx(t), "a"); err != nil {
		t.Fatalf("device lost by second Migrate: %v", err)
	}
}

func ids(ds []store.Device) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

func testModelID(t *testing.T, s store.Store) {
	mustCreate(t, s, "a")
	if id, err := s.DeviceModelID(ctx(t), tenancy.RootTenantID, "a"); err != nil || id != "" {
		t.Fatalf("model id of a new device = %q, %v", id, err)
	}
	const dtmi = "dtmi:com:example:Thermostat;1"
	if err := s.SetDeviceModelID(ctx(t), tenancy.RootTenantID, "a", dtmi); err != nil {
		t.Fatal(err)
	}
	if id, err := s.DeviceModelID(ctx(t), tenancy.RootTenantID, "a"); err != nil || id != dtmi {
		t.Fatalf("model id = %q, %v; want %q", id, err, dtmi)
	}
	if err := s.SetDeviceModelID(ctx(t), "other-tenant", "a", "dtmi:x;1"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("SetDeviceModelID in another tenant: %v, want ErrNotFound", err)
	}
	if _, err := s.DeviceModelID(ctx(t), "other-tenant", "a"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("DeviceModelID in another tenant: %v, want ErrNotFound", err)
	}
	if _, err := s.DeviceModelID(ctx(t), tenancy.RootTenantID, "ghost"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("DeviceModelID of an unknown device: %v, want ErrNotFound", err)
	}
}

func mustTenant(t *testing.T, s store.Store, id string) {
	t.Helper()
	if err := s.CreateTenant(ctx(t), tenancy.Tenant{ID: id, ParentID: tenancy.RootTenantID, Name: id, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
}

func key(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

var twin = []byte(`{"tags":{"site":"Lyon"},"properties":{"desired":{"interval":30}}}`)

// assignment of a registration id through a group, at time at.
func assignment(tenant, regID, group string, k byte, at time.Time) provision.Assignment {
	return provision.Assignment{
		Registration: provision.Registration{RegistrationID: regID, TenantID: tenant, DeviceID: regID,
			EnrollmentKind: provision.EnrollmentGroupKind, EnrollmentID: group,
			OperationID: "op." + regID + at.Format("150405"), ETag: "e-" + at.Format("150405"), UpdatedAt: at},
		PrimaryKey: key(k), SecondaryKey: key(k + 1),
	}
}

func assign(t *testing.T, s store.Store, as ...store.Assignment) []provision.AssignResult {
	t.Helper()
	res, err := s.AssignRegistrations(ctx(t), as)
	if err != nil {
		t.Fatalf("AssignRegistrations: %v", err)
	}
	if len(res) != len(as) {
		t.Fatalf("AssignRegistrations gave %d results for %d assignments", len(res), len(as))
	}
	return res
}
