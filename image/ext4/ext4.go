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
	"path/filepath"
	"runtime"
	"strings"

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
	mke2fs, err := findMke2fs()
	if err != nil {
		return err
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

// findMke2fs looks for mke2fs on PATH, then where the host's package
// manager keeps it off PATH (Homebrew's e2fsprogs is keg-only).
func findMke2fs() (string, error) {
	if p, ok := FindTool("mke2fs"); ok {
		return p, nil
	}
	return "", errors.New(missingMke2fs(runtime.GOOS))
}

// FindTool looks for an e2fsprogs program (mke2fs, debugfs, e2fsck) on
// PATH, then where the host's package manager keeps it off PATH
// (Homebrew's e2fsprogs is keg-only).
func FindTool(name string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	for _, dir := range offPathDirs(os.Getenv("HOMEBREW_PREFIX")) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// missingMke2fs says how to install mke2fs on a host running goos.
func missingMke2fs(goos string) string {
	switch goos {
	case "darwin":
		return "mke2fs not found: install e2fsprogs (brew install e2fsprogs; it makes the data partition's ext4). " +
			"Homebrew keeps it off PATH: rfs also looks in $(brew --prefix e2fsprogs)/sbin " +
			"(/opt/homebrew/opt/e2fsprogs/sbin, /usr/local/opt/e2fsprogs/sbin), or add that directory to PATH"
	case "windows":
		return "mke2fs not found: the data partition's ext4 is made by mke2fs (e2fsprogs), which Windows lacks: " +
			"put an mke2fs.exe on PATH (e.g. Cygwin's e2fsprogs package), or run rfs build in WSL"
	}
	return "mke2fs not found: install e2fsprogs (it makes the data partition's ext4)"
}

// copyNonZero copies the first size bytes of f to w, skipping blocks of
// zeros: the region reads as zeros already. For file systems that cannot
// tell data from holes.
func copyNonZero(w io.WriterAt, f *os.File, size int64) error {
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; {
		n := min(int64(len(buf)), size-off)
		if _, err := f.ReadAt(buf[:n], off); err != nil {
			return err
		}
		if !allZero(buf[:n]) {
			if _, err := w.WriteAt(buf[:n], off); err != nil {
				return err
			}
		}
		off += n
	}
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
