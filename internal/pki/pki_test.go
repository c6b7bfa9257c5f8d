package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// testNow is a fixed instant, so validity checks do not depend on the clock.
var testNow = time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)

func TestEnsureCreatesFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki") // does not exist yet
	r, err := Ensure(dir, []string{"warden.example.com", "192.168.1.10:8883"}, testNow)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if !r.CreatedCA || !r.IssuedServerCert || r.Reason == "" {
		t.Errorf("CreatedCA=%v IssuedServerCert=%v Reason=%q; want true, true, a reason", r.CreatedCA, r.IssuedServerCert, r.Reason)
	}
	if r.Files != FilesIn(dir) || r.Files.CA != filepath.Join(dir, "ca.pem") {
		t.Errorf("Files = %+v", r.Files)
	}

	wantModes := map[string]os.FileMode{
		CAFile: 0o644, CAKeyFile: 0o600, CertFile: 0o644, KeyFile: 0o600,
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(wantModes) {
		t.Errorf("directory holds %v, want exactly the four PKI files", entryNames(entries))
	}
	for name, want := range wantModes {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode = %v, want %v", name, got, want)
		}
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("directory mode = %v, %v; want 0700", fi.Mode().Perm(), err)
	}

	ca := readCerts(t, r.Files.CA)
	if len(ca) != 1 {
		t.Fatalf("ca.pem holds %d certificates, want 1", len(ca))
	}
	checkCA(t, ca[0])
	if !bytes.Equal(ca[0].Raw, r.CA.Raw) {
		t.Error("Result.CA differs from ca.pem")
	}

	chain := readCerts(t, r.Files.Cert)
	if len(chain) != 2 || !bytes.Equal(chain[1].Raw, ca[0].Raw) {
		t.Fatalf("server.pem does not hold leaf followed by the CA")
	}
	leaf := chain[0]
	checkLeaf(t, leaf, ca[0])
	if !slices.Contains(leaf.DNSNames, "warden.example.com") {
		t.Errorf("DNSNames = %v, want warden.example.com", leaf.DNSNames)
	}
	if !slices.ContainsFunc(leaf.IPAddresses, net.ParseIP("192.168.1.10").Equal) {
		t.Errorf("IPAddresses = %v, want 192.168.1.10", leaf.IPAddresses)
	}
	if len(r.Certificate.Certificate) != 2 || !bytes.Equal(r.Certificate.Certificate[0], leaf.Raw) ||
		r.Certificate.Leaf == nil || !bytes.Equal(r.Certificate.Leaf.Raw, leaf.Raw) {
		t.Error("Result.Certificate does not match server.pem")
	}

	// The key files hold the keys of the certificates.
	if _, err := tls.LoadX509KeyPair(r.Files.CA, r.Files.CAKey); err != nil {
		t.Errorf("CA key pair: %v", err)
	}
	if _, err := tls.LoadX509KeyPair(r.Files.Cert, r.Files.Key); err != nil {
		t.Errorf("server key pair: %v", err)
	}
}

func checkCA(t *testing.T, ca *x509.Certificate) {
	t.Helper()
	if ca.Subject.CommonName != "Warden CA" {
		t.Errorf("CA CN = %q", ca.Subject.CommonName)
	}
	if !ca.BasicConstraintsValid || !ca.IsCA || ca.MaxPathLen != 0 || !ca.MaxPathLenZero {
		t.Errorf("CA basic constraints: valid=%v isCA=%v maxPathLen=%d zero=%v",
			ca.BasicConstraintsValid, ca.IsCA, ca.MaxPathLen, ca.MaxPathLenZero)
	}
	if ca.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("CA key usage = %b", ca.KeyUsage)
	}
	if len(ca.SubjectKeyId) == 0 {
		t.Error("CA has no SubjectKeyId")
	}
	if err := ca.CheckSignatureFrom(ca); err != nil {
		t.Errorf("CA is not self-signed: %v", err)
	}
	if pub, ok := ca.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", ca.PublicKey)
	}
	if ca.SerialNumber.Sign() <= 0 || ca.SerialNumber.BitLen() > 128 {
		t.Errorf("CA serial %v is not a positive 128-bit number", ca.SerialNumber)
	}
	if !ca.NotBefore.Equal(testNow.Add(-time.Hour)) || !ca.NotAfter.Equal(testNow.Add(-time.Hour).AddDate(10, 0, 0)) {
		t.Errorf("CA validity %v to %v", ca.NotBefore, ca.NotAfter)
	}
}

