package reset

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rfsbuild/rfs/datapart"
)

// Now wipes the upper layer (with all, the volumes too) of the image or
// device at path on the host: it mounts the data partition (its node on a
// device, else a loop device over its byte range), runs
// datapart.Dir.Reset, deletes the old files, unmounts and detaches. Root
// only; the target must not be mounted or running.
func Now(ctx context.Context, path string, all bool) (*NowResult, error) {
	if geteuid() != 0 {
		return nil, ErrNotRoot
	}
	t, err := Inspect(path)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	res := &NowResult{Target: t}
	if c, ok, err := FlagSet(path); err == nil && ok {
		res.FlagPending = strings.TrimSpace(c)
		if res.FlagPending == "" {
			res.FlagPending = "(empty)"
		}
	}
	dev := t.partNode(t.Data)
	if dev == "" {
		loop, err := attachLoop(path, t.Data.Start, t.Data.Size, t.Device)
		if err != nil {
			return nil, fmt.Errorf("%s: attach the data partition: %w", path, err)
		}
		defer loop.Close()
		dev = loop.Name()
	}
	res.Device = dev
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "rfs-reset-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(dir)
	if err := unix.Mount(dev, dir, "ext4", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return nil, fmt.Errorf("%s: mount the data partition (%s) as ext4: %w", path, dev, err)
	}
	rec, rerr := datapart.Dir{Path: dir}.Reset(datapart.TriggerHost, all)
	// syncfs before the unmount reports write errors the unmount would not.
	var serr error
	if d, err := os.Open(dir); err == nil {
		serr = unix.Syncfs(int(d.Fd()))
		d.Close()
	}
	if err := unmount(dir); err != nil {
		return nil, fmt.Errorf("%s: unmount %s: %w", path, dir, err)
	}
	if rerr != nil {
		// The intent is durable: the next boot (or rfs reset --now again)
		// completes the reset.
		return nil, fmt.Errorf("%s: reset: %w", path, rerr)
	}
	if serr != nil {
		return nil, fmt.Errorf("%s: sync the data partition: %w", path, serr)
	}
	res.Record = rec
	res.Took = time.Since(t0)
	return res, nil
}

// loopDev is an attached loop device; Close detaches it.
type loopDev struct {
	f *os.File
}

func (l *loopDev) Name() string { return l.f.Name() }

func (l *loopDev) Close() error {
	err := unix.IoctlSetInt(int(l.f.Fd()), unix.LOOP_CLR_FD, 0)
	if errors.Is(err, unix.ENXIO) {
		err = nil // already detached (autoclear)
	}
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// attachLoop attaches the byte range [off, off+size) of path to a free loop
// device (LOOP_CONFIGURE; like losetup --offset --sizelimit).
func attachLoop(path string, off, size int64, excl bool) (*loopDev, error) {
	flags := os.O_RDWR
	if excl {
		flags |= unix.O_EXCL
	}
	back, err := os.OpenFile(path, flags, 0)
	if err != nil {
		return nil, err
	}
	defer back.Close()
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer ctl.Close()
	for try := 0; ; try++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("no free loop device: %w", err)
		}
		node := fmt.Sprintf("/dev/loop%d", n)
		lf, err := os.OpenFile(node, os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
		cfg := unix.LoopConfig{Fd: uint32(back.Fd())}
		cfg.Info.Offset, cfg.Info.Sizelimit = uint64(off), uint64(size)
		cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR
		err = unix.IoctlLoopConfigure(int(lf.Fd()), &cfg)
		if err == nil {
			return &loopDev{f: lf}, nil
		}
		lf.Close()
		if errors.Is(err, unix.EBUSY) && try < 10 {
			continue // another program took it between GET_FREE and CONFIGURE
		}
		return nil, fmt.Errorf("%s: LOOP_CONFIGURE: %w", node, err)
	}
}

// unmount unmounts dir, retrying while the kernel says it is busy: a
// process elsewhere may hold it for a moment (a mount namespace created
// meanwhile holds a peer of the mount; a scanner may be walking it). The
// data is synced before this, so after two seconds a lazy unmount is safe:
// the filesystem is detached from dir and released with the last user.
func unmount(dir string) error {
	for try := 0; try < 20; try++ {
		err := unix.Unmount(dir, 0)
		if !errors.Is(err, unix.EBUSY) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return unix.Unmount(dir, unix.MNT_DETACH)
}
