//go:build linux

package ext4fs

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rfsbuild/rfs/ext4fs/jbd2"
)

// crashVariants are the journals a power cut leaves: the data partition's
// own features (image/ext4: checksum v3, 64bit), no checksums and 32-bit
// block numbers, checksum v1 (journal_checksum without metadata_csum),
// async commits, and data=journal (file data in the log, escaped blocks).
var crashVariants = []struct {
	name  string
	mkfs  []string
	mount string
}{
	{"image-ext4-v3", []string{"-b", "4096", "-I", "256", "-J", "size=4",
		"-O", "has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize,sparse_super,filetype,resize_inode,dir_index"}, ""},
	{"nocsum-32bit", []string{"-b", "4096", "-J", "size=4", "-O", "^metadata_csum,^64bit"}, ""},
	{"v1-1k", []string{"-b", "1024", "-J", "size=1", "-O", "^metadata_csum,^64bit"}, "journal_checksum"},
	{"v3-async", []string{"-b", "4096", "-J", "size=4", "-O", "metadata_csum,64bit"}, "data=writeback,journal_async_commit"},
	{"v3-datajournal-1k", []string{"-b", "1024", "-J", "size=1", "-O", "metadata_csum,64bit"}, "data=journal"},
	{"nocsum-datajournal-32bit", []string{"-b", "4096", "-J", "size=4", "-O", "^metadata_csum,^64bit"}, "data=journal"},
}

// TestCrashReplay runs seeded random workloads on loop-mounted ext4
// filesystems, copies the image while it is still mounted after the
// last fsync (a power cut: the journal holds committed transactions not
// yet written to their places, needs_recovery is set), and checks that
// the in-memory replay reads every path exactly as e2fsck's replay of a
// second copy does.
func TestCrashReplay(t *testing.T) {
	need(t, "mke2fs", "e2fsck", "mount", "umount", "cp")
	if os.Geteuid() != 0 {
		t.Skip("needs root (loop mounts)")
	}
	for _, v := range crashVariants {
		for _, seed := range []uint64{1, 2, 3} {
			t.Run(fmt.Sprintf("%s/seed%d", v.name, seed), func(t *testing.T) {
				crashCase(t, v.mkfs, v.mount, seed)
			})
		}
	}
}

func crashCase(t *testing.T, mkfsOpts []string, mountOpts string, seed uint64) {
	img := mkfs(t, 128<<20, "", append([]string{"-t", "ext4"}, mkfsOpts...)...)
	crash := crashImage(t, img, mountOpts, seed)
	fsys, err := openImage(t, crash)
	if err != nil {
		t.Fatalf("open the crash image: %v", err)
	}
	if !fsys.Superblock().NeedsRecovery {
		t.Fatal("the crash image does not need recovery: the test proves nothing")
	}
	rec := fsys.Recovery()
	changed := replayChanges(t, fsys)
	t.Logf("replayed %d transactions, %d blocks (%d differ from their place), %d revoked copies", rec.Transactions, rec.Blocks, changed, rec.Revoked)
	if changed == 0 {
		t.Fatal("every replayed block is already in place: the test proves nothing")
	}
	got, err := walkAll(fsys)
	if err != nil {
		t.Fatalf("walk the replayed view: %v", err)
	}
	for _, oracle := range [][]string{{"-E", "journal_only", "-y"}, {"-fy"}} {
		fixed := filepath.Join(t.TempDir(), "fixed.img")
		runTool(t, "cp", "--sparse=always", crash, fixed)
		out, err := exec.Command("e2fsck", append(oracle, fixed)...).CombinedOutput()
		if code := exitCode(err); code > 1 {
			t.Fatalf("e2fsck %s: exit %d\n%s", oracle, code, out)
		}
		efs, err := openImage(t, fixed)
		if err != nil {
			t.Fatalf("open the e2fsck copy: %v", err)
		}
		if efs.Superblock().NeedsRecovery {
			t.Fatalf("e2fsck %s left needs_recovery set", oracle)
		}
		want, err := walkAll(efs)
		if err != nil {
			t.Fatalf("walk the e2fsck copy: %v", err)
		}
		diffViews(t, strings.Join(oracle, " "), got, want)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return 99
}

// replayChanges counts the replayed blocks whose journal copy differs
// from the block in its place.
func replayChanges(t *testing.T, fsys *FS) int {
	t.Helper()
	if fsys.journal == nil {
		return 0
	}
	n := 0
	bs := fsys.journal.bs
	a, b := make([]byte, bs), make([]byte, bs)
	for blk, c := range fsys.journal.blocks {
		if err := fsys.journal.j.ReadBlock(c.Block, a); err != nil {
			t.Fatal(err)
		}
		if c.Escaped {
			binary.BigEndian.PutUint32(a, jbd2.Magic)
		}
		if err := fsys.readMedium(b, int64(blk)*bs); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			n++
		}
	}
	return n
}

