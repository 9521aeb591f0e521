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
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/datapart"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/rootfs"
	"github.com/rfsbuild/rfs/squashfs"
)

func config(t *testing.T, board string) Config {
	t.Helper()
	b, err := boards.Lookup(board)
	if err != nil {
		t.Fatal(err)
	}
	if b.UEFI != nil {
		if _, err := os.Stat(b.UEFI.Stub); err != nil {
			t.Skipf("board %s: EFI stub not installed (apt-get install systemd-boot-efi): %v", board, err)
		}
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
			c.ConfigTxt = []string{"dtparam=audio=on"}
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
			if c.Board.Table == "mbr" {
				checkMBR(t, out)
			} else {
				if pt.Label != "gpt" || len(pt.Partitions) != 3 {
					t.Fatalf("partition table: %s", out)
				}
				rootType, _ := image.RootType(c.Board.Arch)
				want := []struct{ name, typ string }{{image.BootPartition, image.TypeESP}, {image.RootPartition, rootType}, {image.DataPartition, image.TypeLinuxData}}
				for i, p := range pt.Partitions {
					if p.Name != want[i].name || !strings.EqualFold(p.Type, want[i].typ) || p.Start%2048 != 0 {
						t.Errorf("partition %d = %+v, want %s of type %s, 1 MiB aligned", i+1, p, want[i].name, want[i].typ)
					}
				}
				if !strings.EqualFold(pt.Partitions[1].UUID, DeriveGUID(res.BuildID, "root")) {
					t.Errorf("root PARTUUID %s is not derived from the build ID", pt.Partitions[1].UUID)
				}
			}
			if _, err := exec.LookPath("sgdisk"); err == nil && c.Board.Table != "mbr" {
				if out, err := exec.Command("sgdisk", "-v", res.Path).CombinedOutput(); err != nil || !bytes.Contains(out, []byte("No problems found")) {
					t.Errorf("sgdisk -v: %v\n%s", err, out)
				}
			}

			disk, boot := openBoot(t, res.Path)
			if boot.Meta.Board != board || boot.Meta.BuildID != res.BuildID {
				t.Errorf("rfs.json = %+v", boot.Meta)
			}
			if !strings.Contains(boot.Cmdline, "rfs.root=PARTUUID="+boot.Meta.RootGUID) || !strings.HasPrefix(boot.Cmdline, strings.Join(consoles(c.Board), " ")+" ") {
				t.Errorf("cmdline = %q", boot.Cmdline)
			}
			if len(boot.Initrd) < 2 || boot.Initrd[0] != 0x1f || boot.Initrd[1] != 0x8b {
				t.Error("initramfs is not gzip")
			}
			if strings.Contains(boot.Cmdline, "\n") {
				t.Errorf("cmdline.txt is not one line: %q", boot.Cmdline)
			}
			if c.Board.Pi != nil {
				bp, _ := disk.Partition(image.BootPartition)
				cfg, err := disk.ReadFile(bp, "config.txt")
				if err != nil {
					t.Fatal(err)
				}
				want := []string{"[all]\narm_64bit=1\n", "kernel=kernel8.img\n", "initramfs initramfs.img followkernel\n", "enable_uart=1\n", "dtparam=audio=on\n"}
				if len(c.Board.Pi.Models) > 1 {
					want = append(want, "[pi3]\n", "[pi4]\n", "[pi5]\n")
				}
				for _, w := range want {
					if !strings.Contains(string(cfg), w) {
						t.Errorf("config.txt lacks %q:\n%s", w, cfg)
					}
				}
				if !strings.HasSuffix(string(cfg), "[all]\ndtparam=audio=on\n") && len(c.Board.Pi.Models) > 1 {
					t.Errorf("project lines are not last, under [all]:\n%s", cfg)
				}
				if !regexp.MustCompile(`^[0-9a-f]{8}-02$`).MatchString(boot.Meta.RootGUID) {
					t.Errorf("Pi root PARTUUID %q is not the MBR form", boot.Meta.RootGUID)
				}
			}

			if _, err := exec.LookPath("fsck.vfat"); err == nil {
				bp, _ := disk.Partition(image.BootPartition)
				part := extract(t, res.Path, bp)
				if out, err := exec.Command("fsck.vfat", "-n", part).CombinedOutput(); err != nil {
					t.Errorf("fsck.vfat -n: %v\n%s", err, out)
				}
				checkBootFiles(t, c.Board, part)
			}
			if _, err := exec.LookPath("e2fsck"); err == nil {
				dp, err := disk.Partition(image.DataPartition)
				if err != nil {
					t.Fatal(err)
				}
				if dp.Size != DefaultDataSize || dp.Start+dp.Size+image.MiB != res.Size {
					t.Errorf("data partition %+v is not the last, of the default size", dp)
				}
				if out, err := exec.Command("e2fsck", "-fn", extract(t, res.Path, dp)).CombinedOutput(); err != nil || !strings.Contains(string(out), "rfs-data") {
					t.Errorf("e2fsck -fn on the data partition: %v\n%s", err, out)
				}
			}
			for _, want := range []string{"rfs.data=PARTUUID=" + boot.Meta.DataGUID, "rfs.boot=PARTUUID=" + boot.Meta.BootGUID} {
				if boot.Meta.DataGUID == "" || !strings.Contains(boot.Cmdline, want) {
					t.Errorf("cmdline %q lacks %s", boot.Cmdline, want)
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
		{"bad upper", func(c *Config) { c.Upper = "ext4" }, "want data, tmpfs or tmpfs:size=N"},
		{"tiny data partition", func(c *Config) { c.DataSize = 1 << 20 }, "at least 16 MiB"},
		{"huge data partition", func(c *Config) { c.DataSize = 100 << 40 }, "at most 16 GiB"},
		{"huge image", func(c *Config) { c.Size = 100 << 40 }, "at most 2 TiB"},
		{"wrong-arch kernel on a Pi", func(c *Config) {
			dir, err := c.Fetcher.Download(context.Background(), amd64.Kernel.Module)
			if err != nil {
				t.Skip(err)
			}
			c.Board, _ = boards.Lookup("rpi4")
			c.Kernel = dir
		}, "but the board is arm64"},
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

func consoles(b boards.Board) []string {
	var out []string
	for _, c := range append(append([]string{}, b.ExtraConsoles...), b.Console) {
		out = append(out, "console="+c)
	}
	return out
}

// checkMBR asserts the Raspberry Pi layout: MBR, p1 FAT32 LBA bootable, p2 Linux.
func checkMBR(t *testing.T, sfdiskJSON []byte) {
	t.Helper()
	var table struct {
		PartitionTable struct {
			Label      string
			ID         string
			Partitions []struct {
				Start, Size int64
				Type        string
				Bootable    bool
			}
		}
	}
	if err := json.Unmarshal(sfdiskJSON, &table); err != nil {
		t.Fatal(err)
	}
	pt := table.PartitionTable
	if pt.Label != "dos" || len(pt.Partitions) != 3 || pt.ID == "0x00000000" {
		t.Fatalf("want an MBR with a disk id and 3 partitions: %s", sfdiskJSON)
	}
	if p := pt.Partitions[0]; p.Type != "c" || !p.Bootable || p.Start != 2048 {
		t.Errorf("p1 = %+v, want FAT32 LBA (c), bootable, at 1 MiB", p)
	}
	for i, p := range pt.Partitions[1:] {
		if p.Type != "83" || p.Start%2048 != 0 {
			t.Errorf("p%d = %+v, want Linux (83), 1 MiB aligned", i+2, p)
		}
	}
}

// checkBootFiles lists the FAT with mtools (independent of our writer) and
// checks what the board's firmware needs is there, and nothing it does not.
func checkBootFiles(t *testing.T, b boards.Board, part string) {
	t.Helper()
	if _, err := exec.LookPath("mdir"); err != nil {
		t.Log("mtools not installed: boot file list not checked")
		return
	}
	out, err := exec.Command("mdir", "-/", "-b", "-i", part, "::").CombinedOutput()
	if err != nil {
		t.Fatalf("mdir: %v\n%s", err, out)
	}
	files := map[string]bool{}
	for _, l := range strings.Fields(string(out)) {
		files[strings.TrimPrefix(l, "::/")] = true
	}
	want := []string{image.InitrdFile, image.CmdlineFile, image.MetaFile}
	if b.UEFI != nil {
		// The kernel is inside the UKI, not next to it.
		want = append(want, b.UEFI.BootFile)
		if files[image.KernelFile] {
			t.Errorf("%s on a UEFI board's ESP", image.KernelFile)
		}
	} else if b.Pi == nil {
		want = append(want, image.KernelFile)
		if files["config.txt"] {
			t.Error("config.txt on a non-Pi board")
		}
	} else {
		want = append(want, b.Pi.KernelName, "config.txt", "overlays/vc4-kms-v3d.dtbo", "overlays/disable-bt.dtbo")
		want = append(want, b.Pi.Firmware...)
		want = append(want, b.Pi.DTBs...)
		for _, fw := range []string{"bootcode.bin", "start.elf", "start4.elf"} {
			if files[fw] != slices.Contains(b.Pi.Firmware, fw) {
				t.Errorf("%s present = %v, but the board's firmware list is %v", fw, files[fw], b.Pi.Firmware)
			}
		}
	}
	for _, f := range want {
		if !files[f] {
			t.Errorf("boot partition lacks %s", f)
		}
	}
}

func TestParseVolume(t *testing.T) {
	tests := []struct {
		in, name, path, err string
	}{
		{in: "/var/lib/app", name: "var-lib-app", path: "/var/lib/app"},
		{in: "wifi:/etc/wpa_supplicant", name: "wifi", path: "/etc/wpa_supplicant"},
		{in: "/Srv/My.App", name: "srv-my.app", path: "/Srv/My.App"},
		{in: "/data/my app", err: "spaces"},
		{in: "relative/path", err: "clean absolute path"},
		{in: "/", err: "clean absolute path"},
		{in: "/a/../b", err: "clean absolute path"},
		{in: "Bad:/x", err: "bad volume name"},
	}
	for _, tt := range tests {
		v, err := ParseVolume(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseVolume(%q) = %+v, %v; want error %q", tt.in, v, err, tt.err)
			}
			continue
		}
		if err != nil || v.Name != tt.name || v.Path != tt.path {
			t.Errorf("ParseVolume(%q) = %+v, %v; want %s %s", tt.in, v, err, tt.name, tt.path)
		}
	}
}

func TestVolumesFileInLower(t *testing.T) {
	c := config(t, "qemu-arm64")
	c.Volumes = []Volume{{"app", "/var/lib/app"}, {"wifi", "/etc/wpa_supplicant"}}
	res := build(t, c)
	disk, err := image.Open(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer disk.Close()
	rp, _ := disk.Partition(image.RootPartition)
	sq, err := squashfs.Open(disk.Section(rp))
	if err != nil {
		t.Fatal(err)
	}
	tree, err := sq.ToTree()
	if err != nil {
		t.Fatal(err)
	}
	n := tree.Lookup("/etc/rfs/volumes")
	if n == nil {
		t.Fatal("/etc/rfs/volumes missing from the lower")
	}
	rc, _ := n.Content.Open()
	data, _ := io.ReadAll(rc)
	rc.Close()
	vols, warnings := datapart.ParseVolumes(bytes.NewReader(data))
	if len(warnings) > 0 || len(vols) != 2 || vols[0].Name != "app" || vols[1].Path != "/etc/wpa_supplicant" {
		t.Fatalf("volumes file %q parses as %+v, %v", data, vols, warnings)
	}
	if l := tree.Lookup("/usr/bin/rfs-init"); l == nil || l.Target != "/run/rfs/bin/rfs-init" {
		t.Errorf("/usr/bin/rfs-init = %+v", l)
	}
	c.Output = filepath.Join(t.TempDir(), "dup.img")
	c.Volumes = append(c.Volumes, Volume{"app", "/srv"})
	if _, err := Build(context.Background(), c); err == nil || !strings.Contains(err.Error(), "given twice") {
		t.Fatalf("duplicate volume name: %v", err)
	}
}

// openBoot opens a built image and reads its boot partition's files; the
// disk is closed when the test ends.
func openBoot(t *testing.T, path string) (*image.Disk, *image.Boot) {
	t.Helper()
	disk, err := image.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { disk.Close() })
	boot, err := disk.ReadBoot()
	if err != nil {
		t.Fatal(err)
	}
	return disk, boot
}
