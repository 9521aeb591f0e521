package overlay

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rfsbuild/rfs/bootparam"
	"github.com/rfsbuild/rfs/datapart"
	"github.com/rfsbuild/rfs/ext4fs/ext4sb"
	"github.com/rfsbuild/rfs/ptable"
)

// Paths of the data partition on the booted device.
const (
	DataDir     = "/run/rfs/data"         // the data partition; upper/ and work/ covered read-only
	DataStaging = "/run/rfs/.data-rw"     // the ext4 mount during boot only (detached)
	BootStaging = "/run/rfs/.boot"        // the boot partition while the reset flag is handled
	BinPath     = "/run/rfs/bin/rfs-init" // copy of the init for `rfs-init status|reset`
	GCLogPath   = "/run/rfs/gc.log"       // what the background trash deletion did
)

// DataWait is how long the init waits for the data and boot partitions
// once the root is found (they are normally on the same disk, found in
// the same scan).
var DataWait = 3 * time.Second

// MinFree is the least free space (bytes) and inodes on the data
// partition for the upper to be used; below it the boot is degraded.
const (
	MinFree       = 4 << 20
	MinFreeInodes = 64
)

// dataMount is the state of the data partition during one boot attempt.
type dataMount struct {
	m       *RootMatch
	staging string // real path of the rw mount
	usable  bool   // upper and volumes may be used (not degraded)
	flag    string // real path of the reset flag on the mounted boot partition, "" if none
}

func (b *Boot) degrade(format string, args ...any) {
	reason := fmt.Sprintf(format, args...)
	if b.degraded == "" {
		b.degraded = reason
	} else {
		b.degraded += "; " + reason
	}
	b.Logf("DEGRADED: %s", reason)
}

