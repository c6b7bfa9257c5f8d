package postgres_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/postgres"
	"github.com/warden-iot/warden/internal/store/postgres/pgtest"
	"github.com/warden-iot/warden/internal/store/storetest"
)

// TestStore runs the shared suite, each test on a fresh database of the
// server named by $WARDEN_TEST_POSTGRES (see package pgtest).
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := postgres.Open(t.Context(), pgtest.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func open(t *testing.T, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Several nodes starting together migrate the same database at once.
func TestConcurrentMigrate(t *testing.T) {
	url := pgtest.URL(t)
	const nodes = 4
	stores := make([]*postgres.Store, nodes)
	for i := range stores {
		stores[i] = open(t, url)
	}
	var wg sync.WaitGroup
	errs := make([]error, nodes)
	for i, s := range stores {
		wg.Go(func() { errs[i] = s.Migrate(t.Context()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: Migrate: %v", i, err)
		}
	}
}

// Batches that overlap, in different orders, on one device neither deadlock
// nor accept a message twice.
func TestOverlappingBatches(t *testing.T) {
	s := open(t, pgtest.URL(t))
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if err := s.CreateDevice(t.Context(), store.Device{ID: "d", TenantID: store.RootTenantID, Status: store.DeviceEnabled,
		PrimaryKey: []byte{1}, SecondaryKey: []byte{2}, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	const writers, msgs, rounds = 4, 50, 5
	var accepted atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, writers*rounds)
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for r := range rounds {
				var batch []store.Message
				for _, i := range rng.Perm(msgs) {
					ts := t0.Add(time.Duration(i%10) * time.Second) // shared timestamps
					batch = append(batch, store.Message{TenantID: store.RootTenantID, DeviceID: "d",
						MessageID: fmt.Sprint(r, "-", i), ReceivedAt: ts,
						Points: []store.Point{{Metric: "x", TS: ts, Value: float64(i)}, {Metric: "y", TS: ts, Value: 1}}})
				}
				res, err := s.WriteMessages(t.Context(), batch)
				if err != nil {
					errc <- err
					return
				}
				for _, x := range res {
					if !x.Duplicate {
						accepted.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if got := accepted.Load(); got != msgs*rounds {
		t.Fatalf("%d messages accepted, want %d", got, msgs*rounds)
	}
}

// The rejected list of a device is bounded; the newest entries stay.
func TestRejectedBound(t *testing.T) {
	s := open(t, pgtest.URL(t))
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateDevice(t.Context(), store.Device{ID: "d", TenantID: store.RootTenantID, Status: store.DeviceEnabled,
		PrimaryKey: []byte{1}, SecondaryKey: []byte{2}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	const n = 1010
	for i := range n {
		if err := s.AddRejected(t.Context(), store.Rejected{TenantID: store.RootTenantID, DeviceID: "d",
			Reason: fmt.Sprint(i), ReceivedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ListRejected(t.Context(), store.RootTenantID, "d", -1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1000 || got[0].Reason != fmt.Sprint(n-1) || got[999].Reason != fmt.Sprint(n-1000) {
		t.Fatalf("%d rejected kept, newest %q, oldest %q; want 1000 from %d to %d",
			len(got), got[0].Reason, got[len(got)-1].Reason, n-1, n-1000)
	}
}

// Errors never show the password of the connection URL.
func TestOpenErrorHidesPassword(t *testing.T) {
	for _, url := range []string{
		"postgres://warden:s3cret@127.0.0.1:1/warden?sslmode=disable&connect_timeout=2",
		"postgres://warden:s3cret@127.0.0.1:notaport/warden",
		"host=127.0.0.1 port=1 user=warden password=s3cret sslmode=disable connect_timeout=2",
		"host=127.0.0.1 port=x password=s3cret",
	} {
		_, err := postgres.Open(t.Context(), url)
		if err == nil {
			t.Fatalf("Open succeeded on an unreachable server")
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open error shows the password: %v", err)
		}
		t.Log(err)
	}
}
