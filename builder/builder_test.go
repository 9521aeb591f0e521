package builder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/rootfs"
)

func config(t *testing.T, board string) Config {
	t.Helper()
	b, err := boards.Lookup(board)
	if err != nil {
		t.Fatal(err)
	}
	return Config{Board: b, Output: filepath.Join(t.TempDir(), "out", board+".img"), Epoch: DefaultEpoch, Owner: &rootfs.Owner{}}
}

func build(t *testing.T, c Config) *Result {
	t.Helper()
	res, err := Build(context.Background(), c)
	if err != nil {
		if strings.Contains(err.Error(), "module proxy") {
			t.Skipf("kernel/busybox modules unavailable: %v", err)
		}
		t.Fatal(err)
	}
	return res
}

func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed", name)
	}
}

// extract copies a partition into its own file for tools that want one.
func extract(t *testing.T, img string, p image.Placed) string {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := filepath.Join(t.TempDir(), p.Name)
	o, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if _, err := io.Copy(o, io.NewSectionReader(f, p.Start, p.Size)); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBuildLayout(t *testing.T) {
	needTool(t, "sfdisk")
	for _, board := range boards.Names() {
		t.Run(board, func(t *testing.T) {
			c := config(t, board)
			files := t.TempDir()
			os.MkdirAll(filepath.Join(files, "etc"), 0o755)
			os.WriteFile(filepath.Join(files, "etc", "motd"), []byte("hello from --files\n"), 0o600)
			c.Files = []Files{{Src: files, Dest: "/"}}
			res := build(t, c)

			out, err := exec.Command("sfdisk", "--json", res.Path).Output()
			if err != nil {
				t.Fatal(err)
			}
			var table struct {
				PartitionTable struct {
					Label      string
					Partitions []struct {
						Start, Size int64
						Type, UUID  string
						Name        string
					}
				}
			}
			if err := json.Unmarshal(out, &table); err != nil {
				t.Fatal(err)
			}
			pt := table.PartitionTable
			if pt.Label != "gpt" || len(pt.Partitions) != 2 {
				t.Fatalf("partition table: %s", out)
			}
			rootType, _ := image.RootType(c.Board.Arch)
			want := []struct{ name, typ string }{{image.BootPartition, image.TypeESP}, {image.RootPartition, rootType}}
			for i, p := range pt.Partitions {
				if p.Name != want[i].name || !strings.EqualFold(p.Type, want[i].typ) || p.Start%2048 != 0 {
					t.Errorf("partition %d = %+v, want %s of type %s, 1 MiB aligned", i+1, p, want[i].name, want[i].typ)
				}
			}
			if !strings.EqualFold(pt.Partitions[1].UUID, DeriveGUID(res.BuildID, "root")) {
				t.Errorf("root PARTUUID %s is not derived from the build ID", pt.Partitions[1].UUID)
			}
			if _, err := exec.LookPath("sgdisk"); err == nil {
				if out, err := exec.Command("sgdisk", "-v", res.Path).CombinedOutput(); err != nil || !bytes.Contains(out, []byte("No problems found")) {
					t.Errorf("sgdisk -v: %v\n%s", err, out)
				}
			}

			disk, err := image.Open(res.Path)
			if err != nil {
				t.Fatal(err)
			}
			defer disk.Close()
			boot, err := disk.ReadBoot()
			if err != nil {
				t.Fatal(err)
			}
			if boot.Meta.Board != board || boot.Meta.BuildID != res.BuildID {
				t.Errorf("rfs.json = %+v", boot.Meta)
			}
			if !strings.Contains(boot.Cmdline, "rfs.root=PARTUUID="+DeriveGUID(res.BuildID, "root")) || !strings.Contains(boot.Cmdline, "console="+c.Board.Console) {
				t.Errorf("cmdline = %q", boot.Cmdline)
			}
			if len(boot.Initrd) < 2 || boot.Initrd[0] != 0x1f || boot.Initrd[1] != 0x8b {
				t.Error("initramfs is not gzip")
			}

			if _, err := exec.LookPath("fsck.vfat"); err == nil {
				bp, _ := disk.Partition(image.BootPartition)
				if out, err := exec.Command("fsck.vfat", "-n", extract(t, res.Path, bp)).CombinedOutput(); err != nil {
					t.Errorf("fsck.vfat -n: %v\n%s", err, out)
				}
			}
			if _, err := exec.LookPath("unsquashfs"); err == nil {
				rp, _ := disk.Partition(image.RootPartition)
				out, err := exec.Command("unsquashfs", "-lln", extract(t, res.Path, rp)).CombinedOutput()
				if err != nil {
					t.Fatalf("unsquashfs -lln: %v\n%s", err, out)
				}
				for _, want := range []string{
					"-rwxr-xr-x 0/0", "squashfs-root/usr/bin/busybox",
					"squashfs-root/usr/bin/sh -> busybox", "squashfs-root/bin -> usr/bin",
					"crw------- 0/0", "squashfs-root/dev/console",
					"-rw------- 0/0", "squashfs-root/etc/motd",
					"drwxrwxrwt 0/0", "squashfs-root/tmp",
				} {
					if !bytes.Contains(out, []byte(want)) {
						t.Errorf("unsquashfs listing lacks %q", want)
					}
				}
			}
		})
	}
}

func TestBuildDeterministic(t *testing.T) {
	c := config(t, "qemu-amd64")
	a := build(t, c)
	da, err := os.ReadFile(a.Path)
	if err != nil {
		t.Fatal(err)
	}
	c.Output = filepath.Join(t.TempDir(), "again.img")
	b := build(t, c)
	db, err := os.ReadFile(b.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(da, db) {
		t.Fatal("two builds of the same inputs differ")
	}
	c.Output = filepath.Join(t.TempDir(), "other.img")
	c.Hostname = "other"
	if o := build(t, c); o.BuildID == a.BuildID {
		t.Fatal("a different hostname gave the same build ID")
	}
}

func TestBuildErrors(t *testing.T) {
	notKernel := filepath.Join(t.TempDir(), "Image")
	os.WriteFile(notKernel, []byte("not a kernel"), 0o644)
	amd64, _ := boards.Lookup("qemu-amd64")
	tests := []struct {
		name    string
		mod     func(c *Config)
		wantErr string
	}{
		{"missing kernel", func(c *Config) { c.Kernel = "/nonexistent/Image" }, "no such file"},
		{"not a kernel", func(c *Config) { c.Kernel = notKernel }, "not a recognised Linux kernel"},
		{"wrong-arch kernel", func(c *Config) {
			dir, err := c.Fetcher.Download(context.Background(), amd64.Kernel.Module)
			if err != nil {
				t.Skip(err)
			}
			c.Kernel = filepath.Join(dir, "vmlinuz")
		}, "but the board is arm64"},
		{"missing files dir", func(c *Config) { c.Files = []Files{{Src: "/nonexistent", Dest: "/"}} }, "no such file"},
		{"escaping files dest", func(c *Config) { c.Files = []Files{{Src: t.TempDir(), Dest: "/../.."}} }, "escapes the root"},
		{"files is a file", func(c *Config) { c.Files = []Files{{Src: notKernel, Dest: "/"}} }, "not a directory"},
		{"image too small", func(c *Config) { c.Size = 8 * image.MiB }, "too small"},
		{"output is a directory", func(c *Config) { c.Output = t.TempDir() }, "is a directory"},
		{"unwritable output", func(c *Config) { c.Output = "/proc/rfs-test/x.img" }, "create"},
		{"bad upper", func(c *Config) { c.Upper = "ext4" }, "supported are tmpfs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config(t, "qemu-arm64")
			tt.mod(&c)
			_, err := Build(context.Background(), c)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Build error = %v, want %q", err, tt.wantErr)
			}
			// Nothing that looks like an image is left behind.
			if st, err := os.Stat(c.Output); err == nil && !st.IsDir() {
				t.Errorf("%s exists after a failed build", c.Output)
			}
			if m, _ := filepath.Glob(filepath.Join(filepath.Dir(c.Output), "*.tmp-*")); len(m) > 0 {
				t.Errorf("temporary files left: %v", m)
			}
		})
	}
}

func TestBuildCancelled(t *testing.T) {
	c := config(t, "qemu-arm64")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Build(ctx, c)
	if err == nil || !errors.Is(err, context.Canceled) && !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("cancelled build = %v", err)
	}
	if _, err := os.Stat(c.Output); err == nil {
		t.Fatal("a cancelled build left an image")
	}
}

func TestParseFiles(t *testing.T) {
	for in, want := range map[string]Files{
		"dir":           {"dir", "/"},
		"dir:/opt/app":  {"dir", "/opt/app"},
		"C:/x:/opt":     {"C:/x", "/opt"},
		"./a/b":         {"./a/b", "/"},
		"with:colon":    {"with:colon", "/"},
		"/abs/dir:/etc": {"/abs/dir", "/etc"},
	} {
		if got := ParseFiles(in); got != want {
			t.Errorf("ParseFiles(%q) = %+v, want %+v", in, got, want)
		}
	}
}