// diffViews reports every path whose entry differs.
func diffViews(t *testing.T, oracle string, got, want map[string]entry) {
	t.Helper()
	var paths []string
	for p := range want {
		paths = append(paths, p)
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	bad := 0
	for _, p := range paths {
		g, gok := got[p]
		w, wok := want[p]
		switch {
		case !gok:
			t.Errorf("%s: %s is missing from the replayed view", oracle, p)
		case !wok:
			t.Errorf("%s: %s is in the replayed view only", oracle, p)
		case !reflect.DeepEqual(norm(g), norm(w)):
			t.Errorf("%s: %s differs:\n replay %+v\n e2fsck %+v", oracle, p, brief(g), brief(w))
		default:
			continue
		}
		if bad++; bad > 20 {
			t.Fatal("too many differences")
		}
	}
	t.Logf("%s: %d paths compared", oracle, len(paths))
}

func norm(e entry) entry {
	if len(e.xattrs) == 0 {
		e.xattrs = nil
	}
	if len(e.content) == 0 {
		e.content = nil
	}
	return e
}

func brief(e entry) string {
	return fmt.Sprintf("ino %d mode %o uid %d gid %d size %d mtime %d target %q xattrs %d content %d bytes",
		e.ino, e.mode, e.uid, e.gid, e.size, e.mtime, e.target, len(e.xattrs), len(e.content))
}

// crashImage loop-mounts img, runs the seeded workload and returns a copy
// of the image taken while it is still mounted, after the last fsync.
func crashImage(t *testing.T, img, opts string, seed uint64) string {
	t.Helper()
	return crashImageWith(t, img, opts, func(dir string) { workload(t, dir, seed) })
}

func crashImageWith(t *testing.T, img, opts string, work func(dir string)) string {
	t.Helper()
	mnt := t.TempDir()
	o := "loop,noatime"
	if opts != "" {
		o += "," + opts
	}
	runTool(t, "mount", "-o", o, img, mnt)
	mounted := true
	defer func() {
		if mounted {
			exec.Command("umount", mnt).Run()
		}
	}()
	work(mnt)
	crash := filepath.Join(t.TempDir(), "crash.img")
	runTool(t, "cp", "--sparse=always", img, crash)
	runTool(t, "umount", mnt)
	mounted = false
	return crash
}

// workload makes seeded random changes under dir: files of many sizes
// (some starting with the journal's magic: escaped blocks), overwrites,
// truncates, renames, unlinks, directories made and removed, symlinks,
// hard links, xattrs, modes and owners; fsyncs commit transactions as it
// goes, and at the end every file is fsynced (nothing is left for
// writeback, which would write the journal while the image is copied).
func workload(t *testing.T, dir string, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, seed*7919))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	var files, dirs []string
	dirs = append(dirs, dir)
	content := func() []byte {
		n := []int{0, 1, 100, 1000, 4096, 5000, 40000, 120000}[r.IntN(8)]
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		if n >= 4 && r.IntN(3) == 0 {
			binary.BigEndian.PutUint32(b, jbd2.Magic)
		}
		return b
	}
	pick := func(s []string) string { return s[r.IntN(len(s))] }
	remove := func(s []string, x string) []string {
		for i, v := range s {
			if v == x {
				return append(s[:i], s[i+1:]...)
			}
		}
		return s
	}
	fsync := func(p string) {
		f, err := os.Open(p)
		must(err)
		must(f.Sync())
		f.Close()
	}
	for i := range 400 {
		switch op := r.IntN(12); {
		case op < 3 || len(files) == 0:
			p := filepath.Join(pick(dirs), fmt.Sprintf("f%d", i))
			must(os.WriteFile(p, content(), 0o644))
			files = append(files, p)
		case op == 3:
			f, err := os.OpenFile(pick(files), os.O_WRONLY, 0)
			must(err)
			_, err = f.WriteAt(content(), int64(r.IntN(100000)))
			must(err)
			f.Close()
		case op == 4:
			must(os.Truncate(pick(files), int64(r.IntN(50000))))
		case op == 5:
			p := pick(files)
			q := filepath.Join(pick(dirs), fmt.Sprintf("r%d", i))
			must(os.Rename(p, q))
			files = append(remove(files, p), q)
		case op == 6:
			p := pick(files)
			must(os.Remove(p))
			files = remove(files, p)
		case op == 7:
			p := filepath.Join(pick(dirs), fmt.Sprintf("d%d", i))
			must(os.Mkdir(p, 0o755))
			dirs = append(dirs, p)
			for k := range r.IntN(40) {
				q := filepath.Join(p, fmt.Sprintf("many-entries-with-long-names-%03d", k))
				must(os.WriteFile(q, nil, 0o600))
				files = append(files, q)
			}
		case op == 8 && len(dirs) > 1:
			d := dirs[1+r.IntN(len(dirs)-1)]
			must(os.RemoveAll(d))
			var keep []string
			for _, x := range dirs {
				if x != d && !strings.HasPrefix(x, d+"/") {
					keep = append(keep, x)
				}
			}
			dirs = keep
			keep = nil
			for _, x := range files {
				if !strings.HasPrefix(x, d+"/") {
					keep = append(keep, x)
				}
			}
			files = keep
		case op == 9:
			target := strings.Repeat("t", 1+r.IntN(300))
			must(os.Symlink(target, filepath.Join(pick(dirs), fmt.Sprintf("s%d", i))))
		case op == 10:
			p := pick(files)
			v := make([]byte, []int{1, 50, 900}[r.IntN(3)])
			must(unix.Lsetxattr(p, fmt.Sprintf("user.x%d", r.IntN(3)), v, 0))
			must(os.Chmod(p, os.FileMode(r.IntN(0o1000))))
			must(os.Lchown(p, r.IntN(70000), r.IntN(70000)))
		default:
			q := filepath.Join(pick(dirs), fmt.Sprintf("h%d", i))
			must(os.Link(pick(files), q))
			files = append(files, q)
		}
		if r.IntN(8) == 0 {
			fsync(pick(files))
		}
	}
	for _, p := range files {
		fsync(p)
	}
	for _, d := range dirs {
		fsync(d)
	}
	// A last change, committed: the log surely holds it.
	p := filepath.Join(dir, "last")
	must(os.WriteFile(p, []byte("last\n"), 0o644))
	fsync(p)
	fsync(dir)
}

