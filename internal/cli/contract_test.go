package cli

// The command line's output contract: help, --version, durations, the
// environment variables read, tables and JSON of lists, ids alone on
// stdout, device credentials and account activation.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/sas"
	"github.com/warden-iot/warden/internal/server"
	"github.com/warden-iot/warden/internal/server/servertest"
)

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30d": 30 * day, "2w": 2 * week, "1d12h": 36 * time.Hour, "90m": 90 * time.Minute, "1.5h": 90 * time.Minute,
		"0": 0, "-1h": -time.Hour, "1w2d3h4m5s": week + 2*day + 3*time.Hour + 4*time.Minute + 5*time.Second,
		"500ms": 500 * time.Millisecond, "0.5d": 12 * time.Hour,
	} {
		got, err := parseDuration(in)
		if err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
		if back, err := parseDuration(formatDuration(got)); err != nil || back != got {
			t.Errorf("formatDuration(%v) = %q reads back as %v, %v", got, formatDuration(got), back, err)
		}
	}
	for _, in := range []string{"", "soon", "10", "d", "1x", "1d-2h", "h1"} {
		if got, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q) = %v, want an error", in, got)
		}
	}
	for d, want := range map[time.Duration]string{30 * day: "30d", 36 * time.Hour: "1d12h", time.Hour: "1h",
		90 * time.Minute: "1h30m", 90 * time.Second: "1m30s", 0: "0"} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}, {"-v"}} {
		out, errOut, code := run(t, args...)
		if code != 0 || out != "warden "+Version+"\n" {
			t.Errorf("warden %s: exit %d, %q, %q", strings.Join(args, " "), code, out, errOut)
		}
	}
	out, _ := mustRun(t, "version", "--json")
	if v := decodeJSON[map[string]string](t, out); v["version"] != Version {
		t.Errorf("version --json: %s", out)
	}
}

// helpCases are command lines whose help is checked: every command, and
// the subcommands of a few.
func helpCases() [][]string {
	var cases [][]string
	for _, c := range commands() {
		cases = append(cases, []string{c.name})
	}
	for _, s := range []string{"device create", "device credentials", "device update", "telemetry history", "twin set",
		"method invoke", "c2d send", "enrollment group create", "enrollment individual list", "registration list",
		"tenant create", "site create", "user create", "grant create", "token create", "account activate",
		"account totp start", "audit verify", "audit list", "rule create", "alarm list", "webhook create",
		"escalation set", "notifications set", "bench ingest"} {
		cases = append(cases, strings.Fields(s))
	}
	return cases
}

var flagLine = regexp.MustCompile(`^(  --\S+(?: \S+)?)( +)\S`)

func TestHelpExitsZeroAndAligns(t *testing.T) {
	out, _ := mustRun(t, "--help")
	checkColumns(t, "warden --help", out, "Commands:")
	if out, _ := mustRun(t, "help", "device", "token"); !strings.Contains(out, "Usage: warden device") || !strings.Contains(out, "--ttl duration") {
		t.Errorf("warden help device token:\n%s", out)
	}
	for _, args := range helpCases() {
		for _, h := range []string{"--help", "-h"} {
			name := strings.Join(append(args, h), " ")
			out, errOut, code := run(t, append(args, h)...)
			if code != 0 {
				t.Errorf("warden %s: exit %d\n%s", name, code, errOut)
				continue
			}
			help := out + errOut
			if !strings.Contains(help, "Usage: warden "+args[0]) {
				t.Errorf("warden %s printed no usage:\n%s", name, help)
			}
			// Every flag's description starts in one column.
			col := -1
			for _, line := range strings.Split(help, "\n") {
				m := flagLine.FindStringSubmatchIndex(line)
				if m == nil {
					continue
				}
				if c := m[5]; col == -1 {
					col = c
				} else if c != col {
					t.Errorf("warden %s: flag description at column %d, others at %d: %q", name, c, col, line)
				}
			}
			if len(args) > 1 && col == -1 && args[0] != "bench" {
				t.Errorf("warden %s lists no flags:\n%s", name, help)
			}
			if args[0] != "bench" && args[0] != "simulate" && args[0] != "serve" {
				checkColumns(t, "warden "+name, help, "Subcommands:")
			}
		}
	}
}

