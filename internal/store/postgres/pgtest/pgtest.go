// Package pgtest gives tests a fresh, throw-away PostgreSQL database.
//
// The server is named by the environment variable WARDEN_TEST_POSTGRES
// (default DefaultURL); its user must be allowed to CREATE DATABASE. If the
// server cannot be reached, tests are skipped, unless CI=true, where they
// fail: CI must run them.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL is the environment variable naming the test server.
const EnvURL = "WARDEN_TEST_POSTGRES"

// DefaultURL is the test server used when EnvURL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// pingTimeout bounds the reachability check.
const pingTimeout = 2 * time.Second

// unreachable remembers, by base URL, why the server could not be reached,
// so that a test binary does not wait for it again in every test.
var unreachable sync.Map // string → string

// URL creates a database with a random name on the test server and returns
// a connection URL for it. The database is dropped when t and its subtests
// have finished (after cleanups registered later, such as closing a store,
// have run). If the server is unreachable, URL skips t, or fails it when the
// environment variable CI is true.
func URL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		base = DefaultURL
	}
	if why, ok := unreachable.Load(base); ok {
		skipOrFail(t, why.(string))
	}
	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		// pgx redacts passwords in parse errors only on a best-effort basis.
		t.Fatalf("pgtest: cannot parse $%s (not shown: it may hold a password)", EnvURL)
	}
	ctx, cancel := context.WithTimeout(t.Context(), pingTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		err = conn.Ping(ctx)
		if err != nil {
			conn.Close(context.Background())
		}
	}
	if err != nil {
		why := fmt.Sprintf("PostgreSQL not reachable at %s: %v", describe(cfg), err)
		unreachable.Store(base, why)
		skipOrFail(t, why)
	}
	defer conn.Close(context.Background())

	name := "warden_test_" + randomHex(8)
	if _, err := conn.Exec(t.Context(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database %s on %s: %v", name, describe(cfg), err)
	}
	t.Cleanup(func() { drop(t, cfg, name) })
	dbURL, err := withDatabase(base, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return dbURL
}

// skipOrFail ends t because the server is unreachable.
func skipOrFail(t testing.TB, why string) {
	t.Helper()
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatalf("%s; CI requires it (set %s to a reachable server)", why, EnvURL)
	}
	t.Skipf("%s; skipping. To run these tests, start PostgreSQL there or set %s to a server whose user may create databases, e.g. %s",
		why, EnvURL, DefaultURL)
}

// drop removes a test database, disconnecting any sessions still on it.
func drop(t testing.TB, cfg *pgx.ConnConfig, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Errorf("pgtest: drop database %s: %v", name, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		t.Errorf("pgtest: drop database %s: %v", name, err)
	}
}

// withDatabase returns the connection string base with its database
// replaced by name. base is a postgres:// URL or a key=value string.
func withDatabase(base, name string) (string, error) {
	if !strings.HasPrefix(base, "postgres://") && !strings.HasPrefix(base, "postgresql://") {
		return base + " dbname=" + name, nil // later keywords win
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("cannot parse $%s (not shown: it may hold a password)", EnvURL)
	}
	u.Path, u.RawPath = "/"+name, ""
	if q := u.Query(); q.Has("dbname") {
		q.Set("dbname", name)
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

// describe names the server and database of cfg without its password.
func describe(cfg *pgx.ConnConfig) string {
	return fmt.Sprintf("postgres://%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
