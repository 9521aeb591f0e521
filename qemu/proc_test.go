//go:build linux

package qemu

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The helper process for TestChildDiesWithParent: it starts a child the
// way QEMU is started, prints the child's PID and waits to be killed.
func init() {
	if os.Getenv("RFS_QEMU_TEST_PARENT") != "1" {
		return
	}
	// Busy goroutines on other threads make the runtime juggle threads.
	for range 4 {
		go func() {
			for {
				time.Sleep(time.Millisecond)
			}
		}()
	}
	cmd := exec.CommandContext(context.Background(), "sleep", "300")
	prepare(cmd)
	wait, err := startLocked(cmd)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println(cmd.Process.Pid)
	wait()
	os.Exit(0)
}

// QEMU dies with rfs even when rfs is killed with SIGKILL (no chance to
// clean up): the parent-death signal.
func TestChildDiesWithParent(t *testing.T) {
	parent := exec.Command(os.Args[0], "-test.run=^$")
	parent.Env = append(os.Environ(), "RFS_QEMU_TEST_PARENT=1")
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	defer parent.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("helper said %q", line)
	}
	defer syscall.Kill(child, syscall.SIGKILL)
	time.Sleep(100 * time.Millisecond) // the runtime may shuffle threads meanwhile
	if !alive(child) {
		t.Fatal("the child died while its parent lives")
	}
	parent.Process.Signal(syscall.SIGKILL)
	parent.Wait()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if !alive(child) || zombie(child) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d still runs after its parent was killed", child)
		}
	}
}

func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func TestRemoveStaleRunDirs(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadPID := dead.Process.Pid
	dir := t.TempDir()
	names := map[string]bool{ // name: removed
		fmt.Sprintf("rfs-run-%d-123", deadPID):     true,
		fmt.Sprintf("rfs-run-%d-456", os.Getpid()): false,
		"rfs-run-1-789":     false, // init lives
		"rfs-run-abc":       false, // not ours to judge
		"rfs-run-12x-1":     false,
		"something-else-12": false,
	}
	for n := range names {
		if err := os.MkdirAll(filepath.Join(dir, n, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("rfs-run-%d-file", deadPID)), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	RemoveStaleRunDirs(dir)
	for n, removed := range names {
		_, err := os.Stat(filepath.Join(dir, n))
		if gone := os.IsNotExist(err); gone != removed {
			t.Errorf("%s: removed %v, want %v", n, gone, removed)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("rfs-run-%d-file", deadPID))); err != nil {
		t.Errorf("a file named like a run directory was removed: %v", err)
	}
}
