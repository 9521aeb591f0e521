package builder

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/image/fat"
	"github.com/rfsbuild/rfs/slots"
)

// A slotted Raspberry Pi image: an MBR with four primaries (boot, root-a,
// root-b, data; PARTUUIDs SIG-02 and SIG-03 in the record), firmware and
// config.txt/tryboot.txt at the FAT's top, whose os_prefix names slot a
// and slot b; the kernel, device trees and overlays (with their README,
// which makes the firmware take overlays from the prefix) in slot-a/.
func TestBuildSlotsPi(t *testing.T) {
	needTool(t, "sfdisk")
	for _, tt := range []struct{ board, firmware string }{
		{"rpi4", slots.FirmwareRPi},
		{"rpi3", slots.FirmwareRPiSwitch},
	} {
		t.Run(tt.board, func(t *testing.T) {
			c := config(t, tt.board)
			c.Version = "1.0.0"
			c.Update = &UpdateSettings{}
			res := build(t, c)
			out, err := exec.Command("sfdisk", "--json", res.Path).Output()
			if err != nil {
				t.Fatal(err)
			}
			var table struct {
				PartitionTable struct {
					Label, ID  string
					Partitions []struct {
						Node, Type string
						Bootable   bool
					}
				}
			}
			if err := json.Unmarshal(out, &table); err != nil {
				t.Fatal(err)
			}
			pt := table.PartitionTable
			if pt.Label != "dos" || len(pt.Partitions) != 4 {
				t.Fatalf("want an MBR with 4 primaries: %s", out)
			}
			for i, want := range []string{"c", "83", "83", "83"} {
				if p := pt.Partitions[i]; p.Type != want || p.Bootable != (i == 0) || !strings.HasSuffix(p.Node, string(rune('1'+i))) {
					t.Errorf("partition %d = %+v, want type %s", i+1, p, want)
				}
			}
			boot := partOf(t, res, image.BootPartition)
			bootFile := extract(t, res.Path, boot)
			if out, err := exec.Command("fsck.vfat", "-n", bootFile).CombinedOutput(); err != nil {
				t.Errorf("fsck.vfat: %v\n%s", err, out)
			}
			sig := strings.TrimPrefix(pt.ID, "0x")
			checkPiSlotFAT(t, res.Path, boot, c.Board, tt.firmware, sig)
		})
	}
}

func checkPiSlotFAT(t *testing.T, img string, boot image.Placed, b boards.Board, firmware, sig string) {
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
	have := map[string]bool{}
	for _, f := range files {
		have[f.Path] = true
	}
	want := []string{"config.txt", "tryboot.txt", "slot.txt", "rfs-slots.json", "rfs.json",
		"slot-a/kernel8.img", "slot-a/initramfs.img", "slot-a/cmdline.txt", "slot-a/release.json", "slot-a/overlays/README", "slot-a/overlays/vc4-kms-v3d.dtbo"}
	want = append(want, b.Pi.Firmware...)
	for _, d := range b.Pi.DTBs {
		want = append(want, "slot-a/"+d)
		if have[d] {
			t.Errorf("%s at the top: the firmware takes device trees from os_prefix", d)
		}
	}
	for _, w := range want {
		if !have[w] {
			t.Errorf("boot partition lacks %s", w)
		}
	}
	for name := range have {
		if !strings.HasPrefix(name, "slot-a/") && !slices.Contains(want, name) {
			t.Errorf("unexpected top-level file %s", name)
		}
	}
	read := func(name string) string {
		d, err := fsys.ReadFile(name, boot.Size)
		if err != nil {
			t.Fatal(err)
		}
		return string(d)
	}
	cfg, try := read("config.txt"), read("tryboot.txt")
	if slots.OSPrefix([]byte(cfg)) != "slot-a/" || !strings.Contains(cfg, "\nkernel=kernel8.img\n") || !strings.Contains(cfg, "\ninitramfs initramfs.img followkernel\n") {
		t.Errorf("config.txt:\n%s", cfg)
	}
	if slots.OSPrefix([]byte(try)) != "slot-b/" || strings.Replace(try, "os_prefix=slot-b/", "os_prefix=slot-a/", 1) != cfg {
		t.Errorf("tryboot.txt is not config.txt with os_prefix=slot-b/:\n%s", try)
	}
	st, err := slots.Parse([]byte(read("rfs-slots.json")))
	if err != nil {
		t.Fatal(err)
	}
	if st.Firmware != firmware || st.Committed != "a" || st.Slots["a"].Root != sig+"-02" || st.Slots["b"].Root != sig+"-03" {
		t.Errorf("rfs-slots.json (disk id %s): %s", sig, st.Marshal())
	}
	if cmd := read("slot-a/cmdline.txt"); !strings.Contains(cmd, "rfs.root=PARTUUID="+sig+"-02") || !strings.Contains(cmd, "rfs.slot=a") {
		t.Errorf("slot a's cmdline.txt %q", cmd)
	}
}
