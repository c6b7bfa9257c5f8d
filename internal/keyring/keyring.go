// Package keyring holds the encryption keys of telemetry at rest. Every
// tenant has its own 256-bit data key; data keys are stored in the database
// only wrapped (AES-256-GCM) by the master key, which lives outside the
// database (a file in the data directory, or an environment variable).
// Destroying a tenant's data keys makes everything sealed with them
// unreadable (crypto-shredding), including copies in old backups.
package keyring

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/warden-iot/warden/internal/database"
)

// KeySize is the size of master and data keys: AES-256.
const KeySize = 32

// Sealed blob layout: version (1 byte) | key id (4 bytes, big endian) |
// nonce (12 bytes) | ciphertext and GCM tag (16 bytes).
const (
	blobVersion = 1
	headerSize  = 1 + 4 + 12
	// Overhead is what sealing adds to a plaintext.
	Overhead = headerSize + 16
)

// Errors callers can branch on.
var (
	// ErrShredded: the blob's data key was destroyed.
	ErrShredded = errors.New("data key destroyed")
	// ErrCorrupt: the blob is malformed or fails authentication.
	ErrCorrupt = errors.New("sealed data is corrupt or was tampered with")
)

// TenantKey is a tenant's data key, wrapped by the master key.
type TenantKey struct {
	ID        uint32
	TenantID  string
	Wrapped   []byte
	CreatedAt time.Time
}

// Store keeps the tenants' data keys, wrapped (package keyringsql). Its
// errors wrap database.ErrNotFound and database.ErrNotPurged.
type Store interface {
	// CreateTenantKey stores a new data key for a tenant: it reserves an
	// id, calls wrap with it, and stores the result.
	CreateTenantKey(ctx context.Context, tenantID string, at time.Time, wrap func(id uint32) ([]byte, error)) (TenantKey, error)
	// ActiveTenantKey returns the tenant's newest data key.
	ActiveTenantKey(ctx context.Context, tenantID string) (TenantKey, error)
	// TenantKey returns a data key by id.
	TenantKey(ctx context.Context, id uint32) (TenantKey, error)
	// DeleteTenantKeys destroys every data key of a tenant, and leaves no
	// copy of it, nor of keys deleted before (by DeleteTenant), in the
	// database files (ErrNotPurged if it could not make sure of that).
	DeleteTenantKeys(ctx context.Context, tenantID string) error
}

// Meta is the server-wide settings table, where the keyring records the
// fingerprint of the master key.
type Meta interface {
	GetMeta(ctx context.Context, key string) (string, error)
	SetMeta(ctx context.Context, key, value string) error
}

// Backend is what a keyring runs on: the data keys and the settings.
type Backend interface {
	Store
	Meta
}

// Sealer encrypts and decrypts a tenant's data with the tenant's own key.
// aad is authenticated, not stored: Open needs the same bytes Seal was
// given. A Keyring is one; the stores seal machine data with it
// (store.Sealer).
type Sealer interface {
	Seal(ctx context.Context, tenantID string, plaintext, aad []byte) ([]byte, error)
	Open(ctx context.Context, tenantID string, blob, aad []byte) ([]byte, error)
}

// Keyring seals and opens tenants' data. It is safe for concurrent use.
type Keyring struct {
	master cipher.AEAD
	store  Backend
	now    func() time.Time

	mu     sync.Mutex
	keys   map[uint32]dataKey  // by key id
	owned  map[string][]uint32 // tenant → ids of its keys in keys
	active map[string]uint32   // tenant → key id used for new data
}

type dataKey struct {
	tenantID string
	aead     cipher.AEAD
}

// New makes a keyring over the master key. It refuses a master key that is
// not the one the database's keys were wrapped with.
func New(ctx context.Context, master []byte, st Backend, now func() time.Time) (*Keyring, error) {
	if len(master) != KeySize {
		return nil, fmt.Errorf("master key is %d bytes, want %d", len(master), KeySize)
	}
	aead, err := newAEAD(master)
	if err != nil {
		return nil, err
	}
	k := &Keyring{master: aead, store: st, now: now, keys: map[uint32]dataKey{}, owned: map[string][]uint32{}, active: map[string]uint32{}}
	if err := k.checkMaster(ctx, master); err != nil {
		return nil, err
	}
	return k, nil
}

const metaMasterCheck = "master_key_check"

