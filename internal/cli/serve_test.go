package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/warden-iot/warden/internal/api"
	"github.com/warden-iot/warden/internal/client"
	"github.com/warden-iot/warden/internal/identity"
	"github.com/warden-iot/warden/internal/store/sqlite"
	"github.com/warden-iot/warden/internal/tenancy"
)

// syncBuffer is a buffer a running server writes to while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var (
	tokenRe = regexp.MustCompile(`\n    (wdn_[A-Za-z0-9_-]+)\n`)
	httpsRe = regexp.MustCompile(`msg="warden is running".* https=(\S+)`)
)

// serving is a `warden serve` running in the test process.
type serving struct {
	stdout, stderr syncBuffer
	stop           context.CancelFunc
	done           chan int
}

// serveInProcess runs `warden serve` with args (and the data directory)
// until the test ends or stop is called.
func serveInProcess(t *testing.T, dataDir string, args ...string) *serving {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	s := &serving{stop: cancel, done: make(chan int, 1)}
	args = append([]string{"serve", "--data-dir", dataDir}, args...)
	go func() { s.done <- Main(ctx, args, strings.NewReader(""), &s.stdout, &s.stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop 30 s after it was told to")
		}
	})
	return s
}

// running waits until the server says it runs and returns its HTTPS
// address and the operator token it printed, if any.
func (s *serving) running(t *testing.T) (addr, token string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case code := <-s.done:
			s.done <- code
			t.Fatalf("serve ended with %d before it ran:\n%s", code, s.stderr.String())
		default:
		}
		if m := httpsRe.FindStringSubmatch(s.stderr.String()); m != nil {
			// The token, if any, was shown before the running message.
			if tm := tokenRe.FindStringSubmatch(s.stdout.String()); tm != nil {
				token = tm[1]
			}
			return m[1], token
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("serve did not run within 60 s:\n%s", s.stderr.String())
	return "", ""
}

// stopAndWait stops the server and returns its exit code.
func (s *serving) stopAndWait(t *testing.T) int {
	t.Helper()
	s.stop()
	select {
	case code := <-s.done:
		s.done <- code // for the cleanup
		return code
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30 s")
		return -1
	}
}

