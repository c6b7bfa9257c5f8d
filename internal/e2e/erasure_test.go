package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/server"
	"github.com/warden-iot/warden/internal/store/postgres/pgtest"
	"github.com/warden-iot/warden/internal/tsdb"

	_ "modernc.org/sqlite" // the test reads the server's SQLite file
)

// withFastSealing seals heads of 10 messages every 50 ms, so a test gets
// chunks quickly.
func withFastSealing() option {
	return func(c *server.Config) { c.Engine = tsdb.Config{SealRows: 5, SealEvery: 50 * time.Millisecond} }
}

// dbSpy reads a running server's database behind its back: rows through
// SQL, and every file that holds the database as raw bytes.
type dbSpy struct {
	blobs func(t *testing.T, query string) [][]byte
	files func(t *testing.T) map[string][]byte
}

// TestErasureLeavesNoBytesSQLite: after a tenant is deleted, no byte of its
// wrapped data keys, nor of its encrypted telemetry, is left in warden.db
// or its WAL; after a device is deleted, none of the device's telemetry.
func TestErasureLeavesNoBytesSQLite(t *testing.T) {
	t.Parallel()
	e := start(t, withFastSealing())
	path := filepath.Join(e.dataDir, "warden.db")
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	spy := dbSpy{
		blobs: func(t *testing.T, query string) [][]byte {
			t.Helper()
			rows, err := db.QueryContext(t.Context(), query)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var out [][]byte
			for rows.Next() {
				var b []byte
				if err := rows.Scan(&b); err != nil {
					t.Fatal(err)
				}
				out = append(out, b)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			return out
		},
		files: func(t *testing.T) map[string][]byte {
			t.Helper()
			out := map[string][]byte{}
			for _, name := range []string{"warden.db", "warden.db-wal", "warden.db-shm", "warden.db-journal"} {
				b, err := os.ReadFile(filepath.Join(e.dataDir, name))
				if os.IsNotExist(err) {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				out[name] = b
			}
			return out
		},
	}
	erasure(t, e, spy, true)
}

// TestErasureLeavesNoBytesPostgres: after a tenant is deleted, no live or
// dead tuple of the database holds its wrapped data keys: the test reads
// every relation file of the database (pgtest.RelationFiles).
func TestErasureLeavesNoBytesPostgres(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	e := start(t, withDatabase(url), withFastSealing())
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	spy := dbSpy{
		blobs: func(t *testing.T, query string) [][]byte {
			t.Helper()
			rows, err := conn.Query(t.Context(), query)
			if err != nil {
				t.Fatal(err)
			}
			out, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
			if err != nil {
				t.Fatal(err)
			}
			return out
		},
		files: func(t *testing.T) map[string][]byte {
			t.Helper()
			return pgtest.RelationFiles(t, conn)
		},
	}
	erasure(t, e, spy, false)
}

// secret is a byte string that must (before) or must not (after) appear in
// the database files. A blob is looked for by windows of it that lie in one
// page: its nonce, and its authentication tag.
type secret struct {
	what    string
	windows [][]byte
}

func (s secret) foundIn(files map[string][]byte) string {
	for name, b := range files {
		for _, w := range s.windows {
			if bytes.Contains(b, w) {
				return name
			}
		}
	}
	return ""
}

func blobSecrets(what string, blobs [][]byte) []secret {
	var out []secret
	for i, b := range blobs {
		// A sealed blob: version, key id, 12-byte nonce, ciphertext, 16-byte tag.
		out = append(out, secret{what: fmt.Sprintf("%s #%d", what, i), windows: [][]byte{b[5:17], b[len(b)-16:]}})
	}
	return out
}

// erasure runs the attack: a tenant's devices send telemetry; the attacker
// notes the wrapped data keys and ciphertext from the database; the
// operator deletes a device, then the tenant; the attacker, who has the
// master key, looks for those bytes in the files. Every secret is found
// before, so the scan would see it if it were left. wholeRows says whether
// the backend also promises that the ciphertext of deleted rows is gone
// (SQLite); otherwise only the keys are checked.
func erasure(t *testing.T, e *env, spy dbSpy, wholeRows bool) {
	ctx := e.ctx()
	if _, err := e.api.CreateTenant(ctx, apiv1.NewTenant{ID: "acme", TenantPatch: apiv1.TenantPatch{Name: apiv1.Ptr("Acme Pumps")}}); err != nil {
		t.Fatal(err)
	}
	keys := map[string][]byte{}
	var err error
	for _, d := range []struct{ id, tenant string }{{"acme-1", "acme"}, {"acme-2", "acme"}, {"root-1", "root"}} {
		var dev apiv1.Device
		if err := e.api.Do(ctx, http.MethodPost, "/api/v1/devices", nil, map[string]any{"id": d.id, "tenantId": d.tenant}, &dev); err != nil {
			t.Fatalf("device %s: %v", d.id, err)
		}
		keys[d.id] = e.ownerKey(d.tenant, d.id)
	}
	for id, key := range keys {
		conn := e.deviceConn(id, key)
		for i := range 20 {
			conn.mustPublish(t, events(id, fmt.Sprintf("$.mid=%s-%d", id, i)),
				fmt.Sprintf(`{"inletPressure": %d.%03d, "temperature": %d}`, i, len(id)*7+i, 60+i))
		}
	}
	// Wait until the sealer has made chunks and nothing more is due.
	deadline := time.Now().Add(15 * time.Second)
	for _, id := range []string{"acme-1", "acme-2"} {
		for len(spy.blobs(t, `SELECT blob FROM chunks WHERE device_id = '`+id+`'`)) == 0 ||
			len(spy.blobs(t, `SELECT blob FROM head WHERE device_id = '`+id+`'`)) >= 10 {
			if time.Now().After(deadline) {
				t.Fatalf("the head of %s was not sealed", id)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	wrapped := spy.blobs(t, `SELECT wrapped FROM tenant_keys WHERE tenant_id = 'acme'`)
	if len(wrapped) == 0 {
		t.Fatal("tenant acme has no data key")
	}
	var keySecrets []secret
	for i, w := range wrapped {
		if len(w) < 44 {
			t.Fatalf("wrapped key %d is %d bytes", i, len(w))
		}
		keySecrets = append(keySecrets, secret{what: "wrapped data key " + hex.EncodeToString(w[:8]) + "…", windows: [][]byte{w}})
	}
	telemetry := func(id string) []secret {
		var out []secret
		for _, table := range []string{"head", "chunks", "latest"} {
			out = append(out, blobSecrets(id+" "+table, spy.blobs(t, `SELECT blob FROM `+table+` WHERE device_id = '`+id+`'`))...)
		}
		return out
	}
	acme1, acme2 := telemetry("acme-1"), telemetry("acme-2")

	mustFind := func(when string, ss []secret) {
		t.Helper()
		files := spy.files(t)
		for _, s := range ss {
			if s.foundIn(files) == "" {
				t.Fatalf("%s: %s not found in the database files: the scan is blind", when, s.what)
			}
		}
	}
	mustNotFind := func(when string, ss []secret) {
		t.Helper()
		files := spy.files(t)
		for _, s := range ss {
			if f := s.foundIn(files); f != "" {
				t.Errorf("%s: %s is still in %s", when, s.what, f)
			}
		}
	}
	logLeft := func(when string, ss []secret) {
		t.Helper()
		files := spy.files(t)
		left := 0
		for _, s := range ss {
			if s.foundIn(files) != "" {
				left++
			}
		}
		t.Logf("%s: %d of %d ciphertext samples still in the files (unreadable without the key)", when, left, len(ss))
	}

	mustFind("before deletion", keySecrets)
	mustFind("before deletion", acme1)
	mustFind("before deletion", acme2)

	began := time.Now()
	if err := e.api.DeleteDevice(ctx, "acme-2"); err != nil {
		t.Fatal(err)
	}
	t.Logf("deleting a device took %v", time.Since(began).Round(time.Millisecond))
	if wholeRows {
		mustNotFind("after deleting device acme-2", acme2)
		mustFind("after deleting device acme-2", acme1) // the scan still sees what is left
	}
	mustFind("after deleting device acme-2", keySecrets)

	began = time.Now()
	if err := e.api.DeleteTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	t.Logf("deleting the tenant, with its keys purged, took %v", time.Since(began).Round(time.Millisecond))
	mustNotFind("after deleting tenant acme", keySecrets)
	if wholeRows {
		mustNotFind("after deleting tenant acme", acme1)
	} else {
		logLeft("after deleting tenant acme", append(acme1, acme2...))
	}

	// The other tenant's data is intact and readable.
	latest, err := e.api.Latest(ctx, "root-1")
	if err != nil || len(latest) != 2 {
		t.Fatalf("latest of root-1 after the erasure = %+v, %v", latest, err)
	}
}
