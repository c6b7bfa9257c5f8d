package e2e

import (
	"encoding/base64"
	"net/http"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/apiv1"
)

// TestDeleteClosesConnections: the device endpoint reacts to the facts the
// API publishes. Re-keying a device closes its live connection; deleting a
// device closes its connection; deleting a tenant closes the connections
// of all its devices and of no other.
func TestDeleteClosesConnections(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := e.ctx()
	if _, err := e.api.CreateTenant(ctx, apiv1.NewTenant{ID: "acme", TenantPatch: apiv1.TenantPatch{Name: apiv1.Ptr("Acme Pumps")}}); err != nil {
		t.Fatal(err)
	}
	keys := map[string][]byte{}
	for _, d := range []struct{ id, tenant string }{{"acme-1", "acme"}, {"acme-2", "acme"}, {"root-1", "root"}, {"root-2", "root"}} {
		var dev apiv1.Device
		if err := e.api.Do(ctx, http.MethodPost, "/api/v1/devices", nil, map[string]any{"id": d.id, "tenantId": d.tenant}, &dev); err != nil {
			t.Fatalf("device %s: %v", d.id, err)
		}
		keys[d.id] = e.ownerKey(d.tenant, d.id)
	}
	conns := map[string]*mqtt311{}
	for id, key := range keys {
		conns[id] = e.deviceConn(id, key)
	}

	d, err := e.api.RegenerateKeys(ctx, "root-1", "secondary")
	if err != nil {
		t.Fatal(err)
	}
	conns["root-1"].waitLost(t, "re-keyed device")
	key, _ := base64.StdEncoding.DecodeString(d.PrimaryKey)
	conns["root-1"] = e.deviceConn("root-1", key) // the kept key still works

	if err := e.api.DeleteDevice(ctx, "root-2"); err != nil {
		t.Fatal(err)
	}
	conns["root-2"].waitLost(t, "deleted device")

	if err := e.api.DeleteTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	conns["acme-1"].waitLost(t, "device of a deleted tenant")
	conns["acme-2"].waitLost(t, "device of a deleted tenant")
	conns["root-1"].stillUp(t)
	if _, rc, err := e.connect311("acme-1", e.username("acme-1"), e.token("acme-1", keys["acme-1"], time.Hour)); err == nil || rc != rcNotAuthorized {
		t.Fatalf("reconnect of a deleted tenant's device: rc %d, %v; want refused", rc, err)
	}
}
