package overlay

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rfsbuild/rfs/atomicfile"
	"github.com/rfsbuild/rfs/bootparam"
	"github.com/rfsbuild/rfs/datapart"
	"github.com/rfsbuild/rfs/slots"
)

// Paths of the A/B slot handling.
const (
	SlotsStaging = "/run/rfs/.slots" // the boot partition while the init reads or writes the slot record
	SlotsStatus  = slots.StatusFile  // SlotStatus, kept current by the trial's health check
	// UpdateProgress is the last line of the running or last update
	// (rfs-agent update writes it).
	UpdateProgress = "/run/rfs/update-progress"
)

// SlotStatus is the A/B state of this boot (slots.Status).
type SlotStatus = slots.Status

// bootFAT is the boot partition mounted for the slot record.
type bootFAT struct {
	dir string
}

// mountBootFAT mounts the FAT at node on dir, read-write and synchronous:
// the slot record's few small writes reach the medium at once, which
// keeps the window of a power cut inside vfat's unordered writes short.
// (The updater's big writes do not go through vfat: see install.)
func mountBootFAT(node, dir, fstype string) (*bootFAT, error) {
	if fstype == "" {
		fstype = "vfat"
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := unix.Mount(node, dir, fstype, unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC|unix.MS_SYNCHRONOUS|unix.MS_DIRSYNC, ""); err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("mount the boot partition %s: %w", node, err)
	}
	return &bootFAT{dir: dir}, nil
}

func (f *bootFAT) close() error {
	unix.Sync()
	err := unix.Unmount(f.dir, 0)
	if err != nil {
		err = unix.Unmount(f.dir, unix.MNT_DETACH)
	}
	os.Remove(f.dir)
	return err
}

func (f *bootFAT) state() (slots.State, error) {
	b, err := readBounded(filepath.Join(f.dir, slots.StateFile), slots.MaxStateFile)
	if err != nil {
		return slots.State{}, err
	}
	return slots.Parse(b)
}

