// Package ext4 makes the empty ext4 filesystem of an image's data partition.
//
// It runs mke2fs (e2fsprogs) rather than go-diskfs's ext4 writer: go-diskfs
// stamps the current time and random hash seeds into every filesystem, and
// rfs images must be byte-identical for identical inputs. mke2fs takes the
// UUID, the hash seed and (through E2FSPROGS_FAKE_TIME) the time from us.
package ext4

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/rfsbuild/rfs/subproc"
)

// Options describe the filesystem.
type Options struct {
	Label    string
	UUID     string // filesystem UUID
	HashSeed string // directory hash seed, a UUID
	Epoch    int64  // every timestamp mke2fs writes
}

// Make formats size bytes as ext4 (4 KiB blocks, root directory owned by
// root) and writes the result to w at offset 0. Only the filesystem's
// metadata is written: the region must read as zeros elsewhere.
func Make(ctx context.Context, w io.WriterAt, size int64, o Options) error {
	mke2fs, err := exec.LookPath("mke2fs")
	if err != nil {
		return errors.New("mke2fs not found: install e2fsprogs (it makes the data partition's ext4)")
	}
	tmp, err := os.CreateTemp("", "rfs-ext4-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	// Features are spelled out and the host's mke2fs.conf ignored, so the
	// same inputs give the same bytes on every build host.
	cmd := subproc.Command(ctx, mke2fs, "-q", "-F", "-t", "ext4", "-b", "4096", "-I", "256", "-i", "16384",
		"-O", "has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize,sparse_super,filetype,resize_inode,dir_index",
		"-L", o.Label, "-U", o.UUID,
		"-E", "hash_seed="+o.HashSeed+",root_owner=0:0,lazy_itable_init=0,nodiscard",
		tmp.Name(), fmt.Sprintf("%dk", size/1024))
	cmd.Env = append(os.Environ(), fmt.Sprintf("E2FSPROGS_FAKE_TIME=%d", o.Epoch), "MKE2FS_CONFIG=/dev/null")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("mke2fs: %w", ctx.Err())
		}
		return fmt.Errorf("mke2fs: %w: %s", err, strings.TrimSpace(out.String()))
	}
	return copyData(w, tmp, size)
}

// copyData copies the data extents of f (skipping holes) to w.
func copyData(w io.WriterAt, f *os.File, size int64) error {
	buf := make([]byte, 1<<20)
	fd := int(f.Fd())
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if err != nil {
			if errors.Is(err, unix.ENXIO) {
				return nil // only holes left
			}
			return fmt.Errorf("seek data: %w", err)
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return fmt.Errorf("seek hole: %w", err)
		}
		for p := data; p < hole; {
			n := min(int64(len(buf)), hole-p)
			if _, err := f.ReadAt(buf[:n], p); err != nil {
				return err
			}
			if _, err := w.WriteAt(buf[:n], p); err != nil {
				return err
			}
			p += n
		}
		off = hole
	}
	return nil
}
