package main

import (
	"context"
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

// squashfsFlags are rfs squashfs's options.
type squashfsFlags struct {
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
}

func newSquashfsCmd() *cobra.Command {
	var f squashfsFlags
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
			return runSquashfs(cmd, &f, raw)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.output, "output", "o", "", "output file (or give it as the second argument)")
	fl.StringVar(&f.comp, "comp", "gzip", "compressor: "+strings.Join(squashfs.Compressors(), ", "))
	fl.StringVarP(&f.blockSize, "block-size", "b", "128K", "data block size, a power of two from 4K to 1M")
	fl.IntVar(&f.level, "level", 0, "compression level: gzip 1..9 (default 9), zstd 1..22 (default 15)")
	fl.StringVar(&f.dictSize, "xz-dict-size", "", "xz dictionary size (default: the block size)")
	fl.BoolVar(&f.smallest, "smallest", false, "gzip: compress each block with two encoders and keep the smaller (a little smaller, 2x the CPU)")
	fl.BoolVar(&f.allRoot, "all-root", false, "make every entry owned by root")
	fl.Int64Var(&f.allTime, "all-time", 0, "set every entry's mtime (seconds since 1970)")
	fl.Int64Var(&f.mkfsTime, "mkfs-time", 0, "superblock time (default $SOURCE_DATE_EPOCH or 0)")
	fl.IntVar(&f.processors, "processors", 0, fmt.Sprintf("compressing goroutines (default all cores: %d); the output does not depend on it", runtime.GOMAXPROCS(0)))
	fl.BoolVar(&f.xattrs, "xattrs", false, "store the host's user.*, trusted.* and security.* xattrs (kernel needs CONFIG_SQUASHFS_XATTR)")
	fl.BoolVar(&f.noXattrs, "no-xattrs", false, "do not store xattrs (the default)")
	fl.BoolVar(&f.quiet, "quiet", false, "print nothing on success")
	fl.BoolVar(&f.noappend, "noappend", false, "accepted for mksquashfs compatibility: the output is always replaced")
	fl.BoolP("help", "h", false, "help for squashfs")
	return cmd
}

// runSquashfs is rfs squashfs: parse the command line (mksquashfs
// spellings too), check it, read DIR, write the image.
func runSquashfs(cmd *cobra.Command, f *squashfsFlags, raw []string) error {
	fl := cmd.Flags()
	if err := fl.Parse(mksquashfsArgs(raw)); err != nil {
		return err
	}
	if help, _ := fl.GetBool("help"); help {
		return cmd.Help()
	}
	src, err := f.paths(fl)
	if err != nil {
		return err
	}
	t, err := f.readTree(cmd.Context(), fl, src)
	if err != nil {
		return err
	}
	opts, err := f.options(fl)
	if err != nil {
		return err
	}
	return f.write(cmd, t, opts)
}

// flagSet is what the steps of rfs squashfs ask of its parsed flags.
type flagSet interface {
	Changed(name string) bool
	Args() []string
}

// mksquashfsArgs translates mksquashfs's single-dash options to ours (up
// to a "--").
func mksquashfsArgs(raw []string) []string {
	args := make([]string, 0, len(raw))
	for i, a := range raw {
		if a == "--" {
			return append(args, raw[i:]...)
		}
		if long, ok := mksquashfsFlags[a]; ok {
			a = long
		}
		args = append(args, a)
	}
	return args
}

// paths takes DIR and the output (-o or the second argument) and checks
// that the output is no input; it returns DIR.
func (f *squashfsFlags) paths(fl flagSet) (string, error) {
	pos := fl.Args()
	switch {
	case len(pos) == 2 && f.output == "":
		f.output = pos[1]
	case len(pos) != 1:
		return "", fmt.Errorf("usage: rfs squashfs DIR -o OUT.sqfs (got %d arguments)", len(pos))
	}
	if f.output == "" {
		return "", errors.New("missing -o OUTPUT")
	}
	outFlag := "OUT"
	if fl.Changed("output") {
		outFlag = "-o"
	}
	if err := pathcheck.Check([]pathcheck.Path{{Flag: outFlag, Path: f.output}}, []pathcheck.Path{{Flag: "DIR", Path: pos[0]}}); err != nil {
		return "", err
	}
	if f.xattrs && f.noXattrs {
		return "", errors.New("--xattrs and --no-xattrs both given")
	}
	return pos[0], nil
}

