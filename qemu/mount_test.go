package qemu

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/bootparam"
)

func TestParseMount(t *testing.T) {
	dir := t.TempDir()
	colon := filepath.Join(dir, "a:b")
	comma := filepath.Join(dir, "x,y")
	file := filepath.Join(dir, "f")
	for _, p := range []string{colon, comma} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in, err string
		want    HostDir
	}{
		{dir + ":/srv", "", HostDir{dir, bootparam.HostMount{Tag: "rfs0", Path: "/srv"}}},
		{dir + ":/srv:ro", "", HostDir{dir, bootparam.HostMount{Tag: "rfs0", Path: "/srv", ReadOnly: true}}},
		{dir + ":/srv:rw", "", HostDir{dir, bootparam.HostMount{Tag: "rfs0", Path: "/srv"}}},
		{colon + ":/srv:ro", "", HostDir{colon, bootparam.HostMount{Tag: "rfs0", Path: "/srv", ReadOnly: true}}},
		{comma + ":/srv", "", HostDir{comma, bootparam.HostMount{Tag: "rfs0", Path: "/srv"}}},
		{dir, "want HOSTDIR:/path", HostDir{}},
		{dir + ":/srv:rx", "want :ro or :rw", HostDir{}},
		{":/srv", "want HOSTDIR:/path", HostDir{}},
		{dir + ":srv", "must be absolute", HostDir{}},
		{dir + ":/", "cannot be mounted on /", HostDir{}},
		{dir + ":/run/rfs", "under /run", HostDir{}},
		{dir + ":/proc:ro", "under /proc", HostDir{}},
		{dir + ":/srv/../x", "must be clean", HostDir{}},
		{dir + "/missing:/srv", "no such file", HostDir{}},
		{file + ":/srv", "not a directory", HostDir{}},
	} {
		got, err := ParseMount(tc.in, 0)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseMount(%q) = %v, want an error with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseMount(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestAddMounts(t *testing.T) {
	b, _ := boards.Lookup("qemu-arm64")
	c := Config{QEMU: b.QEMU, Kernel: "/k", Append: "console=ttyAMA0"}
	err := c.AddMounts([]HostDir{
		{"/src,x", bootparam.HostMount{Tag: "rfs0", Path: "/srv"}},
		{"/certs", bootparam.HostMount{Tag: "rfs1", Path: "/mnt/my certs", ReadOnly: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := `console=ttyAMA0 rfs.mount=rfs0:/srv "rfs.mount=rfs1:/mnt/my certs:ro"`; c.Append != want {
		t.Errorf("Append = %q, want %q", c.Append, want)
	}
	p := bootparam.ParseCmdline(c.Append)
	if len(p.Warnings) != 0 || len(p.Mounts) != 2 || p.Mounts[1].Path != "/mnt/my certs" || !p.Mounts[1].ReadOnly {
		t.Errorf("the init reads %+v", p)
	}
	got := strings.Join(c.Args(), " ")
	for _, want := range []string{
		"-fsdev local,id=rfsfs0,path=/src,,x,security_model=none,multidevs=remap -device virtio-9p-pci,fsdev=rfsfs0,mount_tag=rfs0",
		"-fsdev local,id=rfsfs1,path=/certs,security_model=none,multidevs=remap,readonly=on -device virtio-9p-pci,fsdev=rfsfs1,mount_tag=rfs1",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("args %q lack %q", got, want)
		}
	}
	twice := Config{QEMU: b.QEMU}
	err = twice.AddMounts([]HostDir{{"/a", bootparam.HostMount{Tag: "rfs0", Path: "/srv"}}, {"/b", bootparam.HostMount{Tag: "rfs1", Path: "/srv"}}})
	if err == nil || !strings.Contains(err.Error(), "two host directories on /srv") {
		t.Errorf("the same path twice: %v", err)
	}
	for _, name := range []string{"rpi3", "rpi4", "rpi"} {
		pi, _ := boards.Lookup(name)
		c := Config{QEMU: pi.QEMU}
		err := c.AddMounts([]HostDir{{"/a", bootparam.HostMount{Tag: "rfs0", Path: "/srv"}}})
		if err == nil || !strings.Contains(err.Error(), "no virtio") {
			t.Errorf("%s: AddMounts = %v, want a refusal", name, err)
		}
	}
	for _, name := range []string{"qemu-amd64", "pc"} {
		pc, _ := boards.Lookup(name)
		c := Config{QEMU: pc.QEMU}
		if err := c.AddMounts([]HostDir{{"/a", bootparam.HostMount{Tag: "rfs0", Path: "/srv"}}}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := checkNineP("virt", "windows"); err == nil {
		t.Error("Windows QEMU has no virtio-9p")
	}
}
