package overlay

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rfsbuild/rfs/bootparam"
	"github.com/rfsbuild/rfs/datapart"
	"github.com/rfsbuild/rfs/squashfs/sqsb"
)

// PollInterval is how often the init rescans for the root device.
const PollInterval = 25 * time.Millisecond

// OrphanGrace is how long the init waits for the kernel to create the
// device of a partition it found in a table before adding it itself.
const OrphanGrace = 250 * time.Millisecond

// InitEnv is the environment rfs.init and the rescue shell get.
var InitEnv = []string{"PATH=/sbin:/bin:/usr/sbin:/usr/bin", "TERM=linux", "HOME=/"}

// Boot runs the boot sequence. All absolute paths are taken relative to
// Root, so tests can run the stages in a scratch directory ("/" in the
// initramfs).
type Boot struct {
	Root    string    // "/" on the device
	Out     io.Writer // console; every line is prefixed "rfs: "
	Params  bootparam.Params
	Status  Status
	Cmdline string

	// Console is the device the rescue shell gets as stdin/out/err and
	// controlling terminal; "" = inherit the init's stdio (tests).
	Console string
	// CmdlinePath overrides /proc/cmdline (tests).
	CmdlinePath string
	// Halt is called when not even a rescue shell can be started; the
	// default sleeps forever (PID 1 must not exit). Tests override it.
	Halt func()
	// BootFSType is the filesystem of the boot partition (rfs.boot),
	// default "vfat"; tests on kernels without vfat override it.
	BootFSType string
	// SetClock sets the wall clock (default settimeofday); tests
	// override it, as a test must never set the host's clock.
	SetClock func(time.Time) error
	// Reboot restarts the machine (default reboot(2)); tests override it.
	Reboot func()
	// RebootTryboot restarts the machine with the Raspberry Pi
	// firmware's tryboot flag (default reboot(2) with "0 tryboot"; tests
	// override it, else Reboot).
	RebootTryboot func()

	start time.Time
	undo  []func() // reverse-order cleanup of the current attempt
	lower *RootMatch
	// lowerBuildID is BUILD_ID of the base lower's /etc/os-release, "" if
	// unknown.
	lowerBuildID string
	// lowerBuilt is the base lower's build time (its os-release mtime),
	// zero if unknown.
	lowerBuilt time.Time
	// clock is what restoreClock did: once per boot, not per attempt
	// (a retry would find the clock already set).
	clock    *ClockStatus
	layers   []*RootMatch // rfs.layers, bottom to top
	scanner  *BlockScanner
	lastScan []BlockDevice
	degraded string     // why this boot is not what was asked for
	data     *dataMount // the data partition, if mounted
	upperRW  string     // real path of the overlay's upper dir (rw)
	workRW   string     // real path of the overlay's work dir
	// slotStatus is the A/B decision of this boot (rfs.slot), trial set
	// on a trial boot.
	slotStatus *SlotStatus
	trial      *slotTrial
}

// NewBoot returns a Boot for the given root directory and console.
func NewBoot(root string, out io.Writer) *Boot {
	b := &Boot{Root: root, Out: out, start: time.Now()}
	b.Console = b.P("/dev/console")
	return b
}

// P maps an absolute path of the booted system to the real path.
func (b *Boot) P(p string) string {
	if b.Root == "" || b.Root == "/" {
		return p
	}
	return filepath.Join(b.Root, p)
}

// Logf prints one console line "rfs: ...".
func (b *Boot) Logf(format string, args ...any) {
	s := format
	if len(args) > 0 {
		s = fmt.Sprintf(format, args...)
	}
	io.WriteString(b.Out, "rfs: "+s+"\n")
}

// Debugf prints only with rfs.debug.
func (b *Boot) Debugf(format string, args ...any) {
	if b.Params.Debug {
		b.Logf("debug: "+format, args...)
	}
}

func ms(d time.Duration) float64 { return math.Round(float64(d.Microseconds())) / 1000 }

// StageError is a boot failure: what failed and the details to show.
type StageError struct {
	Stage   string   // "mount", "root", "lower", "upper", "overlay", "switch_root", "exec"
	Err     error    // what failed
	Details []string // extra console lines (what was looked for, devices seen)
}

func (e *StageError) Error() string { return e.Stage + ": " + e.Err.Error() }

