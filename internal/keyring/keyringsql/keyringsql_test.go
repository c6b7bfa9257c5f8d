package keyringsql_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/keyring/keyringsql"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/enginetest"
	"github.com/warden-iot/warden/internal/tenancy"
)

// TestStore runs the conformance suite of keyring.Store on each engine:
// the engine makes the tenants, the suite's calls go to a keyringsql.Store
// on the engine's database. That destroyed keys leave no copy in the files
// is tested against the raw files of each engine (store/sqlite and
// store/postgres, erasure_test.go).
func TestStore(t *testing.T) {
	enginetest.Run(t, func(t *testing.T, open func(t *testing.T) (store.Store, database.DB)) {
		t.Run("TenantKeys", func(t *testing.T) {
			_, db := open(t)
			s := keyringsql.New(db)
			testTenantKeys(t, s)
		})
	})
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testTenantKeys(t *testing.T, s keyring.Store) {
	if _, err := s.ActiveTenantKey(t.Context(), tenancy.RootTenantID); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("ActiveTenantKey before any = %v", err)
	}
	var ids []uint32
	for i := range 2 {
		k, err := s.CreateTenantKey(t.Context(), tenancy.RootTenantID, t0, func(id uint32) ([]byte, error) {
			return fmt.Appendf(nil, "wrapped-%d-for-%d", i, id), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if string(k.Wrapped) != fmt.Sprintf("wrapped-%d-for-%d", i, k.ID) || k.TenantID != tenancy.RootTenantID {
			t.Fatalf("CreateTenantKey = %+v", k)
		}
		ids = append(ids, k.ID)
	}
	if ids[0] == ids[1] {
		t.Fatalf("two keys with id %d", ids[0])
	}
	active, err := s.ActiveTenantKey(t.Context(), tenancy.RootTenantID)
	if err != nil || active.ID != ids[1] {
		t.Fatalf("ActiveTenantKey = %+v, %v; want the newest, %d", active, err, ids[1])
	}
	k, err := s.TenantKey(t.Context(), ids[0])
	if err != nil || string(k.Wrapped) != fmt.Sprintf("wrapped-0-for-%d", ids[0]) || !k.CreatedAt.Equal(t0) {
		t.Fatalf("TenantKey = %+v, %v", k, err)
	}
	if _, err := s.CreateTenantKey(t.Context(), tenancy.RootTenantID, t0, func(uint32) ([]byte, error) { return nil, errors.New("no") }); err == nil {
		t.Fatal("CreateTenantKey ignored a wrap error")
	}
	if a, _ := s.ActiveTenantKey(t.Context(), tenancy.RootTenantID); a.ID != ids[1] {
		t.Fatalf("failed CreateTenantKey left a key behind: active %d", a.ID)
	}
	// A key for a tenant that does not exist (or was just deleted) would
	// outlive it.
	if _, err := s.CreateTenantKey(t.Context(), "ghost", t0, func(uint32) ([]byte, error) { return []byte("k"), nil }); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("CreateTenantKey for a missing tenant = %v, want ErrNotFound", err)
	}
	if _, err := s.ActiveTenantKey(t.Context(), "ghost"); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("a key was stored for a missing tenant: %v", err)
	}
	// ErrNotPurged (a transaction elsewhere on a shared server kept the
	// purge from finishing) still deletes the keys; the purge itself is
	// tested against the raw files of each store.
	if err := s.DeleteTenantKeys(t.Context(), tenancy.RootTenantID); err != nil && !errors.Is(err, database.ErrNotPurged) {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := s.TenantKey(t.Context(), id); !errors.Is(err, database.ErrNotFound) {
			t.Fatalf("key %d after DeleteTenantKeys: %v", id, err)
		}
	}
}
