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

	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/store"
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
		{"APITokens", testAPITokens},
		{"Tenants", testTenants},
		{"TenantKeys", testTenantKeys},
		{"ModelID", testModelID},
		{"StaffCredentials", testStaffCredentials},
		{"DeleteDeviceRemovesData", testDeleteDeviceRemovesData},
		{"MigrateTwice", testMigrateTwice},
	}
	tests = append(tests, hubTests...)
	tests = append(tests, dpsTests...)
	tests = append(tests, auditTests...)
	tests = append(tests, identityTests...)
	tests = append(tests, alarmTests...)
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
		TenantID:     store.RootTenantID,
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
	if _, err := s.GetMeta(ctx(t), "missing"); !errors.Is(err, store.ErrNotFound) {
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
	if err := s.CreateDevice(ctx(t), want); !errors.Is(err, store.ErrConflict) {
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

	if err := s.SetDeviceStatus(ctx(t), store.RootTenantID, "pump-1", store.DeviceDisabled); err != nil {
		t.Fatal(err)
	}
	newKey := bytes.Repeat([]byte{9}, 32)
	if err := s.SetDeviceKeys(ctx(t), store.RootTenantID, "pump-1", newKey, want.SecondaryKey); err != nil {
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
	list, err := s.ListDevices(ctx(t), store.RootTenantID)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "heater-P1234" || list[1].ID != "pump-1" {
		t.Fatalf("ListDevices = %v, want heater-P1234, pump-1 in id order", ids(list))
	}

	if err := s.DeleteDevice(ctx(t), store.RootTenantID, "pump-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetDevice(ctx(t), "pump-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetDevice after delete error = %v, want ErrNotFound", err)
	}
	for name, err := range map[string]error{
		"SetDeviceStatus": s.SetDeviceStatus(ctx(t), store.RootTenantID, "pump-1", store.DeviceEnabled),
		"SetDeviceKeys":   s.SetDeviceKeys(ctx(t), store.RootTenantID, "pump-1", newKey, newKey),
		"DeleteDevice":    s.DeleteDevice(ctx(t), store.RootTenantID, "pump-1"),
	} {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s on a deleted device error = %v, want ErrNotFound", name, err)
		}
	}
}

func testDeviceTenantIsolation(t *testing.T, s store.Store) {
	mustCreate(t, s, "d1")
	const other = "another-tenant"
	if err := s.SetDeviceStatus(ctx(t), other, "d1", store.DeviceDisabled); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetDeviceStatus from another tenant error = %v, want ErrNotFound", err)
	}
	if err := s.DeleteDevice(ctx(t), other, "d1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteDevice from another tenant error = %v, want ErrNotFound", err)
	}
	list, err := s.ListDevices(ctx(t), other)
	if err != nil || len(list) != 0 {
		t.Errorf("ListDevices(other) = %v, %v; want none", ids(list), err)
	}
	if _, err := s.LatestBlob(ctx(t), other, "d1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("LatestBlob from another tenant error = %v, want ErrNotFound", err)
	}
	if _, err := s.ListRejected(ctx(t), other, "d1", 10); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ListRejected from another tenant error = %v, want ErrNotFound", err)
	}
	if _, _, err := s.ReadSeries(ctx(t), other, "d1", "m", 0, 1<<50); !errors.Is(err, store.ErrNotFound) {
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

func testAPITokens(t *testing.T, s store.Store) {
	tok := store.APIToken{ID: "tok1", TenantID: store.RootTenantID, Name: "operator", Role: store.RoleOperatorAdmin,
		Hash: bytes.Repeat([]byte{7}, 32), CreatedAt: t0}
	if err := s.CreateAPIToken(ctx(t), tok); err != nil {
		t.Fatal(err)
	}
	got, err := s.APITokenByHash(ctx(t), tok.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != tok.ID || got.TenantID != tok.TenantID || got.Role != tok.Role || got.Name != tok.Name || !got.CreatedAt.Equal(t0) {
		t.Fatalf("APITokenByHash = %+v, want %+v", got, tok)
	}
	if _, err := s.APITokenByHash(ctx(t), bytes.Repeat([]byte{8}, 32)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown hash error = %v, want ErrNotFound", err)
	}
}

// rec is a head record of device dev with message id mid whose points lie
// in [minTS, maxTS]; its blob says which message it is.
func rec(dev, mid string, minTS, maxTS int64) store.HeadRecord {
	return store.HeadRecord{TenantID: store.RootTenantID, DeviceID: dev, MessageID: mid,
		ReceivedAt: t0.Add(time.Duration(maxTS) * time.Millisecond), MinTS: minTS, MaxTS: maxTS,
		Blob: []byte(fmt.Sprintf("%s/%s/%d-%d", dev, mid, minTS, maxTS))}
}

// keepLatest is a LatestMerge that records, as the new blob, the old blob
// followed by the accepted indexes.
func keepLatest(tenantID, deviceID string, old []byte, accepted []int) ([]byte, error) {
	return fmt.Appendf(old, "%v;", accepted), nil
}

func writeHead(t *testing.T, s store.Store, recs ...store.HeadRecord) []store.WriteResult {
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

func chunk(dev, metric string, start, end int64) store.ChunkRecord {
	return store.ChunkRecord{TenantID: store.RootTenantID, DeviceID: dev, Metric: metric, StartTS: start, EndTS: end,
		Count: int(end-start) + 1, Blob: []byte(fmt.Sprintf("%s/%s/%d-%d", dev, metric, start, end))}
}

func testTenants(t *testing.T, s store.Store) {
	root, err := s.GetTenant(ctx(t), store.RootTenantID)
	if err != nil || root.ParentID != "" || root.RetentionDays != 0 {
		t.Fatalf("root tenant = %+v, %v", root, err)
	}
	acme := store.Tenant{ID: "acme", ParentID: store.RootTenantID, Name: "ACME Pumps", CreatedAt: t0}
	if err := s.CreateTenant(ctx(t), acme); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTenant(ctx(t), acme); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second CreateTenant error = %v", err)
	}
	if err := s.SetTenantRetention(ctx(t), "acme", 30); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTenantRetention(ctx(t), "ghost", 30); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("retention of unknown tenant error = %v", err)
	}
	list, err := s.ListTenants(ctx(t))
	if err != nil || len(list) != 2 || list[0].ID != "acme" || list[0].RetentionDays != 30 || list[0].Name != "ACME Pumps" ||
		list[0].ParentID != store.RootTenantID || !list[0].CreatedAt.Equal(t0) {
		t.Fatalf("ListTenants = %+v, %v", list, err)
	}
	// Deleting a tenant takes everything it owns.
	d := store.Device{ID: "acme-1", TenantID: "acme", Status: store.DeviceEnabled, PrimaryKey: []byte{1}, SecondaryKey: []byte{2}, CreatedAt: t0}
	if err := s.CreateDevice(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	r := rec("acme-1", "m", 1, 1)
	r.TenantID = "acme"
	writeHead(t, s, r)
	c := chunk("acme-1", "x", 0, 1)
	c.TenantID = "acme"
	if err := s.SealHead(ctx(t), "acme-1", nil, nil, []store.ChunkRecord{c}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTenantKey(ctx(t), "acme", t0, func(uint32) ([]byte, error) { return []byte("k"), nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTenant(ctx(t), "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetTenant(ctx(t), "acme"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted tenant still there: %v", err)
	}
	if _, err := s.GetDevice(ctx(t), "acme-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("device of deleted tenant still there: %v", err)
	}
	if head, _ := s.HeadRecords(ctx(t), "acme-1"); len(head) != 0 {
		t.Fatalf("head of deleted tenant still there")
	}
	if ch, _ := s.ChunksForMerge(ctx(t), "acme-1", "x", 0, 10); len(ch) != 0 {
		t.Fatalf("chunks of deleted tenant still there")
	}
	if _, err := s.ActiveTenantKey(ctx(t), "acme"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("key of deleted tenant still there: %v", err)
	}
	if err := s.DeleteTenant(ctx(t), store.RootTenantID); err == nil {
		t.Fatal("the root tenant was deleted")
	}
}

func testTenantKeys(t *testing.T, s store.Store) {
	if _, err := s.ActiveTenantKey(ctx(t), store.RootTenantID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ActiveTenantKey before any = %v", err)
	}
	var ids []uint32
	for i := range 2 {
		k, err := s.CreateTenantKey(ctx(t), store.RootTenantID, t0, func(id uint32) ([]byte, error) {
			return fmt.Appendf(nil, "wrapped-%d-for-%d", i, id), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if string(k.Wrapped) != fmt.Sprintf("wrapped-%d-for-%d", i, k.ID) || k.TenantID != store.RootTenantID {
			t.Fatalf("CreateTenantKey = %+v", k)
		}
		ids = append(ids, k.ID)
	}
	if ids[0] == ids[1] {
		t.Fatalf("two keys with id %d", ids[0])
	}
	active, err := s.ActiveTenantKey(ctx(t), store.RootTenantID)
	if err != nil || active.ID != ids[1] {
		t.Fatalf("ActiveTenantKey = %+v, %v; want the newest, %d", active, err, ids[1])
	}
	k, err := s.TenantKey(ctx(t), ids[0])
	if err != nil || string(k.Wrapped) != fmt.Sprintf("wrapped-0-for-%d", ids[0]) || !k.CreatedAt.Equal(t0) {
		t.Fatalf("TenantKey = %+v, %v", k, err)
	}
	if _, err := s.CreateTenantKey(ctx(t), store.RootTenantID, t0, func(uint32) ([]byte, error) { return nil, errors.New("no") }); err == nil {
		t.Fatal("CreateTenantKey ignored a wrap error")
	}
	if a, _ := s.ActiveTenantKey(ctx(t), store.RootTenantID); a.ID != ids[1] {
		t.Fatalf("failed CreateTenantKey left a key behind: active %d", a.ID)
	}
	// A key for a tenant that does not exist (or was just deleted) would
	// outlive it.
	if _, err := s.CreateTenantKey(ctx(t), "ghost", t0, func(uint32) ([]byte, error) { return []byte("k"), nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("CreateTenantKey for a missing tenant = %v, want ErrNotFound", err)
	}
	if _, err := s.ActiveTenantKey(ctx(t), "ghost"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a key was stored for a missing tenant: %v", err)
	}
	// ErrNotPurged (a transaction elsewhere on a shared server kept the
	// purge from finishing) still deletes the keys; the purge itself is
	// tested against the raw files of each store.
	if err := s.DeleteTenantKeys(ctx(t), store.RootTenantID); err != nil && !errors.Is(err, store.ErrNotPurged) {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := s.TenantKey(ctx(t), id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("key %d after DeleteTenantKeys: %v", id, err)
		}
	}
}

func testDeleteDeviceRemovesData(t *testing.T, s store.Store) {
	mustCreate(t, s, "a")
	writeHead(t, s, rec("a", "m", 1, 2))
	if err := s.SealHead(ctx(t), "a", nil, nil, []store.ChunkRecord{chunk("a", "x", 0, 10)}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddRejected(ctx(t), store.Rejected{TenantID: store.RootTenantID, DeviceID: "a", Reason: "r", ReceivedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDevice(ctx(t), store.RootTenantID, "a"); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "a") // a new device under the old name starts empty
	head, chunks, err := s.ReadSeries(ctx(t), store.RootTenantID, "a", "x", 0, 1<<50)
	if err != nil || len(head) != 0 || len(chunks) != 0 {
		t.Fatalf("series of re-created device: %d head, %d chunks, %v; want none", len(head), len(chunks), err)
	}
	if b, err := s.LatestBlob(ctx(t), store.RootTenantID, "a"); err != nil || b != nil {
		t.Fatalf("latest of re-created device = %q, %v", b, err)
	}
	if r, err := s.ListRejected(ctx(t), store.RootTenantID, "a", 10); err != nil || len(r) != 0 {
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
	if id, err := s.DeviceModelID(ctx(t), store.RootTenantID, "a"); err != nil || id != "" {
		t.Fatalf("model id of a new device = %q, %v", id, err)
	}
	const dtmi = "dtmi:com:example:Thermostat;1"
	if err := s.SetDeviceModelID(ctx(t), store.RootTenantID, "a", dtmi); err != nil {
		t.Fatal(err)
	}
	if id, err := s.DeviceModelID(ctx(t), store.RootTenantID, "a"); err != nil || id != dtmi {
		t.Fatalf("model id = %q, %v; want %q", id, err, dtmi)
	}
	if err := s.SetDeviceModelID(ctx(t), "other-tenant", "a", "dtmi:x;1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetDeviceModelID in another tenant: %v, want ErrNotFound", err)
	}
	if _, err := s.DeviceModelID(ctx(t), "other-tenant", "a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeviceModelID in another tenant: %v, want ErrNotFound", err)
	}
	if _, err := s.DeviceModelID(ctx(t), store.RootTenantID, "ghost"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeviceModelID of an unknown device: %v, want ErrNotFound", err)
	}
}

func testStaffCredentials(t *testing.T, s store.Store) {
	mustCreate(t, s, "a")
	at := time.UnixMilli(1_700_000_000_123).UTC()
	c := store.StaffCredential{ID: "cred-1", TenantID: store.RootTenantID, DeviceID: "a", SiteID: "site-1",
		ActorUserID: "u1", ActorID: "actor-1", ActorName: "Staff", ActorTenantID: store.RootTenantID,
		CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
	if err := s.CreateStaffCredential(ctx(t), c); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetStaffCredential(ctx(t), "cred-1")
	if err != nil {
		t.Fatal(err)
	}
	if got != c {
		t.Errorf("GetStaffCredential = %+v, want %+v", got, c)
	}
	if _, err := s.GetStaffCredential(ctx(t), "ghost"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetStaffCredential of an unknown id: %v, want ErrNotFound", err)
	}
	if err := s.DeleteDevice(ctx(t), store.RootTenantID, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetStaffCredential(ctx(t), "cred-1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetStaffCredential after the device was deleted: %v, want ErrNotFound", err)
	}
}
