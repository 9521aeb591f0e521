package apps

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/datapart"
	"github.com/rfsbuild/rfs/rootfs"
)

func TestCheckAndName(t *testing.T) {
	for _, c := range []struct {
		app  App
		name string
		ok   bool
	}{
		{App{Path: "./cmd/hello"}, "hello", true},
		{App{Path: "."}, "", false}, // the directory's name is unknown here: "."
		{App{Path: "./x", Name: "svc"}, "svc", true},
		{App{Path: "example.com/tool/cmd/x@v1.2.3"}, "x", true},
		{App{Path: "example.com/tool/v2@v2.0.0"}, "tool", true},
		{App{Path: "example.com/tool@latest"}, "", false},
		{App{Path: "example.com/tool"}, "", false},
		{App{Path: ""}, "", false},
		{App{Path: "./x", Name: "a/b"}, "", false},
		{App{Path: "-modfile=/tmp/x@v1"}, "", false}, // a flag of go get
		{App{Path: "-x@v1", Name: "x"}, "", false},
		{App{Path: "./x\n", Name: "x"}, "", false},
		{App{Path: "./x", Name: "x\ny"}, "", false}, // a line of inittab
	} {
		err := c.app.Check()
		if (err == nil) != c.ok {
			t.Errorf("%+v: Check = %v, want ok=%v", c.app, err, c.ok)
			continue
		}
		if c.ok {
			if n, _ := c.app.BinName(); n != c.name {
				t.Errorf("%+v: name %q, want %q", c.app, n, c.name)
			}
		}
	}
}

func testTree(t *testing.T) *rootfs.Tree {
	tree := rootfs.New(1)
	if err := (rootfs.Skeleton{}).Add(tree); err != nil {
		t.Fatal(err)
	}
	return tree
}

func inittab(t *testing.T, tree *rootfs.Tree) string {
	r, err := tree.Lookup("/etc/inittab").Content.Open()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	return string(b)
}

func TestInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a Go program; skipped in -short mode")
	}
	tree := testTree(t)
	// A userland link where the app goes is replaced.
	if err := tree.Add("/usr/bin/hello", &rootfs.Node{Type: rootfs.Symlink, Target: "busybox"}); err != nil {
		t.Fatal(err)
	}
	b := Builder{Dir: "../e2e/testdata", Log: t.Logf}
	list := []App{{Path: "./hello", Service: true}}
	if err := b.Install(context.Background(), tree, "arm64", "busybox", list); err != nil {
		t.Fatal(err)
	}
	n := tree.Lookup("/usr/bin/hello")
	if n == nil || n.Type != rootfs.Regular || n.Perm != 0o755 {
		t.Fatalf("/usr/bin/hello: %+v", n)
	}
	r, _ := n.Content.Open()
	bin, _ := io.ReadAll(r)
	if !strings.HasPrefix(string(bin), "\x7fELF\x02\x01") || bin[18] != 183 {
		t.Error("not an arm64 ELF")
	}
	if tab := inittab(t, tree); !strings.HasSuffix(tab, "::respawn:/usr/bin/hello\n") {
		t.Errorf("inittab:\n%s", tab)
	}
	// Reproducible: a second build gives the same bytes.
	again, err := b.Build(context.Background(), "arm64", list[0])
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(bin) {
		t.Error("two builds differ")
	}

	// u-root restarts nothing itself: services go to the rfs init's list,
	// and u-root's uinit becomes the rfs init's supervisor.
	ut := testTree(t)
	if err := b.Install(context.Background(), ut, "arm64", "u-root", list); err != nil {
		t.Fatalf("u-root service: %v", err)
	}
	if l := ut.Lookup("/bbin/uinit"); l == nil || l.Target != "/run/rfs/bin/rfs-init" {
		t.Errorf("/bbin/uinit = %+v", l)
	}
	sf := ut.Lookup(datapart.ServicesFile)
	if sf == nil {
		t.Fatal("no services file")
	}
	rc, _ := sf.Content.Open()
	progs, err := datapart.ReadServices(rc)
	rc.Close()
	if err != nil || len(progs) != 1 || progs[0] != "/usr/bin/hello" {
		t.Errorf("services = %q, %v", progs, err)
	}
	if err := b.Install(context.Background(), testTree(t), "arm64", "busybox", []App{{Path: "./hello"}, {Path: "./hello"}}); err == nil {
		t.Error("two apps with one name accepted")
	}
}
