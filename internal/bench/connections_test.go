package bench

import (
	"bytes"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/client"
)

func TestConnectionsAgainstWarden(t *testing.T) {
	srv, c := startServer(t)
	roots, err := client.LoadCA(srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var res ConnectionsResult
	err = InTenant(t.Context(), TenantOptions{Caller: c}, func(tn *Tenant) error {
		var err error
		res, err = Connections(t.Context(), ConnectionsOptions{Client: c, Tenant: tn, RootCAs: roots,
			Levels: []int{5, 12}, Probes: 5, Settle: 100 * time.Millisecond}, &out)
		return err
	})
	if err != nil {
		t.Fatalf("Connections: %v\n%s", err, out.String())
	}
	t.Logf("\n%s", out.String())
	f := figures(t, out.String())
	for _, name := range []string{"baseline_rss_mb", "conn_5_open", "conn_5_connect_per_s", "conn_5_kb_per_conn",
		"conn_12_open", "conn_12_probe_p99_ms", "conn_12_heap_kb_per_conn", "after_close_rss_mb"} {
		if _, ok := f[name]; !ok {
			t.Errorf("no %s in the output", name)
		}
	}
	if f["conn_5_open"] != 5 || f["conn_12_open"] != 12 || f["conn_12_failures"] != 0 {
		t.Errorf("open connections: %v and %v, failures %v", f["conn_5_open"], f["conn_12_open"], f["conn_12_failures"])
	}
	if len(res.Levels) != 2 || res.Levels[1].ProbeP99 <= 0 || res.Levels[1].ConnectPerSec <= 0 {
		t.Errorf("levels %+v", res.Levels)
	}
	if _, err := Connections(t.Context(), ConnectionsOptions{Levels: []int{5, 3}}, &out); err == nil {
		t.Error("falling levels accepted")
	}
}
