package fat

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// cutImage is a disk that loses power after a number of writes. Writes
// since the last Sync may or may not have reached the medium, in any
// subset (a cache reorders them): variant picks which.
type cutImage struct {
	cur     []byte // what reads see: every write applied
	durable []cutWrite
	pending []cutWrite
	budget  int // writes left before the cut; negative: no cut
	writes  int
}

type cutWrite struct {
	off int64
	b   []byte
}

var errCut = errors.New("power cut")

func (c *cutImage) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(c.cur)) {
		return 0, errors.New("read past the end")
	}
	return copy(p, c.cur[off:]), nil
}

func (c *cutImage) WriteAt(p []byte, off int64) (int, error) {
	if c.budget == 0 {
		return 0, errCut
	}
	c.budget--
	c.writes++
	if off < 0 || off+int64(len(p)) > int64(len(c.cur)) {
		return 0, errors.New("write past the end")
	}
	copy(c.cur[off:], p)
	c.pending = append(c.pending, cutWrite{off, bytes.Clone(p)})
	return len(p), nil
}

func (c *cutImage) Sync() error {
	if c.budget == 0 {
		return errCut
	}
	c.durable = append(c.durable, c.pending...)
	c.pending = nil
	return nil
}

// after is the medium after the cut: base, the durable writes, and the
// pending writes variant keeps (0 none, 1 all, 2 every other one, 3 the
// other half).
func (c *cutImage) after(base []byte, variant int) []byte {
	out := bytes.Clone(base)
	for _, w := range c.durable {
		copy(out[w.off:], w.b)
	}
	for i, w := range c.pending {
		if variant == 1 || (variant == 2 && i%2 == 0) || (variant == 3 && i%2 == 1) {
			copy(out[w.off:], w.b)
		}
	}
	return out
}

// benignFsck is what fsck.fat may report after a cut: clusters no entry
// references, the free count, a FAT copy behind the first.
var benignFsck = regexp.MustCompile(`^(fsck\.fat |Starting |Free cluster summary|Reclaimed \d+ unused cluster|Checking for unused|FATs differ but appear to be intact|  Using first FAT|Perform changes|Leaving filesystem unchanged|\S+: \d+ files, \d+/\d+ clusters$|$)`)

// cutCase is an operation on the cut image and what must hold after a cut
// anywhere in it.
type cutCase struct {
	name  string
	setup func(ed *Editor) error
	op    func(ed *Editor) error
	check func(fs *FS) error // old or new state, nothing else
}

func oneOf(fs *FS, path string, allowMissing bool, want ...[]byte) error {
	b, err := fs.ReadFile(path, 1<<30)
	if errors.Is(err, ErrNotExist) && allowMissing {
		return nil
	}
	if err != nil {
		return err
	}
	for _, w := range want {
		if bytes.Equal(b, w) {
			return nil
		}
	}
	return fmt.Errorf("%s: %d bytes, neither the old nor the new content", path, len(b))
}

func cutCases() []cutCase {
	oldK, newK := slotFiles["slot-a/vmlinuz"], randBytes(30, 100000)
	oldS, newS := slotFiles["rfs-slots.json"], []byte(`{"active":"b"}`)
	filler := func(ed *Editor) error {
		for i := range 14 {
			if err := ed.WriteSmall(fmt.Sprintf("slot-a/overlay-number-%02d.dtbo", i), []byte("o"), editAt); err != nil {
				return err
			}
		}
		return nil
	}
	return []cutCase{
		{"replace", nil,
			func(ed *Editor) error {
				return ed.WriteFile("slot-a/vmlinuz", bytes.NewReader(newK), int64(len(newK)), editAt)
			},
			func(fs *FS) error { return oneOf(fs, "slot-a/vmlinuz", false, oldK, newK) }},
		{"rename over", func(ed *Editor) error { return ed.WriteSmall("rfs-slots.json.tmp", newS, editAt) },
			func(ed *Editor) error { return ed.Rename("rfs-slots.json.tmp", "rfs-slots.json") },
			func(fs *FS) error { return oneOf(fs, "rfs-slots.json", false, oldS, newS) }},
		{"new file growing its directory", filler,
			func(ed *Editor) error {
				return ed.WriteFile("slot-a/initramfs.img", bytes.NewReader(newK), int64(len(newK)), editAt)
			},
			func(fs *FS) error { return oneOf(fs, "slot-a/initramfs.img", true, newK) }},
		{"remove all", filler,
			func(ed *Editor) error { return ed.RemoveAll("slot-a") },
			func(fs *FS) error {
				if _, err := fs.ReadFile("slot-a/overlay-number-13.dtbo", 10); errors.Is(err, ErrNotExist) {
					return nil
				}
				return oneOf(fs, "slot-a/vmlinuz", false, oldK)
			}},
		{"mkdir", nil,
			func(ed *Editor) error { return ed.MkdirAll("slot-b/overlays", editAt) },
			func(fs *FS) error {
				_, err := fs.ReadFile("slot-b/overlays/x", 10)
				if err == nil || (!errors.Is(err, ErrNotExist) && !strings.Contains(err.Error(), "is not a directory")) {
					return fmt.Errorf("slot-b/overlays/x: %v", err)
				}
				return nil
			}},
	}
}

