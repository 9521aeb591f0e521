package fat

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/rootfs"
)

// memImage is an in-memory io.WriterAt.
type memImage struct{ b []byte }

func (m *memImage) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}

func TestDeterministic(t *testing.T) {
	tc := testCases()[5] // 8.3 collisions: many names, several directories
	opts := Options{Label: "rpi", VolumeID: 0xdeadbeef, MTime: testTime}
	var sums [][32]byte
	for range 2 {
		tr := build(t, tc.files) // a fresh tree: map order differs between builds
		m := &memImage{}
		if err := Write(m, MinSize(tr), tr, opts); err != nil {
			t.Fatal(err)
		}
		sums = append(sums, sha256.Sum256(m.b))
	}
	// The same content from host files instead of memory.
	dir := t.TempDir()
	tr := rootfs.New(testTime)
	for name, data := range tc.files {
		p := filepath.Join(dir, strings.ReplaceAll(name, "/", "_"))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := tr.Add(name, &rootfs.Node{Type: rootfs.Regular, Content: rootfs.HostFile{Path: p, Len: int64(len(data))}}); err != nil {
			t.Fatal(err)
		}
	}
	img := writeImage(t, tr, MinSize(tr), opts)
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	sums = append(sums, sha256.Sum256(b))
	if sums[0] != sums[1] || sums[0] != sums[2] {
		t.Fatalf("same tree, different images: %x", sums)
	}
	// Options change the bytes.
	m := &memImage{}
	opts.VolumeID++
	if err := Write(m, MinSize(tr), tr, opts); err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(m.b) == sums[0] {
		t.Fatal("a different volume ID gave the same image")
	}
}

// TestOverGarbage writes over a region full of non-zero bytes: everything
// the file system uses must be overwritten.
func TestOverGarbage(t *testing.T) {
	tr := build(t, testCases()[2].files)
	size := MinSize(tr)
	img := filepath.Join(t.TempDir(), "garbage.img")
	if err := os.WriteFile(img, bytes.Repeat([]byte{0xA5}, int(size)), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(f, size, tr, Options{MTime: testTime}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	want := listing(t, tr)
	checkFsck(t, img)
	checkMtools(t, img, want)
	checkDiskfs(t, img, size, want, "BOOT")
}

// TestBootSector checks the BPB fields that readers depend on.
func TestBootSector(t *testing.T) {
	tr := build(t, map[string][]byte{"a": []byte("a")})
	m := &memImage{}
	const size = 70 << 20
	if err := Write(m, size, tr, Options{Label: "Boot-A", VolumeID: 0x12345678, MTime: testTime}); err != nil {
		t.Fatal(err)
	}
	b := m.b
	le := binary.LittleEndian
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"bytes/sector", uint64(le.Uint16(b[11:])), 512},
		{"sectors/cluster", uint64(b[13]), 1},
		{"reserved", uint64(le.Uint16(b[14:])), 32},
		{"FATs", uint64(b[16]), 2},
		{"root entries", uint64(le.Uint16(b[17:])), 0},
		{"media", uint64(b[21]), 0xF8},
		{"total sectors", uint64(le.Uint32(b[32:])), size / 512},
		{"root cluster", uint64(le.Uint32(b[44:])), 2},
		{"fsinfo", uint64(le.Uint16(b[48:])), 1},
		{"backup", uint64(le.Uint16(b[50:])), 6},
		{"volume id", uint64(le.Uint32(b[67:])), 0x12345678},
		{"signature", uint64(le.Uint16(b[510:])), 0xAA55},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
	if got := string(b[71:82]); got != "BOOT-A     " {
		t.Errorf("label %q", got)
	}
	if !bytes.Equal(b[:512], b[6*512:7*512]) || !bytes.Equal(b[512:1024], b[7*512:8*512]) {
		t.Error("backup boot sector or FSInfo differs from the primary")
	}
	if int64(len(b)) != size {
		t.Errorf("image is %d bytes, want %d", len(b), size)
	}
}

// TestGeometryMatchesMkfs compares our layout with mkfs.vfat -F 32's for
// the same sizes: cluster size, reserved sectors, FAT size.
func TestGeometryMatchesMkfs(t *testing.T) {
	mkfs := needTool(t, "mkfs.vfat")
	dir := t.TempDir()
	for _, mb := range []int64{34, 64, 70, 100, 256, 260, 261, 300, 512, 1024, 8200} {
		img := filepath.Join(dir, "m.img")
		os.Remove(img)
		if err := os.WriteFile(img, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(img, mb<<20); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(mkfs, "-F", "32", img).CombinedOutput(); err != nil {
			t.Fatalf("mkfs.vfat %d MiB: %v\n%s", mb, err, out)
		}
		f, err := os.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 512)
		_, err = io.ReadFull(f, b)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		g, err := layout(mb << 20)
		if err != nil {
			t.Fatalf("%d MiB: %v", mb, err)
		}
		le := binary.LittleEndian
		if int64(b[13]) != g.spc || int64(le.Uint16(b[14:])) != g.reserved || int64(le.Uint32(b[36:])) != g.fatSectors {
			t.Errorf("%d MiB: mkfs.vfat has %d sectors/cluster, %d reserved, %d sectors/FAT; we have %d, %d, %d",
				mb, b[13], le.Uint16(b[14:]), le.Uint32(b[36:]), g.spc, g.reserved, g.fatSectors)
		}
	}
}

// patternSource is size bytes of a repeating pattern, generated on the fly.
type patternSource int64

func (p patternSource) Size() int64 { return int64(p) }
func (p patternSource) Open() (io.ReadCloser, error) {
	return io.NopCloser(io.LimitReader(patternReader{}, int64(p))), nil
}

type patternReader struct{}

func (patternReader) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte(i * 7)
	}
	return len(b), nil
}

