package fat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var editAt = time.Unix(testTime, 0)

// slotFiles is a boot partition before an update to slot B.
var slotFiles = map[string][]byte{
	"config.txt":     []byte("[all]\nos_prefix=slot-a/\n"),
	"rfs-slots.json": []byte(`{"active":"a"}`),
	"slot.txt":       []byte("a\n"),
	"tryboot":        []byte("1\n"),
	"slot-a/":        nil,
	"slot-a/vmlinuz": randBytes(1, 70000),
}

// mkfsImage makes an empty FAT32 image of size bytes with mkfs.vfat.
func mkfsImage(t *testing.T, size int64) string {
	t.Helper()
	mkfs := needTool(t, "mkfs.vfat")
	img := filepath.Join(t.TempDir(), "mkfs.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-F", "32", "-n", "BOOT", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.vfat: %v\n%s", err, out)
	}
	return img
}

// editStep is one operation and what the file system holds after it.
type editStep struct {
	name string
	op   func(ed *Editor) error
	want func(w map[string][]byte) // applies the change to the listing
}

func writeStep(path string, content []byte) editStep {
	return editStep{"write " + path,
		func(ed *Editor) error {
			return ed.WriteFile(path, bytes.NewReader(content), int64(len(content)), editAt)
		},
		func(w map[string][]byte) { w[path] = content }}
}

// updateSteps is what rfs update does to a boot partition, then more: a
// directory grown past its cluster, replacements, renames, RemoveAll.
func updateSteps() []editStep {
	var many []editStep
	for i := range 40 {
		many = append(many, writeStep(fmt.Sprintf("slot-b/overlays/a-long-overlay-name-%02d.dtbo", i), randBytes(uint64(100+i), 100*i)))
	}
	steps := []editStep{
		{"mkdir slot-b", func(ed *Editor) error { return ed.MkdirAll("slot-b", editAt) },
			func(w map[string][]byte) { w["slot-b/"] = nil }},
		writeStep("slot-b/vmlinuz", randBytes(2, 3<<20+17)),
		writeStep("slot-b/initramfs.img", randBytes(3, 1<<20)),
		writeStep("slot-b/cmdline.txt", []byte("console=ttyAMA0 rfs.slot=b\n")),
		writeStep("slot-b/release.json", []byte(`{"version":"2"}`)),
		writeStep("rfs-slots.json.tmp", []byte(`{"active":"a","trial":"b"}`)),
		{"rename over rfs-slots.json", func(ed *Editor) error { return ed.Rename("rfs-slots.json.tmp", "RFS-SLOTS.JSON") },
			func(w map[string][]byte) {
				w["rfs-slots.json"] = w["rfs-slots.json.tmp"]
				delete(w, "rfs-slots.json.tmp")
			}},
		writeStep("slot.txt", []byte("b\n")),
		{"remove tryboot", func(ed *Editor) error { _, err := ed.Remove("TRYBOOT"); return err },
			func(w map[string][]byte) { delete(w, "tryboot") }},
		{"mkdir overlays", func(ed *Editor) error { return ed.Mkdir("slot-b/overlays", editAt) },
			func(w map[string][]byte) { w["slot-b/overlays/"] = nil }},
	}
	steps = append(steps, many...)
	return append(steps,
		writeStep("slot-b/vmlinuz", randBytes(4, 2<<20)),
		writeStep("slot-b/cmdline.txt", nil),
		editStep{"rename to a new name", func(ed *Editor) error { return ed.Rename("slot.txt", "Slot-Previous.txt") },
			func(w map[string][]byte) { w["Slot-Previous.txt"] = w["slot.txt"]; delete(w, "slot.txt") }},
		editStep{"remove all of slot-b", func(ed *Editor) error { return ed.RemoveAll("slot-b") },
			func(w map[string][]byte) {
				for k := range w {
					if strings.HasPrefix(k, "slot-b/") {
						delete(w, k)
					}
				}
			}},
		editStep{"mkdir all", func(ed *Editor) error { return ed.MkdirAll("slot-b/a/b", editAt) },
			func(w map[string][]byte) { w["slot-b/"], w["slot-b/a/"], w["slot-b/a/b/"] = nil, nil, nil }},
		writeStep("slot-b/a/b/deep.txt", []byte("deep")),
	)
}

