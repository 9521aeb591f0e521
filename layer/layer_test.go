package layer

import (
	"archive/tar"
	"bytes"
	"io"
	"slices"
	"testing"

	"github.com/rfsbuild/rfs/rootfs"
)

func mkfile(s string, mtime int64) *rootfs.Node {
	return &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, MTime: mtime, Content: rootfs.Bytes(s)}
}

func fixture(t *testing.T) (lower, upper *rootfs.Tree) {
	lower, upper = rootfs.New(1), rootfs.New(1)
	for p, n := range map[string]*rootfs.Node{
		"/etc/motd": mkfile("hi", 1), "/etc/keep": mkfile("k", 1), "/etc/same": mkfile("s", 1),
		"/opt/a/x": mkfile("x", 1), "/opt/a/y": mkfile("y", 1), "/var/gone/z": mkfile("z", 1),
	} {
		if err := lower.Add(p, n); err != nil {
			t.Fatal(err)
		}
	}
	opq := rootfs.NewDir(0o755, 2)
	opq.Xattrs = map[string][]byte{OpaqueXattr: []byte("y")}
	for p, n := range map[string]*rootfs.Node{
		"/etc/motd": mkfile("changed", 2), "/etc/same": mkfile("s", 1), // copied up, unchanged
		"/etc/new": mkfile("n", 2),
		"/opt/a":   opq, "/opt/a/y": mkfile("y2", 2),
		"/var/gone": {Type: rootfs.CharDev}, "/var/nothing": {Type: rootfs.CharDev},
	} {
		if err := upper.Add(p, n); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"/etc", "/opt", "/var"} {
		upper.Lookup(d).MTime = 1 // copied up without a change of their own
	}
	return lower, upper
}

func TestDiff(t *testing.T) {
	lower, upper := fixture(t)
	got, err := Diff(lower, upper)
	if err != nil {
		t.Fatal(err)
	}
	want := []Change{{Changed, "/etc"}, {Changed, "/etc/motd"}, {Added, "/etc/new"}, {Changed, "/opt"}, {Changed, "/opt/a"},
		{Deleted, "/opt/a/x"}, {Changed, "/opt/a/y"}, {Changed, "/var"}, {Deleted, "/var/gone"}}
	if !slices.Equal(got, want) {
		t.Fatalf("Diff = %v\nwant %v", got, want)
	}
}

func TestCommitExpandsOpaque(t *testing.T) {
	lower, upper := fixture(t)
	c, err := Commit(lower, upper)
	if err != nil {
		t.Fatal(err)
	}
	if n := c.Lookup("/opt/a/x"); !IsWhiteout(n) {
		t.Errorf("/opt/a/x = %+v, want a whiteout (opaque dir expanded)", n)
	}
	if n := c.Lookup("/opt/a"); n == nil || n.Xattrs != nil {
		t.Errorf("/opt/a = %+v, want a plain dir", n)
	}
	if !IsWhiteout(c.Lookup("/var/gone")) || c.Lookup("/var/nothing") != nil {
		t.Error("whiteouts: want /var/gone kept, /var/nothing (hides nothing) dropped")
	}
	flat, err := Flatten(lower, upper)
	if err != nil {
		t.Fatal(err)
	}
	stacked, err := Flatten(lower, c)
	if err != nil {
		t.Fatal(err)
	}
	if d := Compare(flat, stacked, true); len(d) > 0 {
		t.Errorf("lower+commit differs from lower+upper: %v", d)
	}
}

func TestWriteOCI(t *testing.T) {
	lower, upper := fixture(t)
	var a, b bytes.Buffer
	if err := WriteOCI(&a, lower, upper); err != nil {
		t.Fatal(err)
	}
	WriteOCI(&b, lower, upper)
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("not deterministic")
	}
	var names []string
	tr := tar.NewReader(&a)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	want := []string{"etc/", "etc/motd", "etc/new", "etc/same", "opt/", "opt/a/", "opt/a/.wh..wh..opq", "opt/a/y", "var/", "var/.wh.gone"}
	if !slices.Equal(names, want) {
		t.Fatalf("entries %q\nwant %q", names, want)
	}
}
