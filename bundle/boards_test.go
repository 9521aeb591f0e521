package bundle

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/rootfs"
)

// TestBoardBootFiles: a Pi's boot-files hold its firmware, DTBs and
// config.txt; on a UEFI PC the kernel part is the UKI (rfs.json's
// kernel_file, EFI/BOOT/BOOTX64.EFI), a PE file.
func TestBoardBootFiles(t *testing.T) {
	if _, err := exec.LookPath("mke2fs"); err != nil {
		t.Skip("mke2fs not installed")
	}
	for _, c := range []struct {
		board string
		want  []string
	}{
		{"rpi4", []string{"config.txt", "cmdline.txt", "rfs.json", "start4.elf", "bcm2711-rpi-4-b.dtb"}},
		{"pc", []string{"cmdline.txt", "rfs.json"}},
	} {
		t.Run(c.board, func(t *testing.T) {
			b, err := boards.Lookup(c.board)
			if err != nil {
				t.Fatal(err)
			}
			if b.UEFI != nil {
				if _, err := os.Stat(b.UEFI.Stub); err != nil {
					t.Skipf("EFI stub not installed: %v", err)
				}
			}
			res, err := builder.Build(context.Background(), builder.Config{
				Board: b, Output: filepath.Join(t.TempDir(), c.board+".img"), Epoch: builder.DefaultEpoch, Owner: &rootfs.Owner{},
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
			names := tarNames(t, rel)
			for _, w := range c.want {
				if !slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, w) }) {
					t.Errorf("boot-files lack %s", w)
				}
			}
			if b.UEFI != nil && !strings.HasPrefix(string(partBytes(t, rel, "kernel")), "MZ") {
				t.Error("the kernel part of a UEFI board is not the UKI (no MZ header)")
			}
		})
	}
}

func tarNames(t *testing.T, rel *Release) []string {
	t.Helper()
	i := slices.IndexFunc(rel.Config.Parts, func(p Part) bool { return p.Role == RoleBootFiles })
	rc, err := rel.blobs[i].open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var names []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}

func partBytes(t *testing.T, rel *Release, name string) []byte {
	t.Helper()
	i := slices.IndexFunc(rel.Config.Parts, func(p Part) bool { return p.Name == name })
	rc, err := rel.blobs[i].open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
