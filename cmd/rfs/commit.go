package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/rfsbuild/rfs/atomicfile"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/layer"
	"github.com/rfsbuild/rfs/pathcheck"
	"github.com/rfsbuild/rfs/rootfs"
	"github.com/rfsbuild/rfs/squashfs"
)

// commitFlags are rfs commit's options.
type commitFlags struct {
	output  string
	flatten bool
	oci     string
}

func newCommitCmd() *cobra.Command {
	var f commitFlags
	cmd := &cobra.Command{
		Use:   "commit TARGET -o LAYER.sqfs [--flatten] [--oci LAYER.tar] | commit LOWER UPPERDIR -o ...",
		Short: "Fold a device's changes into a new squashfs layer (like docker commit)",
		Long: `Fold the persistent upper layer into a squashfs layer that, stacked on the
same lower (rfs build --layer), gives exactly the merged view the device
had. Whiteouts are kept as character devices 0/0; opaque directories are
expanded into explicit whiteouts of every lower entry they hide (the target
kernels read no squashfs xattrs, so the opaque marker cannot be carried).

--flatten writes one merged lower instead (the base with the changes
applied), usable as a root by itself. --oci writes the changes as an OCI
image layer tar (".wh.NAME" whiteouts, "DIR/.wh..wh..opq" opaque markers),
deterministic; with --oci alone no squashfs is written.

TARGET is as for rfs diff: an image file or block device, or a lower (dir
or squashfs) and an upper directory.`,
		Example: `  rfs commit out/qemu-arm64.img -o changes.sqfs
  rfs commit out/qemu-arm64.img -o root.sqfs --flatten
  rfs commit /dev/sdX --oci changes.tar`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCommit(cmd, &f, args)
		},
	}
	cmd.Flags().StringVarP(&f.output, "output", "o", "", "the squashfs layer to write")
	cmd.Flags().BoolVar(&f.flatten, "flatten", false, "write the merged view as one lower instead of a layer")
	cmd.Flags().StringVar(&f.oci, "oci", "", "also write the changes as an OCI layer tar")
	return cmd
}

// runCommit is rfs commit: check the outputs against the inputs, read
// lower and upper (as rfs diff does), write the layer and/or OCI tar.
func runCommit(cmd *cobra.Command, f *commitFlags, args []string) error {
	if f.output == "" && f.oci == "" {
		return errors.New("give -o LAYER.sqfs and/or --oci LAYER.tar")
	}
	inputs := []pathcheck.Path{{Flag: "TARGET", Path: args[0]}}
	if len(args) == 2 {
		inputs = []pathcheck.Path{{Flag: "LOWER", Path: args[0]}, {Flag: "UPPERDIR", Path: args[1]}}
	}
	if err := pathcheck.Check([]pathcheck.Path{{Flag: "-o", Path: f.output}, {Flag: "--oci", Path: f.oci}}, inputs); err != nil {
		return err
	}
	lower, upper, closeFn, err := openLayers(cmd.Context(), args)
	if err != nil {
		return err
	}
	defer closeFn()
	if f.output != "" {
		if err := f.writeLayer(cmd, lower, upper); err != nil {
			return err
		}
	}
	if f.oci != "" {
		return f.writeOCI(cmd, lower, upper)
	}
	return nil
}

// writeLayer writes -o: the layer (or with --flatten the merged lower).
func (f *commitFlags) writeLayer(cmd *cobra.Command, lower, upper *rootfs.Tree) error {
	tree, err := layer.Commit(lower, upper)
	if f.flatten {
		tree, err = layer.Flatten(lower, upper)
	}
	if err != nil {
		return err
	}
	n, err := writeAtomic(f.output, func(out *os.File) (int64, error) {
		return squashfs.WriteContext(cmd.Context(), out, tree, squashfs.Options{MTime: upper.Root.MTime})
	})
	if err != nil {
		return err
	}
	what := "layer"
	if f.flatten {
		what = "flattened lower"
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s: %s, %s\n", f.output, what, image.HumanSize(n))
	return nil
}

// writeOCI writes --oci: the changes as an OCI layer tar.
func (f *commitFlags) writeOCI(cmd *cobra.Command, lower, upper *rootfs.Tree) error {
	n, err := writeAtomic(f.oci, func(out *os.File) (int64, error) {
		w := bufio.NewWriterSize(ctxWriter{cmd.Context(), out}, 1<<20)
		if err := layer.WriteOCI(w, lower, upper); err != nil {
			return 0, err
		}
		if err := w.Flush(); err != nil {
			return 0, err
		}
		return out.Seek(0, 1)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s: OCI layer, %s\n", f.oci, image.HumanSize(n))
	return nil
}

// writeAtomic writes path through package atomicfile: a hidden temporary
// file in the same directory, synced and renamed into place only on success.
func writeAtomic(path string, write func(*os.File) (int64, error)) (int64, error) {
	f, err := atomicfile.Create(path, 0o644)
	if err != nil {
		return 0, err
	}
	defer f.Abort()
	n, err := write(f.File)
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Commit(); err != nil {
		return 0, err
	}
	return n, nil
}

// ctxWriter fails writes once ctx is done, so that a long write through it
// (the OCI tar of a large upper) stops on Ctrl-C.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}
