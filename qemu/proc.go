package qemu

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// stopGrace is how long QEMU gets to exit after SIGTERM (it restores the
// terminal it put in raw mode) before it is killed.
const stopGrace = 3 * time.Second

// prepare makes cmd die with rfs: on Linux SIGKILL when the thread that
// started it exits (Pdeathsig), even if rfs is killed with SIGKILL (other
// hosts have no such signal: there QEMU outlives an rfs killed with
// SIGKILL); on cancellation QEMU gets SIGTERM first (Windows: it is
// killed), so an interactive QEMU restores the terminal.
func prepare(cmd *exec.Cmd) {
	cmd.SysProcAttr = dieWithParent()
	cmd.Cancel = func() error { return stop(cmd.Process) }
	cmd.WaitDelay = stopGrace
}

// startLocked starts cmd and returns the function that waits for it
// (cmd.Wait, called once, when the caller is ready: after reading its
// pipes to the end).
//
// Pdeathsig fires when the OS thread that forked the child exits, not
// when the process does (golang/go#27505): the Go runtime ends a thread
// when a goroutine locked to it returns. So the child is started from a
// goroutine locked to its thread that stays alive, still locked, until
// the child has been waited for; no other goroutine can run on (and end)
// that thread meanwhile. It is never unlocked: the thread then exits with
// the goroutine, after the child is gone.
func startLocked(cmd *exec.Cmd) (wait func() error, err error) {
	started := make(chan error, 1)
	waitNow := make(chan struct{})
	waited := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		<-waitNow
		waited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return func() error {
		close(waitNow)
		return <-waited
	}, nil
}

// Run runs cmd (from Command) to completion; see startLocked.
func Run(cmd *exec.Cmd) error {
	wait, err := startLocked(cmd)
	if err != nil {
		return err
	}
	return wait()
}

// runDirPrefix names the private directory of one rfs run (the padded SD
// card copy, the extracted kernel and initramfs, the OVMF variables):
// rfs-run-PID-random, so that a later run can tell the directories of
// runs that are gone (killed with SIGKILL, or a crash) and remove them.
const runDirPrefix = "rfs-run-"

// RunDir removes the run directories under os.TempDir() left by rfs
// processes that no longer exist, then makes one for this process. The
// caller removes it when done.
func RunDir() (string, error) {
	RemoveStaleRunDirs(os.TempDir())
	return os.MkdirTemp("", fmt.Sprintf("%s%d-", runDirPrefix, os.Getpid()))
}

// RemoveStaleRunDirs removes dir/rfs-run-PID-* whose process PID is gone.
// A PID reused by another process keeps its directory until that ends.
func RemoveStaleRunDirs(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, ok := runDirPID(e.Name())
		if !ok || !e.IsDir() || pid == os.Getpid() || alive(pid) {
			continue
		}
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

// runDirPID parses the PID of a run directory's name.
func runDirPID(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, runDirPrefix)
	if !ok {
		return 0, false
	}
	digits, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(digits)
	return pid, err == nil && pid > 0
}
