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
	"github.com/warden-iot/warden/internal/registry"
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
		{"MigrateTwice", testMigrateTwice},
	}
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

func mustCreate(t *testing.T, s store.Store, id string) registry.Device {
	t.Helper()
	d := registry.Device{
		ID:           id,
		TenantID:     tenancy.RootTenantID,
		Status:       registry.DeviceEnabled,
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

func writeHead(t *testing.T, s store.Store, recs ...tsdbstore.HeadRecord) []tsdbstore.WriteResult {
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

func testMigrateTwice(t *testing.T, s store.Store) {
	mustCreate(t, s, "a")
	if err := s.Migrate(ctx(t)); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if _, err := s.GetDevice(ctx(t), "a"); err != nil {
		t.Fatalf("device lost by second Migrate: %v", err)
	}
}

func ids(ds []registry.Device) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
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

func assign(t *testing.T, s store.Store, as ...provision.Assignment) []provision.AssignResult {
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
