package cli

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/sas"
	"github.com/warden-iot/warden/internal/server"
	"github.com/warden-iot/warden/internal/server/servertest"
)

func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runInput(t, "", args...)
}

// runInput runs a command line with input as its standard input.
func runInput(t *testing.T, input string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main(t.Context(), args, strings.NewReader(input), &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestServeHelpListsFlagsAndEnv(t *testing.T) {
	_, help, code := run(t, "serve", "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"--data-dir", "--mqtt-listen", "--http-listen", "--hostname", "--database",
		"WARDEN_DATA_DIR", "WARDEN_ADMIN_TOKEN", "--config"} {
		if !strings.Contains(help, want) {
			t.Errorf("serve --help lacks %s:\n%s", want, help)
		}
	}
}

func TestUnknownCommandAndMissingArgs(t *testing.T) {
	if _, _, code := run(t, "frobnicate"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
	if _, _, code := run(t, "device", "token"); code != 2 {
		t.Errorf("device token without id: exit %d, want 2", code)
	}
}

// TestFlagPrecedence: flags beat WARDEN_* variables, which beat the config file.
func TestFlagPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "warden.conf")
	if err := os.WriteFile(file, []byte("data-dir /from/file\nhttp-listen :1\nmqtt-listen :2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("WARDEN_HTTP_LISTEN", ":3")
	t.Setenv("WARDEN_MQTT_LISTEN", ":4")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.String("config", "", "")
	dataDir := fs.String("data-dir", "", "")
	httpListen := fs.String("http-listen", "", "")
	mqttListen := fs.String("mqtt-listen", "", "")
	if err := parse(fs, []string{"--config", file, "--mqtt-listen", ":5"}); err != nil {
		t.Fatal(err)
	}
	if *dataDir != "/from/file" || *httpListen != ":3" || *mqttListen != ":5" {
		t.Fatalf("data-dir %q (want file), http-listen %q (want env), mqtt-listen %q (want flag)", *dataDir, *httpListen, *mqttListen)
	}
}

func TestDeviceCommandsAgainstServer(t *testing.T) {
	const token = "cli-test-token"
	srv, _ := servertest.Start(t, server.Config{AdminToken: token}, nil)
	t.Setenv("WARDEN_SERVER", "https://"+srv.HTTPAddr())
	t.Setenv("WARDEN_TOKEN", token)
	t.Setenv("WARDEN_CA", srv.CAFile())

	out, errOut, code := run(t, "device", "create", "pump-1")
	if code != 0 {
		t.Fatalf("device create: exit %d: %s", code, errOut)
	}
	// stdout is the connection string and nothing else.
	cs, err := sas.ParseConnectionString(strings.TrimSuffix(out, "\n"))
	if err != nil || strings.Count(out, "\n") != 1 || cs.DeviceID != "pump-1" || cs.HostName != srv.HubHost() {
		t.Fatalf("device create printed %q (%v)", out, err)
	}

	out, errOut, code = run(t, "device", "token", "pump-1", "--ttl", "2h")
	if code != 0 {
		t.Fatalf("device token: exit %d: %s", code, errOut)
	}
	tok, err := sas.Parse(strings.TrimSuffix(out, "\n"))
	if err != nil || strings.Count(out, "\n") != 1 {
		t.Fatalf("device token printed %q (%v)", out, err)
	}
	if err := sas.Verify(tok, time.Now(), cs.SharedAccessKey); err != nil {
		t.Fatalf("token does not verify with the device key: %v", err)
	}
	if left := time.Until(tok.Expiry); left < 119*time.Minute || left > 121*time.Minute {
		t.Fatalf("token expires in %v, want 2h", left)
	}

	if _, errOut, code = run(t, "device", "create", "pump-1"); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Errorf("second create: exit %d, %q; want 1 and 'already exists'", code, errOut)
	}
	if _, errOut, code = run(t, "device", "create", "bad/id"); code != 1 || !strings.Contains(errOut, "not allowed") {
		t.Errorf("bad id: exit %d, %q", code, errOut)
	}
	if _, _, code = run(t, "device", "disable", "pump-1"); code != 0 {
		t.Errorf("disable: exit %d", code)
	}
	out, _, code = run(t, "device", "list")
	if code != 0 || !strings.Contains(out, "pump-1") || !strings.Contains(out, "disabled") {
		t.Errorf("list after disable: exit %d:\n%s", code, out)
	}
	out, _, code = run(t, "device", "regenerate-key", "pump-1", "--key", "primary")
	if cs2, err := sas.ParseConnectionString(strings.TrimSpace(out)); code != 0 || err != nil || bytes.Equal(cs2.SharedAccessKey, cs.SharedAccessKey) {
		t.Errorf("regenerate-key: exit %d, %q, %v; want a new key", code, out, err)
	}
	if _, _, code = run(t, "device", "delete", "pump-1"); code != 0 {
		t.Errorf("delete: exit %d", code)
	}
	if _, errOut, code = run(t, "device", "show", "pump-1"); code != 1 || !strings.Contains(errOut, "404") {
		t.Errorf("show deleted: exit %d, %q", code, errOut)
	}
	if _, errOut, code = run(t, "device", "list", "--token", "wrong"); code != 1 || !strings.Contains(errOut, "401") {
		t.Errorf("wrong token: exit %d, %q", code, errOut)
	}
}
