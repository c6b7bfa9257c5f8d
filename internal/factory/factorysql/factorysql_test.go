package factorysql_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/factory"
	"github.com/warden-iot/warden/internal/factory/factorysql"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/enginetest"
	"github.com/warden-iot/warden/internal/tenancy"
)

// TestStore is the staff credential store's conformance suite, run on each engine: a fresh,
// migrated database per test, with a keyring to seal machine data as the
// server has; the engine (store.Store) makes what the tests need from other
// domains.
func TestStore(t *testing.T) {
	enginetest.RunTests(t, factorysql.New, []enginetest.Test[*factorysql.Store]{
		{Name: "StaffCredentials", Fn: testStaffCredentials},
	})
}

func ctx(t *testing.T) context.Context { return t.Context() }

func testStaffCredentials(t *testing.T, s store.Store, fs *factorysql.Store) {
	enginetest.RootDevice(t, s, "a")
	at := time.UnixMilli(1_700_000_000_123).UTC()
	c := factory.StaffCredential{ID: "cred-1", TenantID: tenancy.RootTenantID, DeviceID: "a", SiteID: "site-1",
		ActorUserID: "u1", ActorID: "actor-1", ActorName: "Staff", ActorTenantID: tenancy.RootTenantID,
		CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
	if err := fs.CreateStaffCredential(ctx(t), c); err != nil {
		t.Fatal(err)
	}
	got, err := fs.GetStaffCredential(ctx(t), "cred-1")
	if err != nil {
		t.Fatal(err)
	}
	if got != c {
		t.Errorf("GetStaffCredential = %+v, want %+v", got, c)
	}
	if _, err := fs.GetStaffCredential(ctx(t), "ghost"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("GetStaffCredential of an unknown id: %v, want ErrNotFound", err)
	}
	if err := s.DeleteDevice(ctx(t), tenancy.RootTenantID, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.GetStaffCredential(ctx(t), "cred-1"); !errors.Is(err, database.ErrNotFound) {
		t.Errorf("GetStaffCredential after the device was deleted: %v, want ErrNotFound", err)
	}
}
