// Package servertest runs a whole Warden server in the test process, on
// ephemeral loopback ports, with a temporary data directory.
package servertest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/server"
)

// Token is the operator API token of servers started here.
const Token = "servertest-operator-token"

// Start runs a server until the test ends. Empty fields of cfg get test
// defaults: a temporary data dir, MQTT/TLS and HTTPS on 127.0.0.1:0, the
// operator token Token. It returns the server and an API client of it.
func Start(t testing.TB, cfg server.Config, log *slog.Logger) (*server.Server, *client.Client) {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.MQTTListen == "" {
		cfg.MQTTListen = "127.0.0.1:0"
	}
	if cfg.HTTPListen == "" {
		cfg.HTTPListen = "127.0.0.1:0"
	}
	if cfg.AdminToken == "" {
		cfg.AdminToken = Token
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv, err := server.New(t.Context(), cfg, log)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatalf("server.Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	c, err := client.New("https://"+srv.HTTPAddr(), cfg.AdminToken, srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}
