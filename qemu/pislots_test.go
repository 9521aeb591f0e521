package qemu

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/rootfs"
	"github.com/rfsbuild/rfs/slots"
)

// piFiles are a slotted Pi image's firmware configs: config.txt boots
// cfg's slot, tryboot.txt try's.
func piFiles(committed, cfg, try string) map[string][]byte {
	return map[string][]byte{
		"slot.txt":    []byte(committed + "\n"),
		"config.txt":  []byte("[all]\narm_64bit=1\nkernel=vmlinuz\nos_prefix=slot-" + cfg + "/\n"),
		"tryboot.txt": []byte("[all]\narm_64bit=1\nkernel=vmlinuz\nos_prefix=slot-" + try + "/\n"),
	}
}

// The Pi firmware's choice: config.txt's os_prefix, tryboot.txt's at a
// tryboot boot (the flag consumed); a Pi 3 trial is config.txt pointing
// at the slot slot.txt does not name.
func TestChooseSlotPi(t *testing.T) {
	both := merge(slotFiles("a"), slotFiles("b"))
	for _, tc := range []struct {
		name  string
		files map[string][]byte
		want  Choice
		err   string
	}{
		{name: "committed a", files: merge(both, piFiles("a", "a", "b")), want: Choice{Slot: "a"}},
		{name: "committed b", files: merge(both, piFiles("b", "b", "a")), want: Choice{Slot: "b"}},
		{name: "tryboot", files: merge(both, piFiles("a", "a", "b"), map[string][]byte{"tryboot": {}}), want: Choice{Slot: "b", Trial: true}},
		{name: "switched (pi3 trial)", files: merge(both, piFiles("a", "b", "a")), want: Choice{Slot: "b", Trial: true}},
		{name: "no tryboot.txt", files: merge(both, piFiles("a", "a", "b"), map[string][]byte{"tryboot.txt": nil, "tryboot": {}}), want: Choice{Slot: "a"}},
		{name: "bad prefix", files: merge(both, piFiles("a", "c", "b")), err: "os_prefix=slot-c/ names no slot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string][]byte{}
			for k, v := range tc.files {
				if v != nil {
					files[k] = v
				}
			}
			path := slotImage(t, files)
			got, err := ChooseSlot(path)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ChooseSlot = %v, want error %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ChooseSlot = %+v, %v; want %+v", got, err, tc.want)
			}
			if trybootSet(t, path) {
				t.Error("the tryboot flag was not consumed")
			}
		})
	}
}

// A power-up of a Pi image loads the machine's device tree from the
// chosen slot's directory too.
func TestPowerUpPiDTB(t *testing.T) {
	files := merge(slotFiles("a"), slotFiles("b"), piFiles("a", "a", "b"), map[string][]byte{
		"slot-a/bcm2710-rpi-3-b.dtb": []byte("dtb a"), "slot-b/bcm2710-rpi-3-b.dtb": []byte("dtb b"), "tryboot": {}})
	path := slotImage(t, files)
	dir := t.TempDir()
	fw := &Firmware{Image: path, Cmdline: "root=x rfs.slot=a"}
	c := Config{Kernel: dir + "/kernel", Initrd: dir + "/initrd", DTB: dir + "/bcm2710-rpi-3-b.dtb", Append: "root=x rfs.slot=a", Firmware: fw}
	for i, want := range []string{"b", "a"} {
		got, choice, err := fw.powerUp(c)
		if err != nil {
			t.Fatal(err)
		}
		dtb, _ := os.ReadFile(got.DTB)
		if choice.Slot != want || string(dtb) != "dtb "+want {
			t.Errorf("boot %d: slot %s, dtb %q; want %s", i+1, choice.Slot, dtb, want)
		}
	}
}

// ForImage of a slotted rpi4 image: slot a's kernel and device tree (from
// slot-a/, with the USB controller on) and the firmware set.
func TestForImagePiSlots(t *testing.T) {
	b, _ := boards.Lookup("rpi4")
	img := filepath.Join(t.TempDir(), "rpi4.img")
	if _, err := builder.Build(context.Background(), builder.Config{Board: b, Output: img, Epoch: builder.DefaultEpoch, Owner: &rootfs.Owner{}, Update: &builder.UpdateSettings{}}); err != nil {
		if strings.Contains(err.Error(), "module proxy") {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	c, _, err := ForImage(img, t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	if c.Firmware == nil || c.Firmware.Choice != (Choice{Slot: slots.A}) || !c.usbOn || c.DTB == "" {
		t.Fatalf("firmware %+v, usb %v, dtb %q", c.Firmware, c.usbOn, c.DTB)
	}
	if !strings.Contains(c.Append, "rfs.slot=a") {
		t.Errorf("append %q", c.Append)
	}
}