// checkMaster records a fingerprint of the master key on first use and
// compares it afterwards, so a wrong key is refused at start rather than
// discovered as unreadable data.
func (k *Keyring) checkMaster(ctx context.Context, master []byte) error {
	mac := hmac.New(sha256.New, master)
	mac.Write([]byte("warden master key check"))
	fp := hex.EncodeToString(mac.Sum(nil))
	got, err := k.store.GetMeta(ctx, metaMasterCheck)
	if errors.Is(err, database.ErrNotFound) {
		return k.store.SetMeta(ctx, metaMasterCheck, fp)
	}
	if err != nil {
		return fmt.Errorf("master key check: %w", err)
	}
	if !hmac.Equal([]byte(got), []byte(fp)) {
		return errors.New("the master key is not the one this database's data keys were made with")
	}
	return nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	return cipher.NewGCM(block)
}

// wrapAAD binds a wrapped key to its tenant and id.
func wrapAAD(tenantID string, id uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte("warden data key\x00"+tenantID+"\x00"), id)
}

// Seal encrypts plaintext with the tenant's current data key, creating one
// if the tenant has none. aad is authenticated but not stored: pass the same
// bytes to Open (e.g. what the blob belongs to).
func (k *Keyring) Seal(ctx context.Context, tenantID string, plaintext, aad []byte) ([]byte, error) {
	id, key, err := k.activeKey(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	return sealWith(id, key.aead, plaintext, aad)
}

func sealWith(id uint32, aead cipher.AEAD, plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, headerSize, headerSize+len(plaintext)+aead.Overhead())
	out[0] = blobVersion
	binary.BigEndian.PutUint32(out[1:5], id)
	if _, err := rand.Read(out[5:headerSize]); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	return aead.Seal(out, out[5:headerSize], plaintext, append(out[:5:5], aad...)), nil
}

// KeyID returns the data key id in a sealed blob's header.
func KeyID(blob []byte) (uint32, error) {
	if len(blob) < headerSize || blob[0] != blobVersion {
		return 0, ErrCorrupt
	}
	return binary.BigEndian.Uint32(blob[1:5]), nil
}

// Open decrypts a blob sealed for tenantID with the same aad.
func (k *Keyring) Open(ctx context.Context, tenantID string, blob, aad []byte) ([]byte, error) {
	id, err := KeyID(blob)
	if err != nil {
		return nil, err
	}
	key, err := k.key(ctx, id)
	if err != nil {
		return nil, err
	}
	return openWith(key, tenantID, blob, aad)
}

func openWith(key dataKey, tenantID string, blob, aad []byte) ([]byte, error) {
	if key.tenantID != tenantID {
		return nil, fmt.Errorf("%w: sealed for another tenant", ErrCorrupt)
	}
	pt, err := key.aead.Open(nil, blob[5:headerSize], blob[headerSize:], append(blob[:5:5], aad...))
	if err != nil {
		return nil, ErrCorrupt
	}
	return pt, nil
}

// TenantKeys are data keys of one tenant obtained before a transaction
// (Pin): sealing and opening with them never reaches the store, so they
// may be used inside a transaction of it. A TenantKeys is not safe for
// concurrent use.
type TenantKeys struct {
	tenantID string
	active   uint32
	keys     map[uint32]dataKey
	gone     map[uint32]bool // keys found destroyed (Load)
}

// NotPinnedError: a blob was sealed with a key of the tenant that its
// TenantKeys do not hold. Load it (outside any transaction) and try again.
type NotPinnedError struct {
	TenantID string
	ID       uint32
}

func (e *NotPinnedError) Error() string {
	return fmt.Sprintf("data key %d of tenant %q is not loaded", e.ID, e.TenantID)
}

// Pin returns the tenant's active data key and the other keys of the
// tenant this keyring holds. A tenant without a data key gets one, made in
// a short transaction of its own; for a tenant that does not exist the
// error wraps database.ErrNotFound.
func (k *Keyring) Pin(ctx context.Context, tenantID string) (*TenantKeys, error) {
	id, _, err := k.activeKey(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	t := &TenantKeys{tenantID: tenantID, active: id, keys: map[uint32]dataKey{}}
	k.mu.Lock()
	for _, kid := range k.owned[tenantID] {
		t.keys[kid] = k.keys[kid]
	}
	k.mu.Unlock()
	if _, ok := t.keys[id]; !ok { // shredded meanwhile
		return nil, fmt.Errorf("data key of tenant %q: %w", tenantID, ErrShredded)
	}
	return t, nil
}

// Load adds data key id to t, reading it from the store if this keyring
// does not hold it; a key that was destroyed makes t's Open report
// ErrShredded for its blobs. Call it outside any transaction.
func (k *Keyring) Load(ctx context.Context, t *TenantKeys, id uint32) error {
	key, err := k.key(ctx, id)
	if errors.Is(err, ErrShredded) {
		if t.gone == nil {
			t.gone = map[uint32]bool{}
		}
		t.gone[id] = true
		return nil
	}
	if err != nil {
		return err
	}
	t.keys[id] = key
	return nil
}

// Forget drops data key id from the keyring's cache, so that the next use
// of its tenant reads the tenant's keys from the store again: a caller
// that learnt that the key was destroyed elsewhere (another node, or a
// tenant deleted in the store) calls it.
func (k *Keyring) Forget(id uint32) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if key, ok := k.keys[id]; ok {
		if k.active[key.tenantID] == id {
			delete(k.active, key.tenantID)
		}
		delete(k.keys, id)
		k.owned[key.tenantID] = slices.DeleteFunc(k.owned[key.tenantID], func(x uint32) bool { return x == id })
	}
}

