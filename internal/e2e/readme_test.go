package e2e

// The README walkthrough, run as written: every ```sh block of README.md, in
// order, in one working directory, against a fresh server on ephemeral
// ports. A block that the test does not run is listed with the reason; a
// block the test does not know fails it, as does a listed block or a
// substitution that the README no longer has, so the two stay in step.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// walkStep says how to run one README block: the block is found by a string
// it contains (match), which must be in no other block.
type walkStep struct {
	match string
	// skip, if set, is why the test does not run the block.
	skip string
	// subst are replacements made before the block runs, each of which
	// must occur in it: ports the test chose, the token the server printed,
	// shorter benchmark runs. {name} values are filled in (see fill).
	subst [][2]string
	// background blocks run on while the walkthrough continues (the README
	// says "in another terminal"): the earlier lines run first, the last
	// one keeps running. ready is a regexp the block's output must match
	// before the next block runs.
	background bool
	ready      string
	// want are regexps the block's output (stdout and stderr) must match;
	// wantNot must not match.
	want, wantNot []string
	// stopServer stops the walkthrough's server before the block runs.
	stopServer bool
	// needs names a command the block needs, needsTCP an address that must
	// accept connections: without them the block is skipped, unless CI.
	needs, needsTCP string
	// timeout bounds a foreground block (default 2 minutes).
	timeout time.Duration
	// eventually runs a foreground block again, as a user would, until its
	// output matches or this time has passed.
	eventually time.Duration
	// stdin is what the user types (a password the block asks for).
	stdin string
	// shell names another person's terminal: it starts with the settings
	// of the main one at that moment and keeps its own from then on.
	shell string
	// capture sets {name} to the first group of a regexp on the output,
	// for later blocks.
	capture map[string]string
}

// readmeBlock is one ```sh block of README.md.
type readmeBlock struct {
	line int // of the opening fence
	text string
}

func readmeBlocks(t *testing.T, path string) []readmeBlock {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		blocks []readmeBlock
		cur    *readmeBlock
		n      int
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```sh":
			cur = &readmeBlock{line: n}
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("README.md:%d: unclosed ```sh block", cur.line)
	}
	return blocks
}

// walkthrough is the state of one run.
type walkthrough struct {
	t      *testing.T
	dir    string            // the user's working directory
	shells map[string]string // terminal name ("" the main one) → file of its exported variables
	vars   map[string]string // {name} → value
	bg     []*bgProc
	server *bgProc
}

// bgProc is a block that runs on in the background.
type bgProc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited; err is then set
	err  error
}

func TestREADMEWalkthrough(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("the README walkthrough builds and runs the warden binary")
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(t, filepath.Join(repo, "README.md"))
	plan := planWalkthrough(t, blocks, readmeSteps())

	w := &walkthrough{t: t, dir: t.TempDir(), shells: map[string]string{},
		vars: map[string]string{"{repo}": repo, "{pgdb}": "warden_readme_" + strings.ToLower(rand.Text()[:8])}}
	t.Cleanup(func() {
		if _, err := exec.LookPath("dropdb"); err == nil {
			exec.Command("dropdb", "--if-exists", w.vars["{pgdb}"]).Run()
		}
	})
	t.Cleanup(w.stopAll)
	// The server block comes before the one that builds the binary: build
	// it first, exactly as that block will.
	w.run("build", &walkStep{}, "go build -C "+shq(repo)+" -o \"$PWD/warden\" ./cmd/warden", 5*time.Minute)

	for i, b := range blocks {
		s := plan[i]
		name := fmt.Sprintf("README.md:%d", b.line)
		if s.skip != "" {
			t.Logf("%s: not run: %s", name, s.skip)
			continue
		}
		if why := missing(s); why != "" {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s needs %s; CI requires it", name, why)
			}
			t.Logf("%s: not run: %s", name, why)
			continue
		}
		if s.stopServer {
			w.stopServer()
		}
		script := b.text
		for _, r := range s.subst {
			if !strings.Contains(script, r[0]) {
				t.Fatalf("%s: the walkthrough replaces %q, which the block no longer has:\n%s", name, r[0], script)
			}
			script = strings.ReplaceAll(script, r[0], w.fill(r[1]))
		}
		if placeholder(script) {
			t.Fatalf("%s: the block still holds a placeholder (…) the walkthrough does not fill:\n%s", name, script)
		}
		if s.background {
			w.runBackground(name, s, script)
			continue
		}
		w.runChecked(name, s, script)
	}
	// The last server stops cleanly on SIGTERM.
	w.stopServer()
}

