package qemu

import "syscall"

// dieWithParent has the child killed when the thread that started it exits
// (see startLocked).
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
