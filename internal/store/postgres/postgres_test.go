package postgres_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/enginetest"
	"github.com/warden-iot/warden/internal/store/postgres"
	"github.com/warden-iot/warden/internal/store/postgres/pgtest"
	"github.com/warden-iot/warden/internal/store/storetest"
)

// TestStore runs the shared suite, each test on a fresh database of the
// server named by $WARDEN_TEST_POSTGRES (see package pgtest).
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return enginetest.Postgres(t)
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
