package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warden-iot/warden/internal/database"
	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/store/postgres"
	"github.com/warden-iot/warden/internal/store/postgres/pgtest"
	"github.com/warden-iot/warden/internal/tenancy"
)

// TestShredLeavesNoTuple: shredding a tenant's keys leaves no live or dead
// tuple holding them in any relation file of the database. While another
// node's transaction that began before the shredding is open, the dead
// tuple cannot go, and Shred says so (database.ErrNotPurged); once it ends,
// the next shredding removes it.
func TestShredLeavesNoTuple(t *testing.T) {
	url := pgtest.URL(t)
	s := open(t, url)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	postgres.SetHorizonWait(s, time.Second)
	spy, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { spy.Close(context.Background()) })
	for _, id := range []string{"acme", "beta", "other"} {
		if err := s.CreateTenant(t.Context(), tenancy.Tenant{ID: id, ParentID: tenancy.RootTenantID, Name: id, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := keyring.New(t.Context(), bytes.Repeat([]byte{7}, keyring.KeySize), s, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	wrapped := map[string][]byte{}
	for _, id := range []string{"acme", "beta", "other"} {
		if _, err := keys.Seal(t.Context(), id, []byte("reading of "+id), nil); err != nil {
			t.Fatal(err)
		}
		k, err := s.ActiveTenantKey(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		wrapped[id] = k.Wrapped
	}
	where := func(b []byte) string {
		t.Helper()
		for name, f := range pgtest.RelationFiles(t, spy) {
			if bytes.Contains(f, b) {
				return name
			}
		}
		return ""
	}
	for id, w := range wrapped {
		if where(w) == "" {
			t.Fatalf("the key of %s is not in the files before shredding: the scan is blind", id)
		}
	}

	// Another node is in the middle of a long transaction.
	node2, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node2.Close(context.Background()) })
	long, err := node2.BeginTx(t.Context(), pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := long.QueryRow(t.Context(), `SELECT count(*) FROM tenants`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	err = keys.Shred(t.Context(), "acme")
	if !errors.Is(err, database.ErrNotPurged) {
		t.Fatalf("Shred while an older transaction is open = %v, want ErrNotPurged", err)
	}
	if _, err := s.ActiveTenantKey(t.Context(), "acme"); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("acme's key after Shred: %v, want it deleted", err)
	}
	if where(wrapped["acme"]) == "" {
		t.Log("the dead tuple went although an older snapshot could see it")
	}
	if err := long.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}

	if err := keys.Shred(t.Context(), "beta"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"acme", "beta"} {
		if f := where(wrapped[id]); f != "" {
			t.Errorf("the shredded key of %s is still in %s", id, f)
		}
	}
	if where(wrapped["other"]) == "" {
		t.Error("the other tenant's key is gone from the files")
	}
}