func TestMinSize(t *testing.T) {
	if got, want := MinSize(rootfs.New(0)), minFAT32Size(); got != want {
		t.Errorf("MinSize(empty) = %d, want the FAT32 minimum %d", got, want)
	}
	if got := minFAT32Size(); got != 33<<20 {
		t.Errorf("FAT32 minimum is %d MiB, expected 33 (65525 512-byte clusters + FATs)", got>>20)
	}
	for _, fileSize := range []int64{40 << 20, 70<<20 + 1, 250 << 20, 258 << 20, 300 << 20} {
		tr := rootfs.New(testTime)
		if err := tr.Add("big", &rootfs.Node{Type: rootfs.Regular, Content: patternSource(fileSize)}); err != nil {
			t.Fatal(err)
		}
		if err := tr.Add("dir/small", &rootfs.Node{Type: rootfs.Regular, Content: rootfs.Bytes("x")}); err != nil {
			t.Fatal(err)
		}
		min := MinSize(tr)
		if min%(1<<20) != 0 {
			t.Errorf("MinSize = %d, not MiB-aligned", min)
		}
		if err := Write(discardAt{}, min, tr, Options{}); err != nil {
			t.Errorf("%d-byte file: Write at MinSize %d MiB: %v", fileSize, min>>20, err)
		}
		err := Write(discardAt{}, min-1<<20, tr, Options{})
		if err == nil {
			t.Errorf("%d-byte file: Write at MinSize-1MiB (%d MiB) works, MinSize is not minimal", fileSize, min>>20-1)
		} else if !strings.Contains(err.Error(), "MinSize") {
			t.Errorf("%d-byte file: error does not point at MinSize: %v", fileSize, err)
		}
		t.Logf("%d MiB file: MinSize %d MiB", fileSize>>20, min>>20)
	}
}

type discardAt struct{}

func (discardAt) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }

// badSource misreports its size or fails.
type badSource struct {
	size    int64
	content []byte
	openErr error
}

func (s badSource) Size() int64 { return s.size }
func (s badSource) Open() (io.ReadCloser, error) {
	if s.openErr != nil {
		return nil, s.openErr
	}
	return io.NopCloser(bytes.NewReader(s.content)), nil
}

type failingWriter struct{}

func (failingWriter) WriteAt([]byte, int64) (int, error) { return 0, errors.New("disk on fire") }