// TestEditorPowerCut cuts the power after every write of each operation,
// with the writes since the last sync lost, kept, or half kept: the
// file system always holds the old or the new state, and fsck.fat finds
// at most unreferenced clusters and a stale free count.
func TestEditorPowerCut(t *testing.T) {
	fsck := needTool(t, "fsck.vfat")
	for _, c := range cutCases() {
		t.Run(strings.ReplaceAll(c.name, " ", "-"), func(t *testing.T) {
			base := cutBase(t, c.setup)
			for n := 0; ; n++ {
				img := &cutImage{cur: bytes.Clone(base), budget: n}
				ed, err := OpenEditor(img, 0)
				if err != nil {
					t.Fatal(err)
				}
				err = c.op(ed)
				if err == nil {
					t.Logf("%d writes", img.writes)
					return
				}
				if !errors.Is(err, errCut) {
					t.Fatalf("cut after %d writes: %v", n, err)
				}
				for v := range min(4, 1+len(img.pending)*2) {
					what := fmt.Sprintf("cut after %d writes, variant %d", n, v)
					after := img.after(base, v)
					checkCut(t, fsck, after, c.check, what)
					if c.name != "rename over" { // its temporary file may be gone: the caller starts over
						rerun(t, after, c, what)
					}
				}
			}
		})
	}
}

// cutBase is the image before the operation.
func cutBase(t *testing.T, setup func(*Editor) error) []byte {
	t.Helper()
	img := writeImage(t, build(t, slotFiles), 40<<20, Options{})
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ed, err := OpenEditor(f, 0)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		if err := setup(ed); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkCut(t *testing.T, fsck string, b []byte, check func(*FS) error, what string) {
	t.Helper()
	fs, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if err := check(fs); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	img := writeSparse(t, b)
	out, _ := exec.Command(fsck, "-n", img).CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if !benignFsck.MatchString(l) {
			t.Fatalf("%s: fsck.fat -n reports %q\n%s", what, l, out)
		}
	}
}

// writeSparse writes b to a file, skipping zero blocks (fast for a 40 MiB
// file system that is mostly free).
func writeSparse(t *testing.T, b []byte) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "cut.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(int64(len(b))); err != nil {
		t.Fatal(err)
	}
	zero := make([]byte, 64<<10)
	for off := 0; off < len(b); off += len(zero) {
		blk := b[off:min(off+len(zero), len(b))]
		if !bytes.Equal(blk, zero[:len(blk)]) {
			if _, err := f.WriteAt(blk, int64(off)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return img
}

// rerun runs the operation again on the file system a cut left: it
// completes, and the state is valid.
func rerun(t *testing.T, b []byte, c cutCase, what string) {
	t.Helper()
	d := &memDisk{bytes.Clone(b)}
	ed, err := OpenEditor(d, 0)
	if err != nil {
		t.Fatalf("%s: reopen: %v", what, err)
	}
	if err := c.op(ed); err != nil {
		t.Fatalf("%s: rerun: %v", what, err)
	}
	fs, err := Open(bytes.NewReader(d.b), int64(len(d.b)))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.check(fs); err != nil {
		t.Fatalf("%s: after the rerun: %v", what, err)
	}
}
