//go:build linux

package squashfs

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rfsbuild/rfs/rootfs"
)

// hostTree loads a host directory into a tree (content stays on disk and is
// streamed when the image is written). Hard links are kept.
func hostTree(tb testing.TB, root string) *rootfs.Tree {
	tb.Helper()
	tree := rootfs.New(0)
	inodes := map[[2]uint64]*rootfs.Node{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		rel, _ := filepath.Rel(root, p)
		if key := [2]uint64{st.Dev, st.Ino}; !fi.IsDir() && st.Nlink > 1 && inodes[key] != nil {
			return tree.Add(rel, inodes[key])
		}
		n := &rootfs.Node{Perm: uint32(fi.Mode().Perm()), UID: st.Uid, GID: st.Gid, MTime: st.Mtim.Sec}
		n.Perm = st.Mode & 0o7777
		switch fi.Mode().Type() {
		case 0:
			n.Type, n.Content = rootfs.Regular, rootfs.HostFile{Path: p, Len: fi.Size()}
		case fs.ModeDir:
			n = rootfs.NewDir(st.Mode&0o7777, st.Mtim.Sec)
			n.UID, n.GID = st.Uid, st.Gid
		case fs.ModeSymlink:
			n.Type = rootfs.Symlink
			if n.Target, err = os.Readlink(p); err != nil {
				return err
			}
		default:
			return nil // no devices etc. in the benchmark trees
		}
		if st.Nlink > 1 && !fi.IsDir() {
			inodes[[2]uint64{st.Dev, st.Ino}] = n
		}
		return tree.Add(rel, n)
	})
	if err != nil {
		tb.Fatal(err)
	}
	return tree
}

// benchDir is the host tree the benchmark packs; override with
// RFS_SQUASHFS_BENCH_DIR.
func benchDir(tb testing.TB) string {
	dir := os.Getenv("RFS_SQUASHFS_BENCH_DIR")
	if dir == "" {
		m, _ := filepath.Glob("/usr/lib/python3.*")
		if len(m) == 0 {
			tb.Skip("no /usr/lib/python3.* to pack; set RFS_SQUASHFS_BENCH_DIR")
		}
		dir = m[0]
	}
	return dir
}

// BenchmarkWrite packs a host directory and, once, runs mksquashfs -comp
// gzip on the same directory for comparison (reported as metrics).
func BenchmarkWrite(b *testing.B) {
	dir := benchDir(b)
	tree := hostTree(b, dir)
	out := filepath.Join(b.TempDir(), "rfs.sqfs")
	var size int64
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	for b.Loop() {
		f, err := os.Create(out)
		if err != nil {
			b.Fatal(err)
		}
		if size, err = Write(f, tree, Options{}); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(float64(size), "bytes")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		return
	}
	ms := filepath.Join(b.TempDir(), "mksquashfs.sqfs")
	start := time.Now()
	cmd := exec.Command("mksquashfs", dir, ms, "-comp", "gzip", "-noappend", "-no-xattrs", "-no-progress", "-quiet")
	if o, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("mksquashfs: %v\n%s", err, o)
	}
	el := time.Since(start)
	fi, _ := os.Stat(ms)
	b.ReportMetric(float64(fi.Size()), "mksquashfs-bytes")
	b.ReportMetric(el.Seconds(), "mksquashfs-s")
	ps := cmd.ProcessState
	b.ReportMetric((ps.UserTime() + ps.SystemTime()).Seconds(), "mksquashfs-cpu-s")
}
