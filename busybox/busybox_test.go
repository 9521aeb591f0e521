package busybox

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/modfetch"
	"github.com/rfsbuild/rfs/rootfs"
)

func TestAppletsSynthetic(t *testing.T) {
	names := []string{"[", "[[", "ash", "cat", "chroot", "ls", "mount", "sh", "switch_root", "umount", "zcat"}
	var bin []byte
	bin = append(bin, "\x7fELF junk\x00"...)
	for _, n := range names {
		bin = append(bin, n...)
		bin = append(bin, 0)
	}
	bin = append(bin, 0, 0xff, 0xfe)
	got, err := Applets(bin)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, names) {
		t.Fatalf("Applets = %q, want %q", got, names)
	}
	if _, err := Applets([]byte("\x7fELF no table here")); err == nil {
		t.Fatal("Applets on a non-busybox succeeded")
	}
}

// TestPinnedBusybox reads the applet tables of the pinned binaries for every
// architecture without running them.
func TestPinnedBusybox(t *testing.T) {
	dir, err := modfetch.Fetcher{}.Download(context.Background(), boards.BusyboxModule)
	if err != nil {
		t.Skipf("busybox module not available (no module proxy and not cached): %v", err)
	}
	var first []string
	for _, arch := range []string{"amd64", "arm64", "arm", "386"} {
		bin, err := os.ReadFile(filepath.Join(dir, boards.BusyboxPath(arch)))
		if err != nil {
			t.Fatal(err)
		}
		applets, err := Applets(bin)
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		for _, want := range []string{"sh", "init", "mount", "ls", "getty", "cttyhack", "mountpoint"} {
			if !slices.Contains(applets, want) {
				t.Errorf("%s: applet %q missing", arch, want)
			}
		}
		if first == nil {
			first = applets
		} else if !slices.Equal(first, applets) {
			t.Errorf("%s: applet list differs from amd64's", arch)
		}
	}
	if len(first) != 400 {
		t.Errorf("got %d applets, want the 400 of serial-busybox's config", len(first))
	}

	tree := rootfs.New(0)
	if err := tree.Add("/usr/bin/ls", &rootfs.Node{Type: rootfs.Regular, Perm: 0o755, Content: rootfs.Bytes("mine")}); err != nil {
		t.Fatal(err)
	}
	if _, err := Install(tree, filepath.Join(dir, boards.BusyboxPath("arm64"))); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]rootfs.Type{
		"/bin": rootfs.Symlink, "/usr/bin/busybox": rootfs.Regular, "/sbin/init": rootfs.Symlink,
		"/bin/sh": rootfs.Symlink, "/usr/sbin/switch_root": rootfs.Symlink, "/usr/bin/ls": rootfs.Regular,
	} {
		n := tree.Lookup(p)
		if n == nil || n.Type != want {
			t.Errorf("%s = %+v, want a %s", p, n, want)
		}
	}
}
