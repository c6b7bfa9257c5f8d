package notify

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

func TestPublicAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"8.8.8.8": true, "2a00:1450:4001::1": true, "93.184.216.34": true,
		"127.0.0.1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false, "169.254.169.254": false,
		"100.64.0.1": false, "0.0.0.0": false, "::1": false, "fe80::1": false, "fd00::1": false, "::ffff:127.0.0.1": false,
		"::ffff:10.0.0.1": false, "224.0.0.1": false, "192.0.2.1": false, "64:ff9b::a00:1": false,
	} {
		if got := PublicAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("PublicAddr(%s) = %v, want %v", addr, got, want)
		}
	}
}

// TestWebhookRefusesInsideAddresses: without AllowPrivateTargets a webhook
// cannot reach a server on loopback (a tenant probing the operator's
// network), and says why.
func TestWebhookRefusesInsideAddresses(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
	defer srv.Close()
	_, err := newHTTPClient(time.Second, false).Post(srv.URL, "application/json", nil)
	if !errors.Is(err, ErrPrivateTarget) || hits.Load() != 0 {
		t.Fatalf("webhook to %s: %v (%d hits), want ErrPrivateTarget", srv.URL, err, hits.Load())
	}
	if _, err := newHTTPClient(time.Second, true).Post(srv.URL, "application/json", nil); err != nil {
		t.Fatalf("with private targets allowed: %v", err)
	}
}
