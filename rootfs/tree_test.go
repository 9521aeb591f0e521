package rootfs

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestClean(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{"/", "", false},
		{"", "", false},
		{"/etc//passwd", "etc/passwd", false},
		{"etc/./x/../passwd", "etc/passwd", false},
		{"/..", "", true},
		{"a/../../b", "", true},
	}
	for _, tt := range tests {
		got, err := Clean(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("Clean(%q) = %q, %v; want %q, err=%v", tt.in, got, err, tt.want, tt.err)
		}
		if tt.err && !errors.Is(err, ErrEscapes) {
			t.Errorf("Clean(%q) error %v is not ErrEscapes", tt.in, err)
		}
	}
}

func TestAddFollowsSymlinksInsideRoot(t *testing.T) {
	tr := New(0)
	must(t, tr.MkdirAll("/usr/bin", 0o755))
	must(t, tr.Add("/bin", &Node{Type: Symlink, Target: "usr/bin"}))
	must(t, tr.Add("/evil", &Node{Type: Symlink, Target: "../../../../usr"}))
	must(t, tr.Add("/bin/tool", &Node{Type: Regular, Perm: 0o755}))
	if tr.Lookup("/usr/bin/tool") == nil {
		t.Fatal("file added through /bin symlink is not in /usr/bin")
	}
	// ".." above the root stays at the root, like in a chroot.
	must(t, tr.Add("/evil/x", &Node{Type: Regular}))
	if tr.Lookup("/usr/x") == nil {
		t.Fatal("symlink with leading .. did not resolve inside the root")
	}
	if err := tr.Add("/../etc/passwd", &Node{Type: Regular}); !errors.Is(err, ErrEscapes) {
		t.Fatalf("Add(/../etc/passwd) = %v, want ErrEscapes", err)
	}
	if err := tr.Add("/bin", &Node{Type: Dir}); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("replacing a symlink with a dir = %v, want refusal", err)
	}
	must(t, tr.Add("/loop", &Node{Type: Symlink, Target: "loop"}))
	if err := tr.Add("/loop/x", &Node{Type: Regular}); err == nil || !strings.Contains(err.Error(), "too many levels") {
		t.Fatalf("symlink loop = %v", err)
	}
}

func TestWalkOrderAndDigest(t *testing.T) {
	build := func(order []string) *Tree {
		tr := New(5)
		for _, p := range order {
			must(t, tr.Add(p, &Node{Type: Regular, Perm: 0o644, Content: Bytes(p)}))
		}
		return tr
	}
	a := build([]string{"/b/z", "/a", "/b/a"})
	b := build([]string{"/b/a", "/a", "/b/z"})
	var got []string
	must(t, a.Walk(func(p string, n *Node) error { got = append(got, p); return nil }))
	if want := "/ /a /b /b/a /b/z"; strings.Join(got, " ") != want {
		t.Fatalf("Walk order = %q, want %q", got, want)
	}
	da, err := a.Digest()
	must(t, err)
	db, err := b.Digest()
	must(t, err)
	if da != db {
		t.Fatal("same tree built in another order has another digest")
	}
	b.Lookup("/a").Perm = 0o600
	if db2, _ := b.Digest(); db2 == da {
		t.Fatal("digest ignores a mode change")
	}
}

func TestAddHostDir(t *testing.T) {
	src := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(src, "etc/app"), 0o750))
	must(t, os.WriteFile(filepath.Join(src, "etc/app/conf"), []byte("x=1\n"), 0o640))
	must(t, os.WriteFile(filepath.Join(src, "run.sh"), []byte("#!/bin/sh\n"), 0o755))
	must(t, os.Link(filepath.Join(src, "run.sh"), filepath.Join(src, "run2.sh")))
	must(t, os.Symlink("/etc/shadow-on-host", filepath.Join(src, "link")))

	tr := New(0)
	epoch := int64(1700000000)
	must(t, tr.AddHostDir(src, "/opt/app", HostDirOptions{Owner: &Owner{}, MTime: &epoch}))
	conf := tr.Lookup("/opt/app/etc/app/conf")
	if conf == nil || conf.Perm != 0o640 || conf.UID != 0 || conf.MTime != epoch || conf.Size() != 4 {
		t.Fatalf("conf = %+v", conf)
	}
	if d := tr.Lookup("/opt/app/etc/app"); d == nil || d.Type != Dir || d.Perm != 0o750 {
		t.Fatalf("dir = %+v", d)
	}
	if l := tr.Lookup("/opt/app/link"); l == nil || l.Type != Symlink || l.Target != "/etc/shadow-on-host" {
		t.Fatalf("symlink = %+v", l)
	}
	if tr.Lookup("/opt/app/run.sh") != tr.Lookup("/opt/app/run2.sh") {
		t.Fatal("hard links were not kept as one node")
	}
	if err := tr.AddHostDir(src, "../..", HostDirOptions{}); !errors.Is(err, ErrEscapes) {
		t.Fatalf("escaping destination = %v", err)
	}
	if err := tr.AddHostDir(filepath.Join(src, "missing"), "/", HostDirOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing source = %v", err)
	}
	if err := tr.AddHostDir(filepath.Join(src, "run.sh"), "/", HostDirOptions{}); err == nil {
		t.Fatal("file as source accepted")
	}
}

func TestSkeleton(t *testing.T) {
	tr := New(0)
	must(t, Skeleton{Hostname: "box", Version: "1.0", BuildID: "abc", Board: "qemu-arm64"}.Add(tr))
	for _, p := range []string{"/etc/inittab", "/etc/init.d/rcS", "/etc/passwd", "/etc/shadow", "/etc/os-release", "/dev/console", "/tmp"} {
		if tr.Lookup(p) == nil {
			t.Errorf("%s missing", p)
		}
	}
	if tr.Lookup("/tmp").Perm != 0o1777 {
		t.Error("/tmp is not sticky and world-writable")
	}
	read := func(p string) string {
		rc, err := tr.Lookup(p).Content.Open()
		must(t, err)
		defer rc.Close()
		b, err := io.ReadAll(rc)
		must(t, err)
		return string(b)
	}
	if !strings.Contains(read("/etc/inittab"), "cttyhack /bin/sh") {
		t.Error("default inittab has no console shell")
	}
	if !strings.Contains(read("/etc/os-release"), "BUILD_ID=abc") {
		t.Error("os-release lacks the build id")
	}
	tr2 := New(0)
	must(t, Skeleton{Login: true}.Add(tr2))
	tr = tr2
	if !strings.Contains(read("/etc/inittab"), "getty") {
		t.Error("login inittab has no getty")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
