package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/server"
)

// TestMasterKeyOutsideDataDir: the master key lives in a file apart from
// the data directory (a mounted secret): the server starts with it, reads
// its data across restarts, makes no key of its own in the data directory,
// and refuses to start, saying why, when the file is missing, readable by
// others, or when the default key of a database in use has been lost.
func TestMasterKeyOutsideDataDir(t *testing.T) {
	t.Parallel()
	secrets := t.TempDir()
	keyFile := filepath.Join(secrets, "warden-master.key")
	raw := make([]byte, 32)
	rand.Read(raw)
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(raw)+"\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{DataDir: t.TempDir(), MQTTListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0",
		AdminToken: adminToken, Out: io.Discard, MasterKeyFile: keyFile}
	quiet := slog.New(slog.DiscardHandler)

	// First life: a device sends a reading.
	srv, err := server.New(t.Context(), cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			stop(t, srv)
		}
	})
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	first := envOf(t, srv, cfg)
	key := first.device("pump-1")
	first.deviceConn("pump-1", key).mustPublish(t, events("pump-1", ""), `{"inletPressure": 0.125}`)
	stop(t, srv)
	stopped = true
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "master.key")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a master key was made in the data directory: %v", err)
	}

	// Refusals, each before anything is changed.
	refused := func(what string, c server.Config, want ...string) {
		t.Helper()
		srv, err := server.New(t.Context(), c, quiet)
		if err == nil {
			stop(t, srv)
			t.Fatalf("%s: the server started", what)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", what, err, w)
			}
		}
	}
	missing := cfg
	missing.MasterKeyFile = filepath.Join(secrets, "not-mounted.key")
	refused("configured key file missing", missing, missing.MasterKeyFile, "does not exist")
	if _, err := os.Stat(missing.MasterKeyFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a key was made at the configured path: %v", err)
	}
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	refused("key file readable by others", cfg, keyFile, "0644", "chmod 600")
	if err := os.Chmod(keyFile, 0o400); err != nil {
		t.Fatal(err)
	}
	fallback := cfg
	fallback.MasterKeyFile = "" // the default, <data-dir>/master.key, which this database never had
	refused("default key file missing for a database in use", fallback, "master.key", "does not exist", "unreadable")
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "master.key")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a new master key was made for a database in use: %v", err)
	}

	// Second life, with the key: the reading is there.
	e := startWith(t, cfg)
	latest, err := e.api.Latest(e.ctx(), "pump-1")
	if err != nil || len(latest) != 1 || latest[0].Value != 0.125 {
		t.Fatalf("latest after restart = %+v, %v", latest, err)
	}
}

// envOf is an env for a server the test starts and stops itself.
func envOf(t *testing.T, srv *server.Server, cfg server.Config) *env {
	t.Helper()
	api, err := client.New("https://"+srv.HTTPAddr(), cfg.AdminToken, srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	roots, err := client.LoadCA(srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, srv: srv, api: api, roots: roots, hubHost: srv.HubHost(), dataDir: cfg.DataDir}
}

func stop(t *testing.T, srv *server.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Error(err)
	}
}