func checkLeaf(t *testing.T, leaf, ca *x509.Certificate) {
	t.Helper()
	if err := leaf.CheckSignatureFrom(ca); err != nil {
		t.Errorf("leaf not signed by CA: %v", err)
	}
	if leaf.IsCA {
		t.Error("leaf is a CA")
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("leaf ExtKeyUsage = %v", leaf.ExtKeyUsage)
	}
	if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("leaf key is %T, want ECDSA P-256", leaf.PublicKey)
	}
	if !bytes.Equal(leaf.AuthorityKeyId, ca.SubjectKeyId) {
		t.Error("leaf AuthorityKeyId does not name the CA")
	}
	if !slices.Contains(leaf.DNSNames, "localhost") ||
		!slices.ContainsFunc(leaf.IPAddresses, net.IPv4(127, 0, 0, 1).Equal) ||
		!slices.ContainsFunc(leaf.IPAddresses, net.IPv6loopback.Equal) {
		t.Errorf("leaf SANs %v %v lack the loopback names", leaf.DNSNames, leaf.IPAddresses)
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life < 300*24*time.Hour || life > 825*24*time.Hour {
		t.Errorf("leaf lifetime %v", life)
	}
}

func TestEnsureReusesFiles(t *testing.T) {
	dir := t.TempDir()
	hosts := []string{"warden.example.com"}
	if _, err := Ensure(dir, hosts, testNow); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)

	// A day later, with the same names given in another spelling.
	r, err := Ensure(dir, []string{"WARDEN.example.com.:8883", "localhost", " "}, testNow.Add(24*time.Hour))
	if err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	if r.CreatedCA || r.IssuedServerCert {
		t.Errorf("CreatedCA=%v IssuedServerCert=%v (%s); want both false", r.CreatedCA, r.IssuedServerCert, r.Reason)
	}
	if after := snapshot(t, dir); !mapsEqual(before, after) {
		t.Error("files changed on reuse")
	}
	if r.Certificate.Leaf == nil || r.Certificate.PrivateKey == nil || len(r.Certificate.Certificate) != 2 {
		t.Error("reused Certificate is incomplete")
	}
}

func TestEnsureNewHostnameReissuesLeafKeepsCA(t *testing.T) {
	dir := t.TempDir()
	if _, err := Ensure(dir, nil, testNow); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)

	r, err := Ensure(dir, []string{"warden.example.com"}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if r.CreatedCA || !r.IssuedServerCert || !strings.Contains(r.Reason, "warden.example.com") {
		t.Errorf("CreatedCA=%v IssuedServerCert=%v Reason=%q", r.CreatedCA, r.IssuedServerCert, r.Reason)
	}
	after := snapshot(t, dir)
	for _, name := range []string{CAFile, CAKeyFile} {
		if !bytes.Equal(before[name], after[name]) {
			t.Errorf("%s changed", name)
		}
	}
	for _, name := range []string{CertFile, KeyFile} {
		if bytes.Equal(before[name], after[name]) {
			t.Errorf("%s was not replaced", name)
		}
	}
	if !slices.Contains(r.Certificate.Leaf.DNSNames, "warden.example.com") {
		t.Errorf("DNSNames = %v", r.Certificate.Leaf.DNSNames)
	}
	checkLeaf(t, r.Certificate.Leaf, r.CA)
}

