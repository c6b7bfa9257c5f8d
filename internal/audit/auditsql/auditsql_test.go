package auditsql_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/audit"
	"github.com/warden-iot/warden/internal/audit/auditsql"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/enginetest"
	"github.com/warden-iot/warden/internal/tenancy"
)

// TestStore is the audit store's conformance suite, run on each engine: a fresh,
// migrated database per test, with a keyring to seal machine data as the
// server has; the engine (store.Store) makes what the tests need from other
// domains.
func TestStore(t *testing.T) {
	enginetest.RunTests(t, auditsql.New, []enginetest.Test[*auditsql.Store]{
		{Name: "AuditAppendAndList", Fn: testAuditAppendAndList},
		{Name: "AuditFilters", Fn: testAuditFilters},
		{Name: "AuditConcurrentAppends", Fn: testAuditConcurrentAppends},
		{Name: "AuditSurvivesTenantDeletion", Fn: testAuditSurvivesTenantDeletion},
		{Name: "AuditOwnerTenant", Fn: testAuditOwnerTenant},
	})
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ctx(t *testing.T) context.Context { return t.Context() }

// sealForTest chains entries like package audit does, simplified: the
// store must only keep what seal computed.
func sealForTest(e *audit.Entry) error {
	h := sha256.New()
	h.Write(e.PrevHash)
	fmt.Fprintf(h, "%d|%s|%s", e.Seq, e.Action, e.Target)
	e.Hash = h.Sum(nil)
	return nil
}

func appendAudit(t *testing.T, s audit.Store, e audit.Entry) audit.Entry {
	t.Helper()
	got, err := s.AppendAudit(ctx(t), e, sealForTest)
	if err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	return got
}

func testAuditAppendAndList(t *testing.T, s store.Store, as *auditsql.Store) {
	if es, err := as.ListAudit(ctx(t), audit.Filter{}); err != nil || len(es) != 0 {
		t.Fatalf("ListAudit(empty) = %v, %v", es, err)
	}
	want := audit.Entry{
		At: t0.Add(123456 * time.Microsecond), TenantID: tenancy.RootTenantID, ActorID: "operator", ActorName: "op",
		Action: "device.create", Target: "pump-1", Outcome: "success", Status: 201, IP: "192.0.2.7",
		UserAgent: "curl/8.5.0", Browser: "curl", BrowserVersion: "8.5.0", OS: "Linux x86_64",
	}
	first := appendAudit(t, as, want)
	if first.Seq != 1 || len(first.PrevHash) != 0 || len(first.Hash) != sha256.Size {
		t.Fatalf("first entry = seq %d prev %x hash %x", first.Seq, first.PrevHash, first.Hash)
	}
	second := appendAudit(t, as, audit.Entry{At: t0, Action: "device.disable", Target: "pump-1", Outcome: "success", Status: 200})
	if second.Seq != 2 || !bytes.Equal(second.PrevHash, first.Hash) {
		t.Fatalf("second entry = seq %d prev %x; want 2, %x", second.Seq, second.PrevHash, first.Hash)
	}
	got, err := as.ListAudit(ctx(t), audit.Filter{})
	if err != nil || len(got) != 2 {
		t.Fatalf("ListAudit = %d entries, %v; want 2", len(got), err)
	}
	want.Seq, want.At, want.PrevHash, want.Hash = 1, want.At.Truncate(time.Millisecond), []byte{}, first.Hash
	g := got[0]
	if g.PrevHash == nil {
		g.PrevHash = []byte{}
	}
	if fmt.Sprint(g) != fmt.Sprint(want) || !g.At.Equal(want.At) {
		t.Fatalf("entry 1 =\n%+v\nwant\n%+v", g, want)
	}
	if !bytes.Equal(got[1].PrevHash, got[0].Hash) || got[1].Seq != 2 {
		t.Fatalf("entry 2 does not chain to entry 1: %+v", got[1])
	}
}

func testAuditFilters(t *testing.T, s store.Store, as *auditsql.Store) {
	for i := range 10 {
		tenant, action := tenancy.RootTenantID, "device.create"
		if i%2 == 1 {
			tenant, action = "acme", "device.delete"
		}
		appendAudit(t, as, audit.Entry{At: t0.Add(time.Duration(i) * time.Minute), TenantID: tenant,
			Action: action, Target: fmt.Sprintf("d%d", i%3), Outcome: "success", Status: 200})
	}
	seqs := func(f audit.Filter) []int64 {
		t.Helper()
		es, err := as.ListAudit(ctx(t), f)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, e := range es {
			out = append(out, e.Seq)
		}
		return out
	}
	for _, tc := range []struct {
		f    audit.Filter
		want string
	}{
		{audit.Filter{}, "[1 2 3 4 5 6 7 8 9 10]"},
		{audit.Filter{After: 7}, "[8 9 10]"},
		{audit.Filter{Limit: 3}, "[1 2 3]"},
		{audit.Filter{After: 2, Limit: 2}, "[3 4]"},
		{audit.Filter{TenantID: "acme"}, "[2 4 6 8 10]"},
		{audit.Filter{Action: "device.create"}, "[1 3 5 7 9]"},
		{audit.Filter{Target: "d1"}, "[2 5 8]"},
		{audit.Filter{Since: t0.Add(7 * time.Minute)}, "[8 9 10]"},
		{audit.Filter{TenantID: "acme", Target: "d1", After: 2}, "[8]"},
	} {
		if got := fmt.Sprint(seqs(tc.f)); got != tc.want {
			t.Errorf("ListAudit(%+v) = %s, want %s", tc.f, got, tc.want)
		}
	}
}

func testAuditConcurrentAppends(t *testing.T, s store.Store, as *auditsql.Store) {
	const workers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if _, err := as.AppendAudit(ctx(t), audit.Entry{At: t0, Action: "device.create",
					Target: fmt.Sprintf("w%d-%d", w, i), Outcome: "success", Status: 201}, sealForTest); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	es, err := as.ListAudit(ctx(t), audit.Filter{Limit: 1000})
	if err != nil || len(es) != workers*each {
		t.Fatalf("ListAudit = %d entries, %v; want %d", len(es), err, workers*each)
	}
	prev := []byte{}
	for i, e := range es {
		if e.Seq != int64(i+1) || !bytes.Equal(e.PrevHash, prev) {
			t.Fatalf("entry %d: seq %d, prev %x; want seq %d, prev %x (chain forked)", i, e.Seq, e.PrevHash, i+1, prev)
		}
		check := e
		if err := sealForTest(&check); err != nil || !bytes.Equal(check.Hash, e.Hash) {
			t.Fatalf("entry %d: stored hash is not the sealed one", e.Seq)
		}
		prev = e.Hash
	}
}

func testAuditSurvivesTenantDeletion(t *testing.T, s store.Store, as *auditsql.Store) {
	if err := s.CreateTenant(ctx(t), tenancy.Tenant{ID: "acme", ParentID: tenancy.RootTenantID, Name: "Acme", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	appendAudit(t, as, audit.Entry{At: t0, TenantID: "acme", Action: "device.create", Outcome: "success", Status: 201})
	if err := s.DeleteTenant(ctx(t), "acme"); err != nil {
		t.Fatal(err)
	}
	if es, err := as.ListAudit(ctx(t), audit.Filter{TenantID: "acme"}); err != nil || len(es) != 1 {
		t.Fatalf("after DeleteTenant ListAudit = %d entries, %v; want the entry kept", len(es), err)
	}
}

func testAuditOwnerTenant(t *testing.T, s store.Store, as *auditsql.Store) {
	// acme2 only starts like acme; beta is below acme2.
	for _, x := range []struct{ id, parent string }{{"acme", tenancy.RootTenantID}, {"acme2", tenancy.RootTenantID}, {"beta", "acme2"}} {
		if err := s.CreateTenant(ctx(t), tenancy.Tenant{ID: x.id, ParentID: x.parent, Name: x.id, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	for i, owner := range []string{"acme", "", "beta", "acme", "gamma"} {
		tenant := tenancy.RootTenantID
		if i%2 == 1 {
			tenant = "acme"
		}
		appendAudit(t, as, audit.Entry{At: t0, TenantID: tenant, Action: "x", Target: fmt.Sprint("t", i),
			OwnerTenantID: owner, Outcome: "success", Status: 200})
	}
	all, err := as.ListAudit(ctx(t), audit.Filter{})
	if err != nil || len(all) != 5 {
		t.Fatalf("ListAudit = %d entries, %v", len(all), err)
	}
	for i, owner := range []string{"acme", "", "beta", "acme", "gamma"} {
		if all[i].OwnerTenantID != owner {
			t.Errorf("entry %d owner = %q, want %q", all[i].Seq, all[i].OwnerTenantID, owner)
		}
	}
	seqs := func(f audit.Filter) string {
		t.Helper()
		es, err := as.ListAudit(ctx(t), f)
		if err != nil {
			t.Fatal(err)
		}
		out := []int64{}
		for _, e := range es {
			out = append(out, e.Seq)
		}
		return fmt.Sprint(out)
	}
	for _, tc := range []struct {
		f    audit.Filter
		want string
	}{
		{audit.Filter{OwnerTenantIDs: []string{"acme"}}, "[1 4]"},
		{audit.Filter{OwnerUnder: "acme"}, "[1 4]"},
		{audit.Filter{OwnerUnder: "acme2"}, "[3]"},
		{audit.Filter{OwnerUnder: tenancy.RootTenantID}, "[1 3 4]"}, // gamma is no tenant
		{audit.Filter{OwnerUnder: "ghost"}, "[]"},
		{audit.Filter{OwnerTenantIDs: []string{"acme", "gamma"}}, "[1 4 5]"},
		{audit.Filter{OwnerTenantIDs: []string{"ghost"}}, "[]"},
		{audit.Filter{OwnerTenantIDs: []string{}}, "[]"},
		{audit.Filter{OwnerTenantIDs: []string{"acme", "beta"}, TenantID: tenancy.RootTenantID}, "[1 3]"},
		{audit.Filter{OwnerTenantIDs: []string{"acme", "beta", "gamma"}, After: 1, Limit: 2}, "[3 4]"},
	} {
		if got := seqs(tc.f); got != tc.want {
			t.Errorf("ListAudit(%+v) = %s, want %s", tc.f, got, tc.want)
		}
	}
}
