// Command rfs builds embedded Linux images with a read-only squashfs root and
// an overlayfs upper layer, and boots them in QEMU.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/rfsbuild/rfs"
	"github.com/rfsbuild/rfs/quote"
)

// exitError carries a specific exit status (e.g. `rfs run --expect` timing out).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "rfs",
		Short: "Build embedded Linux images: a read-only squashfs root with an overlayfs upper layer",
		Long: `rfs assembles a busybox userland into a read-only squashfs lower layer, packs an
init into an initramfs that mounts overlayfs at boot with a writable upper layer,
and writes a bootable disk image. Docker's image/container layering, for a board.`,
		Example: `  rfs init                       # write a commented rfs.yaml
  rfs build                      # build the default board (qemu-arm64) to out/qemu-arm64.img
  rfs build --board qemu-amd64 -o out/x86.img
  rfs run out/x86.img            # boot it in QEMU; Ctrl-A X quits
  rfs boards                     # list boards`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       rfs.Version(),
	}
	root.AddCommand(newBuildCmd(), newRunCmd(), newBoardsCmd(), newInitCmd(), newSquashfsCmd(), newFlashCmd(), newResetCmd(), newDiffCmd(), newCommitCmd(), newInspectCmd(), newCpCmd(), newKeygenCmd(), newPushCmd(), newUpdateCmd())
	requireLinux(root, runtime.GOOS)
	return root
}

// main leaves through os.Exit only after the command has returned, so the
// commands' deferred cleanups (temp files, child processes) have run.
func main() {
	ctx, stop := signalContext(context.Background(), os.Stderr, os.Exit)
	err := newRoot().ExecuteContext(ctx)
	msg, code := exitStatus(ctx, err)
	stop()
	if msg != "" {
		// Messages may hold names from an image: no raw escapes reach the terminal.
		fmt.Fprintln(os.Stderr, quote.Message(msg))
	}
	os.Exit(code)
}