func TestEnsureRenewsExpiringLeaf(t *testing.T) {
	dir := t.TempDir()
	first, err := Ensure(dir, nil, testNow)
	if err != nil {
		t.Fatal(err)
	}
	expiry := first.Certificate.Leaf.NotAfter

	r, err := Ensure(dir, nil, expiry.Add(-31*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if r.IssuedServerCert {
		t.Errorf("reissued 31 days before expiry: %s", r.Reason)
	}

	later := expiry.Add(-29 * 24 * time.Hour)
	r, err = Ensure(dir, nil, later)
	if err != nil {
		t.Fatal(err)
	}
	if !r.IssuedServerCert || !strings.Contains(r.Reason, "expires") || r.CreatedCA {
		t.Errorf("29 days before expiry: IssuedServerCert=%v CreatedCA=%v Reason=%q", r.IssuedServerCert, r.CreatedCA, r.Reason)
	}
	if !r.Certificate.Leaf.NotAfter.After(later.Add(300 * 24 * time.Hour)) {
		t.Errorf("renewed leaf expires %v", r.Certificate.Leaf.NotAfter)
	}
	if !bytes.Equal(r.CA.Raw, first.CA.Raw) {
		t.Error("CA changed")
	}
}

func TestEnsureReissuesUnusableLeaf(t *testing.T) {
	other := t.TempDir()
	if _, err := Ensure(other, nil, testNow); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mangle func(t *testing.T, f Files)
		reason string
	}{
		{"missing cert", func(t *testing.T, f Files) { remove(t, f.Cert) }, "no server certificate"},
		{"missing key", func(t *testing.T, f Files) { remove(t, f.Key) }, "no server key"},
		{"corrupt cert", func(t *testing.T, f Files) { write(t, f.Cert, []byte("garbage")) }, "invalid"},
		{"key of another cert", func(t *testing.T, f Files) { copyFile(t, FilesIn(other).Key, f.Key) }, "invalid"},
		{"signed by another CA", func(t *testing.T, f Files) {
			copyFile(t, FilesIn(other).Cert, f.Cert)
			copyFile(t, FilesIn(other).Key, f.Key)
		}, "current CA"},
		{"leaf without chain", func(t *testing.T, f Files) {
			b := readFile(t, f.Cert)
			block, _ := pem.Decode(b)
			write(t, f.Cert, pem.EncodeToMemory(block))
		}, "current CA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			first, err := Ensure(dir, nil, testNow)
			if err != nil {
				t.Fatal(err)
			}
			tt.mangle(t, first.Files)
			r, err := Ensure(dir, nil, testNow)
			if err != nil {
				t.Fatalf("Ensure: %v", err)
			}
			if !r.IssuedServerCert || r.CreatedCA || !strings.Contains(r.Reason, tt.reason) {
				t.Errorf("IssuedServerCert=%v CreatedCA=%v Reason=%q; want reissue because %q", r.IssuedServerCert, r.CreatedCA, r.Reason, tt.reason)
			}
			if !bytes.Equal(r.CA.Raw, first.CA.Raw) {
				t.Error("CA changed")
			}
			if _, err := tls.LoadX509KeyPair(r.Files.Cert, r.Files.Key); err != nil {
				t.Errorf("reissued files: %v", err)
			}
			checkLeaf(t, r.Certificate.Leaf, r.CA)
		})
	}
}

func TestEnsureBrokenCA(t *testing.T) {
	other := t.TempDir()
	if _, err := Ensure(other, nil, testNow); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		mangle  func(t *testing.T, f Files)
		now     time.Time
		wantErr string
	}{
		{"corrupt ca.pem", func(t *testing.T, f Files) { write(t, f.CA, []byte("not a certificate")) }, testNow, "no CERTIFICATE PEM block"},
		{"truncated ca.pem", func(t *testing.T, f Files) {
			b := readFile(t, f.CA)
			block, _ := pem.Decode(b)
			block.Bytes = block.Bytes[:len(block.Bytes)/2]
			write(t, f.CA, pem.EncodeToMemory(block))
		}, testNow, "parse certificate"},
		{"corrupt ca-key.pem", func(t *testing.T, f Files) {
			write(t, f.CAKey, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
		}, testNow, "parse PRIVATE KEY"},
		{"missing ca.pem", func(t *testing.T, f Files) { remove(t, f.CA) }, testNow, "remove both"},
		{"missing ca-key.pem", func(t *testing.T, f Files) { remove(t, f.CAKey) }, testNow, "remove both"},
		{"key of another CA", func(t *testing.T, f Files) { copyFile(t, FilesIn(other).CAKey, f.CAKey) }, testNow, "does not belong"},
		{"not a CA", func(t *testing.T, f Files) {
			copyFile(t, f.Cert, f.CA)
			copyFile(t, f.Key, f.CAKey)
		}, testNow, "not a CA"},
		{"expired", func(t *testing.T, f Files) {}, testNow.AddDate(11, 0, 0), "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := Ensure(dir, nil, testNow); err != nil {
				t.Fatal(err)
			}
			files := FilesIn(dir)
			tt.mangle(t, files)
			before := snapshot(t, dir)

			r, err := Ensure(dir, []string{"new.example.com"}, tt.now)
			if err == nil {
				t.Fatalf("Ensure succeeded (%+v), want error", r)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if after := snapshot(t, dir); !mapsEqual(before, after) {
				t.Error("Ensure changed files despite the error")
			}
		})
	}
}

