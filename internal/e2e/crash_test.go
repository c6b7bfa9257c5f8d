package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/sas"
	"github.com/warden-iot/warden/internal/store/postgres/pgtest"
)

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// binary builds the warden command once for the test.
func binary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "warden")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/warden-iot/warden/cmd/warden")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build warden: %v\n%s", err, out)
	}
	return bin
}

// process is a warden serve child process.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func serve(t *testing.T, bin, dataDir, mqttPort, httpPort string, extra ...string) *process {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--data-dir", dataDir,
		"--mqtt-listen", "127.0.0.1:" + mqttPort, "--http-listen", "127.0.0.1:" + httpPort, "--log-level", "warn"}, extra...)...)
	cmd.Env = append(os.Environ(), "WARDEN_ADMIN_TOKEN="+adminToken)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: insecureTLS()}}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := hc.Get("https://127.0.0.1:" + httpPort + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("warden exited during start: %v", cmd.ProcessState)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatal("warden did not become healthy within 30s")
	return nil
}

func (p *process) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// TestCrashLosesNothingAcknowledged runs the real binary, sends QoS 1
// telemetry with unique message ids, kills the server with SIGKILL in the
// middle several times, and proves that every acknowledged message is
// stored exactly once. Messages not acknowledged before a crash are sent
// again after it, as a device would, and must not be stored twice.
//
// Acknowledged means written to the commit log: at each kill, messages
// acknowledged but not yet in the database are in the log only, and the
// next start replays them.
func TestCrashLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and crashes the real binary")
	}
	crashTest(t)
}

// TestCrashLosesNothingAcknowledgedPostgres is the crash test on
// PostgreSQL: the commit log replays into it after each kill.
func TestCrashLosesNothingAcknowledgedPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and crashes the real binary")
	}
	crashTest(t, "--database", pgtest.URL(t))
}

func crashTest(t *testing.T, extra ...string) {
	bin := binary(t)
	dataDir := t.TempDir()
	mqttPort, httpPort := freePort(t), freePort(t)
	start := func() *process { return serve(t, bin, dataDir, mqttPort, httpPort, extra...) }
	proc := start()
	api, err := client.New("https://localhost:"+httpPort, adminToken, filepath.Join(dataDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := api.CreateDevice(t.Context(), "crash-1")
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := sas.ParseConnectionString(d.ConnectionString)
	roots, _ := client.LoadCA(filepath.Join(dataDir, "ca.pem"))

	var (
		mu          sync.Mutex
		acked       = map[int]bool{}
		pending     []int // sent, not acknowledged: resent after the crash
		next        int
		sends       int // every send, resends included, gets its own timestamp
		resentTotal int
		base        = time.Now().Add(-30 * time.Minute).UnixMilli()
	)
	const rounds = 4
	for round := range rounds {
		opts := pahomqtt.NewClientOptions().AddBroker("tls://127.0.0.1:" + mqttPort).
			SetClientID("crash-1").SetUsername(cs.HostName + "/crash-1/?api-version=2021-04-12").
			SetPassword(sas.Sign(cs.SharedAccessKey, sas.DeviceResource(cs.HostName, "crash-1"), time.Now().Add(time.Hour))).
			SetTLSConfig(tlsFor(roots)).SetAutoReconnect(false).SetCleanSession(true).SetOrderMatters(false).
			SetWriteTimeout(2 * time.Second)
		c := pahomqtt.NewClient(opts)
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("round %d: connect: %v", round, tok.Error())
		}
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		// A resent message carries a new timestamp, as a device stamping
		// its messages when it sends them would: if deduplication failed,
		// the second copy would show as a second point.
		send := func(seq int) {
			mu.Lock()
			ts := base + int64(sends)
			sends++
			mu.Unlock()
			tok := c.Publish(events("crash-1", "%24.mid=m"+strconv.Itoa(seq)), 1, false,
				fmt.Sprintf(`{"ts": %d, "values": {"seq": %d}}`, ts, seq))
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok := tok.WaitTimeout(5*time.Second) && tok.Error() == nil
				mu.Lock()
				defer mu.Unlock()
				if ok {
					acked[seq] = true
				} else {
					pending = append(pending, seq)
				}
			}()
		}
		mu.Lock()
		resend := pending
		pending = nil
		mu.Unlock()
		for _, seq := range resend {
			send(seq)
		}
		producing := make(chan struct{})
		go func() {
			defer close(producing)
			for ctx.Err() == nil {
				mu.Lock()
				seq := next
				next++
				mu.Unlock()
				send(seq)
				time.Sleep(200 * time.Microsecond)
			}
		}()
		time.Sleep(time.Duration(300+200*round) * time.Millisecond)
		if round < rounds-1 {
			proc.kill() // mid-stream
			cancel()
			<-producing // no send starts after this
			wg.Wait()
			c.Disconnect(0)
			mu.Lock()
			t.Logf("round %d: killed with %d acknowledged, %d unacknowledged (to resend)", round, len(acked), len(pending))
			resentTotal += len(pending)
			mu.Unlock()
			proc = start()
			continue
		}
		cancel()
		<-producing
		wg.Wait()
		c.Disconnect(250)
	}
	// One last clean pass for whatever was never acknowledged.
	mu.Lock()
	t.Logf("%d acknowledged, %d to resend, %d sent in all", len(acked), len(pending), next)
	mu.Unlock()

	proc.kill()
	proc = start()
	h, err := api.History(t.Context(), "crash-1", "seq", url.Values{
		"from": {time.Now().Add(-time.Hour).Format(time.RFC3339)}, "to": {time.Now().Add(time.Minute).Format(time.RFC3339)},
		"limit": {"100000"}})
	if err != nil {
		t.Fatal(err)
	}
	stored := map[int]int{}
	for _, p := range h.Points {
		stored[int(p.Value)]++
	}
	mu.Lock()
	defer mu.Unlock()
	for seq := range acked {
		if stored[seq] != 1 {
			t.Errorf("acknowledged message %d stored %d times, want exactly once", seq, stored[seq])
		}
	}
	for seq, n := range stored {
		if n != 1 {
			t.Errorf("message %d stored %d times", seq, n)
		}
	}
	if resentTotal == 0 {
		t.Error("no message was in flight at any crash: the test did not exercise resending")
	}
	if len(acked) < 100 {
		t.Fatalf("only %d messages acknowledged: the test did not exercise much", len(acked))
	}
}
