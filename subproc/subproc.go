// Package subproc starts the helper programs rfs runs (go, mke2fs) so that
// cancelling the context stops them and everything they started at once.
//
// exec.CommandContext alone kills only the direct child: `go build` leaves
// its compile and link processes running, and as they hold the output pipe
// Cmd.Wait waits for them (tens of seconds after a Ctrl-C). Here the child
// leads its own process group, the whole group is killed, and Wait gives up
// on the pipes shortly after.
package subproc

import (
	"context"
	"fmt"
	"os/exec"
	"time"
)

// waitDelay bounds how long Wait waits for output pipes held by
// grandchildren after the group was killed.
const waitDelay = 2 * time.Second

// Command is exec.CommandContext whose cancellation stops the child's whole
// process group where the host has them: SIGINT first, which the go
// command answers by stopping its compilers and removing its work
// directory from $TMPDIR (SIGKILL would leave it), then SIGKILL for
// whatever still runs after waitDelay.
func Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	ownGroup(cmd)
	cmd.WaitDelay = waitDelay
	return cmd
}

// Err returns err, or ctx's error (wrapped, naming what was run) when the
// command failed because ctx was cancelled: "signal: killed" says nothing
// about why.
func Err(ctx context.Context, what string, err error) error {
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
	return err
}
