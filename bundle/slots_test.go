package bundle

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/rootfs"
	"github.com/rfsbuild/rfs/slots"
)

// TestReadSlottedImage: a slotted image's release is its committed
// slot's: kernel, initramfs and root with the digests rfs build recorded
// in rfs-slots.json, boot-files holding the slot's cmdline.txt only, and
// the version of its release.json.
func TestReadSlottedImage(t *testing.T) {
	if _, err := exec.LookPath("mke2fs"); err != nil {
		t.Skip("mke2fs not installed")
	}
	b, err := boards.Lookup("qemu-arm64")
	if err != nil {
		t.Fatal(err)
	}
	res, err := builder.Build(context.Background(), builder.Config{
		Board: b, Output: filepath.Join(t.TempDir(), "slots.img"), Epoch: builder.DefaultEpoch, Owner: &rootfs.Owner{},
		Version: "1.2.3", Update: &builder.UpdateSettings{},
	})
	if err != nil {
		if strings.Contains(err.Error(), "module proxy") {
			t.Skipf("modules unavailable: %v", err)
		}
		t.Fatal(err)
	}
	rel, err := ReadImage(res.Path, "")
	if err != nil {
		t.Fatal(err)
	}
	defer rel.Close()
	if rel.Config.Version != "1.2.3" || rel.Config.BuildID != res.BuildID {
		t.Errorf("config %+v", rel.Config)
	}
	if names := tarNames(t, rel); !slices.Equal(names, []string{image.CmdlineFile}) {
		t.Errorf("boot-files %q, want cmdline.txt only", names)
	}
	img, err := image.OpenImage(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	st, err := img.ReadSlots()
	if err != nil {
		t.Fatal(err)
	}
	recorded := st.Slots[slots.A].Parts
	var got []slots.Part
	for _, p := range rel.Config.Parts {
		if p.Role != RoleBootFiles {
			got = append(got, slots.Part{Name: p.Name, Digest: p.Digest, Size: p.Size})
		}
	}
	if !slices.Equal(got, recorded) {
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(recorded)
		t.Errorf("bundle parts %s, rfs-slots.json's %s", a, b)
	}
}