// write replaces name atomically: a temporary file, synced, renamed over
// it, the directory synced. A power cut leaves the old or the new file.
func (f *bootFAT) write(name string, data []byte) error {
	p := filepath.Join(f.dir, name)
	tmp := p + ".new"
	if err := writeSynced(tmp, data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return datapart.SyncDir(f.dir)
}

func (f *bootFAT) writeState(s slots.State) error { return f.write(slots.StateFile, s.Marshal()) }

func writeSynced(p string, data []byte) error {
	out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = out.Write(data)
	if serr := out.Sync(); err == nil {
		err = serr
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

func readBounded(p string, max int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err == nil && int64(len(b)) > max {
		err = fmt.Errorf("%s: more than %d bytes", p, max)
	}
	return b, err
}

// slotTrial is the state of a trial boot.
type slotTrial struct {
	state slots.State
	node  string // the boot partition's device
}

// CheckSlots takes the A/B decision of this boot (rfs.slot given): a
// pending trial is armed (the try counted, the firmware's one-shot flag
// set, reboot), a trial that did not come up is rolled back in the record,
// and a trial boot is remembered so the health check starts after the
// overlay is up. Problems are warnings: the committed slot boots anyway.
func (b *Boot) CheckSlots() {
	booted := b.Params.Slot
	if booted == "" {
		return
	}
	st := &SlotStatus{Booted: booted, Action: "run"}
	b.slotStatus = st
	defer func() {
		if err := writeSlotStatus(b.P(SlotsStatus), st); err != nil {
			b.Logf("warning: %v", err)
		}
	}()
	if b.Params.BootPart.Kind == bootparam.RootNone {
		st.Action, st.Error = "error", "no rfs.boot: the slot record is not read"
		return
	}
	m, err := b.waitDevice("boot partition", b.Params.BootPart, DataWait)
	if err != nil {
		st.Action, st.Error = "error", err.Error()
		b.Logf("warning: %v: the A/B slot record is not read", err)
		return
	}
	st.BootDevice = m.Path
	f, err := mountBootFAT(m.Node, b.P(SlotsStaging), b.BootFSType)
	if err != nil {
		st.Action, st.Error = "error", err.Error()
		b.Logf("warning: %v: the A/B slot record is not read", err)
		return
	}
	defer f.close()
	s, err := f.state()
	if err != nil {
		st.Action, st.Error = "error", err.Error()
		b.Logf("warning: %v: booting slot %s as committed", err, booted)
		return
	}
	b.findSlotRoots(s, st)
	if err := b.decideSlots(f, s, m.Node); err != nil {
		st.Action, st.Error = "error", err.Error()
		b.Logf("warning: A/B slots: %v", err)
	}
}

// decideSlots acts on slots.Decide for the record s.
func (b *Boot) decideSlots(f *bootFAT, s slots.State, node string) error {
	booted, st := b.Params.Slot, b.slotStatus
	st.Committed, st.Trial, st.Version, st.Last = s.Committed, s.Trial, s.Slots[booted].Version, s.Last
	switch act := slots.Decide(s, booted); act {
	case slots.Arm:
		trial := s.Slots[s.Trial]
		if trial.State != slots.Ready && trial.State != slots.Trying {
			return fmt.Errorf("slot %s is %s, not ready: its trial is not armed", s.Trial, trial.State)
		}
		if slots.IsPi(s.Firmware) {
			b.Logf("update: slot %s (version %s) is ready: rebooting into it for a trial boot", s.Trial, trial.Version)
			return b.armPi(f, s)
		}
		if err := f.writeState(s.Armed()); err != nil {
			return err
		}
		if err := f.write(slots.TrybootFile, []byte(s.Trial+"\n")); err != nil {
			return err
		}
		b.Logf("update: slot %s (version %s) is ready: rebooting into it for a trial boot", s.Trial, trial.Version)
		f.close()
		b.reboot()
		return errors.New("reboot into the trial slot failed")
	case slots.Failed:
		reason := fmt.Sprintf("slot %s did not come up (its kernel failed, or the boot was cut off, before its init ran)", s.Trial)
		r := s.RollBack(reason, time.Now())
		if slots.IsPi(s.Firmware) {
			if err := f.pointConfig(booted); err != nil {
				return err
			}
		}
		if err := f.writeState(r); err != nil {
			return err
		}
		st.Action, st.Trial, st.Last = "failed", "", r.Last
		b.Logf("update: rolled back to slot %s: %s", booted, reason)
	case slots.Trial:
		var err error
		if s, err = b.countSwitchTrial(f, s); err != nil {
			return err
		}
		st.Action, st.Health = "trial", "checking"
		b.trial = &slotTrial{state: s, node: node}
		b.Logf("update: trial boot of slot %s (version %s); slot %s stays committed until this one is healthy", booted, s.Slots[booted].Version, s.Committed)
	default:
		if booted != s.Committed {
			b.Logf("warning: booted slot %s, but slot %s is committed", booted, s.Committed)
		}
	}
	return nil
}

// findSlotRoots records the devices of both slots' roots (from the
// scan that found the boot partition) for the updater.
func (b *Boot) findSlotRoots(s slots.State, st *SlotStatus) {
	for _, name := range []string{slots.A, slots.B} {
		id := s.Slots[name].Root
		if id == "" {
			continue
		}
		if m, _, _ := Lookup(b.lastScan, bootparam.RootSpec{Kind: bootparam.RootPARTUUID, Value: strings.ToLower(id)}); m != nil {
			if st.Roots == nil {
				st.Roots = map[string]string{}
			}
			st.Roots[name] = m.Path
		}
	}
}

// failTrial ends a trial boot whose init fails (its root cannot be
// mounted, its init program is missing, ...): the record
// says why, and the reboot returns to the committed slot (the firmware's
// one-shot flag is spent).
func (b *Boot) failTrial(err error) {
	if b.trial == nil {
		return
	}
	reason := "the init failed on slot " + b.Params.Slot + ": " + err.Error()
	f, merr := mountBootFAT(b.trial.node, b.P(SlotsStaging), b.BootFSType)
	if merr != nil {
		b.Logf("warning: %v: the rollback is not recorded", merr)
	} else {
		if werr := rollBackPi(f, b.trial.state); werr != nil {
			b.Logf("warning: %v: config.txt may still boot the failed slot", werr)
		}
		if werr := f.writeState(b.trial.state.RollBack(reason, time.Now())); werr != nil {
			b.Logf("warning: %v: the rollback is not recorded", werr)
		}
		f.close()
	}
	b.Logf("update: %s; rebooting into slot %s", reason, b.trial.state.Committed)
	b.reboot()
}

// rollBackPi points a Pi's config.txt back at the committed slot (a
// Pi 3 trial switched it); nothing on other firmware.
func rollBackPi(f *bootFAT, s slots.State) error {
	if !slots.IsPi(s.Firmware) {
		return nil
	}
	return f.pointConfig(s.Committed)
}

// reboot restarts the machine (b.Reboot in tests).
func (b *Boot) reboot() {
	unix.Sync()
	if b.Reboot != nil {
		b.Reboot()
		return
	}
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART); err != nil {
		b.Logf("ERROR: reboot: %v", err)
	}
}

// startHealthCheck starts `rfs-init slot-health` in the new root, just
// before rfs.init is exec'd, on a trial boot; the new init inherits it.
func (b *Boot) startHealthCheck() {
	if b.trial == nil {
		return
	}
	if err := writeSlotStatus(b.P(SlotsStatus), b.slotStatus); err != nil {
		b.Logf("warning: %v", err)
	}
	con, err := os.OpenFile(b.Console, os.O_WRONLY, 0)
	if err != nil {
		con = os.Stdout
	} else {
		defer con.Close()
	}
	p, err := os.StartProcess(b.P(BinPath), []string{"rfs-init", "slot-health", b.trial.node}, &os.ProcAttr{
		Dir: "/", Env: InitEnv, Files: []*os.File{nil, con, con},
	})
	if err != nil {
		b.failTrial(fmt.Errorf("cannot start the health check: %w", err))
		return
	}
	p.Release()
}

func writeSlotStatus(p string, st *SlotStatus) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	data, _ := json.MarshalIndent(st, "", "  ")
	return atomicfile.WriteFile(p, append(data, '\n'), 0o644)
}