// Unwrap gives errors.Is and errors.As the cause (unix.EBUSY, ...).
func (e *StageError) Unwrap() error { return e.Err }

func stageErr(stage string, err error, details ...string) error {
	return &StageError{Stage: stage, Err: err, Details: details}
}

// mountErr says which mount failed, keeping the cause for errors.Is.
func mountErr(what, src, target string, err error) error {
	return fmt.Errorf("mount %s %s on %s: %w", what, src, target, err)
}

// isMountpoint reports whether p is on another filesystem than its parent.
func isMountpoint(p string) bool {
	var a, b unix.Stat_t
	if unix.Stat(p, &a) != nil || unix.Stat(filepath.Join(p, ".."), &b) != nil {
		return false
	}
	return a.Dev != b.Dev || a.Ino == b.Ino
}

// MountEarly mounts devtmpfs /dev, proc /proc, sysfs /sys and tmpfs /run
// (each skipped if already mounted) and makes sure fds 0-2 are open.
func (b *Boot) MountEarly() error {
	t0 := time.Now()
	for _, m := range []struct {
		fstype, target string
		flags          uintptr
		data           string
	}{
		{"devtmpfs", "/dev", unix.MS_NOSUID, "mode=0755"},
		{"proc", "/proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
		{"sysfs", "/sys", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
		{"tmpfs", "/run", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755"},
	} {
		t := b.P(m.target)
		if err := os.MkdirAll(t, 0o755); err != nil {
			return stageErr("mount", err)
		}
		if isMountpoint(t) {
			b.Debugf("%s already mounted", m.target)
			continue
		}
		if err := unix.Mount(m.fstype, t, m.fstype, m.flags, m.data); err != nil {
			return stageErr("mount", mountErr(m.fstype, m.fstype, m.target, err))
		}
	}
	ensureStdio(b.P("/dev/console"))
	b.Status.Timings.Mounts = ms(time.Since(t0))
	return nil
}

// ensureStdio opens the console on fds 0, 1, 2 if they are closed (the
// kernel does that for us when the initramfs has /dev/console).
func ensureStdio(console string) {
	var st unix.Stat_t
	for fd := 0; fd < 3; fd++ {
		if unix.Fstat(fd, &st) == nil {
			continue
		}
		c, err := unix.Open(console, unix.O_RDWR|unix.O_NOCTTY, 0)
		if err != nil {
			return
		}
		if c != fd {
			unix.Dup3(c, fd, 0)
			unix.Close(c)
		}
	}
}

// ReadParams reads /proc/cmdline and parses it.
func (b *Boot) ReadParams() {
	path := b.CmdlinePath
	if path == "" {
		path = b.P("/proc/cmdline")
	}
	c, err := os.ReadFile(path)
	if err != nil {
		b.Logf("warning: cannot read /proc/cmdline: %v", err)
	}
	b.Cmdline = strings.TrimSpace(string(c))
	b.Params = bootparam.ParseCmdline(b.Cmdline)
}

// WaitRoot polls the block devices until the root device in Params shows
// up (or Params.RootWait passes) and checks it holds a squashfs.
func (b *Boot) WaitRoot() (*RootMatch, error) {
	t0 := time.Now()
	spec := b.Params.Root
	defer func() { b.Status.Timings.RootWait = ms(time.Since(t0)) }()
	if spec.Kind == bootparam.RootNone {
		return nil, stageErr("root", errors.New("no root device given: add rfs.root=PARTUUID=<id> (or rfs.root=/dev/NAME) to the kernel command line"),
			"kernel command line: "+b.Cmdline)
	}
	b.scanner = &BlockScanner{SysBlock: b.P("/sys/class/block"), DevDir: b.P("/dev")}
	b.Logf("waiting up to %gs for root %s", b.Params.RootWait.Seconds(), spec)
	m, err := b.waitDevice("root", spec, b.Params.RootWait)
	if err != nil {
		return nil, err
	}
	if err := checkSquashfs(m.Node); err != nil {
		return nil, stageErr("root", fmt.Errorf("root %s (%s): %w", spec, m.Path, err))
	}
	return m, nil
}

// waitDevice polls the block devices until spec shows up or wait passes;
// what names the device in messages ("root", "data partition").
func (b *Boot) waitDevice(what string, spec bootparam.RootSpec, wait time.Duration) (*RootMatch, error) {
	t0 := time.Now()
	if b.scanner == nil {
		b.scanner = &BlockScanner{SysBlock: b.P("/sys/class/block"), DevDir: b.P("/dev")}
	}
	deadline := t0.Add(wait)
	nextNote := t0.Add(5 * time.Second)
	var lastNote string
	var orphanSince time.Time
	added := map[string]bool{}
	for scans := 1; ; scans++ {
		var devs []BlockDevice
		if scans == 1 && b.lastScan != nil {
			devs = b.lastScan // the root's scan: the data partition is normally on the same disk
		} else {
			devs = b.scanner.Scan()
			b.lastScan = devs
		}
		m, note, orphan := Lookup(devs, spec)
		if orphan == nil {
			orphanSince = time.Time{}
		} else if key := orphan.Disk.Name + "/" + strconv.Itoa(orphan.Part.Number); !added[key] {
			// The kernel normally creates partition devices as soon as it
			// sees the disk. If it has not after OrphanGrace (e.g. a
			// kernel without the partition parser), create it ourselves.
			if orphanSince.IsZero() {
				orphanSince = time.Now()
			} else if time.Since(orphanSince) >= OrphanGrace || !time.Now().Add(PollInterval).Before(deadline) {
				added[key] = true
				err := errors.New("no device node")
				if node, nerr := EnsureNode(b.P("/dev"), orphan.Disk.DevName, orphan.Disk.Dev); nerr == nil {
					err = AddPartition(node, orphan.Part)
				}
				if err != nil {
					b.Logf("warning: kernel has no device for partition %d of %s and adding it failed: %v", orphan.Part.Number, orphan.Disk.Name, err)
				} else {
					b.Logf("kernel has no device for partition %d of %s (no %s partition support?): added it from the table", orphan.Part.Number, orphan.Disk.Name, orphan.Disk.Table.Kind)
					continue
				}
			}
		}
		if note != "" && note != lastNote {
			b.Debugf("%s", note)
			lastNote = note
		}
		if m != nil {
			if note != "" {
				b.Logf("warning: %s", note)
			}
			node, err := EnsureNode(b.P("/dev"), m.Device.DevName, m.Device.Dev)
			if err != nil {
				return nil, stageErr(what, err)
			}
			m.Node = node
			desc := "whole device"
			if m.Device.Disk != "" {
				desc = fmt.Sprintf("partition %d of %s", m.Device.PartN, m.Device.Disk)
				if m.Table != "" {
					desc = m.Table + " " + desc
				}
			}
			b.Logf("%s %s is %s (%s, found after %dms, %d scans)", what, spec, m.Path, desc, time.Since(t0).Milliseconds(), scans)
			return m, nil
		}
		if b.Params.Debug && scans == 1 {
			for _, l := range FormatDevices(devs) {
				b.Debugf("%s", l)
			}
		}
		now := time.Now()
		if !now.Before(deadline) {
			details := []string{fmt.Sprintf("looked for %s for %gs (%d scans of /sys/class/block)", spec, wait.Seconds(), scans)}
			if lastNote != "" {
				details = append(details, lastNote)
			}
			details = append(details, "block devices seen:")
			details = append(details, FormatDevices(devs)...)
			return nil, stageErr(what, fmt.Errorf("%s device %s not found", what, spec), details...)
		}
		if now.After(nextNote) {
			b.Logf("still waiting for %s %s (%ds)", what, spec, int(now.Sub(t0).Seconds()))
			nextNote = now.Add(5 * time.Second)
		}
		time.Sleep(min(PollInterval, deadline.Sub(now)))
	}
}

// checkSquashfs checks that the partition at node holds a squashfs.
func checkSquashfs(node string) error {
	f, err := os.Open(node)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = sqsb.Read(f)
	return err
}

// squashfsCompressor names the compressor of the squashfs at node, for
// the message when the kernel refuses to mount it ("?" if unreadable).
func squashfsCompressor(node string) string {
	f, err := os.Open(node)
	if err != nil {
		return "?"
	}
	defer f.Close()
	sb, err := sqsb.Read(f)
	if err != nil {
		return "?"
	}
	return sb.Compressor()
}

func (b *Boot) pushUndo(f func()) { b.undo = append(b.undo, f) }

// Undo reverts the mounts of the current attempt (newest first).
func (b *Boot) Undo() {
	for i := len(b.undo) - 1; i >= 0; i-- {
		b.undo[i]()
	}
	b.undo = nil
}

func (b *Boot) umountLater(p string) {
	b.pushUndo(func() { unix.Unmount(p, unix.MNT_DETACH) })
}

// MountLower mounts the root squashfs read-only at /run/rfs/lower.
func (b *Boot) MountLower(m *RootMatch) error {
	t0 := time.Now()
	target := b.P(LowerDir)
	if err := os.MkdirAll(target, 0o755); err != nil {
		return stageErr("lower", err)
	}
	if err := unix.Mount(m.Node, target, "squashfs", unix.MS_RDONLY, ""); err != nil {
		comp := squashfsCompressor(m.Node)
		return stageErr("lower", mountErr("squashfs", m.Path, LowerDir, err),
			"squashfs compressor: "+comp+" (the rfs kernels support gzip only)")
	}
	b.umountLater(target)
	b.lower = m
	id, built, err := readBuildID(target)
	if err != nil {
		b.Logf("warning: %v: the upper cannot be tied to this lower's build", err)
	}
	b.lowerBuildID, b.lowerBuilt = id, built
	b.Status.Lower = []LayerStatus{{Device: m.Path, PARTUUID: m.PARTUUID, Mountpoint: LowerDir, FSType: "squashfs", BuildID: id}}
	b.Debugf("mounted %s (squashfs) on %s", m.Path, LowerDir)
	b.Status.Timings.Lower = ms(time.Since(t0))
	return nil
}

// LayerDir is where layer n (1 = the lowest above the root) is mounted.
func LayerDir(n int) string { return LayersDir + "/" + strconv.Itoa(n) }

// MountLayers finds the squashfs layers of rfs.layers (same scan as the
// root, up to DataWait each: they are partitions of the same disk) and
// mounts each read-only at /run/rfs/layers/N. Every layer is required: a
// merged view without one of them would be wrong, so a missing or invalid
// layer fails the boot.
func (b *Boot) MountLayers() error {
	if b.Params.LayersErr != "" {
		return stageErr("layers", errors.New(b.Params.LayersErr),
			"every layer of rfs.layers is required (the merged view would be wrong without it)")
	}
	t0 := time.Now()
	defer func() { b.Status.Timings.Layers = ms(time.Since(t0)) }()
	for i, spec := range b.Params.Layers {
		n := i + 1
		what := "layer " + strconv.Itoa(n)
		m, err := b.waitDevice(what, spec, DataWait)
		if err != nil {
			var se *StageError
			if errors.As(err, &se) {
				se.Details = append(se.Details, fmt.Sprintf("rfs.layers names %d layer(s); every one is required (the merged view would be wrong without it)", len(b.Params.Layers)))
			}
			return err
		}
		if err := checkSquashfs(m.Node); err != nil {
			return stageErr(what, fmt.Errorf("%s %s (%s): %w", what, spec, m.Path, err))
		}
		target := b.P(LayerDir(n))
		if err := os.MkdirAll(target, 0o755); err != nil {
			return stageErr(what, err)
		}
		if err := unix.Mount(m.Node, target, "squashfs", unix.MS_RDONLY, ""); err != nil {
			comp := squashfsCompressor(m.Node)
			return stageErr(what, mountErr("squashfs", m.Path, LayerDir(n), err),
				"squashfs compressor: "+comp+" (the rfs kernels support gzip only)")
		}
		b.umountLater(target)
		b.layers = append(b.layers, m)
		b.Status.Lower = append(b.Status.Lower, LayerStatus{Device: m.Path, PARTUUID: m.PARTUUID, Mountpoint: LayerDir(n), FSType: "squashfs"})
		b.Debugf("mounted %s (squashfs) on %s", m.Path, LayerDir(n))
	}
	return nil
}

// topLower is the real path of the topmost read-only layer: the merged
// root's attributes come from it.
func (b *Boot) topLower() string {
	if len(b.layers) > 0 {
		return b.P(LayerDir(len(b.layers)))
	}
	return b.P(LowerDir)
}

// lowerDirs is the overlay's lowerdir= value: the top layer first, the
// root (/run/rfs/lower) last.
func (b *Boot) lowerDirs() string {
	dirs := make([]string, 0, len(b.layers)+1)
	for n := len(b.layers); n >= 1; n-- {
		dirs = append(dirs, b.P(LayerDir(n)))
	}
	return strings.Join(append(dirs, b.P(LowerDir)), ":")
}

// UpperOptions returns the tmpfs options for the upper layer.
func (b *Boot) UpperOptions() string {
	return "size=" + b.Params.Upper.Size + ",mode=0755"
}

// MountUpper prepares the upper layer: upper/ and work/ on the data
// partition (rfs.upper=data and SetupData found it usable), else a tmpfs
// at /run/rfs/.upper-rw with upper/ and work/ in it. The upper dir gets
// the owner and mode of the lower's root.
func (b *Boot) MountUpper() error {
	t0 := time.Now()
	if b.Params.Upper.Mode == bootparam.UpperData && b.data != nil && b.data.usable {
		b.upperRW = filepath.Join(b.data.staging, datapart.Upper)
		b.workRW = filepath.Join(b.data.staging, datapart.Work)
		if err := copyRootAttrs(b.topLower(), b.upperRW); err != nil {
			return stageErr("upper", err)
		}
		b.Status.Mode = bootparam.UpperData
		b.Status.Upper = UpperStatus{Type: bootparam.UpperData, Mountpoint: UpperDir, Device: b.data.m.Path}
		b.recordLower()
		b.Status.Timings.Upper = ms(time.Since(t0))
		return nil
	}
	staging := b.P(StagingDir)
	if err := os.MkdirAll(staging, 0o700); err != nil {
		return stageErr("upper", err)
	}
	// No nosuid/nodev/noexec: copied-up files must keep working.
	opts := b.UpperOptions()
	if err := unix.Mount("tmpfs", staging, "tmpfs", 0, opts); err != nil {
		return stageErr("upper", mountErr("tmpfs", "tmpfs", StagingDir, err), "options: "+opts)
	}
	b.umountLater(staging)
	up, work := filepath.Join(staging, "upper"), filepath.Join(staging, "work")
	for _, d := range []string{up, work} {
		if err := unix.Mkdir(d, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return stageErr("upper", fmt.Errorf("mkdir %s: %w", d, err))
		}
	}
	if err := copyRootAttrs(b.topLower(), up); err != nil {
		return stageErr("upper", err)
	}
	b.upperRW, b.workRW = up, work
	b.Status.Mode = bootparam.UpperTmpfs
	b.Status.Upper = UpperStatus{Type: bootparam.UpperTmpfs, Options: opts, Mountpoint: UpperDir}
	b.Status.Timings.Upper = ms(time.Since(t0))
	return nil
}

// copyRootAttrs gives the upper dir the owner and mode of the lower's
// root (the merged root takes its attributes from upper/).
func copyRootAttrs(lower, up string) error {
	var st, ust unix.Stat_t
	if err := unix.Stat(lower, &st); err != nil {
		return err
	}
	if err := unix.Stat(up, &ust); err != nil {
		return err
	}
	if ust.Uid != st.Uid || ust.Gid != st.Gid {
		if err := unix.Chown(up, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
	}
	if ust.Mode&0o7777 != st.Mode&0o7777 {
		return unix.Chmod(up, st.Mode&0o7777)
	}
	return nil
}

// OverlayOptions returns the overlay mount options (with real paths).
// Never "volatile": a persistent upper must survive a power cut.
func (b *Boot) OverlayOptions() string {
	return "lowerdir=" + b.lowerDirs() +
		",upperdir=" + b.upperRW +
		",workdir=" + b.workRW +
		",redirect_dir=off,index=off,metacopy=off"
}

// MountOverlay mounts the overlay at /sysroot, binds the upper dir
// read-only at /run/rfs/upper and detaches the rw staging mount.
func (b *Boot) MountOverlay() error {
	t0 := time.Now()
	sysroot := b.P("/sysroot")
	if err := os.MkdirAll(sysroot, 0o755); err != nil {
		return stageErr("overlay", err)
	}
	opts := b.OverlayOptions()
	if err := unix.Mount("overlay", sysroot, "overlay", 0, opts); err != nil {
		return stageErr("overlay", mountErr("overlay", "overlay", "/sysroot", err), "options: "+opts)
	}
	b.umountLater(sysroot)
	b.Status.Overlay = OverlayStatus{Mountpoint: "/", Options: opts}
	b.Debugf("mounted overlay on /sysroot: %s", opts)

	view := b.P(UpperDir)
	if err := os.MkdirAll(view, 0o755); err != nil {
		return stageErr("overlay", err)
	}
	if err := unix.Mount(b.upperRW, view, "", unix.MS_BIND, ""); err != nil {
		return stageErr("overlay", mountErr("bind", b.upperRW, UpperDir, err))
	}
	b.umountLater(view)
	if err := unix.Mount("", view, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return stageErr("overlay", fmt.Errorf("remount %s read-only: %w", UpperDir, err))
	}
	b.MountVolumes()
	b.MountHostDirs()
	// The overlay holds private clones of its layer mounts: the staging
	// mounts are no longer needed, and without them nothing else can
	// write the upper behind the overlay's back.
	if b.data != nil {
		if err := b.exposeData(); err != nil {
			return stageErr("overlay", err)
		}
	}
	if b.Status.Mode == bootparam.UpperTmpfs {
		if err := unix.Unmount(b.P(StagingDir), unix.MNT_DETACH); err != nil {
			return stageErr("overlay", fmt.Errorf("detach %s: %w", StagingDir, err))
		}
		os.Remove(b.P(StagingDir))
	}
	b.Status.Timings.Overlay = ms(time.Since(t0))
	return nil
}

// WriteStatus fills in the remaining fields and writes /run/rfs/status.json.
func (b *Boot) WriteStatus() error {
	s := &b.Status
	s.Version = Version
	s.Init = b.Params.Init
	s.Degraded = b.degraded
	s.Warnings = b.Params.Warnings
	s.Cmdline = b.Cmdline
	s.Timings.Total = ms(time.Since(b.start))
	if err := WriteStatus(b.P(StatusPath), s); err != nil {
		return fmt.Errorf("write %s: %w", StatusPath, err)
	}
	return nil
}

// CheckInit verifies that rfs.init exists in /sysroot and is an executable
// file (symlinks resolved inside /sysroot).
func (b *Boot) CheckInit() error {
	dir, err := unix.Open(b.P("/sysroot"), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return stageErr("switch_root", err)
	}
	defer unix.Close(dir)
	fd, err := unix.Openat2(dir, strings.TrimPrefix(b.Params.Init, "/"), &unix.OpenHow{
		Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return stageErr("switch_root", fmt.Errorf("init %s not found in the root filesystem: %w", b.Params.Init, err),
			"set rfs.init=/path to the init of the image (default "+bootparam.DefaultInit+")")
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return stageErr("switch_root", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Mode&0o111 == 0 {
		return stageErr("switch_root", fmt.Errorf("init %s is not an executable file (mode %o)", b.Params.Init, st.Mode))
	}
	return nil
}

const (
	ramfsMagic = 0x858458f6
	tmpfsMagic = 0x01021994
)

// SwitchRoot moves /dev /proc /sys /run into /sysroot, deletes the
// initramfs contents (only if Root is a ramfs/tmpfs, never crossing into
// other filesystems), moves /sysroot onto Root and chroots into it.
func (b *Boot) SwitchRoot() error {
	t0 := time.Now()
	newRoot := b.P("/sysroot")
	var moved []string
	for _, d := range []string{"/dev", "/proc", "/sys", "/run"} {
		dst := filepath.Join(newRoot, d)
		if err := os.MkdirAll(dst, 0o755); err != nil {
			b.unmove(moved)
			return stageErr("switch_root", err)
		}
		if err := unix.Mount(b.P(d), dst, "", unix.MS_MOVE, ""); err != nil {
			b.unmove(moved)
			return stageErr("switch_root", fmt.Errorf("move %s to /sysroot%s: %w", d, d, err))
		}
		moved = append(moved, d)
	}
	var sfs unix.Statfs_t
	var rst unix.Stat_t
	if err := unix.Statfs(b.P("/"), &sfs); err == nil && (uint32(sfs.Type) == ramfsMagic || uint32(sfs.Type) == tmpfsMagic) && unix.Stat(b.P("/"), &rst) == nil {
		n := deleteTree(b.P("/"), rst.Dev, false)
		b.Debugf("deleted %d initramfs entries", n)
	} else {
		b.Logf("warning: / is not a ramfs/tmpfs, not deleting its contents")
	}
	if err := unix.Chdir(newRoot); err != nil {
		return stageErr("switch_root", err)
	}
	if err := unix.Mount(".", b.P("/"), "", unix.MS_MOVE, ""); err != nil {
		return stageErr("switch_root", fmt.Errorf("move /sysroot to /: %w", err))
	}
	if err := unix.Chroot("."); err != nil {
		return stageErr("switch_root", fmt.Errorf("chroot: %w", err))
	}
	if err := unix.Chdir("/"); err != nil {
		return stageErr("switch_root", err)
	}
	b.undo = nil // nothing left to undo: we are in the new root
	b.Root = "/"
	b.Status.Timings.SwitchRoot = ms(time.Since(t0))
	return nil
}

func (b *Boot) unmove(moved []string) {
	for _, d := range moved {
		unix.Mount(filepath.Join(b.P("/sysroot"), d), b.P(d), "", unix.MS_MOVE, "")
	}
}

// deleteTree removes everything below dir that is on device dev, without
// descending into other filesystems (mount points are left alone). It
// returns the number of entries removed.
func deleteTree(dir string, dev uint64, removeSelf bool) int {
	n := 0
	f, err := os.Open(dir)
	if err == nil {
		names, _ := f.Readdirnames(-1)
		f.Close()
		for _, name := range names {
			p := filepath.Join(dir, name)
			var st unix.Stat_t
			if unix.Lstat(p, &st) != nil || st.Dev != dev {
				continue
			}
			if st.Mode&unix.S_IFMT == unix.S_IFDIR {
				n += deleteTree(p, dev, true)
			} else if unix.Unlink(p) == nil {
				n++
			}
		}
	}
	if removeSelf && unix.Rmdir(dir) == nil {
		n++
	}
	return n
}

// ReadyLine is the single line printed when the overlay is in place:
// "overlay ready (lower=DEV squashfs[ +K layers], upper=..., Nms)".
func (b *Boot) ReadyLine() string {
	lower := "?"
	if b.lower != nil {
		lower = b.lower.Path
	}
	lower += " squashfs"
	switch k := len(b.layers); {
	case k == 1:
		lower += " +1 layer"
	case k > 1:
		lower += fmt.Sprintf(" +%d layers", k)
	}
	if b.Status.Mode == bootparam.UpperData {
		return fmt.Sprintf("overlay ready (lower=%s, upper=data %s, %dms)",
			lower, b.Status.Upper.Device, time.Since(b.start).Milliseconds())
	}
	deg := ""
	if b.degraded != "" {
		deg = ", DEGRADED"
	}
	return fmt.Sprintf("overlay ready (lower=%s, upper=%s size=%s%s, %dms)",
		lower, b.Status.Mode, b.Params.Upper.Size, deg, time.Since(b.start).Milliseconds())
}

// Prepare runs everything before switch_root: early mounts must be done
// and Params read. On error the attempt's mounts are undone.
func (b *Boot) Prepare() (err error) {
	defer func() {
		if err != nil {
			b.Undo()
		}
	}()
	b.Status = Status{Timings: Timings{Mounts: b.Status.Timings.Mounts}, Slots: b.slotStatus}
	b.degraded, b.data, b.lastScan, b.layers, b.lowerBuildID, b.lowerBuilt = "", nil, nil, nil, "", time.Time{}
	m, err := b.WaitRoot()
	if err != nil {
		return err
	}
	if err := b.MountLower(m); err != nil {
		return err
	}
	if err := b.MountLayers(); err != nil {
		return err
	}
	b.SetupData()
	b.restoreClock("") // no data partition: the build time only
	if err := b.MountUpper(); err != nil {
		return err
	}
	b.prepareTrialUpper()
	if err := b.MountOverlay(); err != nil {
		return err
	}
	if err := b.CheckInit(); err != nil {
		return err
	}
	if err := b.InstallSelf(); err != nil {
		b.Logf("warning: cannot install %s (rfs-init status/reset): %v", BinPath, err)
	}
	if err := b.WriteStatus(); err != nil {
		return stageErr("status", err)
	}
	b.pushUndo(func() { os.Remove(b.P(StatusPath)) })
	return nil
}

// Report prints a failure with its details.
func (b *Boot) Report(err error) {
	b.Logf("ERROR: %v", err)
	var se *StageError
	if errors.As(err, &se) {
		for _, d := range se.Details {
			b.Logf("%s", d)
		}
	}
}

// ExecInit execs rfs.init (never returns on success).
func (b *Boot) ExecInit() error {
	argv := append([]string{b.Params.Init}, b.Params.InitArgs...)
	err := unix.Exec(b.Params.Init, argv, InitEnv)
	return stageErr("exec", fmt.Errorf("exec %s: %w", b.Params.Init, err))
}

// Run is the whole init: it never returns. Failures end in the rescue
// shell; when the shell exits the boot is retried.
func (b *Boot) Run() {
	b.Logf("rfs-init %s starting", Version)
	if err := b.MountEarly(); err != nil {
		b.Report(err)
		b.Rescue("the early mounts failed")
	}
	for attempt := 1; ; attempt++ {
		b.ReadParams()
		for _, w := range b.Params.Warnings {
			b.Logf("warning: %s", w)
		}
		if attempt == 1 && b.Params.Shell == bootparam.ShellBefore {
			b.Rescue("rfs.shell given: rescue shell before mounting the root; exit the shell to continue booting")
		}
		if attempt == 1 {
			b.CheckSlots()
		}
		if err := b.Prepare(); err != nil {
			b.Report(err)
			b.failTrial(err)
			b.Rescue("boot failed")
			b.Logf("retrying boot")
			continue
		}
		if b.Params.Shell == bootparam.ShellAfter {
			b.Rescue("rfs.shell=after: overlay is mounted at /sysroot; exit the shell to switch root")
		}
		if err := b.SwitchRoot(); err != nil {
			b.Report(err)
			b.Undo()
			b.Rescue("switch_root failed")
			b.Logf("retrying boot")
			continue
		}
		if err := b.WriteStatus(); err != nil {
			b.Logf("warning: %v", err)
		}
		if b.degraded != "" {
			b.Logf("DEGRADED: %s", b.degraded)
		}
		b.Logf("%s", b.ReadyLine())
		b.StartGC()
		b.startHealthCheck()
		err := b.ExecInit()
		// Only reachable if exec failed; the initramfs is gone by now,
		// so the rescue shell has to come from the new root, and there is
		// nothing left to retry.
		b.Report(err)
		for {
			b.Rescue("cannot start " + b.Params.Init + "; the new root is mounted at /")
		}
	}
}

// Rescue starts the rescue shell (/bin/sh) on the console and waits for it
// to exit. If no shell can be started, it prints why and sleeps forever:
// PID 1 must never exit.
func (b *Boot) Rescue(reason string) {
	sh := b.P("/bin/sh")
	b.Logf("%s", reason)
	b.Logf("starting rescue shell %s (block devices: ls /sys/class/block; kernel command line: cat /proc/cmdline); exit the shell to continue", "/bin/sh")
	pid, err := startShell(sh, b.Console)
	if err != nil {
		b.Logf("ERROR: cannot start rescue shell %s: %v", sh, err)
		b.Logf("halted: nothing more to do (fix the image or the kernel command line and reboot)")
		if b.Halt != nil {
			b.Halt()
		}
		for {
			time.Sleep(time.Hour)
		}
	}
	// Reap every child (we may be PID 1) until the shell is gone.
	for {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(-1, &ws, 0, nil)
		if wpid == pid || (err != nil && err != unix.EINTR) {
			break
		}
	}
	b.Logf("rescue shell exited")
}

func startShell(sh, console string) (int, error) {
	con, err := os.OpenFile(console, os.O_RDWR, 0)
	if console == "" {
		err = errors.New("no console")
	}
	files := []*os.File{os.Stdin, os.Stdout, os.Stderr}
	if err == nil {
		defer con.Close()
		files = []*os.File{con, con, con}
	}
	attr := &os.ProcAttr{
		Dir:   "/",
		Env:   InitEnv,
		Files: files,
		Sys:   sysProcAttrShell(err == nil),
	}
	p, err := os.StartProcess(sh, []string{"/bin/sh"}, attr)
	if err != nil {
		return 0, err
	}
	return p.Pid, nil
}
