package builder

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/image/fat"
)

// partBytes reads the partition named name of a built image.
func partBytes(t *testing.T, img string, res *Result, name string) []byte {
	t.Helper()
	for _, p := range res.Parts {
		if p.Name == name {
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			b, err := io.ReadAll(io.NewSectionReader(f, p.Start, p.Size))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatalf("no partition %s in %v", name, res.Parts)
	return nil
}

// samePrefix checks that file is part's first bytes and the rest of the
// partition is zeros (a fit partition is rounded up to 1 MiB).
func samePrefix(t *testing.T, what string, file, part []byte) {
	t.Helper()
	if len(file) > len(part) || !bytes.Equal(file, part[:len(file)]) {
		t.Errorf("%s: the emitted file (%d bytes) is not the partition's content (%d bytes)", what, len(file), len(part))
		return
	}
	if len(bytes.Trim(part[len(file):], "\x00")) != 0 {
		t.Errorf("%s: the partition holds more than the emitted file", what)
	}
}

func readEmitted(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEmitMatchesImage: --emit's files are the bytes inside the disk image
// built from the same artifacts (root and layers = their partitions, boot/
// = the FAT's files read back, data.ext4 = the data partition), the
// manifest is right, and an --emit without -o writes the same files.
func TestEmitMatchesImage(t *testing.T) {
	needTool(t, "mke2fs")
	for _, board := range []string{"qemu-arm64", "rpi4", "pc"} {
		t.Run(board, func(t *testing.T) {
			c := config(t, board)
			c.Layers = []string{writeLayer(t, "one", "1", ""), writeLayer(t, "two", "2", "")}
			c.Emit = filepath.Join(t.TempDir(), "art")
			res := build(t, c)
			m := checkManifest(t, c.Emit)
			boot := partBytes(t, c.Output, res, image.BootPartition)
			fsys, err := fat.Open(bytes.NewReader(boot), int64(len(boot)))
			if err != nil {
				t.Fatal(err)
			}
			var bootFiles int
			for _, f := range m.Files {
				name, ok := strings.CutPrefix(f.Path, EmitBoot+"/")
				if !ok {
					continue
				}
				bootFiles++
				got, err := fsys.ReadFile(name, int64(len(boot)))
				if err != nil || !bytes.Equal(got, readEmitted(t, c.Emit, f.Path)) {
					t.Errorf("%s: differs from the FAT's %s (%v)", f.Path, name, err)
				}
			}
			if bootFiles < 4 {
				t.Errorf("boot/ holds %d files", bootFiles)
			}
			samePrefix(t, EmitRoot, readEmitted(t, c.Emit, EmitRoot), partBytes(t, c.Output, res, image.RootPartition))
			for i := range c.Layers {
				samePrefix(t, EmitLayer(i+1), readEmitted(t, c.Emit, EmitLayer(i+1)), partBytes(t, c.Output, res, image.LayerPartition(i+1)))
			}
			if !bytes.Equal(readEmitted(t, c.Emit, EmitData), partBytes(t, c.Output, res, image.DataPartition)) {
				t.Errorf("%s differs from the data partition", EmitData)
			}
			for _, name := range []string{image.MetaFile, image.CmdlineFile, image.InitrdFile} {
				if !bytes.Equal(readEmitted(t, c.Emit, name), readEmitted(t, c.Emit, EmitBoot+"/"+name)) {
					t.Errorf("%s differs from the boot partition's", name)
				}
			}
			if c.Board.UEFI == nil {
				if !bytes.Equal(readEmitted(t, c.Emit, EmitKernel), readEmitted(t, c.Emit, EmitBoot+"/"+c.kernelName())) {
					t.Errorf("%s differs from the boot partition's %s", EmitKernel, c.kernelName())
				}
			}
			checkTemplate(t, c.Emit)
			checkLayoutMeta(t, readEmitted(t, c.Emit, image.MetaFile), res)

			// Emit alone: the root is written by the directory packager
			// itself; every file is the same.
			c.Output, c.Emit = "", filepath.Join(t.TempDir(), "alone")
			if res := build(t, c); res.Path != "" || res.Emit != c.Emit {
				t.Errorf("emit alone: result %+v", res)
			}
			if alone := checkManifest(t, c.Emit); !manifestEqual(alone, m) {
				t.Errorf("--emit without -o wrote other files than with it:\n%+v\n%+v", alone.Files, m.Files)
			}
		})
	}
}

// checkManifest reads manifest.json and checks every file against it,
// and that it lists every file of the directory.
func checkManifest(t *testing.T, dir string) Manifest {
	t.Helper()
	var m Manifest
	if err := json.Unmarshal(readEmitted(t, dir, EmitManifest), &m); err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{EmitManifest: true}
	for _, f := range m.Files {
		b := readEmitted(t, dir, f.Path)
		sum := sha256.Sum256(b)
		if int64(len(b)) != f.Size || hex.EncodeToString(sum[:]) != f.SHA256 {
			t.Errorf("manifest: %s: size %d sha256 %s, the file has %d %x", f.Path, f.Size, f.SHA256, len(b), sum)
		}
		listed[f.Path] = true
	}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			if !listed[filepath.ToSlash(rel)] {
				t.Errorf("manifest does not list %s", rel)
			}
		}
		return err
	})
	if m.Format != EmitFormat || m.BuildID == "" {
		t.Errorf("manifest format %q build ID %q", m.Format, m.BuildID)
	}
	return m
}

