package tsdb

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/store/postgres"
	"github.com/warden-iot/warden/internal/store/postgres/pgtest"
	"github.com/warden-iot/warden/internal/telemetry"
	"github.com/warden-iot/warden/internal/tenancy"
)

// engines runs fn on an engine over SQLite and one over PostgreSQL.
func engines(t *testing.T, fn func(t *testing.T, te *testEngine)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, newTestEngine(t, Config{})) })
	t.Run("postgres", func(t *testing.T) {
		st, err := postgres.Open(t.Context(), pgtest.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fn(t, newTestEngineOn(t, Config{}, st))
	})
}

// twoTenants sets up tenant acme with device acme-pump and the root tenant
// with own-pump, each with one message written (so their keys are cached).
func twoTenants(t *testing.T, te *testEngine) {
	t.Helper()
	if err := te.st.CreateTenant(t.Context(), tenancy.Tenant{ID: "acme", ParentID: tenancy.RootTenantID, Name: "ACME", CreatedAt: now0}); err != nil {
		t.Fatal(err)
	}
	te.device(t, "acme", "acme-pump")
	te.device(t, tenancy.RootTenantID, "own-pump")
	if _, err := te.Write(t.Context(), []telemetry.Message{pair("acme", "acme-pump", 0), pair(tenancy.RootTenantID, "own-pump", 0)}); err != nil {
		t.Fatal(err)
	}
}

func pair(tenant, dev string, i int) telemetry.Message {
	return telemetry.Message{TenantID: tenant, DeviceID: dev, MessageID: fmt.Sprint(i), ReceivedAt: now0,
		Points: []telemetry.Point{{Metric: "seq", TS: now0.Add(time.Duration(i) * time.Millisecond), Value: float64(i)}}}
}

// TestWriteDropsDeletedTenant: a batch that holds messages of a tenant
// deleted (with its keys) since its devices sent them commits the other
// tenant's messages and drops the deleted tenant's.
func TestWriteDropsDeletedTenant(t *testing.T) { engines(t, writeDropsDeletedTenant) }

func writeDropsDeletedTenant(t *testing.T, te *testEngine) {
	twoTenants(t, te)
	if err := te.st.DeleteTenant(t.Context(), "acme"); err != nil {
		t.Fatal(err)
	}
	if err := te.keys.Shred(t.Context(), "acme"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	res, err := te.Write(ctx, []telemetry.Message{pair("acme", "acme-pump", 1), pair(tenancy.RootTenantID, "own-pump", 1)})
	if err != nil {
		t.Fatalf("Write with a deleted tenant's message: %v", err)
	}
	if !res[0].Dropped || res[1].Dropped || res[1].Duplicate {
		t.Fatalf("results = %+v, want the deleted tenant's dropped and the other stored", res)
	}
	if got := te.rangeAll(t, "own-pump", "seq"); len(got) != 2 {
		t.Errorf("own-pump has %d points, want 2", len(got))
	}
	if h := te.rawHead(t, "acme-pump"); len(h) != 0 {
		t.Errorf("the deleted tenant's device has %d head records", len(h))
	}
}

// TestShredDuringWrite: shredding a tenant's keys over and over while
// batches of it and another tenant commit never blocks a write, and every
// write stores both tenants' messages (the shredded tenant still exists:
// its new messages get a new key).
func TestShredDuringWrite(t *testing.T) { engines(t, shredDuringWrite) }

func shredDuringWrite(t *testing.T, te *testEngine) {
	twoTenants(t, te)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	shreds, failed := 0, 0
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := te.keys.Shred(t.Context(), "acme"); err != nil {
				t.Error(err)
				return
			}
			shreds++
			time.Sleep(20 * time.Millisecond)
		}
	}()
	const writes = 200
	for i := 1; i <= writes; i++ {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		res, err := te.Write(ctx, []telemetry.Message{pair("acme", "acme-pump", i), pair(tenancy.RootTenantID, "own-pump", i)})
		cancel()
		if err != nil {
			close(stop)
			wg.Wait()
			t.Fatalf("write %d while shredding: %v", i, err)
		}
		if r := res[1]; r.Dropped || r.Duplicate || r.Err != nil {
			t.Fatalf("write %d: the other tenant's result = %+v, want stored", i, r)
		}
		switch r := res[0]; {
		case r.Dropped || r.Duplicate:
			t.Fatalf("write %d: the shredded tenant's result = %+v, want stored or failed", i, r)
		case r.Err != nil:
			failed++ // keys destroyed during every attempt: the device sends it again
		}
	}
	close(stop)
	wg.Wait()
	if got := te.rangeAll(t, "own-pump", "seq"); len(got) != writes+1 {
		t.Errorf("own-pump has %d points, want %d", len(got), writes+1)
	}
	if failed > writes/4 {
		t.Errorf("%d of %d messages of the shredded tenant failed", failed, writes)
	}
	t.Logf("%d shreds during %d writes; %d messages of the shredded tenant failed", shreds, writes, failed)
}
