package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/warden-iot/warden/internal/apiv1"
	"github.com/warden-iot/warden/internal/cli"
)

const firefoxUA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

// TestAuditTrail: API actions and a refused token are recorded, without
// secrets; editing or deleting a stored entry is caught by warden audit
// verify.
func TestAuditTrail(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.device("pump-1")
	if _, err := e.api.SetDeviceStatus(e.ctx(), "pump-1", "disabled"); err != nil {
		t.Fatal(err)
	}
	// A change of the registry data alone is an update, not a disable.
	if err := e.api.Do(e.ctx(), "PATCH", "/api/v1/devices/pump-1", nil, map[string]any{"serialNumber": "P1234567"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.api.DeviceToken(e.ctx(), "pump-1", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := e.api.Devices(e.ctx()); err != nil { // a read: not recorded
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.roots}}, Timeout: 10 * time.Second}
	base := "https://localhost:" + strings.Split(e.srv.HTTPAddr(), ":")[1]
	do := func(method, path, token string) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(e.ctx(), method, base+path, strings.NewReader(`{"id": "pump-2"}`))
		req.Header.Set("User-Agent", firefoxUA)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if resp := do("POST", "/api/v1/devices", "stolen-or-guessed-token"); resp.StatusCode != 401 {
		t.Fatalf("bad token: status %d, want 401", resp.StatusCode)
	}
	if resp := do("GET", "/api/v1/devices", ""); resp.StatusCode != 401 {
		t.Fatalf("no token: status %d, want 401", resp.StatusCode)
	}

	var page apiv1.AuditPage
	if err := e.api.Do(e.ctx(), "GET", "/api/v1/audit", url.Values{"limit": {"1000"}}, nil, &page); err != nil {
		t.Fatal(err)
	}
	type row struct{ actor, action, target, outcome string }
	var got []row
	for _, en := range page.Entries {
		got = append(got, row{en.ActorID, en.Action, en.Target, en.Outcome})
	}
	want := []row{
		{"operator", "device.create", "pump-1", "success"},
		{"operator", "device.disable", "pump-1", "success"},
		{"operator", "device.update", "pump-1", "success"},
		{"operator", "device.token", "pump-1", "success"},
		{"anonymous", "auth.failed", "POST /api/v1/devices", "denied"},
		{"anonymous", "auth.failed", "GET /api/v1/devices", "denied"},
	}
	if len(got) != len(want) {
		t.Fatalf("audit log = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i+1, got[i], want[i])
		}
	}
	denied := page.Entries[4]
	if denied.Status != 401 || denied.IP != "127.0.0.1" || denied.Browser != "Firefox" || denied.BrowserVersion != "128.0" ||
		!strings.HasPrefix(denied.OS, "Linux") || denied.TenantID != "" || denied.Seq != 5 || denied.Hash == "" {
		t.Errorf("refused request's entry = %+v", denied)
	}
	raw, _ := json.Marshal(page)
	for _, secret := range []string{adminToken, "stolen-or-guessed-token", "SharedAccessSignature", "primaryKey"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("the audit log holds a secret (%q): %s", secret, raw)
		}
	}

	// Export: JSON lines, one per entry; the export itself is recorded.
	resp := do("GET", "/api/v1/audit/export", adminToken)
	var lines int
	for sc := bufio.NewScanner(resp.Body); sc.Scan(); lines++ {
		var en apiv1.AuditEntry
		if err := json.Unmarshal(sc.Bytes(), &en); err != nil || en.Seq != int64(lines+1) {
			t.Fatalf("export line %d: %s (%v)", lines+1, sc.Text(), err)
		}
	}
	if resp.StatusCode != 200 || lines != len(want) {
		t.Fatalf("export: status %d, %d lines; want 200, %d", resp.StatusCode, lines, len(want))
	}

	caFile := filepath.Join(e.dataDir, "ca.pem")
	var out, errOut bytes.Buffer
	if code := cli.Main(e.ctx(), []string{"audit", "list", "--server", base, "--token", adminToken, "--ca", caFile,
		"--action", "device.disable"}, strings.NewReader(""), &out, &errOut); code != 0 || !strings.Contains(out.String(), "device.disable") ||
		strings.Contains(out.String(), "device.create") {
		t.Fatalf("audit list: exit %d\n%s%s", code, out.String(), errOut.String())
	}

	verify := func() (int, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		code := cli.Main(e.ctx(), []string{"audit", "verify", "--data-dir", e.dataDir}, strings.NewReader(""), &out, &errOut)
		t.Logf("warden audit verify: exit %d: %s%s", code, out.String(), errOut.String())
		return code, out.String()
	}
	if code, msg := verify(); code != 0 || !strings.Contains(msg, "audit chain OK: 7 entries") {
		t.Fatalf("intact chain: exit %d, %q", code, msg)
	}

	// Tamper with the database file directly, as someone with disk access.
	db, err := sql.Open("sqlite", filepath.Join(e.dataDir, "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE audit_log SET action = 'device.enable' WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	if code, msg := verify(); code != 1 || !strings.Contains(msg, "BROKEN at entry 2") || !strings.Contains(msg, "hash mismatch") {
		t.Fatalf("edited entry: exit %d, %q", code, msg)
	}
	if _, err := db.Exec(`UPDATE audit_log SET action = 'device.disable' WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	if code, _ := verify(); code != 0 {
		t.Fatalf("restored entry: exit %d", code)
	}
	if _, err := db.Exec(`DELETE FROM audit_log WHERE seq = 4`); err != nil {
		t.Fatal(err)
	}
	if code, msg := verify(); code != 1 || !strings.Contains(msg, "BROKEN at entry 4") || !strings.Contains(msg, "sequence gap") {
		t.Fatalf("deleted entry: exit %d, %q", code, msg)
	}
}
