package builder

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/image/fat"
	"github.com/rfsbuild/rfs/release"
	"github.com/rfsbuild/rfs/rootfs"
	"github.com/rfsbuild/rfs/slots"
	"github.com/rfsbuild/rfs/squashfs"
)

func slotConfig(t *testing.T) Config {
	c := config(t, "qemu-arm64")
	c.Version = "1.0.0"
	c.Update = &UpdateSettings{Config: slots.Config{Ref: "127.0.0.1:5000/dev:latest", HealthSeconds: 10, ResetPaths: []string{"/etc/app.conf"}}}
	return c
}

// A slotted qemu-arm64 image: boot, root-a, root-b, data with their
// names and derived GUIDs; the FAT holds the slot files and nothing at
// its top but rfs.json, slot.txt and rfs-slots.json; two builds are the
// same bytes.
func TestBuildSlots(t *testing.T) {
	needTool(t, "sfdisk")
	c := slotConfig(t)
	res := build(t, c)
	checkSlotTable(t, res)
	boot := partOf(t, res, image.BootPartition)
	checkSlotFAT(t, res.Path, boot)
	bootFile := extract(t, res.Path, boot)
	if out, err := exec.Command("fsck.vfat", "-n", bootFile).CombinedOutput(); err != nil {
		t.Errorf("fsck.vfat: %v\n%s", err, out)
	}
	if _, err := exec.LookPath("mdir"); err == nil {
		// Files lists regular files: mtools shows the empty slot-b/.
		out, err := exec.Command("mdir", "-b", "-i", bootFile, "::/").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "::/slot-b/") {
			t.Errorf("mdir: %v\n%s", err, out)
		}
	}
	if out, err := exec.Command("unsquashfs", "-s", extract(t, res.Path, partOf(t, res, "rfs-root-a"))).CombinedOutput(); err != nil {
		t.Errorf("unsquashfs -s root-a: %v\n%s", err, out)
	}
	if out, err := exec.Command("e2fsck", "-fn", extract(t, res.Path, partOf(t, res, image.DataPartition))).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn data: %v\n%s", err, out)
	}
	checkSlotLower(t, res.Path)

	da, _ := os.ReadFile(res.Path)
	c.Output = filepath.Join(t.TempDir(), "again.img")
	again := build(t, c)
	db, _ := os.ReadFile(again.Path)
	if !bytes.Equal(da, db) {
		t.Fatal("two slotted builds of the same inputs differ")
	}
	// Without slots, the same inputs give another build.
	c.Update, c.Output = nil, filepath.Join(t.TempDir(), "plain.img")
	if plain := build(t, c); plain.BuildID == res.BuildID {
		t.Error("a slotted and a plain build share a build ID")
	}
}

func partOf(t *testing.T, res *Result, name string) image.Placed {
	t.Helper()
	for _, p := range res.Parts {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no %s partition in %+v", name, res.Parts)
	return image.Placed{}
}

func checkSlotTable(t *testing.T, res *Result) {
	t.Helper()
	out, err := exec.Command("sfdisk", "--json", res.Path).Output()
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		PartitionTable struct {
			Label      string
			Partitions []struct {
				Size       int64
				Type, UUID string
				Name       string
			}
		}
	}
	if err := json.Unmarshal(out, &table); err != nil {
		t.Fatal(err)
	}
	rootType, _ := image.RootType("arm64")
	want := []struct{ name, typ, key string }{
		{image.BootPartition, image.TypeESP, "boot"}, {"rfs-root-a", rootType, "root-a"},
		{"rfs-root-b", rootType, "root-b"}, {image.DataPartition, image.TypeLinuxData, "data"}}
	pt := table.PartitionTable
	if pt.Label != "gpt" || len(pt.Partitions) != len(want) {
		t.Fatalf("partition table: %s", out)
	}
	for i, p := range pt.Partitions {
		w := want[i]
		if p.Name != w.name || !strings.EqualFold(p.Type, w.typ) || !strings.EqualFold(p.UUID, DeriveGUID(res.BuildID, w.key)) {
			t.Errorf("partition %d = %+v, want %s, type %s, GUID of %q", i+1, p, w.name, w.typ, w.key)
		}
	}
	if a, b := pt.Partitions[1].Size, pt.Partitions[2].Size; a != b || a*512 < MinSlotSize {
		t.Errorf("slot sizes %d and %d sectors: want equal, at least %d bytes", a, b, MinSlotSize)
	}
}

