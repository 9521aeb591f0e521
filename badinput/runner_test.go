package badinput

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// rfsBin is the rfs binary every case runs, built once by TestMain.
var rfsBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rfs-badinput-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rfsBin = filepath.Join(dir, "rfs")
	if out, err := exec.Command("go", "build", "-o", rfsBin, "../cmd/rfs").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build rfs: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if fixture.path != "" {
		os.RemoveAll(filepath.Dir(fixture.path))
	}
	os.Exit(code)
}

// badCase is one bad input. Args and Env may use {dir}, the case's scratch
// directory (also the working directory), and {image}, a copy of a freshly
// built qemu-arm64 image placed at {dir}/dev.img (built once per run; only
// when a case mentions it).
type badCase struct {
	name  string
	args  []string
	env   []string                        // extra KEY=VALUE
	setup func(t tester, dir string)      // makes the inputs in dir
	check func(t tester, dir, out string) // extra assertions afterwards
	stdin string

	// What must happen: the exit status (0 means "any non-zero"), and
	// substrings of the combined output (case-insensitive).
	code int
	want []string

	// signal, when set, is sent once the output matches signalAfter (a
	// regexp; empty: 300 ms after start); the process must then exit within
	// the deadline.
	signal      syscall.Signal
	signalAfter string

	// changes lists files (relative to dir) the command may create or
	// modify: its declared outputs. Everything else must stay as it was.
	changes []string

	timeout time.Duration // deadline; default 60 s
	root    bool          // needs root; skipped otherwise
}

// runCases runs each case as a subtest.
func runCases(t *testing.T, cases []badCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runCase(t, c) })
	}
}

func runCase(t tester, c badCase) {
	if c.root && os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	tmp := filepath.Join(dir, ".tmp")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	subst := func(s string) string {
		if strings.Contains(s, "{image}") {
			img := filepath.Join(dir, "dev.img")
			if _, err := os.Stat(img); err != nil {
				copyFile(t, fixtureImage(t), img)
			}
			s = strings.ReplaceAll(s, "{image}", img)
		}
		return strings.ReplaceAll(s, "{dir}", dir)
	}
	args := make([]string, len(c.args))
	for i, a := range c.args {
		args[i] = subst(a)
	}
	env := append(os.Environ(), "TMPDIR="+tmp, "NO_COLOR=1")
	for _, e := range c.env {
		env = append(env, subst(e))
	}
	if c.setup != nil {
		c.setup(t, dir)
	}
	before := snapshot(t, dir)

	timeout := c.timeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, rfsBin, args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdin = strings.NewReader(c.stdin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		if ctx.Err() != nil {
			t.Fatalf("no exit within %v (hang)", timeout)
		}
		t.Fatal(err)
	}
	if c.signal != 0 {
		go signalWhen(ctx, cmd.Process, c.signal, c.signalAfter, &out)
	}
	err := cmd.Wait()
	text := out.String()
	t.Logf("rfs %s\n%s", strings.Join(args, " "), text)
	if ctx.Err() != nil {
		t.Fatalf("no exit within %v (hang)", timeout)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		t.Errorf("exit status 0, want an error")
	case !errors.As(err, &ee):
		t.Fatalf("run: %v", err)
	case c.code != 0 && ee.ExitCode() != c.code:
		t.Errorf("exit status %d, want %d", ee.ExitCode(), c.code)
	case ee.ExitCode() < 0:
		t.Errorf("killed by a signal (%v), want a clean exit", err)
	}
	for _, bad := range []string{"panic:", "goroutine ", "runtime error", "SIGSEGV"} {
		if strings.Contains(text, bad) {
			t.Errorf("output has %q: a crash, not an error message", bad)
		}
	}
	low := strings.ToLower(text)
	for _, w := range c.want {
		if !strings.Contains(low, strings.ToLower(subst(w))) {
			t.Errorf("output lacks %q", subst(w))
		}
	}
	after := snapshot(t, dir)
	allowed := map[string]bool{}
	for _, p := range c.changes {
		allowed[subst(p)] = true
	}
	compareSnapshots(t, before, after, allowed)
	if c.check != nil {
		c.check(t, dir, text)
	}
}