// TestWriteJournalSeeds writes the fuzz seeds of package jbd2 (run with
// RFS_WRITE_JOURNAL_SEEDS=1, root): real journals the kernel left after a
// short workload and a power cut, on 1 KiB blocks, trimmed to their
// first 64 blocks (the log, which starts at block 1, fits) with the
// journal superblock's length and checksum set to match.
func TestWriteJournalSeeds(t *testing.T) {
	if os.Getenv("RFS_WRITE_JOURNAL_SEEDS") == "" {
		t.Skip("set RFS_WRITE_JOURNAL_SEEDS=1 to rewrite jbd2/testdata")
	}
	for _, v := range []struct{ name, opts, mount string }{
		{"kernel-v3-64bit", "metadata_csum,64bit", "data=journal"},
		{"kernel-plain-32bit", "^metadata_csum,^64bit", ""},
	} {
		img := mkfs(t, 8<<20, "", "-t", "ext4", "-b", "1024", "-J", "size=1", "-O", v.opts)
		crash := crashImageWith(t, img, v.mount, func(dir string) { smallWorkload(t, dir) })
		fsys, err := openImage(t, crash)
		if err != nil {
			t.Fatal(err)
		}
		if fsys.journal == nil || len(fsys.journal.blocks) == 0 {
			t.Fatal("nothing to replay")
		}
		j := make([]byte, 64*1024)
		for i := range uint32(64) {
			if err := fsys.journal.j.ReadBlock(i, j[i*1024:(i+1)*1024]); err != nil {
				t.Fatal(err)
			}
		}
		binary.BigEndian.PutUint32(j[0x10:], 64)
		if binary.BigEndian.Uint32(j[0x28:])&0x18 != 0 { // checksum v2/v3
			binary.BigEndian.PutUint32(j[0xfc:], 0)
			binary.BigEndian.PutUint32(j[0xfc:], ^crc32.Checksum(j[:1024], crc32.MakeTable(crc32.Castagnoli)))
		}
		var z bytes.Buffer
		w := gzip.NewWriter(&z)
		w.Write(j)
		w.Close()
		if err := os.WriteFile(filepath.Join("jbd2", "testdata", v.name+".jnl.gz"), z.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// smallWorkload makes a few changes that fit in a short log, then
// commits them.
func smallWorkload(t *testing.T, dir string) {
	t.Helper()
	for i := range 5 {
		b := bytes.Repeat([]byte{byte(i)}, 1500)
		binary.BigEndian.PutUint32(b, jbd2.Magic) // an escaped block with data=journal
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d", i)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(dir, "d"), 0o755)
	os.Symlink("f1", filepath.Join(dir, "d", "l"))
	os.Remove(filepath.Join(dir, "f2"))
	for _, p := range []string{"f0", "f1", "f3", "f4", "d", "."} {
		f, err := os.Open(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		f.Sync()
		f.Close()
	}
}