// placeholder says whether a command (not a comment) of a script still
// holds "…", a value the reader must fill in.
func placeholder(script string) bool {
	for _, line := range strings.Split(script, "\n") {
		if i := strings.Index(line, " # "); i >= 0 {
			line = line[:i]
		}
		if !strings.HasPrefix(strings.TrimSpace(line), "#") && strings.Contains(line, "…") {
			return true
		}
	}
	return false
}

// planWalkthrough pairs every README block with exactly one step.
func planWalkthrough(t *testing.T, blocks []readmeBlock, steps []walkStep) []*walkStep {
	t.Helper()
	plan := make([]*walkStep, len(blocks))
	for i := range steps {
		s := &steps[i]
		found := -1
		for j, b := range blocks {
			if strings.Contains(b.text, s.match) {
				if found >= 0 {
					t.Fatalf("step %q matches README blocks at lines %d and %d", s.match, blocks[found].line, b.line)
				}
				found = j
			}
		}
		if found < 0 {
			t.Fatalf("step %q matches no ```sh block of README.md: keep the walkthrough test in step with the README", s.match)
		}
		if plan[found] != nil {
			t.Fatalf("README.md:%d: block matched by steps %q and %q", blocks[found].line, plan[found].match, s.match)
		}
		plan[found] = s
	}
	for i, b := range blocks {
		if plan[i] == nil {
			t.Fatalf("README.md:%d: the walkthrough test does not know this block; add a step for it:\n%s", b.line, b.text)
		}
	}
	return plan
}

// missing says what a step needs that this machine lacks, or "".
func missing(s *walkStep) string {
	if s.needs != "" {
		if _, err := exec.LookPath(s.needs); err != nil {
			return s.needs + " (not installed)"
		}
	}
	if s.needsTCP != "" {
		c, err := net.DialTimeout("tcp", s.needsTCP, 2*time.Second)
		if err != nil {
			return "a server at " + s.needsTCP
		}
		c.Close()
	}
	return ""
}

// fill puts the run's values into a substitution or pattern.
func (w *walkthrough) fill(s string) string {
	for k, v := range w.vars {
		s = strings.ReplaceAll(s, k, v)
	}
	return s
}

func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// stateFile is the file of a terminal's exported variables; another
// person's terminal starts as a copy of the main one.
func (w *walkthrough) stateFile(shell string) string {
	if f, ok := w.shells[shell]; ok {
		return f
	}
	f := filepath.Join(w.t.TempDir(), "state.sh")
	var init []byte
	if main, ok := w.shells[""]; ok {
		init, _ = os.ReadFile(main)
	}
	if err := os.WriteFile(f, init, 0o600); err != nil {
		w.t.Fatal(err)
	}
	w.shells[shell] = f
	return f
}

// script makes a block run as if typed into a terminal: the variables
// earlier blocks set there are set, every variable set is exported, and
// (unless the block runs on) what it set is saved for the next block.
func (w *walkthrough) script(shell, body string, save bool) string {
	state := w.stateFile(shell)
	s := "set -a\nsource " + shq(state) + "\nset -eo pipefail\n" + body
	if save {
		s += "\nexport -p > " + shq(state) + "\n"
	}
	return s
}

func (w *walkthrough) command(ctx context.Context, script, stdin string, out *os.File) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = w.dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Stdin = strings.NewReader(stdin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A new user's shell: the test's own WARDEN_* settings do not leak in.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WARDEN_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	return cmd
}

func (w *walkthrough) outFile() *os.File {
	f, err := os.CreateTemp(w.t.TempDir(), "block-*.out")
	if err != nil {
		w.t.Fatal(err)
	}
	return f
}

// run runs a foreground block and returns its output; a failing command
// fails the test.
func (w *walkthrough) run(name string, s *walkStep, body string, timeout time.Duration) string {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.t.Context(), timeout)
	defer cancel()
	f := w.outFile()
	defer f.Close()
	start := time.Now()
	err := w.command(ctx, w.script(s.shell, body, true), s.stdin, f).Run()
	out, _ := os.ReadFile(f.Name())
	w.t.Logf("%s: ran in %v", name, time.Since(start).Round(time.Millisecond))
	if err != nil {
		w.t.Fatalf("%s: %v\n--- script\n%s--- output\n%s", name, err, body, out)
	}
	return string(out)
}

