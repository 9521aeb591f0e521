package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/imagecp"
	"github.com/rfsbuild/rfs/quote"
)

func newCpCmd() *cobra.Command {
	var o imagecp.Options
	cmd := &cobra.Command{
		Use:   "cp IMAGE:/path DEST | cp SRC IMAGE:/path",
		Short: "Copy files out of a device's view of an image, or into its upper layer (like docker cp)",
		Long: `Copy files between the host and an rfs image (or a card holding one) whose
device is not running, like docker cp with a stopped container.

rfs cp IMAGE:/path DEST copies /path as the device sees it (the upper layer
over the lowers: files it deleted are gone, files it changed are the new
ones) to DEST, without root. rfs cp SRC IMAGE:/path copies a host file,
directory or symlink into the image's upper layer on the data partition:
the device sees it at its next boot, and rfs diff lists it (A or C).

As docker cp: a DEST (or /path) that does not exist is the copy's name, its
parent must exist; an existing directory receives the copy under the
source's name; an existing file is replaced. Directories are copied
recursively, symlinks stay symlinks, modes and modification times are kept.
Owners: files copied in are root's, out the caller's; with -a the source's
(out: as root only). Symlinks in /path's directories are followed inside the
image, as on the device.

Copying in writes the data partition's ext4 with e2fsprogs' debugfs, no
mount and no root: directories that only the lower has are copied up, a
deleted path (whiteout) is replaced. It refuses an image a QEMU runs, a
mounted card, paths under /dev, /proc, /sys, /run and /tmp (the device
mounts over them) and volumes. A journal left by a power cut is replayed
first (e2fsck -p). Hard links are copied as separate files; xattrs are not
copied.`,
		Example: `  rfs cp out/qemu-arm64.img:/etc/passwd .
  rfs cp out/qemu-arm64.img:/var/log ./device-logs
  rfs cp ./config.json out/qemu-arm64.img:/etc/myapp/
  rfs cp -a ./www /dev/sdb:/srv/          # into a card in a reader`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCp(cmd, args[0], args[1], o)
		},
	}
	cmd.Flags().BoolVarP(&o.Archive, "archive", "a", false, "keep owners (uid/gid): the source's when copying in; the image's when copying out (as root)")
	return cmd
}

// runCp is rfs cp: one side IMAGE:/path, the other a host path.
func runCp(cmd *cobra.Command, src, dst string, o imagecp.Options) error {
	sImg, sPath, sIsImg, err := splitImageArg(src)
	if err != nil {
		return err
	}
	dImg, dPath, dIsImg, err := splitImageArg(dst)
	if err != nil {
		return err
	}
	o.Log = cmd.ErrOrStderr()
	switch {
	case sIsImg && dIsImg:
		return errors.New("rfs cp copies between the host and an image: both SRC and DEST name an image (copy out to a directory, then in)")
	case !sIsImg && !dIsImg:
		return fmt.Errorf("rfs cp needs an IMAGE:/path on one side, e.g. rfs cp %s out/qemu-arm64.img:/root/ (neither %s nor %s names an image file or card)", src, src, dst)
	case sIsImg:
		res, err := imagecp.Out(cmd.Context(), sImg, sPath, dst, o)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "rfs: copied %s:%s to %s (%s, %s)\n", sImg, quote.Name(sPath), res.Path, entries(res.Entries), image.HumanSize(res.Bytes))
		return nil
	}
	res, err := imagecp.In(cmd.Context(), src, dImg, dPath, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "rfs: copied %s to %s:%s in the upper layer (%s, %s); the device sees it at its next boot\n", src, dImg, quote.Name(res.Path), entries(res.Entries), image.HumanSize(res.Bytes))
	return nil
}

// splitImageArg reads IMAGE:/path: an argument is an image side when the
// part before its first ":/" is an existing file or block device. A host
// path that holds ":/" itself is taken as a host path when the whole
// exists. IMAGE:relative is an error, not a host path.
func splitImageArg(s string) (img, p string, ok bool, err error) {
	if i := strings.Index(s, ":/"); i > 0 {
		if st, err := os.Stat(s[:i]); err == nil && !st.IsDir() {
			return s[:i], s[i+1:], true, nil
		}
		if _, err := os.Lstat(s); err == nil {
			return "", "", false, nil
		}
	}
	if i := strings.IndexByte(s, ':'); i > 0 {
		if _, err := os.Lstat(s); err != nil {
			if st, err := os.Stat(s[:i]); err == nil && !st.IsDir() {
				return "", "", false, fmt.Errorf("%s: the path in the image must be absolute (%s:/%s)", s, s[:i], s[i+1:])
			}
		}
	}
	return "", "", false, nil
}

// entries is "1 entry" or "N entries".
func entries(n int) string {
	if n == 1 {
		return "1 entry"
	}
	return fmt.Sprintf("%d entries", n)
}