// signalWhen sends sig to p once out matches after (or after 300 ms).
func signalWhen(ctx context.Context, p *os.Process, sig syscall.Signal, after string, out *lockedBuffer) {
	var re *regexp.Regexp
	if after != "" {
		re = regexp.MustCompile(after)
	}
	start := time.Now()
	for ctx.Err() == nil {
		if re == nil && time.Since(start) > 300*time.Millisecond || re != nil && re.MatchString(out.String()) {
			p.Signal(sig)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// entry is what a snapshot keeps of a file: its type, mode and content hash.
type entry struct {
	mode fs.FileMode
	sum  string
}

// snapshot records every entry under dir (paths relative to dir), the
// scratch TMPDIR included, so leftovers anywhere show up.
func snapshot(t tester, dir string) map[string]entry {
	t.Helper()
	m := map[string]entry{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := entry{mode: info.Mode()}
		switch {
		case info.Mode().IsRegular():
			e.sum = hashFile(t, p)
		case info.Mode()&fs.ModeSymlink != 0:
			e.sum, _ = os.Readlink(p)
		}
		m[rel] = e
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", dir, err)
	}
	return m
}

func compareSnapshots(t tester, before, after map[string]entry, allowed map[string]bool) {
	t.Helper()
	var names []string
	for p := range before {
		names = append(names, p)
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			names = append(names, p)
		}
	}
	slices.Sort(names)
	for _, p := range names {
		b, inBefore := before[p]
		a, inAfter := after[p]
		switch {
		case allowed[p]:
		case inBefore && !inAfter:
			t.Errorf("input %s was removed", p)
		case !inBefore && inAfter:
			if a.mode.IsDir() && allowedUnder(p, allowed) {
				continue
			}
			t.Errorf("left behind: %s", p)
		case b != a:
			if b.mode.IsDir() && a.mode.IsDir() {
				continue // a directory's own mode/mtime noise; its entries are checked
			}
			t.Errorf("input %s was changed (%v %s → %v %s)", p, b.mode, short(b.sum), a.mode, short(a.sum))
		}
	}
}

// allowedUnder says whether a new directory p is the parent of an allowed
// output (e.g. out/ for out/x.img).
func allowedUnder(p string, allowed map[string]bool) bool {
	for a := range allowed {
		if strings.HasPrefix(a, p+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func hashFile(t tester, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func copyFile(t tester, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

var fixture struct {
	once sync.Once
	path string
	err  error
}

// fixtureImage builds one small qemu-arm64 image for the whole run; cases
// get a copy of it as {image}.
func fixtureImage(t tester) string {
	t.Helper()
	fixture.once.Do(func() {
		dir, err := os.MkdirTemp("", "rfs-badinput-img-")
		if err != nil {
			fixture.err = err
			return
		}
		fixture.path = filepath.Join(dir, "fixture.img")
		cmd := exec.Command(rfsBin, "build", "--board", "qemu-arm64", "-o", fixture.path)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			fixture.err = fmt.Errorf("build the fixture image: %v\n%s", err, out)
		}
	})
	if fixture.err != nil {
		t.Fatal(fixture.err)
	}
	return fixture.path
}

// lockedBuffer collects a child's output while another goroutine reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// writeFile is a setup shorthand: dir/name with content (parents made).
func writeFile(t tester, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// tester is what the runner needs of a *testing.T; the runner's own test
// passes a recorder to prove that the runner fails where it must.
type tester interface {
	Helper()
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Skip(args ...any)
	TempDir() string
}

// recorder is a tester that remembers failures; Fatal/Skip end the case
// by panicking with stopCase, which runRecorded recovers.
type recorder struct {
	*testing.T
	failed bool
	msgs   []string
}

type stopCase struct{}

func (r *recorder) Errorf(f string, a ...any) {
	r.failed = true
	r.msgs = append(r.msgs, fmt.Sprintf(f, a...))
}
func (r *recorder) Fatal(a ...any) {
	r.failed = true
	r.msgs = append(r.msgs, fmt.Sprint(a...))
	panic(stopCase{})
}
func (r *recorder) Fatalf(f string, a ...any) { r.Errorf(f, a...); panic(stopCase{}) }
func (r *recorder) Skip(a ...any)             { panic(stopCase{}) }
func (r *recorder) Logf(string, ...any)       {}

func runRecorded(t *testing.T, c badCase) (r *recorder) {
	r = &recorder{T: t}
	defer func() {
		if v := recover(); v != nil {
			if _, ok := v.(stopCase); !ok {
				panic(v)
			}
		}
	}()
	runCase(r, c)
	return r
}

// TestRunnerCatchesMistakes proves the runner can fail: a command that
// succeeds, one whose message lacks the wanted words, one that leaves a
// file behind, one that changes an input, and one that hangs are each
// reported.
func TestRunnerCatchesMistakes(t *testing.T) {
	for _, tc := range []struct {
		c      badCase
		caught string
	}{
		{badCase{name: "exit 0", args: []string{"boards"}}, "exit status 0"},
		{badCase{name: "wrong message", args: []string{"build", "--board", "nope"}, want: []string{"a message nobody prints"}}, "output lacks"},
		{badCase{name: "leftover", args: []string{"init"}}, "left behind: rfs.yaml"},
		{badCase{name: "input changed", args: []string{"init", "--force"}, setup: func(t tester, dir string) { writeFile(t, dir, "rfs.yaml", "board: qemu-arm64\n") }}, "input rfs.yaml was changed"},
		{badCase{name: "hang", args: []string{"boards"}, timeout: time.Nanosecond}, "hang"},
	} {
		t.Run(tc.c.name, func(t *testing.T) {
			r := runRecorded(t, tc.c)
			if all := strings.Join(r.msgs, "; "); !strings.Contains(all, tc.caught) {
				t.Errorf("case %q: the runner reported %q, want %q", tc.c.name, all, tc.caught)
			}
		})
	}
	t.Run("good case passes", func(t *testing.T) {
		c := badCase{name: "unknown board", args: []string{"build", "--board", "nope"}, want: []string{`unknown board "nope"`}}
		if r := runRecorded(t, c); r.failed {
			t.Errorf("a good case failed: %s", strings.Join(r.msgs, "; "))
		}
	})
}