// authenticates says whether the token is accepted by the server at addr.
func authenticates(t *testing.T, dataDir, addr, token string) bool {
	t.Helper()
	c, err := client.New("https://"+addr, token, filepath.Join(dataDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	var me json.RawMessage
	err = c.Do(t.Context(), http.MethodGet, "/api/v1/devices", nil, nil, &me)
	if err != nil && !strings.Contains(err.Error(), "401") {
		t.Fatalf("list devices: %v", err)
	}
	return err == nil
}

// startsAndPrintsWorkingToken: a normal start on dataDir prints an
// operator token that the API accepts, then stops cleanly.
func startsAndPrintsWorkingToken(t *testing.T, dataDir string) {
	t.Helper()
	srv := serveInProcess(t, dataDir, "--http-listen", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0")
	addr, token := srv.running(t)
	if token == "" {
		t.Fatalf("no operator token printed on the first successful start:\n%s", srv.stdout.String())
	}
	if !authenticates(t, dataDir, addr, token) {
		t.Fatal("the printed operator token is refused")
	}
	if code := srv.stopAndWait(t); code != 0 {
		t.Fatalf("stop: exit %d:\n%s", code, srv.stderr.String())
	}
}

// TestServeListenerTakenFailsFast: for each listener, a port in use stops
// serve at once with the flag and address on stderr, exit 1, no operator
// token and nothing made in the data directory; the next start works.
func TestServeListenerTakenFailsFast(t *testing.T) {
	for _, flag := range []string{"--http-listen", "--mqtt-listen", "--mqtt-tcp-listen", "--debug-listen"} {
		t.Run(strings.TrimPrefix(flag, "--"), func(t *testing.T) {
			busy, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer busy.Close()
			dataDir := filepath.Join(t.TempDir(), "data")
			args := []string{"serve", "--data-dir", dataDir, "--http-listen", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0",
				flag, busy.Addr().String()}
			var out, errOut bytes.Buffer
			began := time.Now()
			code := Main(t.Context(), args, strings.NewReader(""), &out, &errOut)
			took := time.Since(began)
			t.Logf("%s taken: exit %d after %v", flag, code, took)
			if code == 0 {
				t.Fatalf("exit 0 with %s taken", flag)
			}
			if want := flag + " " + busy.Addr().String() + ": address already in use"; !strings.Contains(errOut.String(), want) {
				t.Errorf("stderr lacks %q:\n%s", want, errOut.String())
			}
			if took > 5*time.Second {
				t.Errorf("took %v to fail", took)
			}
			if strings.Contains(out.String(), "wdn_") || strings.Contains(out.String(), "token") {
				t.Errorf("stdout shows a token of a server that never ran:\n%s", out.String())
			}
			for _, name := range []string{"ca.pem", "warden.db", "master.key"} {
				if _, err := os.Stat(filepath.Join(dataDir, name)); err == nil {
					t.Errorf("%s made by a start that failed on its listeners", name)
				}
			}
			startsAndPrintsWorkingToken(t, dataDir)
		})
	}
}

// TestServeReplacesOperatorTokenNeverShown: an operator token stored by a
// start that ended before showing it is replaced by a new, working one.
func TestServeReplacesOperatorTokenNeverShown(t *testing.T) {
	dataDir := t.TempDir()
	st, err := sqlite.Open(t.Context(), filepath.Join(dataDir, "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateAPIToken(t.Context(), identity.APIToken{ID: "operator", TenantID: tenancy.RootTenantID, Name: "operator (first start)",
		Role: identity.RoleOperatorAdmin, Hash: api.HashToken("wdn_never-shown"), CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	startsAndPrintsWorkingToken(t, dataDir)

	// Later starts show no token and the first one keeps working.
	srv := serveInProcess(t, dataDir, "--http-listen", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0")
	if _, token := srv.running(t); token != "" {
		t.Errorf("a second start printed a token")
	}
}

// TestServeDataDirLocked: a second server on a data directory in use
// refuses to start and names the first; once that stops, a start works.
func TestServeDataDirLocked(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "warden-data")
	first := serveInProcess(t, dataDir, "--http-listen", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0", "--admin-token", "wdn_locked-test")
	addr, _ := first.running(t)

	var out, errOut bytes.Buffer
	began := time.Now()
	code := Main(t.Context(), []string{"serve", "--data-dir", dataDir, "--http-listen", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0"},
		strings.NewReader(""), &out, &errOut)
	t.Logf("second start: exit %d after %v: %s", code, time.Since(began), strings.TrimSpace(errOut.String()))
	if code == 0 {
		t.Fatal("a second server started on a data directory in use")
	}
	host, _ := os.Hostname()
	for _, want := range []string{
		"data directory " + dataDir + " is in use by warden pid " + strconv.Itoa(os.Getpid()) + " on host " + host + " since ",
		"(https " + addr + ", mqtts 127.0.0.1:",
	} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut.String())
		}
	}
	if !authenticates(t, dataDir, addr, "wdn_locked-test") {
		t.Error("the first server stopped working after the refused start")
	}
	if code := first.stopAndWait(t); code != 0 {
		t.Fatalf("first server: exit %d", code)
	}
	again := serveInProcess(t, dataDir, "--http-listen", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0")
	addr, _ = again.running(t)
	if !authenticates(t, dataDir, addr, "wdn_locked-test") {
		t.Error("the operator token does not work after the restart")
	}
	if code := again.stopAndWait(t); code != 0 {
		t.Fatalf("restart: exit %d", code)
	}
}

// TestServeBinarySignals: the built binary stops promptly with exit 0 on
// SIGTERM once running and during start-up, and fails with exit 1 at
// once when a port is taken.
func TestServeBinarySignals(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "warden")
	build := exec.Command("go", "build", "-o", bin, "github.com/warden-iot/warden/cmd/warden")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	serveArgs := func(dataDir string, extra ...string) []string {
		return append([]string{"serve", "--data-dir", dataDir, "--http-listen", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0"}, extra...)
	}
	// start runs the binary and returns it with a channel of its stderr
	// lines and its stdout.
	start := func(args ...string) (*exec.Cmd, <-chan string, *syncBuffer) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "WARDEN_ADMIN_TOKEN=", "WARDEN_DATA_DIR=")
		var out syncBuffer
		cmd.Stdout = &out
		errPipe, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() })
		lines := make(chan string, 1000)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(errPipe)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		return cmd, lines, &out
	}
	waitLine := func(lines <-chan string, substr string) {
		t.Helper()
		timeout := time.After(60 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("stderr closed before %q", substr)
				}
				if strings.Contains(l, substr) {
					return
				}
			case <-timeout:
				t.Fatalf("no %q within 60 s", substr)
			}
		}
	}
	exit := func(cmd *exec.Cmd, lines <-chan string, since time.Time, what string) int {
		t.Helper()
		go func() {
			for range lines { // drain
			}
		}()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: still running 10 s later", what)
		}
		t.Logf("%s: exit %d after %v", what, cmd.ProcessState.ExitCode(), time.Since(since))
		if took := time.Since(since); took > 5*time.Second {
			t.Errorf("%s: took %v", what, took)
		}
		return cmd.ProcessState.ExitCode()
	}

	dataDir := t.TempDir()
	// Running: SIGTERM stops it with exit 0.
	cmd, lines, out := start(serveArgs(dataDir)...)
	waitLine(lines, "warden is running")
	// Shown before that line; the pipe may deliver it a little later.
	for deadline := time.Now().Add(5 * time.Second); !tokenRe.MatchString(out.String()); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no operator token on the first start:\n%s", out.String())
		}
	}
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := exit(cmd, lines, sent, "SIGTERM while running"); code != 0 {
		t.Errorf("SIGTERM while running: exit %d, want 0", code)
	}

	// During start-up (certificates being made): exit 0, promptly.
	cmd, lines, _ = start(serveArgs(t.TempDir())...)
	waitLine(lines, "created a certificate authority")
	sent = time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := exit(cmd, lines, sent, "SIGTERM during start-up"); code != 0 {
		t.Errorf("SIGTERM during start-up: exit %d, want 0", code)
	}

	// A port taken: exit 1 at once, the cause on stderr.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	began := time.Now()
	cmd, lines, out = start(serveArgs(t.TempDir(), "--http-listen", busy.Addr().String())...)
	var stderr []string
	for l := range lines {
		stderr = append(stderr, l)
	}
	if code := exit(cmd, lines, began, "port taken"); code != 1 {
		t.Errorf("port taken: exit %d, want 1", code)
	}
	if want := "--http-listen " + busy.Addr().String() + ": address already in use"; !strings.Contains(strings.Join(stderr, "\n"), want) {
		t.Errorf("stderr lacks %q:\n%s", want, strings.Join(stderr, "\n"))
	}
	if out.String() != "" {
		t.Errorf("stdout of a failed start: %q", out.String())
	}
}
