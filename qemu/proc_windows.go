package qemu

import (
	"os"
	"os/exec"
	"syscall"
)

// ownGroup starts cmd in a new console process group: Ctrl-C in the
// console then reaches rfs only.
func ownGroup(cmd *exec.Cmd) { cmd.SysProcAttr.CreationFlags |= syscall.CREATE_NEW_PROCESS_GROUP }

// stop kills QEMU: Windows has no SIGTERM to send.
func stop(p *os.Process) error { return p.Kill() }

// alive says whether a process pid exists (it can be opened).
func alive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	p.Release()
	return true
}
