package e2e

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/store/postgres/pgtest"
	"github.com/warden-iot/warden/internal/tenancy"
	"github.com/warden-iot/warden/internal/tsdb/tsdbstore"
)

// The fault this guards against struck in about one run of three: each
// test deletes a tenant during ingest three times.
const shredRounds = 3

func TestShredDuringIngestSQLite(t *testing.T) {
	t.Parallel()
	e := start(t)
	for round := range shredRounds {
		shredDuringIngest(t, e, round)
	}
}

func TestShredDuringIngestPostgres(t *testing.T) {
	t.Parallel()
	e := start(t, withDatabase(pgtest.URL(t)))
	for round := range shredRounds {
		shredDuringIngest(t, e, round)
	}
}

// shredDuringIngest: devices of tenant acme and of the root tenant publish
// at QoS 1 while acme is deleted (its keys shredded). The root tenant's
// devices keep being acknowledged, each within a bounded time, and every
// message acknowledged to them is stored.
func shredDuringIngest(t *testing.T, e *env, round int) {
	ctx := e.ctx()
	acme := fmt.Sprint("acme", round)
	if _, err := e.api.CreateTenant(ctx, apiv1.NewTenant{ID: acme, TenantPatch: apiv1.TenantPatch{Name: apiv1.Ptr("Acme Pumps")}}); err != nil {
		t.Fatal(err)
	}
	type dev struct{ id, tenant string }
	var devs []dev
	for i := range 3 {
		devs = append(devs, dev{fmt.Sprintf("%s-%d", acme, i), acme}, dev{fmt.Sprintf("own%d-%d", round, i), "root"})
	}
	conns := map[string]*mqtt311{}
	for _, d := range devs {
		var created apiv1.Device
		if err := e.api.Do(ctx, http.MethodPost, "/api/v1/devices", nil, map[string]any{"id": d.id, "tenantId": d.tenant}, &created); err != nil {
			t.Fatalf("device %s: %v", d.id, err)
		}
		conns[d.id] = e.deviceConn(d.id, e.ownerKey(d.tenant, d.id))
	}

	const ackWithin = 10 * time.Second
	// Each message's point has its own instant, so that each is found.
	base := time.Now().Add(-time.Minute).UnixMilli()
	deleted := make(chan struct{})
	var mu sync.Mutex
	acked := map[string][]int{} // by root device: the acknowledged sequence numbers
	var wg sync.WaitGroup
	for _, d := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := conns[d.id]
			after := 0 // messages sent after the deletion
			for i := 0; ; i++ {
				if d.tenant == "root" {
					select {
					case <-deleted:
						after++
					default:
					}
					if after > 20 {
						return
					}
				}
				tok := c.c.Publish(events(d.id, fmt.Sprintf("$.mid=%s-%d", d.id, i)), 1, false, fmt.Sprintf(`{"ts": %d, "values": {"seq": %d}}`, base+int64(i), i))
				stopAcme := deleted // acme's devices wait for nothing once their tenant is deleted
				if d.tenant == "root" {
					stopAcme = nil
				}
				select {
				case <-tok.Done():
				case <-stopAcme:
					return
				case <-time.After(ackWithin):
					if d.tenant == "root" {
						t.Errorf("%s: message %d not acknowledged within %v", d.id, i, ackWithin)
					}
					return
				}
				if err := tok.Error(); err != nil {
					if d.tenant == "root" {
						t.Errorf("%s: message %d: %v", d.id, i, err)
					}
					return // acme's devices lose their connections with their tenant
				}
				if d.tenant == "root" {
					mu.Lock()
					acked[d.id] = append(acked[d.id], i)
					mu.Unlock()
				} else if i > 2000 {
					return
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	began := time.Now()
	if err := e.api.DeleteTenant(ctx, acme); err != nil {
		t.Errorf("delete tenant: %v", err)
	}
	t.Logf("deleting the tenant during ingest took %v", time.Since(began).Round(time.Millisecond))
	close(deleted)
	wg.Wait()

	// Acknowledged means in the commit log; the database follows.
	if err := e.srv.CaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	eng := e.srv.Engine()
	for id, seqs := range acked {
		stored := map[int]bool{}
		err := eng.Range(ctx, tenancy.RootTenantID, id, "seq", time.UnixMilli(base), time.UnixMilli(base+1_000_000), 0,
			func(s tsdbstore.Sample) bool {
				stored[int(s.Value)] = true
				return true
			})
		if err != nil {
			t.Fatalf("points of %s: %v", id, err)
		}
		for _, i := range seqs {
			if !stored[i] {
				t.Errorf("%s: acknowledged message %d is not stored", id, i)
			}
		}
		t.Logf("%s: %d messages acknowledged, all stored", id, len(seqs))
	}
	if len(acked) != 3 {
		t.Errorf("%d root devices had messages acknowledged, want 3", len(acked))
	}
}