// checkColumns checks that in the section of text under heading, every
// description starts in one column: on the line of its name after two
// spaces or more, or on a continuation line.
func checkColumns(t *testing.T, name, text, heading string) {
	t.Helper()
	_, section, ok := strings.Cut(text, heading+"\n")
	if !ok {
		return
	}
	section, _, _ = strings.Cut(section, "\n\n")
	gap := regexp.MustCompile(`^  \S.*?\S( {2,})\S`)
	col := -1
	for _, line := range strings.Split(section, "\n") {
		c := -1
		if m := gap.FindStringSubmatchIndex(line); m != nil {
			c = m[3]
		} else if trimmed := strings.TrimLeft(line, " "); len(line)-len(trimmed) > 2 {
			c = len(line) - len(trimmed)
		}
		if c == -1 {
			continue // a long synopsis, its description on the next line
		}
		if col == -1 {
			col = c
		} else if c != col {
			t.Errorf("%s: %s description at column %d, others at %d: %q", name, heading, c, col, line)
		}
	}
}

func TestEnvironmentVariables(t *testing.T) {
	// Help shows a variable only for the flags that have one.
	out, _ := mustRun(t, "alarm", "list", "--help")
	for _, want := range []string{"$WARDEN_SERVER", "$WARDEN_TOKEN", "$WARDEN_CA"} {
		if !strings.Contains(out, want) {
			t.Errorf("alarm list --help lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "WARDEN_LIMIT") || strings.Contains(out, "WARDEN_TENANT") {
		t.Errorf("alarm list --help names variables that are not read:\n%s", out)
	}
	// serve reads all its flags from WARDEN_<FLAG>.
	if _, errOut, _ := run(t, "serve", "--help"); !strings.Contains(out+errOut, "WARDEN_DATA_DIR") {
		t.Errorf("serve --help lacks WARDEN_DATA_DIR:\n%s", errOut)
	}

	srv, _ := servertest.Start(t, server.Config{}, nil)
	t.Setenv("WARDEN_SERVER", "https://"+srv.HTTPAddr())
	t.Setenv("WARDEN_TOKEN", servertest.Token)
	t.Setenv("WARDEN_CA", srv.CAFile())
	// A limit of 0 is a usage error: were WARDEN_LIMIT read, this would fail.
	t.Setenv("WARDEN_LIMIT", "0")
	t.Setenv("WARDEN_JSON", "true")
	out, errOut := mustRun(t, "alarm", "list")
	if strings.HasPrefix(out, "[") || !strings.Contains(errOut, "no alarms") {
		t.Errorf("alarm list with WARDEN_LIMIT and WARDEN_JSON set: %q, %q", out, errOut)
	}
	wantFail(t, 2, []string{"--limit: 1 to 1000"}, "alarm", "list", "--limit", "0")
}

// selfSignedCA writes a CA certificate the server's certificate is not
// signed by.
func selfSignedCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestOutputContract(t *testing.T) {
	srv, c := servertest.Start(t, server.Config{}, nil)
	t.Setenv("WARDEN_SERVER", "https://"+srv.HTTPAddr())
	t.Setenv("WARDEN_TOKEN", servertest.Token)
	t.Setenv("WARDEN_CA", srv.CAFile())

	// Empty lists: a line on stderr, nothing on stdout; [] with --json.
	for _, args := range [][]string{{"device", "list"}, {"site", "list"}, {"rule", "list"}, {"webhook", "list"},
		{"enrollment", "group", "list"}, {"enrollment", "individual", "list"}, {"registration", "list"}, {"grant", "list"}} {
		out, errOut := mustRun(t, args...)
		if out != "" || !strings.HasPrefix(errOut, "no ") || strings.Count(errOut, "\n") != 1 {
			t.Errorf("warden %s on nothing printed %q, %q", strings.Join(args, " "), out, errOut)
		}
		if out, _ = mustRun(t, append(args, "--json")...); out != "[]\n" {
			t.Errorf("warden %s --json on nothing printed %q", strings.Join(args, " "), out)
		}
	}

	// site create prints the id alone, for SITE=$(warden site create …).
	out, errOut := mustRun(t, "site", "create", "--name", "Boiler house")
	site := strings.TrimSuffix(out, "\n")
	if !regexp.MustCompile(`^site_\S+$`).MatchString(site) || strings.Count(out, "\n") != 1 || !strings.Contains(errOut, "created") {
		t.Fatalf("site create printed %q, %q", out, errOut)
	}
	out, _ = mustRun(t, "tenant", "create", "--name", "Customer B", "--id", "B")
	if out != "B\n" {
		t.Errorf("tenant create printed %q", out)
	}

	// A device with metadata, moved between sites.
	out, _ = mustRun(t, "device", "create", "pump-1", "--serial", "P1234567", "--model", "vp-40")
	cs, err := sas.ParseConnectionString(strings.TrimSuffix(out, "\n"))
	if err != nil || strings.Count(out, "\n") != 1 {
		t.Fatalf("device create printed %q: %v", out, err)
	}
	mustRun(t, "device", "update", "pump-1", "--site", site)
	out, _ = mustRun(t, "device", "show", "pump-1", "--json")
	if d := decodeJSON[apiv1.Device](t, out); d.SiteID != site || d.SerialNumber != "P1234567" || d.Model != "vp-40" {
		t.Errorf("device after update: %+v", d)
	}
	wantFail(t, 2, []string{"not both"}, "device", "update", "pump-1", "--site", site, "--no-site")
	wantFail(t, 2, []string{"nothing to change"}, "device", "update", "pump-1")
	wantFail(t, 1, []string{"400", "siteId"}, "device", "update", "pump-1", "--site", "site_nowhere")
	mustRun(t, "device", "update", "--no-site", "pump-1")
	if d, err := c.Device(t.Context(), "pump-1"); err != nil || d.SiteID != "" {
		t.Errorf("device after --no-site: %+v, %v", d, err)
	}
	// A site of root cannot hold a device of B.
	wantFail(t, 1, []string{"400", "siteId"}, "device", "create", "pump-2", "--tenant", "B", "--site", site)
	out, _ = mustRun(t, "device", "create", "pump-2", "--tenant", "B", "--json")
	if d := decodeJSON[apiv1.Device](t, out); d.TenantID != "B" || d.ID != "pump-2" {
		t.Errorf("device create --tenant B --json: %s", out)
	}

	// show: aligned field lines, with the keys, by default.
	out, _ = mustRun(t, "device", "show", "pump-1")
	col := -1
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		m := regexp.MustCompile(`^\S+( +)\S`).FindStringSubmatchIndex(line)
		if m == nil {
			t.Fatalf("device show line %q is not \"field  value\"", line)
		}
		if col == -1 {
			col = m[3]
		} else if m[3] != col {
			t.Errorf("device show: value at column %d, others at %d: %q", m[3], col, line)
		}
	}
	for _, want := range []string{"primaryKey", "secondaryKey", "connectionString", "serialNumber  ", "P1234567"} {
		if !strings.Contains(out, want) {
			t.Errorf("device show lacks %q:\n%s", want, out)
		}
	}

	// Durations with days and weeks, flags before or after the id.
	for _, tc := range []struct {
		args []string
		want time.Duration
	}{{[]string{"device", "token", "pump-1", "--ttl", "30d"}, 30 * day},
		{[]string{"device", "token", "--ttl", "2w", "pump-1"}, 2 * week},
		{[]string{"device", "token", "pump-1", "--ttl=1d12h"}, 36 * time.Hour}} {
		out, _ := mustRun(t, tc.args...)
		tok, err := sas.Parse(strings.TrimSpace(out))
		if err != nil {
			t.Fatalf("%v printed %q: %v", tc.args, out, err)
		}
		if left := time.Until(tok.Expiry); left < tc.want-time.Minute || left > tc.want+time.Minute {
			t.Errorf("%v: token ends in %v, want %v", tc.args, left, tc.want)
		}
	}
	wantFail(t, 2, []string{"--ttl", "30d"}, "device", "token", "pump-1", "--ttl", "soon")

	// Lists: a header, then rows; --json an array.
	out, _ = mustRun(t, "device", "list")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "ID ") ||
		!strings.Contains(lines[0], "STATUS") || !strings.HasPrefix(lines[1], "pump-1 ") {
		t.Errorf("device list:\n%s", out)
	}
	out, errOut = mustRun(t, "device", "rejected", "pump-1")
	if out != "" || !strings.Contains(errOut, "no rejected messages") {
		t.Errorf("device rejected printed %q, %q", out, errOut)
	}
	for _, args := range [][]string{{"device", "list"}, {"tenant", "list"}, {"site", "list"}, {"user", "list"},
		{"alarm", "list"}, {"deliveries"}, {"audit", "list"}, {"device", "rejected", "pump-1"}, {"c2d", "list", "pump-1"},
		{"telemetry", "latest", "pump-1"}} {
		out, _ := mustRun(t, append(args, "--json")...)
		var v []json.RawMessage
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Errorf("warden %s --json is not a JSON array: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	out, _ = mustRun(t, "tenant", "list")
	if !strings.HasPrefix(out, "ID ") || !strings.Contains(out, "\nB ") {
		t.Errorf("tenant list:\n%s", out)
	}

	// Device credentials for a plain MQTT client.
	out, errOut = mustRun(t, "device", "credentials", "pump-1", "--ttl", "1h")
	file := filepath.Join(t.TempDir(), "creds.sh")
	if err := os.WriteFile(file, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := exec.Command("bash", "-c", `eval "$(cat "$1")"; printf '%s|%s|%s|%s' "$MQTT_HOST" "$MQTT_PORT" "$MQTT_CLIENT_ID" "$MQTT_USERNAME"`,
		"bash", file).CombinedOutput()
	if err != nil {
		t.Fatalf("eval of device credentials: %v: %s\n%s", err, got, out)
	}
	_, port, _ := net.SplitHostPort(srv.HubHost())
	want := "localhost|" + port + "|pump-1|" + srv.HubHost() + "/pump-1/?api-version=2021-04-12"
	if string(got) != want || strings.Count(out, "\n") != 5 || !strings.Contains(errOut, "valid until") {
		t.Errorf("device credentials evaluate to %q, want %q; printed:\n%s", got, want, out)
	}
	out, _ = mustRun(t, "device", "credentials", "pump-1", "--json")
	m := decodeJSON[mqttCreds](t, out)
	if strconv.Itoa(m.Port) != port || m.Host != "localhost" || !strings.HasPrefix(m.Password, "SharedAccessSignature ") {
		t.Errorf("device credentials --json: %+v", m)
	}
	if tok, err := sas.Parse(m.Password); err != nil || sas.Verify(tok, time.Now(), cs.SharedAccessKey) != nil {
		t.Errorf("device credentials password %q does not verify: %v", m.Password, err)
	}

	t.Run("mosquitto_pub", func(t *testing.T) {
		if _, err := exec.LookPath("mosquitto_pub"); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("mosquitto_pub is not installed")
			}
			t.Skip("mosquitto_pub is not installed")
		}
		cmd := exec.Command("bash", "-c", `eval "$(cat "$1")"; mosquitto_pub -V mqttv311 -q 1 --cafile "$2" -h "$MQTT_HOST" -p "$MQTT_PORT" `+
			`-i "$MQTT_CLIENT_ID" -u "$MQTT_USERNAME" -P "$MQTT_PASSWORD" -t "devices/$MQTT_CLIENT_ID/messages/events/" -m '{"temp": 21.5}'`,
			"bash", file, srv.CAFile())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_pub with the device credentials: %v\n%s", err, out)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			out, _ := mustRun(t, "telemetry", "latest", "pump-1")
			if strings.HasPrefix(out, "METRIC ") && strings.Contains(out, "temp ") && strings.Contains(out, "21.5") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("telemetry latest after publishing:\n%s", out)
			}
			time.Sleep(100 * time.Millisecond)
		}
		out, _ := mustRun(t, "telemetry", "history", "pump-1", "temp", "--since", "1d")
		if !strings.HasPrefix(out, "TIME ") || !strings.Contains(out, "21.5") {
			t.Errorf("telemetry history:\n%s", out)
		}
		out, _ = mustRun(t, "telemetry", "history", "pump-1", "temp", "--since", "2w", "--json")
		if h := decodeJSON[client.History](t, out); len(h.Points) != 1 || h.Points[0].Value != 21.5 {
			t.Errorf("telemetry history --json: %s", out)
		}
	})
	_, errOut = mustRun(t, "telemetry", "history", "pump-1", "pressure", "--since", "1d")
	if !strings.Contains(errOut, "no pressure points") {
		t.Errorf("telemetry history of nothing said %q", errOut)
	}

	// A certificate the client does not trust: say what to do.
	t.Setenv("WARDEN_CA", selfSignedCA(t))
	wantFail(t, 1, []string{"not trusted", "--ca (WARDEN_CA)", "ca.pem"}, "device", "list")
}

