//go:build unix

package subproc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Cancelling kills the grandchildren too, and Run returns promptly although
// a grandchild held the output pipe.
func TestCancelKillsTheGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := Command(ctx, "sh", "-c", "sleep 300 & echo $! > "+pidFile+"; wait")
	var out strings.Builder
	cmd.Stdout = &out // a pipe the grandchild holds
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	for deadline := time.Now().Add(10 * time.Second); pid == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the shell did not start its child")
		}
		b, _ := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	cancel()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Wait after cancel returned no error")
		}
		if err := Err(ctx, "sh", err); !errors.Is(err, context.Canceled) {
			t.Errorf("Err = %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Wait hangs after cancel")
	}
	// The grandchild is gone (or a zombie about to be reaped by init).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil || isZombie(pid) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d still runs", pid)
		}
	}
}

func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func TestErrKeepsOtherErrors(t *testing.T) {
	e := errors.New("exit status 1")
	if got := Err(context.Background(), "x", e); got != e {
		t.Errorf("Err = %v, want the error itself", got)
	}
	if got := Err(context.Background(), "x", nil); got != nil {
		t.Errorf("Err(nil) = %v", got)
	}
}
