package overlay

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/bootparam"
)

// A host directory whose 9P tag has no device (no rfs run --mount, or a
// machine without virtio) is a warning: the boot goes on, status.json says
// why, and the mount point exists in the new root. (The mount itself is
// tested in e2e.TestRunMount, in QEMU.)
func TestMountHostDirsWithoutDevice(t *testing.T) {
	needRoot(t)
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "sysroot/srv"), 0o755); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	b := NewBoot(root, &out)
	b.Params = bootparam.ParseCmdline("rfs.mount=rfsnone0:/srv rfs.mount=rfsnone1:/mnt/new/dir:ro")
	old := HostMountWait
	HostMountWait = 0
	defer func() { HostMountWait = old }()
	b.MountHostDirs()
	if len(b.Status.Mounts) != 2 {
		t.Fatalf("status: %+v", b.Status.Mounts)
	}
	for _, m := range b.Status.Mounts {
		// The host's kernel may lack 9p altogether.
		if !strings.Contains(m.Error, "no virtio-9p device with mount tag "+m.Tag) && !strings.Contains(m.Error, "no 9p filesystem") {
			t.Errorf("%s: error %q", m.Tag, m.Error)
		}
	}
	if !b.Status.Mounts[1].ReadOnly || b.Status.Mounts[1].Path != "/mnt/new/dir" {
		t.Errorf("status: %+v", b.Status.Mounts[1])
	}
	if st, err := os.Stat(filepath.Join(root, "sysroot/mnt/new/dir")); err != nil || !st.IsDir() {
		t.Errorf("mount point not made: %v", err)
	}
	if !strings.Contains(out.String(), "rfs: warning: host directory rfsnone1 not mounted on /mnt/new/dir") {
		t.Errorf("console:\n%s", out.String())
	}
}