func manifestEqual(a, b Manifest) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// checkTemplate: the template completed with rfs.json's ids is cmdline.txt.
func checkTemplate(t *testing.T, dir string) {
	t.Helper()
	meta, err := image.ParseMeta(readEmitted(t, dir, image.MetaFile))
	if err != nil {
		t.Fatal(err)
	}
	pairs := []string{RootPlaceholder, meta.RootGUID, DataPlaceholder, meta.DataGUID, BootPlaceholder, meta.BootGUID}
	for i, l := range meta.Layers {
		pairs = append(pairs, LayerPlaceholder(i+1), l.PARTUUID)
	}
	got := strings.NewReplacer(pairs...).Replace(string(readEmitted(t, dir, EmitTemplate)))
	if want := string(readEmitted(t, dir, EmitCmdline)); got != want {
		t.Errorf("template completed = %q, cmdline.txt = %q", got, want)
	}
}

// TestEmitRefuses: --emit replaces only an empty directory or an earlier
// --emit output, never a file, and no output may lie inside it.
func TestEmitRefuses(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	full := filepath.Join(dir, "full")
	os.MkdirAll(full, 0o755)
	os.WriteFile(filepath.Join(full, "keep"), []byte("x"), 0o644)
	tests := []struct {
		emit, output, want string
	}{
		{file, "", "is a regular file, not a directory"},
		{full, "", "is not empty and is not an earlier output"},
		{filepath.Join(dir, "new"), filepath.Join(dir, "new", "x.img"), "inside the output directory --emit"},
		{filepath.Join(dir, "same"), filepath.Join(dir, "same"), "inside the output directory --emit"},
	}
	for _, tt := range tests {
		c := config(t, "qemu-arm64")
		c.Emit, c.Output = tt.emit, tt.output
		_, err := Build(t.Context(), c)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("--emit %s -o %q: %v, want %q", tt.emit, tt.output, err, tt.want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(full, "keep")); err != nil || string(b) != "x" {
		t.Errorf("the refused directory changed: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused --emit left %s: %v", filepath.Join(dir, "new"), err)
	}
}

// checkLayoutMeta: rfs.json's layout is the image's partitions: role order,
// numbers, PARTUUIDs and sizes as written.
func checkLayoutMeta(t *testing.T, rfsJSON []byte, res *Result) {
	t.Helper()
	meta, err := image.ParseMeta(rfsJSON)
	if err != nil {
		t.Fatal(err)
	}
	l := meta.Layout
	if l == nil || len(l.Partitions) != len(res.Parts) {
		t.Fatalf("layout %+v, image partitions %+v", l, res.Parts)
	}
	for i, pm := range l.Partitions {
		p := res.Parts[i]
		if pm.Name != p.Name || pm.Number != p.Index || pm.PARTUUID != p.GUID || pm.Size != p.Size {
			t.Errorf("layout partition %d = %+v, the image's = %s #%d %s %d", i, pm, p.Name, p.Index, p.GUID, p.Size)
		}
	}
	if l.Partitions[0].Role != image.RoleBoot || l.Partitions[1].Role != image.RoleRoot || l.Partitions[len(l.Partitions)-1].Role != image.RoleData {
		t.Errorf("layout roles %+v", l.Partitions)
	}
}