func TestAccountActivate(t *testing.T) {
	srv, _ := servertest.Start(t, server.Config{}, nil)
	t.Setenv("WARDEN_SERVER", "https://"+srv.HTTPAddr())
	t.Setenv("WARDEN_TOKEN", servertest.Token)
	t.Setenv("WARDEN_CA", srv.CAFile())
	newUser := func(email string) string {
		t.Helper()
		_, errOut := mustRun(t, "user", "create", "--email", email, "--role", "operator-service",
			"--first-name", "Ada", "--last-name", "Admin")
		for _, line := range strings.Split(errOut, "\n") {
			if l, ok := strings.CutPrefix(line, activationPrefix); ok {
				return l
			}
		}
		t.Fatalf("user create printed no activation link:\n%s", errOut)
		return ""
	}
	link := newUser("ada@maker.example")

	// The password policy, said before the server is asked.
	t.Setenv("WARDEN_PASSWORD", "short")
	wantFail(t, 1, []string{"at least 12 characters"}, "account", "activate", link)
	wantFail(t, 2, []string{"takes the activation link"}, "account", "activate")

	// The server is the link's when WARDEN_SERVER is not set.
	t.Setenv("WARDEN_SERVER", "")
	t.Setenv("WARDEN_TOKEN", "")
	t.Setenv("WARDEN_PASSWORD", "")
	out, errOut, code := runInput(t, peoplePassword+"\n", "account", "activate", link)
	if code != 0 || out != "" || !strings.Contains(errOut, "activated") || !strings.Contains(errOut, "warden login --email ada@maker.example") {
		t.Fatalf("account activate: exit %d, %q, %q", code, out, errOut)
	}
	_, errOut, code = runInput(t, peoplePassword+"\n", "account", "activate", link)
	if code != 1 || !strings.Contains(errOut, "activate") {
		t.Errorf("second activation: exit %d, %q", code, errOut)
	}
	t.Setenv("WARDEN_SERVER", "https://"+srv.HTTPAddr())
	t.Setenv("WARDEN_PASSWORD", peoplePassword)
	out, _ = mustRun(t, "login", "--email", "ada@maker.example")
	if exported(t, out, "WARDEN_TOKEN") == "" {
		t.Fatalf("login after activation printed %q", out)
	}

	// The token alone, with the server of --server.
	t.Setenv("WARDEN_TOKEN", servertest.Token)
	link = newUser("bob@maker.example")
	out, _ = mustRun(t, "account", "activate", urlToken(t, link), "--json")
	if a := decodeJSON[apiv1.User](t, out); a.Email != "bob@maker.example" || a.Status != "active" {
		t.Errorf("account activate --json: %s", out)
	}
}