// SealerFor returns a Sealer for one tenant to use inside a transaction
// (sealing.Pinner): it seals with the tenant's key obtained now,
// so sealing never writes to the store, and opens through the keyring,
// which only reads.
func (k *Keyring) SealerFor(ctx context.Context, tenantID string) (Sealer, error) {
	t, err := k.Pin(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	return pinnedSealer{k: k, t: t}, nil
}

type pinnedSealer struct {
	k *Keyring
	t *TenantKeys
}

func (p pinnedSealer) Seal(_ context.Context, tenantID string, plaintext, aad []byte) ([]byte, error) {
	if tenantID != p.t.tenantID {
		return nil, fmt.Errorf("sealer of tenant %q asked to seal for tenant %q", p.t.tenantID, tenantID)
	}
	return p.t.Seal(plaintext, aad)
}

func (p pinnedSealer) Open(ctx context.Context, tenantID string, blob, aad []byte) ([]byte, error) {
	return p.k.Open(ctx, tenantID, blob, aad)
}

// KeyID is the id of the key Seal seals with.
func (t *TenantKeys) KeyID() uint32 { return t.active }

// Seal is Keyring.Seal with the pinned active key.
func (t *TenantKeys) Seal(plaintext, aad []byte) ([]byte, error) {
	return sealWith(t.active, t.keys[t.active].aead, plaintext, aad)
}

// Open is Keyring.Open with the pinned keys: a blob of a key not pinned
// gives a *NotPinnedError, of a key found destroyed ErrShredded.
func (t *TenantKeys) Open(blob, aad []byte) ([]byte, error) {
	id, err := KeyID(blob)
	if err != nil {
		return nil, err
	}
	key, ok := t.keys[id]
	if !ok {
		if t.gone[id] {
			return nil, fmt.Errorf("key %d: %w", id, ErrShredded)
		}
		return nil, &NotPinnedError{TenantID: t.tenantID, ID: id}
	}
	return openWith(key, t.tenantID, blob, aad)
}

func (k *Keyring) activeKey(ctx context.Context, tenantID string) (uint32, dataKey, error) {
	k.mu.Lock()
	id, ok := k.active[tenantID]
	key := k.keys[id]
	k.mu.Unlock()
	if ok {
		return id, key, nil
	}
	tk, err := k.store.ActiveTenantKey(ctx, tenantID)
	if errors.Is(err, database.ErrNotFound) {
		tk, err = k.createKey(ctx, tenantID)
	}
	if err != nil {
		return 0, dataKey{}, fmt.Errorf("data key of tenant %q: %w", tenantID, err)
	}
	key, err = k.unwrap(tk)
	if err != nil {
		return 0, dataKey{}, err
	}
	k.mu.Lock()
	k.cache(tk.ID, key)
	k.active[tenantID] = tk.ID
	k.mu.Unlock()
	return tk.ID, key, nil
}

func (k *Keyring) createKey(ctx context.Context, tenantID string) (TenantKey, error) {
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return TenantKey{}, err
	}
	// The id is assigned by the store, but the wrapping binds it: reserve
	// it first, then store the wrapped key under it.
	return k.store.CreateTenantKey(ctx, tenantID, k.now().UTC(), func(id uint32) ([]byte, error) {
		nonce := make([]byte, k.master.NonceSize())
		if _, err := rand.Read(nonce); err != nil {
			return nil, err
		}
		return k.master.Seal(nonce, nonce, raw, wrapAAD(tenantID, id)), nil
	})
}

func (k *Keyring) key(ctx context.Context, id uint32) (dataKey, error) {
	k.mu.Lock()
	key, ok := k.keys[id]
	k.mu.Unlock()
	if ok {
		return key, nil
	}
	tk, err := k.store.TenantKey(ctx, id)
	if errors.Is(err, database.ErrNotFound) {
		return dataKey{}, fmt.Errorf("key %d: %w", id, ErrShredded)
	}
	if err != nil {
		return dataKey{}, fmt.Errorf("key %d: %w", id, err)
	}
	key, err = k.unwrap(tk)
	if err != nil {
		return dataKey{}, err
	}
	k.mu.Lock()
	k.cache(id, key)
	k.mu.Unlock()
	return key, nil
}

