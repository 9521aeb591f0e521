package e2e

import (
	"bytes"
	"flag"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// netnsEnv marks a test binary re-executed in a private network namespace
// by inPrivateNet: its value is the name of the test it runs there.
const netnsEnv = "RFS_E2E_NETNS"

// inPrivateNet confines the calling test to a network namespace of its
// own, whose only interface is a loopback: QEMU's user networking (even
// --net internet), the guest's connections and the test's servers then
// reach nothing beyond it. It re-runs the test binary, this test only,
// in a new namespace (CLONE_NEWNET, as unshare --net does) and reports
// its result here: it returns true there, where the test body runs, and
// false here, where the caller returns at once:
//
//	img := buildImage(t, "qemu-arm64", nil) // here too: fills the module cache
//	if !inPrivateNet(t) {
//		return
//	}
//
// Nothing in the namespace reaches the Go module proxy: build images
// before the call, so the namespace's build finds its modules cached.
// Needs root; the test is skipped without.
func inPrivateNet(t *testing.T) bool {
	t.Helper()
	if name := os.Getenv(netnsEnv); name != "" {
		if name == t.Name() || strings.HasPrefix(t.Name(), name+"/") {
			enterPrivateNet(t)
		}
		// Any other test here is confined as well, by its parent's call.
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("a private network namespace needs root")
	}
	out, err := runInNetns(t)
	if i := strings.Index(out, "--- SKIP: "+t.Name()+" ("); i >= 0 {
		// go test -v prints the reason just before the SKIP line.
		lines := strings.Split(strings.TrimSpace(out[:i]), "\n")
		t.Skipf("in a private network namespace: %s", strings.TrimSpace(lines[len(lines)-1]))
	}
	if err != nil {
		t.Fatalf("in a private network namespace: %v", err)
	}
	if !strings.Contains(out, "--- PASS: "+t.Name()+" ") {
		t.Fatalf("in a private network namespace: the test did not run (no PASS line)")
	}
	return false
}

// runInNetns runs this test again in a new network namespace, its output
// logged here line by line as it comes, and returns that output.
func runInNetns(t *testing.T) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-test.run", runPattern(t.Name(), flagValue("test.run")), "-test.v", "-test.count=1"}
	if skip := flagValue("test.skip"); skip != "" {
		args = append(args, "-test.skip", skip)
	}
	if testing.Short() {
		args = append(args, "-test.short")
	}
	if d, ok := t.Deadline(); ok {
		args = append(args, "-test.timeout="+time.Until(d).Round(time.Second).String())
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), netnsEnv+"="+t.Name())
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	lw := &lineLogger{t: t}
	cmd.Stdout, cmd.Stderr = lw, lw
	// Pdeathsig fires when the starting thread ends: hold it till the end.
	runtime.LockOSThread()
	err = cmd.Run()
	runtime.UnlockOSThread()
	lw.flush()
	return lw.all.String(), err
}

// runPattern is a -test.run pattern matching exactly the test named name
// (each level of a subtest's name anchored), and within it the subtests
// that run, go test's own pattern, selects (its deeper levels).
func runPattern(name, run string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	if levels := strings.Split(run, "/"); run != "" && len(levels) > len(parts) {
		parts = append(parts, levels[len(parts):]...)
	}
	return strings.Join(parts, "/")
}

// flagValue is the value of the test binary's flag name, "" if none.
func flagValue(name string) string {
	if f := flag.Lookup(name); f != nil {
		return f.Value.String()
	}
	return ""
}

// enterPrivateNet checks the test runs in a private network namespace
// (nothing but a loopback) and brings the loopback up.
func enterPrivateNet(t *testing.T) {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 {
			t.Fatalf("%s=%s, but this network namespace has %s: not a private one", netnsEnv, os.Getenv(netnsEnv), i.Name)
		}
	}
	if err := loopbackUp(); err != nil {
		t.Fatalf("private network namespace: lo up: %v", err)
	}
}

// loopbackUp sets lo up (ip link set lo up), by ioctl: no ip command needed.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// lineLogger logs what is written to it line by line (t.Log) and keeps it.
type lineLogger struct {
	t       *testing.T
	mu      sync.Mutex
	pending []byte
	all     bytes.Buffer
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Write(p)
	l.pending = append(l.pending, p...)
	for {
		i := bytes.IndexByte(l.pending, '\n')
		if i < 0 {
			break
		}
		l.t.Log("netns| " + string(l.pending[:i]))
		l.pending = l.pending[i+1:]
	}
	return len(p), nil
}

func (l *lineLogger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pending) > 0 {
		l.t.Log("netns| " + string(l.pending))
		l.pending = nil
	}
}

// TestPrivateNet: inPrivateNet runs the test in a network namespace other
// than its parent's (the test binary that called it), with only a
// loopback, up.
func TestPrivateNet(t *testing.T) {
	if !inPrivateNet(t) {
		return
	}
	self, err1 := os.Readlink("/proc/self/ns/net")
	parent, err2 := os.Readlink("/proc/" + strconv.Itoa(os.Getppid()) + "/ns/net")
	if err1 != nil || err2 != nil || self == parent {
		t.Errorf("network namespace %s, the parent's %s (%v, %v)", self, parent, err1, err2)
	}
	lo, err := net.InterfaceByName("lo")
	if err != nil || lo.Flags&net.FlagUp == 0 {
		t.Errorf("lo: %+v, %v", lo, err)
	}
	if port := serveLine(t, "x"); port == 0 {
		t.Error("no listener on 127.0.0.1")
	}
}

func TestRunPattern(t *testing.T) {
	for _, tc := range []struct{ name, run, want string }{
		{"TestA", "", "^TestA$"},
		{"TestA", "TestA", "^TestA$"},
		{"TestA", "TestA/pi", "^TestA$/pi"},
		{"TestA", "Test/pi|x/deep", "^TestA$/pi|x/deep"},
		{"TestA/sub_one#01", "", `^TestA$/^sub_one#01$`},
		{"TestA/x.y", "TestA/x", `^TestA$/^x\.y$`},
	} {
		if got := runPattern(tc.name, tc.run); got != tc.want {
			t.Errorf("runPattern(%q, %q) = %q, want %q", tc.name, tc.run, got, tc.want)
		}
	}
}
