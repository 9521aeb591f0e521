package overlay

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rfsbuild/rfs/bootparam"
)

// HostMountStatus is one rfs.mount in status.json.
type HostMountStatus struct {
	Tag      string `json:"tag"`
	Path     string `json:"path"`
	ReadOnly bool   `json:"read_only,omitempty"`
	Error    string `json:"error,omitempty"` // why it is not mounted
}

// HostMountWait is how long the init retries a 9P mount whose tag the
// kernel has not registered yet (the virtio device is normally probed
// before the init runs).
var HostMountWait = 2 * time.Second

// ninePOptions are the 9P mount options: virtio transport, the Linux
// dialect (owners, modes, symlinks, device nodes), 256 KiB messages (below
// the virtio transport's limit, which older kernels announce when clamping), and
// no caching, so the host's edits show at once.
const ninePOptions = "trans=virtio,version=9p2000.L,msize=262144,cache=none"

// MountHostDirs mounts every rfs.mount (a directory the host exports over
// virtio-9p, rfs run --mount) on its path in the new root, after the
// overlay and the volumes, so it covers both. A missing mount point is
// created in the overlay (in the upper, like a volume's; docker creates
// bind-mount points in a container's layer the same way). A mount that
// fails is a warning: the boot goes on without it.
func (b *Boot) MountHostDirs() {
	if len(b.Params.Mounts) == 0 {
		return
	}
	sysroot, err := os.Open(b.P("/sysroot"))
	if err != nil {
		b.Logf("warning: host directories not mounted: %v", err)
		return
	}
	defer sysroot.Close()
	for _, m := range b.Params.Mounts {
		st := HostMountStatus{Tag: m.Tag, Path: m.Path, ReadOnly: m.ReadOnly}
		if err := b.mountHostDir(int(sysroot.Fd()), m); err != nil {
			st.Error = err.Error()
			b.Logf("warning: host directory %s not mounted on %s: %v", m.Tag, m.Path, err)
		} else {
			mode := "read-write"
			if m.ReadOnly {
				mode = "read-only"
			}
			b.Logf("host directory %s mounted on %s (9p, %s)", m.Tag, m.Path, mode)
		}
		b.Status.Mounts = append(b.Status.Mounts, st)
	}
}

func (b *Boot) mountHostDir(sysrootFD int, m bootparam.HostMount) error {
	target, err := mkdirAllInRoot(sysrootFD, m.Path)
	if err != nil {
		return fmt.Errorf("mount point: %w", err)
	}
	defer unix.Close(target)
	var flags uintptr = unix.MS_NODEV
	if m.ReadOnly {
		flags |= unix.MS_RDONLY
	}
	dst := "/proc/self/fd/" + strconv.Itoa(target)
	deadline := time.Now().Add(HostMountWait)
	for {
		err = unix.Mount(m.Tag, dst, "9p", flags, ninePOptions)
		// ENOENT: no virtio channel with this tag (yet).
		if !errors.Is(err, unix.ENOENT) || !time.Now().Before(deadline) {
			break
		}
		time.Sleep(PollInterval)
	}
	if errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("no virtio-9p device with mount tag %s (only rfs run --mount on a QEMU virt or q35 machine offers one)", m.Tag)
	}
	if errors.Is(err, unix.ENODEV) {
		return errors.New("the kernel has no 9p filesystem (CONFIG_9P_FS, CONFIG_NET_9P_VIRTIO)")
	}
	if err != nil {
		return mountErr("9p", m.Tag, m.Path, err)
	}
	// No undo of its own: undoing the overlay detaches /sysroot with
	// everything mounted below it (as for the volumes).
	return nil
}