// cache keeps a data key; k.mu is held.
func (k *Keyring) cache(id uint32, key dataKey) {
	if _, ok := k.keys[id]; !ok {
		k.owned[key.tenantID] = append(k.owned[key.tenantID], id)
	}
	k.keys[id] = key
}

func (k *Keyring) unwrap(tk TenantKey) (dataKey, error) {
	ns := k.master.NonceSize()
	if len(tk.Wrapped) < ns {
		return dataKey{}, fmt.Errorf("key %d: wrapped key too short", tk.ID)
	}
	raw, err := k.master.Open(nil, tk.Wrapped[:ns], tk.Wrapped[ns:], wrapAAD(tk.TenantID, tk.ID))
	if err != nil {
		return dataKey{}, fmt.Errorf("key %d: cannot unwrap with this master key", tk.ID)
	}
	aead, err := newAEAD(raw)
	if err != nil {
		return dataKey{}, err
	}
	return dataKey{tenantID: tk.TenantID, aead: aead}, nil
}

// Shred destroys every data key of a tenant: what was sealed with them can
// never be read again, wherever copies of it are.
// The store also purges its files of the wrapped keys; if only that part
// failed (database.ErrNotPurged), the keys are still forgotten here.
func (k *Keyring) Shred(ctx context.Context, tenantID string) error {
	err := k.store.DeleteTenantKeys(ctx, tenantID)
	if err != nil && !errors.Is(err, database.ErrNotPurged) {
		return fmt.Errorf("shred tenant %q: %w", tenantID, err)
	}
	k.ForgetTenant(tenantID)
	if err != nil {
		return fmt.Errorf("shred tenant %q: %w", tenantID, err)
	}
	return nil
}

// ForgetTenant drops the tenant's keys this keyring holds in memory, so that it
// reads them from the store again: the reaction of a node whose keyring did
// not shred them itself (Shred forgets its own).
func (k *Keyring) ForgetTenant(tenantID string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.active, tenantID)
	for _, id := range k.owned[tenantID] {
		delete(k.keys, id)
	}
	delete(k.owned, tenantID)
}

// InUse reports whether data keys in the database were wrapped with a
// master key (its fingerprint is recorded): then a new master key would
// leave everything sealed unreadable.
func InUse(ctx context.Context, st Meta) (bool, error) {
	_, err := st.GetMeta(ctx, metaMasterCheck)
	if errors.Is(err, database.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("master key check: %w", err)
	}
	return true, nil
}

// LoadMaster returns the master key: from value (base64, e.g. the
// WARDEN_MASTER_KEY variable) if set, else from file. If file does not
// exist, it is created with a new random key (mode 0600) when create is
// true, and an error wrapping os.ErrNotExist is returned otherwise. A key
// file that other users may read, or group or others may write, is refused.
// created says whether a new key was made.
func LoadMaster(value, file string, create bool) (key []byte, created bool, err error) {
	if value != "" {
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(value))
		if err != nil || len(key) != KeySize {
			return nil, false, fmt.Errorf("master key: want %d bytes in base64", KeySize)
		}
		return key, false, nil
	}
	b, err := os.ReadFile(file)
	if err == nil {
		if err := checkKeyFileMode(file); err != nil {
			return nil, false, err
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(key) != KeySize {
			return nil, false, fmt.Errorf("master key file %s: want %d bytes in base64", file, KeySize)
		}
		return key, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) || !create {
		return nil, false, fmt.Errorf("master key file: %w", err)
	}
	key = make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, false, err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("create master key file: %w", err)
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("write master key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("write master key file: %w", err)
	}
	return key, true, f.Close()
}

// checkKeyFileMode refuses a key file (or the file a link points to) that
// others may read, or group or others may write. Group read is allowed: a
// secret mounted for a service's group, such as a Kubernetes secret volume
// with fsGroup, is 0440.
func checkKeyFileMode(file string) error {
	if runtime.GOOS == "windows" {
		return nil // no Unix permission bits
	}
	fi, err := os.Stat(file)
	if err != nil {
		return fmt.Errorf("master key file: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o027 != 0 {
		return fmt.Errorf("master key file %s has mode %04o: other users could read or replace it; "+
			"make it readable by Warden's user only (chmod 600; for a Kubernetes secret volume, defaultMode 0400)", file, perm)
	}
	return nil
}