// SetupData finds and mounts the data partition (rfs.data), performs a
// pending or requested factory reset, grows the partition on first boot
// and checks there is room. It never fails the boot: anything wrong
// degrades to a tmpfs upper, and nothing on the partition is destroyed
// (no fsck, no mkfs, no reset without a trigger).
func (b *Boot) SetupData() {
	t0 := time.Now()
	defer func() { b.Status.Timings.Data = ms(time.Since(t0)) }()
	spec := b.Params.Data
	if spec.Kind == bootparam.RootNone {
		if b.Params.Upper.Mode == bootparam.UpperData {
			b.degrade("rfs.upper=data but no data partition given (rfs.data=PARTUUID=...): using a tmpfs upper, changes will not persist")
		}
		return
	}
	consequence := "using a tmpfs upper, changes will not persist"
	if b.Params.Upper.Mode != bootparam.UpperData {
		consequence = "volumes will not persist"
	}
	m, err := b.waitDevice("data partition", spec, DataWait)
	if err != nil {
		b.degrade("data partition %s not found: %s", spec, consequence)
		var se *StageError
		if errors.As(err, &se) {
			for _, d := range se.Details {
				b.Logf("%s", d)
			}
		}
		return
	}
	b.Status.Data = &DataStatus{Device: m.Path, PARTUUID: m.PARTUUID, Mountpoint: DataDir, FSType: "ext4"}
	f, err := os.Open(m.Node)
	if err == nil {
		_, err = ext4sb.Read(f, 0)
		f.Close()
	}
	if err != nil {
		b.degrade("data partition %s (%s): %v: %s", spec, m.Path, err, consequence)
		b.Status.Data.Error = err.Error()
		return
	}
	staging := b.P(DataStaging)
	if err := os.MkdirAll(staging, 0o700); err != nil {
		b.degrade("mkdir %s: %v", DataStaging, err)
		return
	}
	// No nosuid/nodev/noexec: the upper's files must keep working.
	if err := unix.Mount(m.Node, staging, "ext4", unix.MS_NOATIME, ""); err != nil {
		b.degrade("cannot mount data partition %s (%s) as ext4: %v (corrupt? check it with e2fsck from another machine; nothing was changed): %s", spec, m.Path, err, consequence)
		b.Status.Data.Error = "mount: " + err.Error()
		os.Remove(staging)
		return
	}
	b.umountLater(staging)
	b.data = &dataMount{m: m, staging: staging}
	b.Debugf("mounted %s (ext4) on %s", m.Path, DataStaging)
	tm := time.Now()
	b.Status.Timings.DataMount = ms(tm.Sub(t0))
	// Before the reset and the growth, so that their records have a
	// plausible time on a device without a real-time clock.
	b.restoreClock(staging)

	if err := b.resetIfAsked(); err != nil {
		b.degrade("factory reset failed: %v: %s", err, consequence)
		b.Status.Data.Error = "reset: " + err.Error()
		return
	}
	b.Status.Timings.Reset = ms(time.Since(tm))
	tg := time.Now()
	b.growData()
	b.Status.Timings.Grow = ms(time.Since(tg))
	if err := dataDir(staging).EnsureLayout(); err != nil {
		b.degrade("data partition %s: cannot create upper/work/volumes: %v: %s", m.Path, err, consequence)
		b.Status.Data.Error = err.Error()
		return
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(staging, &sfs); err == nil {
		free := int64(sfs.Bfree) * int64(sfs.Bsize)
		if free < MinFree || (sfs.Files > 0 && sfs.Ffree < MinFreeInodes) {
			b.degrade("data partition %s is full (%s free, %d inodes free): %s; delete files under %s/volumes or reset (rfs.reset)",
				m.Path, humanSize(free), sfs.Ffree, consequence, DataDir)
			b.Status.Data.Error = "full"
			b.fillDataStatus()
			return
		}
	}
	b.data.usable = true
	b.fillDataStatus()
}

// fillDataStatus records size, free space and the persisted state.
func (b *Boot) fillDataStatus() {
	d := b.Status.Data
	var sfs unix.Statfs_t
	if unix.Statfs(b.data.staging, &sfs) == nil {
		d.SizeBytes = int64(sfs.Blocks) * int64(sfs.Bsize)
		d.FreeBytes = int64(sfs.Bavail) * int64(sfs.Bsize)
	}
	d.PartitionBytes = b.data.m.Device.Size
	if st, err := dataDir(b.data.staging).ReadState(); err == nil {
		d.LastReset = st.LastReset
		d.LastGrow = st.LastGrow
	}
	d.Trash = len(dataDir(b.data.staging).TrashEntries())
}

// resetIfAsked completes a pending reset (a power cut during a reset, or
// `rfs-init reset`), then performs the one asked for on the command line
// or by the flag file on the boot partition, and clears the flag once
// the wipe is durable.
func (b *Boot) resetIfAsked() error {
	dir := b.data.staging
	now := time.Now()
	if in, err := dataDir(dir).ReadResetIntent(); err != nil {
		return err
	} else if in != nil {
		b.Logf("completing factory reset requested by %s at %s%s", in.Trigger, in.Time, allSuffix(in.All))
		if err := b.doReset(); err != nil {
			return err
		}
	}
	trigger, all := "", false
	if b.Params.Reset != bootparam.ResetNone {
		trigger, all = datapart.TriggerCmdline, b.Params.Reset == bootparam.ResetAll
	}
	if flagAll, ok := b.readResetFlag(); ok {
		if trigger == "" {
			trigger = datapart.TriggerFlag
		}
		all = all || flagAll
	}
	if trigger == "" {
		return nil
	}
	b.Logf("factory reset (%s)%s", trigger, allSuffix(all))
	if _, err := dataDir(dir).ScheduleReset(trigger, all, now); err != nil {
		return err
	}
	if err := b.doReset(); err != nil {
		return err
	}
	b.clearResetFlag()
	return nil
}

func allSuffix(all bool) string {
	if all {
		return ": upper and volumes"
	}
	return ": upper (volumes kept)"
}

func (b *Boot) doReset() error {
	rec, err := dataDir(b.data.staging).ResumeReset(time.Now())
	if err != nil {
		return err
	}
	if rec != nil {
		b.Logf("factory reset done in %.1fms (old files are deleted in the background)", rec.WipeMS)
		b.Status.Data.ResetThisBoot = true
	}
	return nil
}

// readResetFlag mounts the boot partition read-only and looks for the
// flag file. It stays mounted (for clearResetFlag) until the attempt ends.
func (b *Boot) readResetFlag() (all, ok bool) {
	spec := b.Params.BootPart
	if spec.Kind == bootparam.RootNone {
		return false, false
	}
	m, err := b.waitDevice("boot partition", spec, DataWait)
	if err != nil {
		b.Logf("warning: boot partition %s not found: the reset flag file is not checked", spec)
		return false, false
	}
	target := b.P(BootStaging)
	os.MkdirAll(target, 0o700)
	fstype := b.BootFSType
	if fstype == "" {
		fstype = "vfat"
	}
	if err := unix.Mount(m.Node, target, fstype, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		b.Logf("warning: cannot mount boot partition %s (%s) as %s: %v: the reset flag file is not checked", spec, m.Path, fstype, err)
		os.Remove(target)
		return false, false
	}
	b.pushUndo(func() { unix.Unmount(target, unix.MNT_DETACH); os.Remove(target) })
	flag := filepath.Join(target, datapart.ResetFlagFile)
	c, err := os.ReadFile(flag)
	if err != nil {
		if unix.Unmount(target, 0) == nil {
			os.Remove(target)
		}
		return false, false
	}
	b.data.flag = flag
	b.Logf("reset flag %s found on the boot partition %s", datapart.ResetFlagFile, m.Path)
	return strings.EqualFold(strings.TrimSpace(string(c)), "all"), true
}

// clearResetFlag removes the flag file (after the wipe is durable).
func (b *Boot) clearResetFlag() {
	if b.data.flag == "" {
		return
	}
	target := filepath.Dir(b.data.flag)
	err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	if err == nil {
		err = os.Remove(b.data.flag)
		if err == nil {
			err = datapart.SyncDir(target)
		}
	}
	if uerr := unix.Unmount(target, 0); err == nil && uerr != nil {
		err = uerr
	} else if uerr == nil {
		os.Remove(target)
	}
	if err != nil {
		b.Logf("warning: cannot remove the reset flag %s from the boot partition: %v; the reset will be repeated at every boot until it is removed", datapart.ResetFlagFile, err)
		return
	}
	b.data.flag = ""
	step("reset:flag-cleared")
}

// growData grows the data partition and its filesystem to the end of the
// disk. Failures are warnings: the data stays as it is.
func (b *Boot) growData() {
	m := b.data.m
	if m.Device.Disk == "" || m.Table == "" {
		return
	}
	var disk *BlockDevice
	for i := range b.lastScan {
		if b.lastScan[i].Name == m.Device.Disk && b.lastScan[i].Disk == "" {
			disk = &b.lastScan[i]
		}
	}
	if disk == nil || disk.Table == nil {
		return
	}
	node, err := EnsureNode(b.P("/dev"), disk.DevName, disk.Dev)
	if err != nil {
		b.Logf("warning: growth: %v", err)
		return
	}
	f, err := os.OpenFile(node, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		b.Logf("warning: growth: open %s: %v", disk.DevName, err)
		return
	}
	defer f.Close()
	size, err := blockDevSize(f)
	if err != nil {
		size = disk.Size
	}
	plan, err := ptable.GrowPartition(f, size, disk.Table.SectorSize, m.Device.PartN, step)
	if err != nil {
		b.Logf("warning: cannot grow the data partition: %v", err)
		return
	}
	if plan.Repaired && plan.NewSize == plan.OldSize {
		b.Logf("moved the backup GPT to the end of %s", disk.Name)
	}
	// Tell the kernel if its idea of the partition differs from the table.
	part, err := os.Open(m.Node)
	if err != nil {
		b.Logf("warning: growth: %v", err)
		return
	}
	defer part.Close()
	psize, err := blockDevSize(part)
	if err != nil {
		b.Logf("warning: growth: size of %s: %v", m.Path, err)
		return
	}
	if psize != plan.NewSize {
		if err := ResizePartition(node, m.Device.PartN, plan.Start, plan.NewSize); err != nil {
			b.Logf("warning: the partition table says %s is %s but the kernel could not be told (BLKPG: %v); the filesystem grows at the next boot", m.Path, humanSize(plan.NewSize), err)
			return
		}
		step("grow:kernel")
		if psize, err = blockDevSize(part); err != nil {
			return
		}
		b.Logf("data partition %s: %s -> %s (%s table)", m.Path, humanSize(plan.OldSize), humanSize(psize), plan.Table)
	}
	sb, err := ext4sb.Read(part, 0)
	if err != nil {
		b.Logf("warning: growth: %v", err)
		return
	}
	bs, blocks := int64(sb.BlockSize), sb.BlocksCount
	want := uint64(psize / bs)
	if want <= blocks || int64(want-blocks)*bs < ptable.MinGrowth {
		return
	}
	t0 := time.Now()
	if err := ResizeExt4(b.data.staging, want); err != nil {
		b.Logf("warning: cannot grow the ext4 filesystem on %s from %d to %d blocks: %v", m.Path, blocks, want, err)
		return
	}
	step("grow:ext4")
	rec := &datapart.GrowRecord{Time: time.Now().UTC().Format(time.RFC3339), FromBytes: int64(blocks) * bs, ToBytes: int64(want) * bs}
	b.Logf("grew the data filesystem on %s from %s to %s in %dms", m.Path, humanSize(rec.FromBytes), humanSize(rec.ToBytes), time.Since(t0).Milliseconds())
	b.Status.Data.Grown = rec
	if st, err := dataDir(b.data.staging).ReadState(); err == nil || st != nil {
		st.LastGrow = rec
		if err := dataDir(b.data.staging).WriteState(st); err != nil {
			b.Logf("warning: %s: %v", datapart.StateFile, err)
		}
	}
	m.Device.Size = psize
}

// MountVolumes seeds (once) and bind-mounts the volumes listed in the
// lower's /etc/rfs/volumes onto the overlay at /sysroot.
func (b *Boot) MountVolumes() {
	lower, err := os.Open(b.P(LowerDir))
	if err != nil {
		return
	}
	defer lower.Close()
	vf, err := openInRoot(int(lower.Fd()), datapart.VolumesFile, unix.O_RDONLY)
	if err != nil {
		return // no volumes declared
	}
	vols, warns := datapart.ParseVolumes(vf)
	vf.Close()
	for _, w := range warns {
		b.Logf("warning: %s", w)
	}
	if len(vols) == 0 {
		return
	}
	if b.data == nil || !b.data.usable {
		b.Logf("warning: %d volume(s) not mounted (no usable data partition): their paths are in the tmpfs upper", len(vols))
		for i := range vols {
			vols[i].Error = "no usable data partition"
		}
		b.Status.Volumes = vols
		return
	}
	sysroot, err := os.Open(b.P("/sysroot"))
	if err != nil {
		return
	}
	defer sysroot.Close()
	for i := range vols {
		v := &vols[i]
		if err := b.mountVolume(int(lower.Fd()), int(sysroot.Fd()), v); err != nil {
			v.Error = err.Error()
			b.Logf("warning: volume %s (%s): %v", v.Name, v.Path, err)
			continue
		}
		seeded := ""
		if v.Seeded {
			seeded = ", new: seeded from the image"
		}
		b.Debugf("volume %s mounted on %s%s", v.Name, v.Path, seeded)
	}
	b.Status.Volumes = vols
}

func (b *Boot) mountVolume(lowerFD, sysrootFD int, v *datapart.Volume) error {
	src := ""
	if fd, err := unix.Openat2(lowerFD, strings.TrimPrefix(v.Path, "/"), &unix.OpenHow{
		Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}); err == nil {
		src, _ = os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
		defer unix.Close(fd)
	}
	seeded, err := SeedVolume(b.data.staging, v.Name, src)
	if err != nil {
		return err
	}
	v.Seeded = seeded
	target, err := mkdirAllInRoot(sysrootFD, v.Path)
	if err != nil {
		return fmt.Errorf("mount point: %w", err)
	}
	defer unix.Close(target)
	if err := unix.Mount(filepath.Join(b.data.staging, datapart.Volumes, v.Name), "/proc/self/fd/"+strconv.Itoa(target), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind mount: %w", err)
	}
	return nil
}

// openInRoot opens path inside the directory dirFD (symlinks resolved
// inside it, as if it were /).
func openInRoot(dirFD int, path string, flags int) (*os.File, error) {
	fd, err := unix.Openat2(dirFD, strings.TrimPrefix(path, "/"), &unix.OpenHow{
		Flags: uint64(flags | unix.O_CLOEXEC), Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

// mkdirAllInRoot creates path (and parents) inside the directory rootFD,
// resolving symlinks inside it, and returns an O_PATH fd of it.
func mkdirAllInRoot(rootFD int, path string) (int, error) {
	how := func(flags uint64) *unix.OpenHow {
		return &unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	}
	cur := ""
	for _, c := range strings.Split(strings.Trim(path, "/"), "/") {
		parent := cur
		cur = filepath.Join(cur, c)
		if fd, err := unix.Openat2(rootFD, cur, how(unix.O_PATH|unix.O_DIRECTORY)); err == nil {
			unix.Close(fd)
			continue
		}
		pfd := rootFD
		if parent != "" {
			fd, err := unix.Openat2(rootFD, parent, how(unix.O_PATH|unix.O_DIRECTORY))
			if err != nil {
				return -1, err
			}
			defer unix.Close(fd)
			pfd = fd
		}
		if err := unix.Mkdirat(pfd, c, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, fmt.Errorf("mkdir %s: %w", "/"+cur, err)
		}
	}
	return unix.Openat2(rootFD, strings.Trim(path, "/"), how(unix.O_PATH|unix.O_DIRECTORY))
}

// exposeData binds the data partition at /run/rfs/data with upper/ and
// work/ covered by read-only binds (the overlay's own layers must not be
// edited behind its back; volumes/ and the reset request stay writable),
// then detaches the rw staging mount.
func (b *Boot) exposeData() error {
	view := b.P(DataDir)
	if err := os.MkdirAll(view, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(b.data.staging, view, "", unix.MS_BIND, ""); err != nil {
		return mountErr("bind", DataStaging, DataDir, err)
	}
	b.umountLater(view)
	for _, d := range []string{datapart.Upper, datapart.Work} {
		p := filepath.Join(view, d)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if err := unix.Mount(p, p, "", unix.MS_BIND, ""); err != nil {
			return mountErr("bind", DataDir+"/"+d, DataDir+"/"+d, err)
		}
		b.umountLater(p)
		if err := unix.Mount("", p, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("remount %s/%s read-only: %w", DataDir, d, err)
		}
	}
	if err := unix.Unmount(b.data.staging, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach %s: %w", DataStaging, err)
	}
	os.Remove(b.data.staging)
	b.data.staging = view
	return nil
}

// InstallSelf copies the running init to /run/rfs/bin/rfs-init, so
// `rfs-init status` and `rfs-init reset` work in the booted system.
func (b *Boot) InstallSelf() error {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return err
	}
	defer src.Close()
	dst := b.P(BinPath)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, src)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// StartGC starts `rfs-init gc` in the background (in the new root, just
// before rfs.init is exec'd) if the data partition's trash is not empty.
// The new init inherits it as a child and reaps it.
func (b *Boot) StartGC() {
	if b.data == nil || len(dataDir(b.P(DataDir)).TrashEntries()) == 0 {
		return
	}
	log, err := os.OpenFile(b.P(GCLogPath), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer log.Close()
	p, err := os.StartProcess(b.P(BinPath), []string{"rfs-init", "gc", b.P(DataDir)}, &os.ProcAttr{
		Dir: "/", Env: InitEnv, Files: []*os.File{nil, log, log},
	})
	if err != nil {
		b.Logf("warning: cannot start the background deletion of the old upper: %v", err)
		return
	}
	p.Release()
}
