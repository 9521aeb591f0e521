//go:build !unix

package subproc

import "os/exec"

// ownGroup leaves cancellation to exec.CommandContext, which kills the
// child only: Windows has no process groups to signal (its console
// groups take no SIGINT from another process), and WaitDelay still
// bounds the wait for output pipes held by grandchildren.
func ownGroup(*exec.Cmd) {}
