package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rfsbuild/rfs/atomicfile"
	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/pathcheck"
	"github.com/rfsbuild/rfs/rootfs"
	"github.com/rfsbuild/rfs/squashfs"
)

// mksquashfsFlags are the single-dash long options mksquashfs users type;
// they are accepted as well as the usual --long forms.
var mksquashfsFlags = map[string]string{
	"-comp": "--comp", "-all-root": "--all-root", "-all-time": "--all-time",
	"-mkfs-time": "--mkfs-time", "-processors": "--processors", "-xattrs": "--xattrs",
	"-no-xattrs": "--no-xattrs", "-noappend": "--noappend", "-Xcompression-level": "--level",
	"-Xdict-size": "--xz-dict-size", "-quiet": "--quiet", "-no-progress": "--noappend",
}

func newSquashfsCmd() *cobra.Command {
	var (
		output     string
		comp       string
		blockSize  string
		level      int
		dictSize   string
		allRoot    bool
		allTime    int64
		mkfsTime   int64
		processors int
		xattrs     bool
		noXattrs   bool
		smallest   bool
		quiet      bool
		noappend   bool
	)
	cmd := &cobra.Command{
		Use:   "squashfs DIR [OUT.sqfs] [-o OUT.sqfs] [options]",
		Short: "Write a directory as a squashfs image (like mksquashfs)",
		Long: `Write a host directory as a squashfs 4.0 image, deterministically: the same
tree and options give the same bytes, whatever the number of processors.
Owners, modes and times are kept unless --all-root or --all-time say
otherwise; no root is needed to set any owner. Identical files are stored
once, file tails are packed into fragment blocks, zero blocks become holes
and hard links stay hard links.

Compressors: gzip (the default; every squashfs kernel reads it), xz and
zstd (only for kernels built with CONFIG_SQUASHFS_XZ / _ZSTD; the default
gokrazy kernels are not). Xattrs (user.*, trusted.*, security.*) are read
from the host only with --xattrs, for kernels with CONFIG_SQUASHFS_XATTR.

The superblock time is --mkfs-time, else $SOURCE_DATE_EPOCH, else 0.
mksquashfs's single-dash spellings (-comp, -b, -all-root, -all-time,
-mkfs-time, -processors, -xattrs, -no-xattrs, -noappend, -Xcompression-level,
-Xdict-size) are accepted too, and "rfs squashfs DIR OUT" works like
"mksquashfs DIR OUT".`,
		Example: `  rfs squashfs ./rootfs -o lower.sqfs
  rfs squashfs ./rootfs -o lower.sqfs --all-root --all-time 0
  SOURCE_DATE_EPOCH=1700000000 rfs squashfs ./rootfs -o lower.sqfs
  rfs squashfs ./rootfs -o lower.sqfs --comp zstd --level 19 -b 1M
  rfs squashfs ./rootfs -o lower.sqfs --comp xz --xattrs
  rfs squashfs ./rootfs lower.sqfs -comp gzip -b 131072 -all-root -processors 2`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, raw []string) error {
			args := make([]string, 0, len(raw))
			for i, a := range raw {
				if a == "--" {
					args = append(args, raw[i:]...)
					break
				}
				if long, ok := mksquashfsFlags[a]; ok {
					a = long
				}
				args = append(args, a)
			}
			fl := cmd.Flags()
			if err := fl.Parse(args); err != nil {
				return err
			}
			if help, _ := fl.GetBool("help"); help {
				return cmd.Help()
			}
			pos := fl.Args()
			switch {
			case len(pos) == 2 && output == "":
				output = pos[1]
			case len(pos) != 1:
				return fmt.Errorf("usage: rfs squashfs DIR -o OUT.sqfs (got %d arguments)", len(pos))
			}
			if output == "" {
				return errors.New("missing -o OUTPUT")
			}
			outFlag := "OUT"
			if fl.Changed("output") {
				outFlag = "-o"
			}
			if err := pathcheck.Check([]pathcheck.Path{{Flag: outFlag, Path: output}}, []pathcheck.Path{{Flag: "DIR", Path: pos[0]}}); err != nil {
				return err
			}
			if xattrs && noXattrs {
				return errors.New("--xattrs and --no-xattrs both given")
			}
			opts := rootfs.HostDirOptions{}
			if allRoot {
				opts.Owner = &rootfs.Owner{}
			}
			if fl.Changed("all-time") {
				opts.MTime = &allTime
			}
			t := rootfs.New(0)
			if err := t.AddHostDirContext(cmd.Context(), pos[0], "/", opts); err != nil {
				return err
			}
			if xattrs {
				if err := t.AddHostXattrs(cmd.Context(), pos[0]); err != nil {
					return err
				}
			}
			bs, err := image.ParseSize(blockSize)
			if err != nil {
				return fmt.Errorf("--block-size %q: %w", blockSize, err)
			}
			if bs < 4<<10 || bs > 1<<20 || bs&(bs-1) != 0 {
				return fmt.Errorf("--block-size %q: want a power of two from 4K to 1M", blockSize)
			}
			for flag, v := range map[string]int64{"--all-time": allTime, "--mkfs-time": mkfsTime} {
				if fl.Changed(flag[2:]) && (v < 0 || v > math.MaxUint32) {
					return fmt.Errorf("%s %d: want seconds since 1970 from 0 to %d (squashfs stores 32 bits)", flag, v, uint32(math.MaxUint32))
				}
			}
			ds := int64(0)
			if dictSize != "" {
				if ds, err = image.ParseSize(dictSize); err != nil || ds > 1<<20 {
					return fmt.Errorf("--xz-dict-size %q: want a size up to the block size, e.g. 64K", dictSize)
				}
			}
			if !fl.Changed("mkfs-time") {
				mkfsTime = 0
				if e := os.Getenv("SOURCE_DATE_EPOCH"); e != "" {
					if mkfsTime, err = builder.ParseEpoch(e); err != nil {
						return err
					}
				}
			}
			if processors < 0 || processors > squashfs.MaxWorkers() {
				return fmt.Errorf("--processors %d: want 1 to %d", processors, squashfs.MaxWorkers())
			}
			f, err := atomicfile.Create(output, 0o644)
			if err != nil {
				return err
			}
			defer f.Abort()
			n, err := squashfs.WriteContext(cmd.Context(), f.File, t, squashfs.Options{
				Compressor: comp, BlockSize: int(bs), Level: level, XZDictSize: int(ds),
				MTime: mkfsTime, Workers: processors, Xattrs: xattrs, Smallest: smallest,
			})
			if err == nil {
				err = f.Truncate(n)
			}
			if err != nil {
				return fmt.Errorf("write %s: %w", output, err)
			}
			if err := f.Commit(); err != nil {
				return err
			}
			if !quiet {
				fmt.Fprintf(cmd.ErrOrStderr(), "rfs: wrote %s (%s, %s)\n", output, image.HumanSize(n), comp)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&output, "output", "o", "", "output file (or give it as the second argument)")
	fl.StringVar(&comp, "comp", "gzip", "compressor: "+strings.Join(squashfs.Compressors(), ", "))
	fl.StringVarP(&blockSize, "block-size", "b", "128K", "data block size, a power of two from 4K to 1M")
	fl.IntVar(&level, "level", 0, "compression level: gzip 1..9 (default 9), zstd 1..22 (default 15)")
	fl.StringVar(&dictSize, "xz-dict-size", "", "xz dictionary size (default: the block size)")
	fl.BoolVar(&smallest, "smallest", false, "gzip: compress each block with two encoders and keep the smaller (a little smaller, 2x the CPU)")
	fl.BoolVar(&allRoot, "all-root", false, "make every entry owned by root")
	fl.Int64Var(&allTime, "all-time", 0, "set every entry's mtime (seconds since 1970)")
	fl.Int64Var(&mkfsTime, "mkfs-time", 0, "superblock time (default $SOURCE_DATE_EPOCH or 0)")
	fl.IntVar(&processors, "processors", 0, fmt.Sprintf("compressing goroutines (default all cores: %d); the output does not depend on it", runtime.GOMAXPROCS(0)))
	fl.BoolVar(&xattrs, "xattrs", false, "store the host's user.*, trusted.* and security.* xattrs (kernel needs CONFIG_SQUASHFS_XATTR)")
	fl.BoolVar(&noXattrs, "no-xattrs", false, "do not store xattrs (the default)")
	fl.BoolVar(&quiet, "quiet", false, "print nothing on success")
	fl.BoolVar(&noappend, "noappend", false, "accepted for mksquashfs compatibility: the output is always replaced")
	fl.BoolP("help", "h", false, "help for squashfs")
	return cmd
}
