package keyring_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/keyring"
	"github.com/warden-iot/warden/internal/store"
	"github.com/warden-iot/warden/internal/store/sqlite"
	"github.com/warden-iot/warden/internal/tenancy"
)

func newStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateTenant(t.Context(), tenancy.Tenant{ID: "acme", ParentID: tenancy.RootTenantID, Name: "ACME", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return st
}

var master = bytes.Repeat([]byte{0x5a}, keyring.KeySize)

func TestSealOpen(t *testing.T) {
	st := newStore(t)
	k, err := keyring.New(t.Context(), master, st, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte("inletPressure=0.12")
	blob, err := k.Seal(t.Context(), "acme", plain, []byte("ctx"))
	if err != nil {
		t.Fatal(err)
	}
	if len(blob) != len(plain)+keyring.Overhead || bytes.Contains(blob, plain) {
		t.Fatalf("sealed blob %x: wrong size or not encrypted", blob)
	}
	again, _ := k.Seal(t.Context(), "acme", plain, []byte("ctx"))
	if bytes.Equal(blob, again) {
		t.Fatal("two seals of the same plaintext are equal: nonce reused")
	}
	got, err := k.Open(t.Context(), "acme", blob, []byte("ctx"))
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	// Another keyring on the same database (a restart, another node) opens it.
	k2, err := keyring.New(t.Context(), master, st, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k2.Open(t.Context(), "acme", blob, []byte("ctx")); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("second keyring Open = %q, %v", got, err)
	}
	for name, c := range map[string]struct {
		tenant string
		blob   []byte
		aad    []byte
	}{
		"wrong associated data": {"acme", blob, []byte("other")},
		"other tenant":          {tenancy.RootTenantID, blob, []byte("ctx")},
		"flipped bit":           {"acme", flip(blob, len(blob)-1), []byte("ctx")},
		"flipped key id":        {"acme", flip(blob, 4), []byte("ctx")},
		"truncated":             {"acme", blob[:10], []byte("ctx")},
		"empty":                 {"acme", nil, nil},
	} {
		if _, err := k.Open(t.Context(), c.tenant, c.blob, c.aad); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

func TestTenantsHaveTheirOwnKeys(t *testing.T) {
	st := newStore(t)
	k, _ := keyring.New(t.Context(), master, st, time.Now)
	a, _ := k.Seal(t.Context(), "acme", []byte("x"), nil)
	r, _ := k.Seal(t.Context(), tenancy.RootTenantID, []byte("x"), nil)
	ida, _ := keyring.KeyID(a)
	idr, _ := keyring.KeyID(r)
	if ida == idr {
		t.Fatalf("both tenants use key %d", ida)
	}
}

// TestForget: a keyring that did not shred a tenant's keys (another node's)
// keeps opening with the keys it holds until it forgets them.
func TestForgetTenant(t *testing.T) {
	st := newStore(t)
	a, _ := keyring.New(t.Context(), master, st, time.Now)
	b, _ := keyring.New(t.Context(), master, st, time.Now)
	blob, _ := a.Seal(t.Context(), "acme", []byte("secret"), nil)
	other, _ := a.Seal(t.Context(), tenancy.RootTenantID, []byte("kept"), nil)
	if _, err := b.Open(t.Context(), "acme", blob, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Open(t.Context(), tenancy.RootTenantID, other, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Shred(t.Context(), "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Open(t.Context(), "acme", blob, nil); err != nil {
		t.Fatalf("before Forget the key held in memory still opens: %v", err)
	}
	b.ForgetTenant("acme")
	if _, err := b.Open(t.Context(), "acme", blob, nil); !errors.Is(err, keyring.ErrShredded) {
		t.Fatalf("after Forget: %v, want keyring.ErrShredded", err)
	}
	if got, err := b.Open(t.Context(), tenancy.RootTenantID, other, nil); err != nil || string(got) != "kept" {
		t.Fatalf("other tenant after Forget: %q, %v", got, err)
	}
}

func TestShred(t *testing.T) {
	st := newStore(t)
	k, _ := keyring.New(t.Context(), master, st, time.Now)
	blob, _ := k.Seal(t.Context(), "acme", []byte("secret"), nil)
	other, _ := k.Seal(t.Context(), tenancy.RootTenantID, []byte("kept"), nil)
	if err := k.Shred(t.Context(), "acme"); err != nil {
		t.Fatal(err)
	}
	fresh, _ := keyring.New(t.Context(), master, st, time.Now)
	for _, kr := range []*keyring.Keyring{k, fresh} {
		if _, err := kr.Open(t.Context(), "acme", blob, nil); !errors.Is(err, keyring.ErrShredded) {
			t.Fatalf("after Shred: %v, want keyring.ErrShredded", err)
		}
		if got, err := kr.Open(t.Context(), tenancy.RootTenantID, other, nil); err != nil || string(got) != "kept" {
			t.Fatalf("other tenant after Shred: %q, %v", got, err)
		}
	}
	// keyring.New data for the tenant gets a new key.
	nb, err := k.Seal(t.Context(), "acme", []byte("new"), nil)
	if err != nil {
		t.Fatal(err)
	}
	oldID, _ := keyring.KeyID(blob)
	newID, _ := keyring.KeyID(nb)
	if oldID == newID {
		t.Fatal("a shredded key id was reused")
	}
}

func TestWrongMasterKeyRefused(t *testing.T) {
	st := newStore(t)
	if _, err := keyring.New(t.Context(), master, st, time.Now); err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.New(t.Context(), bytes.Repeat([]byte{1}, keyring.KeySize), st, time.Now); err == nil {
		t.Fatal("a different master key was accepted")
	}
	if _, err := keyring.New(t.Context(), []byte("short"), st, time.Now); err == nil {
		t.Fatal("a short master key was accepted")
	}
}

func TestLoadMaster(t *testing.T) {
	file := filepath.Join(t.TempDir(), "master.key")
	k1, created, err := keyring.LoadMaster("", file, true)
	if err != nil || !created || len(k1) != keyring.KeySize {
		t.Fatalf("first load: %d bytes, created %v, %v", len(k1), created, err)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Fatalf("master key file mode %v, want 0600", fi.Mode().Perm())
	}
	k2, created, err := keyring.LoadMaster("", file, true)
	if err != nil || created || !bytes.Equal(k1, k2) {
		t.Fatalf("second load: created %v, %v, same %v", created, err, bytes.Equal(k1, k2))
	}
	env := base64.StdEncoding.EncodeToString(master)
	if k, _, err := keyring.LoadMaster(env, file, false); err != nil || !bytes.Equal(k, master) {
		t.Fatalf("from value: %v", err)
	}
	if _, _, err := keyring.LoadMaster("bm90IDMyIGJ5dGVz", file, false); err == nil {
		t.Fatal("a short key in the variable was accepted")
	}
	for _, mode := range []os.FileMode{0o644, 0o604, 0o620, 0o606} {
		os.Chmod(file, mode)
		if _, _, err := keyring.LoadMaster("", file, false); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("key file of mode %04o: %v, want it refused", mode, err)
		}
	}
	for _, mode := range []os.FileMode{0o400, 0o440, 0o600} {
		os.Chmod(file, mode)
		if k, _, err := keyring.LoadMaster("", file, false); err != nil || !bytes.Equal(k, k1) {
			t.Errorf("key file of mode %04o: %v", mode, err)
		}
	}
	os.Chmod(file, 0o600)
	os.WriteFile(file, []byte("garbage"), 0o600)
	if _, _, err := keyring.LoadMaster("", file, true); err == nil {
		t.Fatal("a garbage key file was accepted")
	}
	missing := filepath.Join(t.TempDir(), "elsewhere.key")
	if _, _, err := keyring.LoadMaster("", missing, false); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing key file, creation not allowed: %v", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a key file was created although creation was not allowed")
	}
}