// runChecked runs a foreground block, checks its output (again and again
// for a block that waits for something to happen) and captures values.
func (w *walkthrough) runChecked(name string, s *walkStep, body string) {
	w.t.Helper()
	timeout := s.timeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	deadline := time.Now().Add(s.eventually)
	for {
		out := w.run(name, s, body, timeout)
		failed := w.check(s, out)
		if failed == "" {
			w.t.Logf("%s: output:\n%s", name, out)
			for k, re := range s.capture {
				m := regexp.MustCompile(re).FindStringSubmatch(out)
				if m == nil {
					w.t.Fatalf("%s: nothing to capture as %s with %q:\n%s", name, k, re, out)
				}
				w.vars[k] = m[1]
			}
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%s: %s\n--- script\n%s--- output\n%s", name, failed, body, out)
		}
		time.Sleep(3 * time.Second)
	}
}

// check says what of a step's expectations the output misses, or "".
func (w *walkthrough) check(s *walkStep, out string) string {
	for _, re := range s.want {
		if !regexp.MustCompile(w.fill(re)).MatchString(out) {
			return fmt.Sprintf("output does not match %q", w.fill(re))
		}
	}
	for _, re := range s.wantNot {
		if regexp.MustCompile(w.fill(re)).MatchString(out) {
			return fmt.Sprintf("output matches %q, which it must not", w.fill(re))
		}
	}
	return ""
}

// runBackground starts a block whose last command runs on, and waits for
// its ready line.
func (w *walkthrough) runBackground(name string, s *walkStep, body string) {
	w.t.Helper()
	lines := strings.Split(strings.TrimSpace(body), "\n")
	last := len(lines) - 1
	lines[last] = "exec " + lines[last]
	f := w.outFile()
	cmd := w.command(context.Background(), w.script(s.shell, strings.Join(lines, "\n")+"\n", false), s.stdin, f)
	if err := cmd.Start(); err != nil {
		w.t.Fatalf("%s: %v", name, err)
	}
	p := &bgProc{name: name, cmd: cmd, done: make(chan struct{})}
	w.bg = append(w.bg, p)
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	ready := regexp.MustCompile(w.fill(s.ready))
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, _ := os.ReadFile(f.Name())
		if ready.Match(out) {
			w.t.Logf("%s: running", name)
			if strings.Contains(body, " serve") {
				w.serverStarted(name, p, string(out))
			}
			return
		}
		select {
		case <-p.done:
			w.t.Fatalf("%s: exited before it was ready (%v):\n--- script\n%s--- output\n%s", name, p.err, body, out)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%s: not ready (%q) after 2 minutes:\n--- script\n%s--- output\n%s", name, s.ready, body, out)
		}
	}
}

// serverStarted picks up what a server printed: its ports and the operator
// token.
func (w *walkthrough) serverStarted(name string, p *bgProc, out string) {
	w.server = p
	if m := regexp.MustCompile(`wdn_[A-Za-z0-9_-]+`).FindString(out); m != "" {
		w.vars["{token}"] = m
	}
	delete(w.vars, "{https}")
	delete(w.vars, "{mqtts}")
	for _, line := range strings.Split(out, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != "warden is running" {
			continue
		}
		for key, v := range map[string]string{"https": "{https}", "mqtts": "{mqtts}"} {
			if addr, _ := rec[key].(string); addr != "" {
				if _, port, err := net.SplitHostPort(addr); err == nil {
					w.vars[v] = port
				}
			}
		}
	}
	if w.vars["{https}"] == "" || w.vars["{mqtts}"] == "" {
		w.t.Fatalf("%s: no ports in the server's start line:\n%s", name, out)
	}
}

// stopServer stops the running server with SIGTERM and checks that it
// exits cleanly.
func (w *walkthrough) stopServer() {
	if w.server == nil {
		return
	}
	p := w.server
	w.server = nil
	if err := p.stop(); err != nil {
		w.t.Fatalf("%s: stop the server: %v", p.name, err)
	}
}

func (w *walkthrough) stopAll() {
	for _, p := range w.bg {
		p.stop()
	}
}

// stop sends SIGTERM to the block's process group and waits for it.
func (p *bgProc) stop() error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(30 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return errors.New("did not stop within 30 s of SIGTERM")
	}
}
