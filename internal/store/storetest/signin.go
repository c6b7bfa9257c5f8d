package storetest

import (
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/store"
)

var signInTests = []suiteTest{
	{"SignInFailures", testSignInFailures},
}

func testSignInFailures(t *testing.T, s store.Store) {
	const max, window, lockFor = 3, 15 * time.Minute, 30 * time.Minute
	key, other := []byte("key-a"), []byte("key-b")
	if f, err := s.SignInFailures(ctx(t), key); err != nil || f.Failures != 0 || !f.LockedUntil.IsZero() {
		t.Fatalf("unknown key: %+v, %v", f, err)
	}
	for i := 1; i < max; i++ {
		f, err := s.AddSignInFailure(ctx(t), key, t0.Add(time.Duration(i)*time.Second), window, max, lockFor)
		if err != nil || f.Failures != i || !f.LockedUntil.IsZero() {
			t.Fatalf("failure %d: %+v, %v", i, f, err)
		}
	}
	at := t0.Add(time.Minute)
	f, err := s.AddSignInFailure(ctx(t), key, at, window, max, lockFor)
	if err != nil || f.Failures != 0 || !f.LockedUntil.Equal(at.Add(lockFor)) {
		t.Fatalf("failure %d: %+v, %v; want locked until %v", max, f, err, at.Add(lockFor))
	}
	if got, _ := s.SignInFailures(ctx(t), key); !got.LockedUntil.Equal(f.LockedUntil) || !got.LastAt.Equal(at) {
		t.Errorf("read back %+v, want %+v", got, f)
	}
	// Another key is counted on its own.
	if f, _ := s.AddSignInFailure(ctx(t), other, at, window, max, lockFor); f.Failures != 1 {
		t.Errorf("other key: %+v", f)
	}
	// A quiet window forgets the other key's count; the locked key stays
	// until its lock is over.
	later := at.Add(window + time.Second)
	if _, err := s.AddSignInFailure(ctx(t), []byte("key-c"), later, window, max, lockFor); err != nil {
		t.Fatal(err)
	}
	if f, _ := s.SignInFailures(ctx(t), other); f.Failures != 0 {
		t.Errorf("quiet key still counted: %+v", f)
	}
	if f, _ := s.SignInFailures(ctx(t), key); f.LockedUntil.IsZero() {
		t.Errorf("lock dropped before its end: %+v", f)
	}
	if f, _ := s.AddSignInFailure(ctx(t), other, later, window, max, lockFor); f.Failures != 1 {
		t.Errorf("count after a quiet window: %+v, want 1", f)
	}
	if err := s.ClearSignInFailures(ctx(t), key); err != nil {
		t.Fatal(err)
	}
	if f, _ := s.SignInFailures(ctx(t), key); f.Failures != 0 || !f.LockedUntil.IsZero() {
		t.Errorf("after clear: %+v", f)
	}
	// max 1 locks at once.
	if f, _ := s.AddSignInFailure(ctx(t), []byte("key-d"), t0, window, 1, lockFor); f.LockedUntil.IsZero() {
		t.Errorf("max 1: %+v", f)
	}
}

// BackfillRetiredTenants checks an engine's upgrade step that retires the
// ids of tenants deleted before retired_ids existed: backfill empties
// retired_ids and runs the step on the store's data.
func BackfillRetiredTenants(t *testing.T, s store.Store, backfill func() error) {
	ctx := t.Context()
	at := t0
	if err := s.CreateTenant(ctx, store.Tenant{ID: "live", ParentID: store.RootTenantID, Name: "Live", CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	seal := func(e *store.AuditEntry) error { e.Hash = []byte{byte(e.Seq)}; return nil }
	for _, e := range []store.AuditEntry{
		{At: at, TenantID: store.RootTenantID, OwnerTenantID: "gone-owner", Action: "device.read", Target: "d1"},
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
	for id, want := range map[string]bool{"gone-owner": true, "gone-actor": true, "live": false, store.RootTenantID: false, "": false} {
		if got, err := s.IDRetired(ctx, "tenant", id); err != nil || got != want {
			t.Errorf("IDRetired(%q) = %v, %v; want %v", id, got, err, want)
		}
	}
}