// readTree reads DIR as --all-root, --all-time and --xattrs say.
func (f *squashfsFlags) readTree(ctx context.Context, fl flagSet, src string) (*rootfs.Tree, error) {
	opts := rootfs.HostDirOptions{}
	if f.allRoot {
		opts.Owner = &rootfs.Owner{}
	}
	if fl.Changed("all-time") {
		opts.MTime = &f.allTime
	}
	t := rootfs.New(0)
	if err := t.AddHostDirContext(ctx, src, "/", opts); err != nil {
		return nil, err
	}
	if f.xattrs {
		if err := t.AddHostXattrs(ctx, src); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// options checks the writer's options: block size, times, xz dictionary,
// processors; the superblock time defaults to $SOURCE_DATE_EPOCH.
func (f *squashfsFlags) options(fl flagSet) (squashfs.Options, error) {
	bs, err := image.ParseSize(f.blockSize)
	if err != nil {
		return squashfs.Options{}, fmt.Errorf("--block-size %q: %w", f.blockSize, err)
	}
	if bs < 4<<10 || bs > 1<<20 || bs&(bs-1) != 0 {
		return squashfs.Options{}, fmt.Errorf("--block-size %q: want a power of two from 4K to 1M", f.blockSize)
	}
	for flag, v := range map[string]int64{"--all-time": f.allTime, "--mkfs-time": f.mkfsTime} {
		if fl.Changed(flag[2:]) && (v < 0 || v > math.MaxUint32) {
			return squashfs.Options{}, fmt.Errorf("%s %d: want seconds since 1970 from 0 to %d (squashfs stores 32 bits)", flag, v, uint32(math.MaxUint32))
		}
	}
	ds := int64(0)
	if f.dictSize != "" {
		if ds, err = image.ParseSize(f.dictSize); err != nil || ds > 1<<20 {
			return squashfs.Options{}, fmt.Errorf("--xz-dict-size %q: want a size up to the block size, e.g. 64K", f.dictSize)
		}
	}
	if !fl.Changed("mkfs-time") {
		f.mkfsTime = 0
		if e := os.Getenv("SOURCE_DATE_EPOCH"); e != "" {
			if f.mkfsTime, err = builder.ParseEpoch(e); err != nil {
				return squashfs.Options{}, err
			}
		}
	}
	if f.processors < 0 || f.processors > squashfs.MaxWorkers() {
		return squashfs.Options{}, fmt.Errorf("--processors %d: want 1 to %d", f.processors, squashfs.MaxWorkers())
	}
	return squashfs.Options{
		Compressor: f.comp, BlockSize: int(bs), Level: f.level, XZDictSize: int(ds),
		MTime: f.mkfsTime, Workers: f.processors, Xattrs: f.xattrs, Smallest: f.smallest,
	}, nil
}

// write writes t to the output atomically.
func (f *squashfsFlags) write(cmd *cobra.Command, t *rootfs.Tree, opts squashfs.Options) error {
	out, err := atomicfile.Create(f.output, 0o644)
	if err != nil {
		return err
	}
	defer out.Abort()
	n, err := squashfs.WriteContext(cmd.Context(), out.File, t, opts)
	if err == nil {
		err = out.Truncate(n)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", f.output, err)
	}
	if err := out.Commit(); err != nil {
		return err
	}
	if !f.quiet {
		fmt.Fprintf(cmd.ErrOrStderr(), "rfs: wrote %s (%s, %s)\n", f.output, image.HumanSize(n), f.comp)
	}
	return nil
}
