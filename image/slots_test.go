package image_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/image/fat"
	"github.com/rfsbuild/rfs/rootfs"
	"github.com/rfsbuild/rfs/slots"
)

// slottedImage builds a slotted qemu-arm64 image.
func slottedImage(t *testing.T) string {
	t.Helper()
	b, err := boards.Lookup("qemu-arm64")
	if err != nil {
		t.Fatal(err)
	}
	res, err := builder.Build(context.Background(), builder.Config{
		Board: b, Output: filepath.Join(t.TempDir(), "slots.img"), Epoch: builder.DefaultEpoch, Owner: &rootfs.Owner{},
		Update: &builder.UpdateSettings{},
	})
	if err != nil {
		if strings.Contains(err.Error(), "module proxy") {
			t.Skipf("modules unavailable: %v", err)
		}
		t.Fatal(err)
	}
	return res.Path
}

// setSlot rewrites slot.txt of the image at path.
func setSlot(t *testing.T, path, content string) {
	t.Helper()
	img, err := image.OpenImage(path)
	if err != nil {
		t.Fatal(err)
	}
	boot, err := img.Boot()
	img.Close()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ed, err := fat.OpenEditor(f, boot.Start)
	if err != nil {
		t.Fatal(err)
	}
	if err := ed.WriteSmall(slots.FirmwareFile, []byte(content), time.Unix(builder.DefaultEpoch, 0)); err != nil {
		t.Fatal(err)
	}
}

// Root, ReadBoot and CommittedSlot follow slot.txt; RootOf and
// ReadBootSlot name a slot; a slot.txt naming no slot is an error.
func TestSlottedImage(t *testing.T) {
	path := slottedImage(t)
	img, err := image.OpenImage(path)
	if err != nil {
		t.Fatal(err)
	}
	if !img.Slotted() {
		t.Fatal("not slotted")
	}
	root, err := img.Root()
	if err != nil || root.Name != "rfs-root-a" || root.Slot != "a" || root.RoleName() != "root a" {
		t.Fatalf("root %+v, %v", root, err)
	}
	boot, err := img.ReadBoot()
	if err != nil || !strings.Contains(boot.Cmdline, "rfs.slot=a") || len(boot.Kernel) == 0 {
		t.Fatalf("boot %v", err)
	}
	st, err := img.ReadSlots()
	if err != nil || st.Committed != "a" {
		t.Fatalf("slots %+v, %v", st, err)
	}
	img.Close()

	b := filepath.Join(t.TempDir(), "b.img")
	copyFile(t, path, b)
	setSlot(t, b, "b\n")
	img, err = image.OpenImage(b)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if s, err := img.CommittedSlot(); s != "b" || err != nil {
		t.Errorf("committed %q, %v", s, err)
	}
	if root, err := img.Root(); err != nil || root.Name != "rfs-root-b" {
		t.Errorf("root %+v, %v", root, err)
	}
	if _, err := img.ReadBoot(); err == nil {
		t.Error("read slot b's empty directory")
	}
	if a, err := img.ReadBootSlot("a"); err != nil || !strings.Contains(a.Cmdline, "rfs.slot=a") {
		t.Errorf("slot a: %v", err)
	}
	if p, err := img.RootOf("a"); err != nil || p.Name != "rfs-root-a" {
		t.Errorf("root of a %+v, %v", p, err)
	}
	setSlot(t, b, "c\n")
	if _, err := img.Root(); err == nil || !strings.Contains(err.Error(), `slot.txt: "c" names no slot`) {
		t.Errorf("slot.txt c: %v", err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
}

func TestLayoutCheckSlots(t *testing.T) {
	part := func(role image.Role, n int, slot string) image.PartMeta {
		return image.PartMeta{Role: role, Number: n, PARTUUID: strings.Repeat(string(rune('0'+n)), 8), Slot: slot}
	}
	boot, data := part(image.RoleBoot, 1, ""), part(image.RoleData, 4, "")
	tests := []struct {
		name  string
		parts []image.PartMeta
		want  string // "" : valid
	}{
		{"slotted", []image.PartMeta{boot, part(image.RoleRoot, 2, "a"), part(image.RoleRoot, 3, "b"), data}, ""},
		{"one slot", []image.PartMeta{boot, part(image.RoleRoot, 2, "a"), data}, "a root per slot"},
		{"slot twice", []image.PartMeta{boot, part(image.RoleRoot, 2, "a"), part(image.RoleRoot, 3, "a"), data}, "two root partitions of slot a"},
		{"slotted and plain root", []image.PartMeta{boot, part(image.RoleRoot, 2, "a"), part(image.RoleRoot, 3, ""), data}, "a root per slot"},
		{"slot c", []image.PartMeta{boot, part(image.RoleRoot, 2, "a"), part(image.RoleRoot, 3, "c"), data}, "only a root partition has a slot, a or b"},
		{"slotted boot", []image.PartMeta{part(image.RoleBoot, 1, "a"), part(image.RoleRoot, 2, ""), data}, "only a root partition has a slot"},
		{"slots and a layer", []image.PartMeta{boot, part(image.RoleRoot, 2, "a"), part(image.RoleRoot, 3, "b"), {Role: image.RoleLayer, Layer: 1, Number: 5, PARTUUID: "55555555"}, data}, "slots hold a root only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := (&image.LayoutMeta{Table: "gpt", Partitions: tt.parts}).Check()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Check: %v, want %q", err, tt.want)
			}
		})
	}
}