// TestEditorUpdate runs updateSteps on a partition written by this
// package and on one made by mkfs.vfat -F 32 (4 KiB clusters); after each
// step fsck.fat finds nothing to fix and mtools, the package's reader and
// the editor read back exactly the expected tree (and go-diskfs at the
// end).
func TestEditorUpdate(t *testing.T) {
	for _, c := range []struct {
		name string
		img  func(t *testing.T) string
	}{
		{"writer", func(t *testing.T) string { return writeImage(t, build(t, slotFiles), 64<<20, Options{}) }},
		{"mkfs", func(t *testing.T) string { return mkfsImage(t, 300<<20) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := c.img(t)
			f, err := os.OpenFile(img, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ed, err := OpenEditor(f, 0)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string][]byte{}
			steps := updateSteps()
			if c.name == "mkfs" { // start from the same files
				pre := []editStep{{"mkdir slot-a", func(ed *Editor) error { return ed.Mkdir("slot-a", editAt) },
					func(w map[string][]byte) { w["slot-a/"] = nil }}}
				for _, p := range []string{"config.txt", "rfs-slots.json", "slot.txt", "tryboot", "slot-a/vmlinuz"} {
					pre = append(pre, writeStep(p, slotFiles[p]))
				}
				steps = append(pre, steps...)
			} else {
				maps.Copy(want, slotFiles)
			}
			for i, s := range steps {
				if err := s.op(ed); err != nil {
					t.Fatalf("step %d, %s: %v", i, s.name, err)
				}
				s.want(want)
				checkEdited(t, img, ed, want, true)
			}
			fi, err := f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			checkDiskfs(t, img, fi.Size(), want, "BOOT")
		})
	}
}

// checkEdited compares the image with want through the editor, the
// reader and (when tools is set) fsck.fat and mtools.
func checkEdited(t *testing.T, img string, ed *Editor, want map[string][]byte, tools bool) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	r, err := Open(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	for p, w := range want {
		if strings.HasSuffix(p, "/") {
			continue
		}
		if b, ok, err := ed.ReadFile(strings.ToUpper(p)); !ok || err != nil || !bytes.Equal(b, w) {
			t.Fatalf("editor %s: %d bytes, %v %v; want %d", p, len(b), ok, err, len(w))
		}
		if b, err := r.ReadFile(p, 1<<30); err != nil || !bytes.Equal(b, w) {
			t.Fatalf("reader %s: %d bytes, %v; want %d", p, len(b), err, len(w))
		}
	}
	if got := int64(fsckFree(t, img)) * ed.ClusterSize(); tools && got != ed.Free() {
		t.Fatalf("fsck counts %d bytes free, the editor %d", got, ed.Free())
	}
	if tools {
		checkFsck(t, img)
		checkMtools(t, img, want)
	}
}

// fsckFree is the free cluster count from fsck.fat's summary line.
func fsckFree(t *testing.T, img string) int {
	fsck := needTool(t, "fsck.vfat")
	out, _ := exec.Command(fsck, "-n", img).CombinedOutput()
	var files, used, total int
	for _, l := range strings.Split(string(out), "\n") {
		if i := strings.LastIndex(l, ": "); i >= 0 && strings.HasSuffix(l, " clusters") {
			fmt.Sscanf(l[i+2:], "%d files, %d/%d clusters", &files, &used, &total)
		}
	}
	return total - used
}

// checkMtype reads path with mtype and compares.
func checkMtype(t *testing.T, img, path string, want []byte) {
	t.Helper()
	cmd := exec.Command(needTool(t, "mtype"), "-i", img, "::/"+path)
	cmd.Env = mtoolsEnv()
	out, err := cmd.Output()
	if err != nil || !bytes.Equal(out, want) {
		t.Fatalf("mtype %s: %d bytes, %v; want %d bytes", path, len(out), err, len(want))
	}
}

