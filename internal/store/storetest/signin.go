package storetest

import (
	"testing"

	"github.com/warden-iot/warden/internal/audit"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/tenancy"
)

var signInTests = []suiteTest{}

// BackfillRetiredTenants checks an engine's upgrade step that retires the
// ids of tenants deleted before retired_ids existed: backfill empties
// retired_ids and runs the step on the store's data.
func BackfillRetiredTenants(t *testing.T, s store.Store, backfill func() error) {
	ctx := t.Context()
	at := t0
	if err := s.CreateTenant(ctx, tenancy.Tenant{ID: "live", ParentID: tenancy.RootTenantID, Name: "Live", CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	seal := func(e *audit.Entry) error { e.Hash = []byte{byte(e.Seq)}; return nil }
	for _, e := range []audit.Entry{
		{At: at, TenantID: tenancy.RootTenantID, OwnerTenantID: "gone-owner", Action: "device.read", Target: "d1"},
		{At: at, TenantID: "gone-actor", OwnerTenantID: "gone-actor", Action: "auth.login", Target: "x@example.com"},
		{At: at, TenantID: "live", OwnerTenantID: "live", Action: "auth.login", Target: "y@example.com"},
		{At: at, Action: "auth.login", Target: "nobody@example.com"},
	} {
		if _, err := s.AppendAudit(ctx, e, seal); err != nil {
			t.Fatal(err)
		}
	}
	if err := backfill(); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"gone-owner": true, "gone-actor": true, "live": false, tenancy.RootTenantID: false, "": false} {
		if got, err := s.IDRetired(ctx, "tenant", id); err != nil || got != want {
			t.Errorf("IDRetired(%q) = %v, %v; want %v", id, got, err, want)
		}
	}
}
