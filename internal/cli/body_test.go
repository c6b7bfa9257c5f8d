package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// TestRequestBodies: the commands that create and change things send the
// fields given on the command line and no others (a patch that carried an
// empty name or address would clear it).
func TestRequestBodies(t *testing.T) {
	type request struct{ method, path, body string }
	var (
		mu   sync.Mutex
		seen []request
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, request{r.Method, r.URL.Path, string(b)})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"address":{"street":"Old Street 1","city":"Linz"},"contact":{"name":"Eva"}}`)
	}))
	defer srv.Close()
	t.Setenv("WARDEN_SERVER", srv.URL)
	t.Setenv("WARDEN_TOKEN", "wdn_test")
	t.Setenv("WARDEN_CA", "")

	for _, c := range []struct {
		args         string
		method, path string
		want         string
	}{
		{"device create d1 --tenant acme --model vp-40", "POST", "/api/v1/devices", `{"id":"d1","tenantId":"acme","model":"vp-40"}`},
		{"device create d1", "POST", "/api/v1/devices", `{"id":"d1"}`},
		{"device update d1 --name Pump", "PATCH", "/api/v1/devices/d1", `{"name":"Pump"}`},
		{"device update d1 --no-site --serial=", "PATCH", "/api/v1/devices/d1", `{"siteId":"","serialNumber":""}`},
		{"device disable d1", "PATCH", "/api/v1/devices/d1", `{"status":"disabled"}`},
		{"tenant create --name Acme --id acme --city Wien", "POST", "/api/v1/tenants",
			`{"id":"acme","name":"Acme","address":{"city":"Wien"}}`},
		{"tenant update acme --retention-days 0", "PATCH", "/api/v1/tenants/acme", `{"telemetryRetentionDays":0}`},
		{"tenant update acme --name=", "PATCH", "/api/v1/tenants/acme", `{"name":""}`},
		{"tenant update acme --city Wien --contact-phone 1", "PATCH", "/api/v1/tenants/acme",
			`{"address":{"street":"Old Street 1","city":"Wien"},"contact":{"name":"Eva","phone":"1"}}`},
		{"site create --name Hall --tenant acme --street Main", "POST", "/api/v1/sites",
			`{"tenantId":"acme","name":"Hall","address":{"street":"Main"}}`},
		{"site update s1 --name Hall", "PATCH", "/api/v1/sites/s1", `{"name":"Hall"}`},
		{"user create --email a@b.example --role customer-user --first-name A --last-name B", "POST", "/api/v1/users",
			`{"email":"a@b.example","role":"customer-user","firstName":"A","lastName":"B"}`},
		{"user update u1 --phone=", "PATCH", "/api/v1/users/u1", `{"phone":""}`},
		{"user update u1 --role customer-admin", "PATCH", "/api/v1/users/u1", `{"role":"customer-admin"}`},
		{"user disable u1", "PATCH", "/api/v1/users/u1", `{"status":"disabled"}`},
		{"user enable u1", "PATCH", "/api/v1/users/u1", `{"status":"active"}`},
		{"user unlock u1", "PATCH", "/api/v1/users/u1", `{"unlock":true}`},
	} {
		mu.Lock()
		seen = nil
		mu.Unlock()
		if _, errOut, code := run(t, strings.Fields(c.args)...); code != 0 {
			t.Errorf("warden %s: exit %d: %s", c.args, code, errOut)
			continue
		}
		mu.Lock()
		last := seen[len(seen)-1]
		mu.Unlock()
		if last.method != c.method || last.path != c.path {
			t.Errorf("warden %s: %s %s, want %s %s", c.args, last.method, last.path, c.method, c.path)
			continue
		}
		var got, want any
		if err := json.Unmarshal([]byte(last.body), &got); err != nil {
			t.Errorf("warden %s: body %q: %v", c.args, last.body, err)
			continue
		}
		if err := json.Unmarshal([]byte(c.want), &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("warden %s sent %s, want %s", c.args, last.body, c.want)
		}
	}
}