// checkSlotFAT reads the boot partition's files.
func checkSlotFAT(t *testing.T, img string, boot image.Placed) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fsys, err := fat.Open(io.NewSectionReader(f, boot.Start, boot.Size), boot.Size)
	if err != nil {
		t.Fatal(err)
	}
	files, err := fsys.Files()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Path)
	}
	slices.Sort(names)
	want := []string{"rfs-slots.json", "rfs.json", "slot-a/cmdline.txt", "slot-a/initramfs.img", "slot-a/release.json", "slot-a/vmlinuz", "slot.txt"}
	if !slices.Equal(names, want) {
		t.Errorf("boot files %q, want %q", names, want)
	}
	read := func(name string) []byte {
		b, err := fsys.ReadFile(name, boot.Size)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if s := string(read("slot.txt")); s != "a\n" {
		t.Errorf("slot.txt = %q", s)
	}
	cmdline := string(read("slot-a/cmdline.txt"))
	if !strings.Contains(cmdline, " rfs.slot=a panic=5") || !strings.Contains(cmdline, "rfs.root=PARTUUID=") {
		t.Errorf("slot a's command line %q", cmdline)
	}
	st, err := slots.Parse(read("rfs-slots.json"))
	if err != nil {
		t.Fatal(err)
	}
	a := st.Slots[slots.A]
	if st.Committed != "a" || a.State != slots.Good || a.Version != "1.0.0" || st.Slots[slots.B].State != slots.Empty || len(a.Parts) != 3 {
		t.Errorf("rfs-slots.json: %s", st.Marshal())
	}
	kernel := sha256.Sum256(read("slot-a/vmlinuz"))
	if a.Parts[0].Name != "kernel" || a.Parts[0].Digest != "sha256:"+hex.EncodeToString(kernel[:]) {
		t.Errorf("kernel part %+v", a.Parts[0])
	}
	rel, err := release.ParseConfig(read("slot-a/release.json"))
	if err != nil {
		t.Fatal(err)
	}
	var relParts []slots.Part
	for _, p := range rel.Parts {
		relParts = append(relParts, slots.Part{Name: p.Name, Digest: p.Digest, Size: p.Size})
	}
	if rel.Version != "1.0.0" || rel.Board != "qemu-arm64" || rel.Arch != "arm64" || !slices.Equal(relParts, a.Parts) || rel.BuildID != a.BuildID {
		t.Errorf("release.json %+v, slot a %+v", rel, a)
	}
	if a.Root == "" || st.Slots[slots.B].Root == "" || !strings.Contains(cmdline, "rfs.root=PARTUUID="+a.Root) {
		t.Errorf("slot roots %q, %q; command line %q", a.Root, st.Slots[slots.B].Root, cmdline)
	}
	var meta image.Meta
	if err := json.Unmarshal(read("rfs.json"), &meta); err != nil || !meta.Slots {
		t.Errorf("rfs.json: slots %v, %v", meta.Slots, err)
	}
}

// checkSlotLower: update.json and os-release's IMAGE_VERSION in the
// committed root.
func checkSlotLower(t *testing.T, path string) {
	t.Helper()
	tree := openSlotLower(t, path)
	_, b := nodeBytes(t, tree, slots.ConfigFile)
	cfg, err := slots.ParseConfig(b)
	if err != nil || cfg.Ref != "127.0.0.1:5000/dev:latest" || cfg.HealthSeconds != 10 {
		t.Errorf("update.json %s: %v", b, err)
	}
	if _, osrel := nodeBytes(t, tree, "/etc/os-release"); !strings.Contains(string(osrel), `IMAGE_VERSION="1.0.0"`) {
		t.Errorf("os-release:\n%s", osrel)
	}
}

// openSlotLower reads the committed slot's root through image.Image.
func openSlotLower(t *testing.T, path string) *rootfs.Tree {
	t.Helper()
	img, err := image.OpenImage(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	root, err := img.Root()
	if err != nil {
		t.Fatal(err)
	}
	if root.Name != "rfs-root-a" {
		t.Errorf("committed root %s, want rfs-root-a", root.Name)
	}
	sq, err := squashfs.Open(img.Section(root.Placed))
	if err != nil {
		t.Fatal(err)
	}
	tree, err := sq.ToTree()
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func TestBuildSlotsRefused(t *testing.T) {
	layer := writeLayer(t, "site", "x", "gzip")
	tests := []struct {
		name, board string
		edit        func(*Config)
		want        string
	}{
		{"pc", "pc", nil, "A/B slots on pc are not supported yet"},
		{"layers", "qemu-arm64", func(c *Config) { c.Layers = []string{layer} }, "layers with A/B slots are not supported yet"},
		{"emit", "qemu-arm64", func(c *Config) { c.Emit = t.TempDir() }, "--emit with A/B slots is not supported yet"},
		{"small slot", "qemu-arm64", func(c *Config) {
			c.Update.SlotSize = image.MiB
			c.Files = []Files{{Src: noise(t, 2*image.MiB), Dest: "/"}}
		}, "more than the slot's 1.0 MiB: give a bigger slot size"},
		{"version", "qemu-arm64", func(c *Config) { c.Version = "1 0" }, `version "1 0": character ' '`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := boards.Lookup(tt.board)
			if err != nil {
				t.Fatal(err)
			}
			c := Config{Board: b, Output: filepath.Join(t.TempDir(), "x.img"), Epoch: DefaultEpoch, Owner: &rootfs.Owner{}, Update: &UpdateSettings{}}
			if tt.edit != nil {
				tt.edit(&c)
			}
			_, err = Build(context.Background(), c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// noise is a directory holding n incompressible bytes.
func noise(t *testing.T, n int) string {
	dir := t.TempDir()
	b := make([]byte, n)
	rand.Read(b)
	if err := os.WriteFile(filepath.Join(dir, "noise"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
