package qemu

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/image/imagetest"
	"github.com/rfsbuild/rfs/slots"
)

// slotFiles are a slot's boot files whose content names the slot.
func slotFiles(slot string) map[string][]byte {
	d := slots.Dir(slot)
	return map[string][]byte{
		d + image.KernelFile:  []byte("kernel " + slot),
		d + image.InitrdFile:  []byte("initrd " + slot),
		d + image.CmdlineFile: []byte("root=x rfs.slot=" + slot + "\n"),
	}
}

// slotImage is a small synthetic image (boot and root partitions) with
// boot files as edit makes them.
func slotImage(t *testing.T, edit map[string][]byte) string {
	t.Helper()
	path, _ := imagetest.Write(t, imagetest.Spec{Table: "gpt", Parts: []imagetest.Part{{Role: image.RoleBoot}, {Role: image.RoleRoot}}})
	imagetest.EditBoot(t, path, edit)
	return path
}

func merge(ms ...map[string][]byte) map[string][]byte {
	out := map[string][]byte{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func TestChooseSlot(t *testing.T) {
	both := merge(slotFiles("a"), slotFiles("b"))
	for _, tc := range []struct {
		name  string
		files map[string][]byte
		want  Choice
		err   string // "": no error
		flag  bool   // tryboot is left after the choice
	}{
		{name: "no slots", files: nil, err: slots.ErrNoSlots.Error()},
		{name: "a", files: merge(both, map[string][]byte{"slot.txt": []byte("a\n")}), want: Choice{Slot: "a"}},
		{name: "b", files: merge(both, map[string][]byte{"slot.txt": []byte(" b ")}), want: Choice{Slot: "b"}},
		{name: "tryboot", files: merge(both, map[string][]byte{"slot.txt": []byte("a\n"), "tryboot": {}}), want: Choice{Slot: "b", Trial: true}},
		{name: "tryboot from b", files: merge(both, map[string][]byte{"slot.txt": []byte("b\n"), "TRYBOOT": []byte("1")}), want: Choice{Slot: "a", Trial: true}},
		{name: "garbage", files: merge(both, map[string][]byte{"slot.txt": []byte("c\n"), "tryboot": {}}), err: `slot.txt: "c" names no slot`, flag: true},
		{name: "empty trial slot", files: merge(slotFiles("a"), map[string][]byte{"slot.txt": []byte("a\n"), "tryboot": {}}),
			want: Choice{Slot: "a", Note: "tryboot asks for slot b, which has no slot-b/vmlinuz: booting the committed slot a instead (a real firmware would fail to boot)"}},
		{name: "empty committed slot", files: merge(slotFiles("a"), map[string][]byte{"slot.txt": []byte("b\n")}), err: "the committed slot b (slot.txt) has no slot-b/vmlinuz"},
		{name: "no kernel at all", files: map[string][]byte{"slot.txt": []byte("a\n"), "tryboot": {}}, err: "neither slot has a kernel", flag: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := slotImage(t, tc.files)
			peek, err := PeekSlot(path)
			got, err2 := ChooseSlot(path)
			if tc.err != "" {
				if err == nil || err2 == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err2.Error(), tc.err) {
					t.Fatalf("PeekSlot, ChooseSlot = %v, %v; want errors with %q", err, err2, tc.err)
				}
			} else if err != nil || err2 != nil || got != tc.want || peek != tc.want {
				t.Fatalf("PeekSlot, ChooseSlot = %+v (%v), %+v (%v); want %+v", peek, err, got, err2, tc.want)
			}
			if flag := trybootSet(t, path); flag != tc.flag {
				t.Errorf("tryboot set after the choice: %v, want %v", flag, tc.flag)
			}
			if tc.name == "no slots" && !errors.Is(err2, slots.ErrNoSlots) {
				t.Errorf("error %v is not slots.ErrNoSlots", err2)
			}
		})
	}
}

// trybootSet says whether the image's boot partition holds the flag.
func trybootSet(t *testing.T, path string) bool {
	t.Helper()
	img, err := image.OpenImage(path)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	fs, err := bootFAT(img)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := exists(fs, slots.TrybootFile)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestPowerUp(t *testing.T) {
	path := slotImage(t, merge(slotFiles("a"), slotFiles("b"), map[string][]byte{"slot.txt": []byte("a\n"), "tryboot": {}}))
	dir := t.TempDir()
	fw := &Firmware{Image: path, Cmdline: "root=x rfs.slot=a"}
	var log strings.Builder
	fw.Log = &log
	c := Config{Kernel: dir + "/kernel", Initrd: dir + "/initrd", Append: "root=x rfs.slot=a console=ttyAMA0 rfs.shell", Firmware: fw}
	for i, want := range []string{"b", "a"} {
		got, choice, err := fw.powerUp(c)
		if err != nil {
			t.Fatal(err)
		}
		k, _ := os.ReadFile(got.Kernel)
		i2, _ := os.ReadFile(got.Initrd)
		if choice.Slot != want || string(k) != "kernel "+want || string(i2) != "initrd "+want ||
			got.Append != "root=x rfs.slot="+want+" console=ttyAMA0 rfs.shell" {
			t.Errorf("boot %d: %+v, kernel %q, initrd %q, append %q; want slot %s", i+1, choice, k, i2, got.Append, want)
		}
	}
	if want := "rfs: booting slot b (trial)\nrfs: booting slot a\n"; log.String() != want {
		t.Errorf("log %q, want %q", log.String(), want)
	}
}

func TestAfterBoot(t *testing.T) {
	fw := &Firmware{MaxBoots: 3}
	for _, tc := range []struct {
		reason string
		werr   error
		boots  int
		again  bool
		err    string
	}{
		{reason: "guest-reset", boots: 1, again: true},
		{reason: "guest-reset", boots: 3, err: "rebooted 3 times"},
		{reason: "guest-shutdown", boots: 1},
		{reason: "host-ui", boots: 1},
		{reason: "host-signal", boots: 1},
		{reason: "", boots: 1},
		{reason: "guest-panic", boots: 1, err: "panicked"},
		{reason: "guest-reset", werr: errors.New("exit status 1"), boots: 1, err: "exit status 1"},
	} {
		again, err := fw.afterBoot(tc.reason, tc.werr, tc.boots)
		if again != tc.again || (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("afterBoot(%q, %v, %d) = %v, %v; want %v, %q", tc.reason, tc.werr, tc.boots, again, err, tc.again, tc.err)
		}
	}
}
