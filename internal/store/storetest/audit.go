package storetest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/store"
)

// auditTests cover store.AuditStore.
var auditTests = []suiteTest{
	{"AuditAppendAndList", testAuditAppendAndList},
	{"AuditFilters", testAuditFilters},
	{"AuditConcurrentAppends", testAuditConcurrentAppends},
	{"AuditSurvivesTenantDeletion", testAuditSurvivesTenantDeletion},
}

// sealForTest chains entries like package audit does, simplified: the
// store must only keep what seal computed.
func sealForTest(e *store.AuditEntry) error {
	h := sha256.New()
	h.Write(e.PrevHash)
	fmt.Fprintf(h, "%d|%s|%s", e.Seq, e.Action, e.Target)
	e.Hash = h.Sum(nil)
	return nil
}

func appendAudit(t *testing.T, s store.Store, e store.AuditEntry) store.AuditEntry {
	t.Helper()
	got, err := s.AppendAudit(ctx(t), e, sealForTest)
	if err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	return got
}

func testAuditAppendAndList(t *testing.T, s store.Store) {
	if es, err := s.ListAudit(ctx(t), store.AuditFilter{}); err != nil || len(es) != 0 {
		t.Fatalf("ListAudit(empty) = %v, %v", es, err)
	}
	want := store.AuditEntry{
		At: t0.Add(123456 * time.Microsecond), TenantID: store.RootTenantID, ActorID: "operator", ActorName: "op",
		Action: "device.create", Target: "pump-1", Outcome: "success", Status: 201, IP: "192.0.2.7",
		UserAgent: "curl/8.5.0", Browser: "curl", BrowserVersion: "8.5.0", OS: "Linux x86_64",
	}
	first := appendAudit(t, s, want)
	if first.Seq != 1 || len(first.PrevHash) != 0 || len(first.Hash) != sha256.Size {
		t.Fatalf("first entry = seq %d prev %x hash %x", first.Seq, first.PrevHash, first.Hash)
	}
	second := appendAudit(t, s, store.AuditEntry{At: t0, Action: "device.disable", Target: "pump-1", Outcome: "success", Status: 200})
	if second.Seq != 2 || !bytes.Equal(second.PrevHash, first.Hash) {
		t.Fatalf("second entry = seq %d prev %x; want 2, %x", second.Seq, second.PrevHash, first.Hash)
	}
	got, err := s.ListAudit(ctx(t), store.AuditFilter{})
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

func testAuditFilters(t *testing.T, s store.Store) {
	for i := range 10 {
		tenant, action := store.RootTenantID, "device.create"
		if i%2 == 1 {
			tenant, action = "acme", "device.delete"
		}
		appendAudit(t, s, store.AuditEntry{At: t0.Add(time.Duration(i) * time.Minute), TenantID: tenant,
			Action: action, Target: fmt.Sprintf("d%d", i%3), Outcome: "success", Status: 200})
	}
	seqs := func(f store.AuditFilter) []int64 {
		t.Helper()
		es, err := s.ListAudit(ctx(t), f)
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
		f    store.AuditFilter
		want string
	}{
		{store.AuditFilter{}, "[1 2 3 4 5 6 7 8 9 10]"},
		{store.AuditFilter{After: 7}, "[8 9 10]"},
		{store.AuditFilter{Limit: 3}, "[1 2 3]"},
		{store.AuditFilter{After: 2, Limit: 2}, "[3 4]"},
		{store.AuditFilter{TenantID: "acme"}, "[2 4 6 8 10]"},
		{store.AuditFilter{Action: "device.create"}, "[1 3 5 7 9]"},
		{store.AuditFilter{Target: "d1"}, "[2 5 8]"},
		{store.AuditFilter{Since: t0.Add(7 * time.Minute)}, "[8 9 10]"},
		{store.AuditFilter{TenantID: "acme", Target: "d1", After: 2}, "[8]"},
	} {
		if got := fmt.Sprint(seqs(tc.f)); got != tc.want {
			t.Errorf("ListAudit(%+v) = %s, want %s", tc.f, got, tc.want)
		}
	}
}

func testAuditConcurrentAppends(t *testing.T, s store.Store) {
	const workers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if _, err := s.AppendAudit(ctx(t), store.AuditEntry{At: t0, Action: "device.create",
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
	es, err := s.ListAudit(ctx(t), store.AuditFilter{Limit: 1000})
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

func testAuditSurvivesTenantDeletion(t *testing.T, s store.Store) {
	if err := s.CreateTenant(ctx(t), store.Tenant{ID: "acme", ParentID: store.RootTenantID, Name: "Acme", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	appendAudit(t, s, store.AuditEntry{At: t0, TenantID: "acme", Action: "device.create", Outcome: "success", Status: 201})
	if err := s.DeleteTenant(ctx(t), "acme"); err != nil {
		t.Fatal(err)
	}
	if es, err := s.ListAudit(ctx(t), store.AuditFilter{TenantID: "acme"}); err != nil || len(es) != 1 {
		t.Fatalf("after DeleteTenant ListAudit = %d entries, %v; want the entry kept", len(es), err)
	}
}
