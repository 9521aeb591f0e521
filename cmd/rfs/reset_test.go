package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/datapart"
)

// resetImage makes a small rfs-shaped GPT disk: p1 FAT32 at 1 MiB (40 MiB),
// p2 rfs-root, p3 ext4 rfs-data with upper/etc/x and volumes/app/y.
func resetImage(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"sfdisk", "mkfs.fat", "mke2fs", "mtype"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "x.img")
	os.WriteFile(img, nil, 0o644)
	os.Truncate(img, 64<<20)
	sf := exec.Command("sfdisk", "-q", img)
	// Named as rfs names them: an image without a layout in rfs.json (this
	// one has no rfs.json) is read by GPT names.
	sf.Stdin = strings.NewReader("label: gpt\nstart=2048, size=81920, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=rfs-boot\n" +
		"start=83968, size=2048, name=rfs-root\nstart=86016, size=32768, name=rfs-data\n")
	seed := filepath.Join(dir, "seed")
	os.MkdirAll(filepath.Join(seed, "upper/etc"), 0o755)
	os.MkdirAll(filepath.Join(seed, "volumes/app"), 0o755)
	os.MkdirAll(filepath.Join(seed, "work"), 0o755)
	os.WriteFile(filepath.Join(seed, "upper/etc/x"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(seed, "volumes/app/y"), []byte("y"), 0o644)
	for _, c := range []*exec.Cmd{sf,
		exec.Command("mkfs.fat", "-F", "32", "--offset", "2048", img, "40960"),
		exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-L", datapart.Label, "-d", seed, "-E", "offset=44040192", img, "16384k"),
	} {
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", c.Args, err, out)
		}
	}
	return img
}

func flagOf(img string) string {
	out, err := exec.Command("mtype", "-i", img+"@@1048576", "::"+datapart.ResetFlagFile).Output()
	if err != nil {
		return "(none)"
	}
	return string(out)
}

func TestResetFlagCLI(t *testing.T) {
	img := resetImage(t)
	out, err := execute(t, "reset", img)
	if err != nil || !strings.Contains(out, "reset flag set on boot partition 1: the next boot wipes the upper layer (volumes kept)") {
		t.Fatalf("rfs reset: %q %v", out, err)
	}
	if got := flagOf(img); got != "upper\n" {
		t.Errorf("flag %q", got)
	}
	if out, err = execute(t, "reset", "--all", img); err != nil || !strings.Contains(out, "the upper layer and the volumes") {
		t.Fatalf("rfs reset --all: %q %v", out, err)
	}
	if got := flagOf(img); got != "all\n" {
		t.Errorf("flag %q", got)
	}
	if out, err = execute(t, "reset", img); err != nil || !strings.Contains(out, "the flag already said all") {
		t.Fatalf("rfs reset after --all: %q %v", out, err)
	}
	if out, err = execute(t, "reset", "--cancel", img); err != nil || !strings.Contains(out, "reset flag (all) removed") {
		t.Fatalf("rfs reset --cancel: %q %v", out, err)
	}
	if got := flagOf(img); got != "(none)" {
		t.Errorf("flag after --cancel: %q", got)
	}
	if out, err = execute(t, "reset", "--cancel", img); err != nil || !strings.Contains(out, "no reset flag was set") {
		t.Fatalf("rfs reset --cancel again: %q %v", out, err)
	}
}

func TestResetNowCLI(t *testing.T) {
	if os.Geteuid() != 0 {
		img := resetImage(t)
		_, err := execute(t, "reset", "--now", img)
		if err == nil || !strings.Contains(err.Error(), "run as root, or drop --now") {
			t.Fatalf("rfs reset --now as a user: %v", err)
		}
		return
	}
	img := resetImage(t)
	execute(t, "reset", img)
	out, err := execute(t, "reset", "--now", "--all", img)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"wiped the upper layer and the volumes of data partition 3 (/dev/loop", "a reset flag (upper) is also set"} {
		if !strings.Contains(out, want) {
			t.Errorf("rfs reset --now: %q lacks %q", out, want)
		}
	}
}

func TestResetArgs(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.img")
	os.WriteFile(junk, make([]byte, 1<<20), 0o644)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"reset"}, "accepts 1 arg"},
		{[]string{"reset", "--cancel", "--now", junk}, "--cancel takes neither"},
		{[]string{"reset", filepath.Join(dir, "missing.img")}, "no such file"},
		{[]string{"reset", junk}, "not an rfs image"},
		{[]string{"reset", dir}, "neither an image file nor a block device"},
	} {
		_, err := execute(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("rfs %s: error %v, want %q", strings.Join(tt.args, " "), err, tt.want)
		}
	}
}
