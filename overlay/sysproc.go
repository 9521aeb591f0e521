package overlay

import "syscall"

// sysProcAttrShell gives the shell its own session with the console as
// controlling terminal, so job control and ^C work.
func sysProcAttrShell(ctty bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true, Setctty: ctty, Ctty: 0}
}
