package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/rootfs"
)

// rfs inspect of a slotted image names each root's slot and shows the
// slots' states and versions.
func TestInspectSlots(t *testing.T) {
	b, err := boards.Lookup("qemu-amd64")
	if err != nil {
		t.Fatal(err)
	}
	res, err := builder.Build(context.Background(), builder.Config{
		Board: b, Output: filepath.Join(t.TempDir(), "slots.img"), Epoch: builder.DefaultEpoch, Owner: &rootfs.Owner{},
		Version: "4.2", Update: &builder.UpdateSettings{},
	})
	if err != nil {
		if strings.Contains(err.Error(), "module proxy") {
			t.Skipf("modules unavailable: %v", err)
		}
		t.Fatal(err)
	}
	out, err := execute(t, "inspect", res.Path)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{
		`(?m)^2 +root a +rfs-root-a .* squashfs +fixed `,
		`(?m)^3 +root b +rfs-root-b .* squashfs +fixed `,
		`(?m)^slots: committed a, trial none, firmware boots a \(slot.txt\)$`,
		`(?m)^a +good +4\.2 +` + res.BuildID + `$`,
		`(?m)^b +empty +- +-$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("inspect output lacks %s:\n%s", want, out)
		}
	}
	out, err = execute(t, "inspect", "--json", res.Path)
	if err != nil {
		t.Fatal(err)
	}
	var in Inspection
	if err := json.Unmarshal([]byte(out), &in); err != nil {
		t.Fatal(err)
	}
	if in.Slots == nil || in.Slots.Firmware != "a" || in.Slots.State.Slots["a"].Version != "4.2" || in.Partitions[1].Slot != "a" {
		t.Errorf("JSON slots %+v, partitions %+v", in.Slots, in.Partitions)
	}
}