// TestEditorBigFile writes a 40 MiB kernel-sized file and replaces it
// with another 40 MiB; the second needs both to fit at once.
func TestEditorBigFile(t *testing.T) {
	img := writeImage(t, build(t, map[string][]byte{"slot-b/": nil}), 128<<20, Options{})
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ed, err := OpenEditor(f, 0)
	if err != nil {
		t.Fatal(err)
	}
	for seed := range uint64(2) {
		content := randBytes(10+seed, 40<<20)
		if err := ed.WriteFile("slot-b/vmlinuz", bytes.NewReader(content), int64(len(content)), editAt); err != nil {
			t.Fatal(err)
		}
		checkFsck(t, img)
		checkMtype(t, img, "slot-b/vmlinuz", content)
		_, e, _, err := ed.lookup("slot-b/vmlinuz")
		if err != nil {
			t.Fatal(err)
		}
		if cs, err := ed.chain(e.cluster); err != nil || len(runs(cs)) != 1 {
			t.Errorf("40 MiB in %d runs (%v), want one contiguous run", len(runs(cs)), err)
		}
	}
}

// TestEditorFull: a replacement the free space cannot hold beside the old
// file is refused before anything changes.
func TestEditorFull(t *testing.T) {
	img := writeImage(t, build(t, map[string][]byte{"slot-b/": nil}), 40<<20, Options{})
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ed, err := OpenEditor(f, 0)
	if err != nil {
		t.Fatal(err)
	}
	old := randBytes(20, 20<<20)
	if err := ed.WriteFile("slot-b/vmlinuz", bytes.NewReader(old), int64(len(old)), editAt); err != nil {
		t.Fatal(err)
	}
	free := ed.Free()
	big := randBytes(21, 25<<20)
	err = ed.WriteFile("slot-b/vmlinuz", bytes.NewReader(big), int64(len(big)), editAt)
	if !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), "boot partition full: need 25.0 MiB, free ") {
		t.Fatalf("got %v, want boot partition full", err)
	}
	t.Log(err)
	if ed.Free() != free {
		t.Errorf("free space %d after the refusal, was %d", ed.Free(), free)
	}
	checkFsck(t, img)
	checkMtype(t, img, "slot-b/vmlinuz", old)
}

// memDisk is a fixed-size in-memory disk.
type memDisk struct{ b []byte }

func (m *memDisk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m.b)) {
		return 0, errors.New("read past the end")
	}
	return copy(p, m.b[off:]), nil
}

func (m *memDisk) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m.b)) {
		return 0, errors.New("write past the end")
	}
	return copy(m.b[off:], p), nil
}