func TestWriteErrors(t *testing.T) {
	file := func(s rootfs.Source) *rootfs.Node { return &rootfs.Node{Type: rootfs.Regular, Content: s} }
	cases := []struct {
		name  string
		add   map[string]*rootfs.Node
		size  int64
		opts  Options
		w     io.WriterAt
		wants []string
	}{
		{name: "symlink", add: map[string]*rootfs.Node{"dir/link": {Type: rootfs.Symlink, Target: "x"}},
			wants: []string{"/dir/link", "symlink", "cannot be stored on FAT"}},
		{name: "chardev", add: map[string]*rootfs.Node{"dev/null": {Type: rootfs.CharDev, Major: 1, Minor: 3}},
			wants: []string{"/dev/null", "chardev"}},
		{name: "fifo", add: map[string]*rootfs.Node{"fifo": {Type: rootfs.FIFO}}, wants: []string{"/fifo", "fifo"}},
		{name: "colon", add: map[string]*rootfs.Node{"a/b:c": file(rootfs.Bytes("x"))}, wants: []string{"/a/b:c", `':'`}},
		{name: "backslash", add: map[string]*rootfs.Node{`a\b`: file(rootfs.Bytes("x"))}, wants: []string{`'\\'`}},
		{name: "question", add: map[string]*rootfs.Node{"what?": file(rootfs.Bytes("x"))}, wants: []string{`'?'`}},
		{name: "control", add: map[string]*rootfs.Node{"bell\a": file(rootfs.Bytes("x"))}, wants: []string{"control character"}},
		{name: "trailing dot", add: map[string]*rootfs.Node{"name.": file(rootfs.Bytes("x"))}, wants: []string{"ends with"}},
		{name: "too long", add: map[string]*rootfs.Node{strings.Repeat("n", 256): file(rootfs.Bytes("x"))}, wants: []string{"256 UTF-16 units"}},
		{name: "case duplicate", add: map[string]*rootfs.Node{"d/Config.txt": file(rootfs.Bytes("x")), "d/config.TXT": file(rootfs.Bytes("y"))},
			wants: []string{"case-insensitive", "/d"}},
		{name: "content longer than size", add: map[string]*rootfs.Node{"f": file(badSource{size: 10, content: make([]byte, 20)})},
			wants: []string{"/f", "longer than its size 10"}},
		{name: "content shorter than size", add: map[string]*rootfs.Node{"f": file(badSource{size: 10, content: make([]byte, 3)})},
			wants: []string{"/f", "ended after 3 bytes"}},
		{name: "open fails", add: map[string]*rootfs.Node{"f": file(badSource{size: 10, openErr: os.ErrPermission})},
			wants: []string{"/f", "permission denied"}},
		{name: "too big for FAT32", add: map[string]*rootfs.Node{"f": file(patternSource(1 << 32))}, size: 8 << 30,
			wants: []string{"/f", "4 GiB"}},
		{name: "partition too small for FAT32", size: 20 << 20, wants: []string{"too small for FAT32", "minimum is 34603008 bytes (33 MiB)"}},
		{name: "tree too big", add: map[string]*rootfs.Node{"f": file(patternSource(40 << 20))}, size: 40 << 20,
			wants: []string{"MinSize says 42991616"}},
		{name: "beyond 2 TiB", size: 3 << 40, wants: []string{"2 TiB"}},
		{name: "bad label", opts: Options{Label: "no*stars"}, wants: []string{"label", "'*'"}},
		{name: "long label", opts: Options{Label: "twelve chars"}, wants: []string{"label", "longer than 11"}},
		{name: "write fails", w: failingWriter{}, wants: []string{"disk on fire", "offset 0"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := rootfs.New(testTime)
			for p, n := range c.add {
				if err := tr.Add(p, n); err != nil {
					t.Fatal(err)
				}
			}
			size := c.size
			if size == 0 {
				size = 64 << 20
			}
			w := c.w
			if w == nil {
				w = discardAt{}
			}
			err := Write(w, size, tr, c.opts)
			if err == nil {
				t.Fatal("Write succeeded")
			}
			for _, s := range c.wants {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			_ = MinSize(tr) // must not panic on a tree Write rejects
		})
	}
	if err := Write(discardAt{}, 64<<20, nil, Options{}); err == nil {
		t.Error("nil tree accepted")
	}
	if MinSize(nil) != minFAT32Size() {
		t.Error("MinSize(nil) is not the FAT32 minimum")
	}
}