// urlToken returns the token of an activation link.
func urlToken(t *testing.T, link string) string {
	t.Helper()
	_, tok, ok := strings.Cut(link, "token=")
	if !ok || tok == "" {
		t.Fatalf("no token in %q", link)
	}
	tok, _, _ = strings.Cut(tok, "&")
	return tok
}

func TestParseArgsAnywhere(t *testing.T) {
	for _, tc := range []struct {
		args []string
		pos  string
		ttl  time.Duration
		json bool
	}{
		{[]string{"a", "--ttl", "2d", "b"}, "a b", 2 * day, false},
		{[]string{"--json", "a", "b", "--ttl=1w"}, "a b", week, true},
		{[]string{"a", "--", "--ttl", "-x"}, "a --ttl -x", time.Hour, false},
		{[]string{"-", "--json"}, "-", time.Hour, true},
	} {
		fs := newFlagSet("t", "t", &strings.Builder{})
		ttl := durationFlagOf(fs, "ttl", time.Hour, "")
		js := fs.Bool("json", false, "")
		pos, err := parseArgs(fs, tc.args)
		if err != nil || strings.Join(pos, " ") != tc.pos || *ttl != tc.ttl || *js != tc.json {
			t.Errorf("parseArgs(%q) = %q, ttl %v, json %v, %v; want %q, %v, %v", tc.args, pos, *ttl, *js, err, tc.pos, tc.ttl, tc.json)
		}
	}
}
