package fat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestEditor writes, replaces and removes a small root directory file in
// images whose root directory is nearly or completely full (the file's two
// slots go in a new cluster, or straddle the boundary); the reader sees
// each state, fsck.fat finds nothing to fix, and the timestamp follows the
// writer's rule (UTC) whatever the caller's time zone.
func TestEditor(t *testing.T) {
	for _, n := range []int{0, 13, 14, 15, 40} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			files := map[string][]byte{}
			for i := 0; i < n; i++ {
				files[fmt.Sprintf("/F%d.TXT", i)] = []byte("f")
			}
			const size = 40 << 20
			img := writeImage(t, build(t, files), size, Options{})
			f, err := os.OpenFile(img, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ed, err := OpenEditor(f, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok, err := ed.ReadFile("rfs-reset"); ok || err != nil {
				t.Fatalf("ReadFile before: %v %v", ok, err)
			}
			// 23:04:06 at UTC+5 is 18:04:06 UTC.
			at := time.Date(2030, 1, 2, 23, 4, 6, 0, time.FixedZone("X", 5*3600))
			for _, content := range []string{"upper\n", "all\n"} {
				if err := ed.WriteSmall("rfs-reset", []byte(content), at); err != nil {
					t.Fatal(err)
				}
				r, err := Open(f, size)
				if err != nil {
					t.Fatal(err)
				}
				if b, err := r.ReadFile("/rfs-reset", 1<<20); err != nil || string(b) != content {
					t.Fatalf("reader: %q %v, want %q", b, err, content)
				}
				if b, ok, err := ed.ReadFile("RFS-RESET"); !ok || err != nil || string(b) != content {
					t.Fatalf("editor: %q %v %v", b, ok, err)
				}
				checkFsck(t, img)
			}
			_, e, _, err := ed.lookup("rfs-reset")
			if err != nil || e == nil {
				t.Fatal(e, err)
			}
			raw := make([]byte, 32)
			f.ReadAt(raw, e.off)
			want := dosTime(at.Unix())
			if tm, d := binary.LittleEndian.Uint16(raw[22:]), binary.LittleEndian.Uint16(raw[24:]); tm != want.time || d != want.date || tm>>11 != 18 {
				t.Errorf("mtime %#x %#x, want %#x %#x (18:04:06 UTC)", tm, d, want.time, want.date)
			}
			if ok, err := ed.Remove("rfs-reset"); !ok || err != nil {
				t.Fatalf("Remove: %v %v", ok, err)
			}
			if ok, err := ed.Remove("rfs-reset"); ok || err != nil {
				t.Fatalf("Remove again: %v %v", ok, err)
			}
			r, err := Open(f, size)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.ReadFile("/rfs-reset", 1<<20); !errors.Is(err, ErrNotExist) {
				t.Errorf("after Remove: %v", err)
			}
			checkFsck(t, img)
		})
	}
}

func TestEditorRefuses(t *testing.T) {
	img := writeImage(t, build(t, nil), 40<<20, Options{})
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := OpenEditor(f, 512); err == nil {
		t.Error("opened a FAT at the wrong offset")
	}
	ed, err := OpenEditor(f, 0)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(testTime, 0)
	if err := ed.Mkdir("d", at); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"d/f", "r"} {
		if err := ed.WriteSmall(p, []byte("x"), at); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		op   func() error
		want string
	}{
		{"write in a missing directory", func() error { return ed.WriteSmall("nodir/f", nil, at) }, "no such file"},
		{"write through a file", func() error { return ed.WriteSmall("d/f/g", nil, at) }, "not a directory"},
		{"write over a directory", func() error { return ed.WriteSmall("d", nil, at) }, "is a directory"},
		{"dot-dot", func() error { return ed.WriteSmall("d/../f", nil, at) }, "not allowed"},
		{"bad name", func() error { return ed.WriteSmall("a:b", nil, at) }, "not allowed on FAT"},
		{"too deep", func() error { return ed.MkdirAll(strings.Repeat("a/", 20), at) }, "deeper than"},
		{"mkdir existing", func() error { return ed.Mkdir("D", at) }, "exists"},
		{"mkdir over a file", func() error { return ed.MkdirAll("d/f/g", at) }, "is a file"},
		{"rename across directories", func() error { return ed.Rename("d/f", "f") }, "within one directory"},
		{"rename missing", func() error { return ed.Rename("d/nothing", "d/g") }, "no such file"},
		{"rename over a directory", func() error { return ed.Rename("r", "D") }, "is a directory"},
		{"remove a directory", func() error { _, err := ed.Remove("d"); return err }, "is a directory"},
		{"root", func() error { return ed.RemoveAll("/") }, "root directory"},
		{"short content", func() error { return ed.WriteFile("g", strings.NewReader("ab"), 3, at) }, "content ended"},
		{"long content", func() error { return ed.WriteFile("g", strings.NewReader("abcd"), 3, at) }, "longer than"},
	} {
		err := c.op()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	if b, ok, err := ed.ReadFile("d/f"); !ok || err != nil || string(b) != "x" {
		t.Errorf("d/f after the refusals: %q %v %v", b, ok, err)
	}
	if _, ok, _ := ed.ReadFile("g"); ok {
		t.Error("g written from a short or long reader")
	}
	checkFsck(t, img)
}
