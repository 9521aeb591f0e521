package pathcheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	mk := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	layer := mk("layer.sqfs", "layer")
	yaml := mk("rfs.yaml", "board: x")
	mk("files/etc/motd", "hi")
	mk("files2/x", "x")
	if err := os.Link(layer, filepath.Join(dir, "hard.sqfs")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("layer.sqfs", filepath.Join(dir, "soft.sqfs")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("files", filepath.Join(dir, "files-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(".", filepath.Join(dir, "here")); err != nil {
		t.Fatal(err)
	}
	j := func(p string) string { return filepath.Join(dir, p) }
	in := []Path{{"-c", yaml}, {"--layer", layer}, {"--files", j("files")}, {"--kernel", j("missing")}, {"--efi-stub", ""}}
	for _, tc := range []struct {
		name string
		outs []Path
		want []string // empty: no error
	}{
		{"fine", []Path{{"-o", j("out/disk.img")}}, nil},
		{"next to a dir with a shared prefix", []Path{{"-o", j("files2/disk.img")}}, nil},
		{"two distinct outputs", []Path{{"-o", j("a")}, {"--oci", j("b")}}, nil},
		{"same as the project file", []Path{{"-o", yaml}}, []string{"output -o " + yaml, "input -c " + yaml}},
		{"same as a layer", []Path{{"-o", layer}}, []string{"same file as the input --layer"}},
		{"hard link to a layer", []Path{{"-o", j("hard.sqfs")}}, []string{"hard.sqfs is the same file as the input --layer " + layer}},
		{"symlink to a layer", []Path{{"-o", j("soft.sqfs")}}, []string{"soft.sqfs is the same file as the input --layer"}},
		{"relative path to a layer", []Path{{"-o", j("files/../layer.sqfs")}}, []string{"same file"}},
		{"inside --files", []Path{{"-o", j("files/disk.img")}}, []string{"inside the input directory --files " + j("files")}},
		{"deep inside --files, not existing yet", []Path{{"-o", j("files/a/b/disk.img")}}, []string{"inside the input directory"}},
		{"inside --files through a symlink", []Path{{"-o", j("files-link/disk.img")}}, []string{"inside the input directory"}},
		{"two outputs the same", []Path{{"-o", j("x.sqfs")}, {"--oci", j("x.sqfs")}}, []string{"outputs -o " + j("x.sqfs") + " and --oci " + j("x.sqfs") + " are the same file"}},
		{"two outputs the same through a symlinked dir", []Path{{"-o", j("x.sqfs")}, {"--oci", j("here/x.sqfs")}}, []string{"are the same file"}},
		{"two outputs hard-linked", []Path{{"-o", j("hard.sqfs")}, {"--oci", layer}}, []string{"are the same file"}},
		{"a device", []Path{{"-o", "/dev/null"}}, []string{"output -o /dev/null exists and is a character device"}},
		{"a directory", []Path{{"-o", j("files")}}, []string{"is a directory"}},
	} {
		err := Check(tc.outs, in)
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("%s: %v, want no error", tc.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: no error, want %q", tc.name, tc.want)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q lacks %q", tc.name, err, w)
			}
		}
	}
}

func TestCheckBindMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a bind mount")
	}
	src, mnt := t.TempDir(), t.TempDir()
	if err := bindMount(src, mnt); err != nil {
		t.Skip("bind mount: ", err)
	}
	defer unmount(mnt)
	err := Check([]Path{{"-o", filepath.Join(mnt, "disk.img")}}, []Path{{"--files", src}})
	if err == nil || !strings.Contains(err.Error(), "inside the input directory") {
		t.Errorf("output in a bind mount of --files: %v, want a refusal", err)
	}
}