func TestEnsureInvalidHostname(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	for _, h := range []string{"bad host", "under_score!", "-lead.example.com", "a..b", "*.com", strings.Repeat("a", 64) + ".com"} {
		if _, err := Ensure(dir, []string{h}, testNow); err == nil || !strings.Contains(err.Error(), "invalid hostname") {
			t.Errorf("Ensure(%q) error = %v, want invalid hostname", h, err)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("directory created despite invalid hostnames: %v", err)
	}
}

func TestServerNames(t *testing.T) {
	s, err := serverNames([]string{
		"Warden.Example.com", "warden.example.com:8883", "hub.local.", "10.0.0.7:8883",
		"[fd00::5]:8883", "fd00::6", "[fd00::7]", "127.0.0.1", "::ffff:10.0.0.7", "*.iot.example.com", "",
	})
	if err != nil {
		t.Fatal(err)
	}
	wantDNS := []string{"localhost", "warden.example.com", "hub.local", "*.iot.example.com"}
	if !slices.Equal(s.dns, wantDNS) {
		t.Errorf("dns = %v, want %v", s.dns, wantDNS)
	}
	var ips []string
	for _, ip := range s.ips {
		ips = append(ips, ip.String())
	}
	wantIPs := []string{"127.0.0.1", "::1", "10.0.0.7", "fd00::5", "fd00::6", "fd00::7"}
	if !slices.Equal(ips, wantIPs) {
		t.Errorf("ips = %v, want %v", ips, wantIPs)
	}
}

func TestLeafVerifiesForNames(t *testing.T) {
	r, err := Ensure(t.TempDir(), []string{"warden.example.com", "192.168.1.10", "[fd00::5]:8883"}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(r.CA)
	tests := []struct {
		name string
		ok   bool
	}{
		{"localhost", true},
		{"127.0.0.1", true},
		{"::1", true},
		{"warden.example.com", true},
		{"WARDEN.EXAMPLE.COM", true},
		{"192.168.1.10", true},
		{"fd00::5", true},
		{"other.example.com", false},
		{"192.168.1.11", false},
	}
	for _, tt := range tests {
		_, err := r.Certificate.Leaf.Verify(x509.VerifyOptions{
			DNSName:     tt.name,
			Roots:       roots,
			CurrentTime: testNow,
			KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		if (err == nil) != tt.ok {
			t.Errorf("Verify(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

// TestTLSHandshake connects the way devices do: trusting only ca.pem, with
// SNI for names and none for IP literals.
func TestTLSHandshake(t *testing.T) {
	r, err := Ensure(t.TempDir(), []string{"warden.example.com"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(readFile(t, r.Files.CA)) {
		t.Fatal("ca.pem holds no certificate")
	}

	ln, err := tls.Listen("tcp", "127.0.0.1:0", r.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sni := make(chan string, 1)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			tc := conn.(*tls.Conn)
			if err := tc.Handshake(); err == nil {
				sni <- tc.ConnectionState().ServerName
			} else {
				sni <- "error: " + err.Error()
			}
			tc.Close()
		}
	}()

	tests := []struct {
		name       string
		serverName string // empty: dial by IP, as MQTT.js does for IP literals
		maxVersion uint16
		wantSNI    string
	}{
		{"localhost", "localhost", 0, "localhost"},
		{"configured name", "warden.example.com", 0, "warden.example.com"},
		{"ip literal without SNI", "", 0, ""},
		{"tls 1.2", "localhost", tls.VersionTLS12, "localhost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{
				RootCAs:    roots,
				ServerName: tt.serverName,
				MaxVersion: tt.maxVersion,
			})
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			defer conn.Close()
			if got := <-sni; got != tt.wantSNI {
				t.Errorf("server saw SNI %q, want %q", got, tt.wantSNI)
			}
			chain := conn.ConnectionState().PeerCertificates
			if len(chain) != 2 || !chain[1].Equal(r.CA) {
				t.Errorf("server sent %d certificates, want leaf and CA", len(chain))
			}
		})
	}

	t.Run("other name rejected", func(t *testing.T) {
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "other.example.com"})
		if err == nil {
			conn.Close()
			t.Fatal("handshake succeeded for a name not in the certificate")
		}
		<-sni
	})
}

func TestTLSHandshakeOverPipe(t *testing.T) {
	r, err := Ensure(t.TempDir(), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(r.CA)
	c, s := net.Pipe()
	// Closing the raw pipe ends rather than tls.Conn.Close, whose
	// close_notify would block on the unbuffered pipe.
	defer c.Close()
	defer s.Close()
	server := tls.Server(s, r.TLSConfig())
	done := make(chan error, 1)
	go func() { done <- server.Handshake() }()
	client := tls.Client(c, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err := client.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
}

func TestWriteFileAtomicReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	for _, content := range []string{"one", "two"} {
		if err := writeFileAtomic(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := string(readFile(t, path)); got != content {
			t.Errorf("content %q, want %q", got, content)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entryNames(entries))
	}
	if err := writeFileAtomic(filepath.Join(path, "sub"), nil, 0o600); err == nil {
		t.Error("writing below a regular file succeeded")
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	write(t, to, readFile(t, from))
}

func readCerts(t *testing.T, path string) []*x509.Certificate {
	t.Helper()
	var certs []*x509.Certificate
	rest := readFile(t, path)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return certs
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
}

// snapshot returns the contents of every file in dir by name.
func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string][]byte)
	for _, e := range entries {
		m[e.Name()] = readFile(t, filepath.Join(dir, e.Name()))
	}
	return m
}

func mapsEqual(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

func entryNames(entries []os.DirEntry) []string {
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
