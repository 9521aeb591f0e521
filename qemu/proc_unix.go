//go:build unix

package qemu

import (
	"os"
	"os/exec"
	"syscall"
)

// ownGroup puts cmd in its own process group: the terminal's Ctrl-C then
// reaches rfs only.
func ownGroup(cmd *exec.Cmd) { cmd.SysProcAttr.Setpgid = true }

// stop asks QEMU to exit.
func stop(p *os.Process) error { return p.Signal(syscall.SIGTERM) }

// alive says whether a process pid exists (EPERM: it does, another user's).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}
