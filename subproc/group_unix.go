//go:build unix

package subproc

import (
	"os/exec"
	"syscall"
	"time"
)

// ownGroup starts cmd as the leader of its own process group and makes
// cancellation signal the whole group.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The group's id is the child's pid (Setpgid with Pgid 0).
		pgid := cmd.Process.Pid
		if err := syscall.Kill(-pgid, syscall.SIGINT); err != nil {
			return cmd.Process.Kill()
		}
		time.AfterFunc(waitDelay, func() { syscall.Kill(-pgid, syscall.SIGKILL) })
		return nil
	}
}
