package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/rootfs"
	"github.com/rfsbuild/rfs/squashfs"
)

func newSquashfsCmd() *cobra.Command {
	var (
		output    string
		comp      string
		blockSize string
		allRoot   bool
		allTime   int64
		mkfsTime  int64
	)
	cmd := &cobra.Command{
		Use:   "squashfs DIR -o OUT.sqfs",
		Short: "Write a directory as a squashfs image (like mksquashfs)",
		Long: `Write a host directory as a squashfs image, deterministically: the same
tree gives the same bytes. Owners and times are kept unless --all-root or
--all-time say otherwise; no root is needed to set any owner.`,
		Example: `  rfs squashfs ./rootfs -o lower.sqfs
  rfs squashfs ./rootfs -o lower.sqfs --all-root --all-time 0`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" {
				return fmt.Errorf("missing -o OUTPUT")
			}
			opts := rootfs.HostDirOptions{}
			if allRoot {
				opts.Owner = &rootfs.Owner{}
			}
			if cmd.Flags().Changed("all-time") {
				opts.MTime = &allTime
			}
			t := rootfs.New(0)
			if err := t.AddHostDir(args[0], "/", opts); err != nil {
				return err
			}
			bs, err := image.ParseSize(blockSize)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("mkfs-time") {
				mkfsTime = 0
				if e := os.Getenv("SOURCE_DATE_EPOCH"); e != "" {
					if mkfsTime, err = strconv.ParseInt(e, 10, 64); err != nil {
						return fmt.Errorf("SOURCE_DATE_EPOCH: %w", err)
					}
				}
			}
			f, err := os.CreateTemp(filepath.Dir(output), filepath.Base(output)+".tmp-*")
			if err != nil {
				return err
			}
			defer os.Remove(f.Name())
			n, err := squashfs.Write(f, t, squashfs.Options{Compressor: comp, BlockSize: int(bs), MTime: mkfsTime})
			if err == nil {
				err = f.Truncate(n)
			}
			if err == nil {
				err = f.Close()
			} else {
				f.Close()
			}
			if err != nil {
				return fmt.Errorf("write %s: %w", output, err)
			}
			if err := os.Rename(f.Name(), output); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "rfs: wrote %s (%s)\n", output, image.HumanSize(n))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&output, "output", "o", "", "output file")
	fl.StringVar(&comp, "comp", "gzip", "compressor")
	fl.StringVarP(&blockSize, "block-size", "b", "128K", "data block size")
	fl.BoolVar(&allRoot, "all-root", false, "make every entry owned by root")
	fl.Int64Var(&allTime, "all-time", 0, "set every entry's mtime (seconds since 1970)")
	fl.Int64Var(&mkfsTime, "mkfs-time", 0, "superblock time (default $SOURCE_DATE_EPOCH or 0)")
	return cmd
}
