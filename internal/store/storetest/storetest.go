// Package storetest is the behavioural suite every store.Store
// implementation must pass. Each engine's tests call Run with a factory that
// returns a fresh, empty, migrated store.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/registry"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/tenancy"
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

func testMigrateTwice(t *testing.T, s store.Store) {
	mustCreate(t, s, "a")
	if err := s.Migrate(ctx(t)); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if _, err := s.GetDevice(ctx(t), "a"); err != nil {
		t.Fatalf("device lost by second Migrate: %v", err)
	}
}