// TestEditorHostile: damaged chains, directories inside themselves and
// impossible boot sectors are errors (never panics or endless walks), and
// a refused RemoveAll changes nothing.
func TestEditorHostile(t *testing.T) {
	b, size := fatImage(t)
	base := make([]byte, size)
	copy(base, b)
	ed, err := OpenEditor(&memDisk{bytes.Clone(base)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	_, boot, _, _ := ed.lookup("EFI/BOOT")
	_, efi, _, _ := ed.lookup("EFI/BOOT/BOOTX64.EFI")
	bootDir, _ := ed.readDir(boot.cluster, "EFI/BOOT")
	fatAt := func(c uint32) int { return int(ed.fatStart) + int(c)*4 }
	dirAt := func(c uint32) int { return int(ed.dataStart) + int(c-2)*int(ed.clusterSz) }
	for _, c := range []struct {
		name  string
		patch func(b []byte)
		open  string
		op    func(ed *Editor) error
		want  string
	}{
		{"too many clusters", func(b []byte) { le.PutUint32(b[36:], 1<<26); le.PutUint32(b[32:], 1<<31) }, "more than", nil, ""},
		{"larger than the device", func(b []byte) { le.PutUint32(b[32:], uint32(size/512+100)) }, "does not fit", nil, ""},
		{"bad geometry", func(b []byte) { b[13] = 3 }, "impossible geometry", nil, ""},
		{"file chain loops", func(b []byte) { le.PutUint32(b[fatAt(efi.cluster+1):], efi.cluster) }, "",
			func(ed *Editor) error { _, _, err := ed.ReadFile("EFI/BOOT/BOOTX64.EFI"); return err }, "loops"},
		{"file chain out of range", func(b []byte) { le.PutUint32(b[fatAt(efi.cluster):], 0x0ffffff0) }, "",
			func(ed *Editor) error { _, _, err := ed.ReadFile("EFI/BOOT/BOOTX64.EFI"); return err }, "chain ends"},
		{"remove a looping file", func(b []byte) { le.PutUint32(b[fatAt(efi.cluster+9):], efi.cluster) }, "",
			func(ed *Editor) error { _, err := ed.Remove("EFI/BOOT/BOOTX64.EFI"); return err }, "loops"},
		{"directory chain loops", func(b []byte) {
			for i := dirAt(boot.cluster); i < dirAt(boot.cluster)+int(ed.clusterSz); i += 32 {
				if b[i] == 0 {
					b[i] = 0xe5
				}
			}
			le.PutUint32(b[fatAt(boot.cluster):], boot.cluster)
		}, "", func(ed *Editor) error { return ed.WriteSmall("EFI/BOOT/x", nil, editAt) }, "loops"},
		{"directory inside itself", func(b []byte) {
			// BOOTX64.EFI becomes a directory whose cluster is EFI/BOOT's.
			off := int(bootDir.ents[len(bootDir.ents)-1].off)
			b[off+11] = attrDir
			le.PutUint16(b[off+26:], uint16(boot.cluster))
			le.PutUint16(b[off+20:], uint16(boot.cluster>>16))
		}, "", func(ed *Editor) error { return ed.RemoveAll("EFI") }, "contains itself"},
		{"deep path", nil, "", func(ed *Editor) error {
			_, _, err := ed.ReadFile(strings.Repeat("EFI/BOOT/BOOTX64.EFI/", 10))
			return err
		}, "deeper than"},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := bytes.Clone(base)
			if c.patch != nil {
				c.patch(img)
			}
			d := &memDisk{img}
			ed, err := OpenEditor(d, 0)
			if c.open != "" {
				if err == nil || !strings.Contains(err.Error(), c.open) {
					t.Fatalf("OpenEditor: %v, want %q", err, c.open)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			before := bytes.Clone(img)
			if err := c.op(ed); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			if !bytes.Equal(before, d.b) {
				t.Error("a refused operation changed the file system")
			}
		})
	}
}

// FuzzEditor: an editor opened on a hostile file system gives errors or
// bytes, never a panic or a hang; what it writes it reads back.
func FuzzEditor(f *testing.F) {
	b, _ := fatImage(f)
	tiny := tinyFAT(f, b)
	f.Add(tiny, uint16(130*512-len(tiny)))
	f.Add(b[:1024], uint16(0))
	f.Fuzz(func(t *testing.T, b []byte, extra uint16) {
		tm := time.AfterFunc(10*time.Second, func() { panic("FuzzEditor: one input ran 10 s (a hang)") })
		defer tm.Stop()
		d := &memDisk{make([]byte, len(b)+int(extra))}
		copy(d.b, b)
		ed, err := OpenEditor(d, 0)
		if err != nil {
			return
		}
		for _, p := range []string{"rfs.json", "EFI/BOOT/BOOTX64.EFI", "overlays/a-long-name-with-case.dtbo", "empty"} {
			if data, _, err := ed.ReadFile(p); err == nil && len(data) > len(d.b) {
				t.Fatalf("%s: %d bytes from a %d-byte file system", p, len(data), len(d.b))
			}
		}
		ed.ReadDir("EFI")
		content := []byte("new content that spans two clusters of 512 bytes ... " + strings.Repeat("x", 600))
		if err := ed.WriteSmall("EFI/BOOT/new.txt", content, editAt); err == nil {
			if got, ok, err := ed.ReadFile("efi/boot/NEW.TXT"); err != nil || !ok || !bytes.Equal(got, content) {
				t.Fatalf("wrote %d bytes, read back %d, %v %v", len(content), len(got), ok, err)
			}
		}
		ed.Rename("rfs.json", "cmdline.txt")
		ed.RemoveAll("EFI")
		ed.MkdirAll("a/b", editAt)
	})
}
