package sqlite_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/store/sqlite"
	"github.com/warden-iot/warden/internal/tenancy"
)

// TestShredLeavesNoBytes: shredding a tenant's keys on its own (the tenant
// stays) leaves no byte of its wrapped keys in the database file or WAL,
// while another tenant's key stays and still works.
func TestShredLeavesNoBytes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "warden.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"acme", "other"} {
		if err := s.CreateTenant(t.Context(), tenancy.Tenant{ID: id, ParentID: tenancy.RootTenantID, Name: id, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := keyring.New(t.Context(), bytes.Repeat([]byte{7}, keyring.KeySize), s, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	sealed := map[string][]byte{}
	for _, id := range []string{"acme", "other"} {
		if sealed[id], err = keys.Seal(t.Context(), id, []byte("reading of "+id), nil); err != nil {
			t.Fatal(err)
		}
	}
	acme, err := s.ActiveTenantKey(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.ActiveTenantKey(t.Context(), "other")
	if err != nil {
		t.Fatal(err)
	}
	where := func(b []byte) string {
		t.Helper()
		for _, name := range []string{"warden.db", "warden.db-wal"} {
			f, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			if bytes.Contains(f, b) {
				return name
			}
		}
		return ""
	}
	if where(acme.Wrapped) == "" || where(other.Wrapped) == "" {
		t.Fatal("the wrapped keys are not in the files before shredding: the scan is blind")
	}
	if err := keys.Shred(t.Context(), "acme"); err != nil {
		t.Fatal(err)
	}
	if f := where(acme.Wrapped); f != "" {
		t.Errorf("the shredded key is still in %s", f)
	}
	if where(other.Wrapped) == "" {
		t.Error("the other tenant's key is gone from the files")
	}
	if _, err := keys.Open(t.Context(), "other", sealed["other"], nil); err != nil {
		t.Errorf("other tenant's data after shredding acme: %v", err)
	}
	fresh, err := keyring.New(t.Context(), bytes.Repeat([]byte{7}, keyring.KeySize), s, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.Open(t.Context(), "acme", sealed["acme"], nil); err == nil {
		t.Error("acme's data still opens after shredding")
	}
}
