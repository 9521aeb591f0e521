package uroot

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/rootfs"
)

func TestPackages(t *testing.T) {
	got, err := Packages([]string{"ls", "exp/ed", "ls", Module + "/cmds/core/cat"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{Module + "/cmds/core/cat", Module + "/cmds/core/gosh", Module + "/cmds/core/init", Module + "/cmds/core/ls", Module + "/cmds/exp/ed"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	def, err := Packages(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(def) != len(DefaultCommands) {
		t.Errorf("default set: %d packages for %d commands", len(def), len(DefaultCommands))
	}
	for _, bad := range []string{"../x", "github.com/evil/x", "Ls", "a b", Module + "/cmds/../../../evil/x", Module + "/cmds/core/ls -o /x"} {
		if _, err := Packages([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := Packages([]string{"ls", Module + "/cmds/exp/ls"}); err == nil {
		t.Error("two commands named ls accepted")
	}
}

func TestInstall(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "bb")
	if err := os.WriteFile(bin, []byte("\x7fELF fake"), 0o755); err != nil {
		t.Fatal(err)
	}
	tree := rootfs.New(1)
	if err := tree.MkdirAll("/usr/bin", 0o755); err != nil {
		t.Fatal(err)
	}
	names, err := Install(tree, bin, []string{"ls"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"gosh", "init", "ls"}) {
		t.Errorf("names %q", names)
	}
	for p, target := range map[string]string{"/bin": "bbin", "/sbin": "bbin", "/bbin/ls": "bb", "/bbin/init": "bb", "/bbin/sh": "gosh", "/bbin/defaultsh": "gosh"} {
		n := tree.Lookup(p)
		if n == nil || n.Type != rootfs.Symlink || n.Target != target {
			t.Errorf("%s: %+v, want a link to %s", p, n, target)
		}
	}
	if n := tree.Lookup("/bbin/bb"); n == nil || n.Type != rootfs.Regular || n.Perm != 0o755 {
		t.Errorf("/bbin/bb: %+v", n)
	}
	if err := os.WriteFile(bin, []byte("#!/bin/sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Install(rootfs.New(1), bin, nil); err == nil {
		t.Error("a non-ELF binary was installed")
	}
}

// TestBuild compiles a small u-root busybox for arm64 (downloads u-root
// through the module proxy on first use) and checks the cache.
func TestBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles u-root; skipped in -short mode")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	b := Builder{CacheDir: t.TempDir(), Log: t.Logf}
	p, err := b.Build(context.Background(), "arm64", []string{"echo"})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	// ELF, 64-bit, little-endian, e_machine EM_AARCH64 (183).
	if !strings.HasPrefix(string(data), "\x7fELF\x02\x01") || data[18] != 183 {
		t.Fatalf("%s is not an arm64 ELF", p)
	}
	p2, err := b.Build(context.Background(), "arm64", []string{"echo", "gosh"})
	if err != nil || p2 != p {
		t.Errorf("same command set: %s, %v; want the cached %s", p2, err, p)
	}
}

// TestBuildIgnoresHostileSettings: GOARM64=v8.2 and friends in the
// environment neither change the cached binary nor its cache entry.
func TestBuildIgnoresHostileSettings(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles u-root; skipped in -short mode")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	t.Setenv("GOENV", filepath.Join(t.TempDir(), "goenv"))
	ctx := context.Background()
	normalCache, hostileCache := t.TempDir(), t.TempDir()
	normal, err := Builder{CacheDir: normalCache}.Build(ctx, "arm64", []string{"echo"})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"GOARM64": "v8.2", "GOEXPERIMENT": "arenas", "GOFLAGS": "-tags=hostile", "CGO_ENABLED": "1"} {
		t.Setenv(k, v)
	}
	bad, err := Builder{CacheDir: hostileCache}.Build(ctx, "arm64", []string{"echo"})
	if err != nil {
		t.Fatal(err)
	}
	rn, _ := filepath.Rel(normalCache, normal)
	rb, _ := filepath.Rel(hostileCache, bad)
	if rn != rb {
		t.Errorf("cache paths differ: %s vs %s", rn, rb)
	}
	a, _ := os.ReadFile(normal)
	b, _ := os.ReadFile(bad)
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Errorf("the u-root binary built under hostile settings differs (%d vs %d bytes)", len(a), len(b))
	}
	info, err := buildinfo.ReadFile(bad)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range info.Settings {
		if s.Key == "GOARM64" && s.Value != "v8.0" || s.Key == "CGO_ENABLED" && s.Value != "0" {
			t.Errorf("build info %s=%s", s.Key, s.Value)
		}
	}
}
