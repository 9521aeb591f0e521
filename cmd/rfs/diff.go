package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/infile"
	"github.com/rfsbuild/rfs/layer"
	"github.com/rfsbuild/rfs/rootfs"
	"github.com/rfsbuild/rfs/squashfs"
)

func newDiffCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "diff TARGET | diff LOWER UPPERDIR",
		Short: "List what changed on a device since its factory state (like docker diff)",
		Long: `List the changes the persistent upper layer holds relative to the lower, like
docker diff: "A /path" added, "C /path" changed (type, mode, owner, mtime,
size or content; also every directory with a change below it), "D /path"
deleted (whiteouts; an opaque directory's hidden lower entries). Sorted by
path. A file copied up without any difference is not listed.

TARGET is an rfs image file or a block device holding one (an SD card in a
reader): the lower is its rfs-root squashfs, the upper the upper/ directory
of its rfs-data ext4, read without mounting and without root. The device
must not be running from it (power it off first).

With two arguments, LOWER is a directory or a squashfs file and UPPERDIR an
unmounted overlayfs upper directory (reading its trusted.overlay.opaque
xattrs needs root).`,
		Example: `  rfs diff out/qemu-arm64.img
  rfs diff /dev/sdX --json
  rfs diff rootfs.sqfs ./upper`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			lower, upper, closeFn, err := openLayers(cmd.Context(), args)
			if err != nil {
				return err
			}
			defer closeFn()
			changes, err := layer.DiffContext(cmd.Context(), lower, upper)
			if err != nil {
				return err
			}
			return printChanges(cmd.OutOrStdout(), changes, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array of {kind, path}")
	return cmd
}

func printChanges(w io.Writer, changes []layer.Change, asJSON bool) error {
	if asJSON {
		if changes == nil {
			changes = []layer.Change{}
		}
		b, err := json.MarshalIndent(changes, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	for _, c := range changes {
		if _, err := fmt.Fprintln(w, c); err != nil {
			return err
		}
	}
	return nil
}

// openLayers reads the lower and the upper named by the command line: an
// image (file or block device), or a lower (dir or squashfs) and an upper
// dir.
func openLayers(ctx context.Context, args []string) (lower, upper *rootfs.Tree, closeFn func(), err error) {
	if len(args) == 2 {
		lower, closeFn, err = readLower(ctx, args[0])
		if err != nil {
			return nil, nil, nil, err
		}
		upper, err = layer.ReadDirContext(ctx, args[1])
		if err != nil {
			closeFn()
			return nil, nil, nil, fmt.Errorf("upper %s: %w", args[1], err)
		}
		return lower, upper, closeFn, nil
	}
	img, err := image.OpenImage(args[0])
	if err != nil {
		return nil, nil, nil, err
	}
	_, lower, err = layer.ReadLowers(img)
	if err == nil {
		upper, err = layer.ReadUpper(img)
	}
	if err != nil {
		img.Close()
		return nil, nil, nil, err
	}
	return lower, upper, func() { img.Close() }, nil
}

// readLower reads a directory or a squashfs file as a tree.
func readLower(ctx context.Context, p string) (*rootfs.Tree, func(), error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, nil, err
	}
	if st.IsDir() {
		t := rootfs.New(0)
		if err := t.AddHostDirContext(ctx, p, "/", rootfs.HostDirOptions{}); err != nil {
			return nil, nil, err
		}
		return t, func() {}, nil
	}
	f, err := infile.Open("lower", p)
	if err != nil {
		return nil, nil, err
	}
	r, err := squashfs.Open(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", p, err)
	}
	t, err := r.ToTree()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", p, err)
	}
	return t, func() { f.Close() }, nil
}
