// Package slots is the A/B update contract shared by the builder, the host
// tools, `rfs run` (which plays the firmware's part for QEMU boards) and
// the init: the names of a slot's files on the boot partition, the record
// of the slots (rfs-slots.json), the firmware's choice of slot, and the
// decision the init takes at every boot. Standard library only: the init
// embeds it.
//
// A slot is everything a release changes: its kernel, initramfs, command
// line and release record in the boot partition's directory slot-X/, and
// its root squashfs in the partition of role root, slot X. The data
// partition is shared. The firmware boots the committed slot, except once
// after a trial is armed: then it boots the trial slot (a one-shot flag,
// like the Raspberry Pi firmware's tryboot). The trial slot's init checks
// its health and commits it; anything else returns the device to the
// committed slot on the next boot.
package slots

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The slots.
const (
	A = "a"
	B = "b"
)

// Files on the boot partition.
const (
	// StateFile is the record of the slots (State), at the partition's
	// top level.
	StateFile = "rfs-slots.json"
	// FirmwareFile names the committed slot for QEMU's direct-kernel
	// boards ("a\n" or "b\n"): what `rfs run`, as the firmware, boots.
	FirmwareFile = "slot.txt"
	// TrybootFile is the one-shot flag: when it exists the firmware boots
	// the other slot once and removes it (rfs run), as the Pi firmware
	// does with its tryboot flag.
	TrybootFile = "tryboot"
	// ReleaseFile in a slot's directory is the release it holds (the
	// bundle's config as JSON).
	ReleaseFile = "release.json"
	// ConfigFile in the lower is the device's update settings (Config).
	ConfigFile = "/etc/rfs/update.json"
)

// StatusFile is the device's A/B status (Status) while it runs.
const StatusFile = "/run/rfs/slots.json"

// Status is the A/B state of a boot, written by the init to status.json
// ("slots") and StatusFile, kept current by the trial's health check,
// read by the updater.
type Status struct {
	Booted    string `json:"booted"`
	Committed string `json:"committed,omitempty"`
	Trial     string `json:"trial,omitempty"`
	// Action is what the init did: run, trial, failed (a trial that did
	// not come up was rolled back), or error.
	Action  string `json:"action"`
	Version string `json:"version,omitempty"` // of the booted slot
	// Health is the trial's check: "checking for 30s", "committed" or
	// "failed: REASON".
	Health string `json:"health,omitempty"`
	// BootDevice and Roots are the devices the updater writes: the boot
	// partition and each slot's root partition.
	BootDevice string            `json:"boot_device,omitempty"`
	Roots      map[string]string `json:"roots,omitempty"`
	Last       *Result           `json:"last,omitempty"`
	Error      string            `json:"error,omitempty"`
	// Progress is the last line of the running or last update on this
	// boot ("root: 40% of 3.7 MiB"), filled in by rfs-init status.
	Progress string `json:"progress,omitempty"`
}

// MaxStateFile bounds what is read of rfs-slots.json and slot.txt.
const MaxStateFile = 64 << 10

// Dir is the boot partition directory of a slot's files, with a trailing
// slash: "slot-a/". It is also the Raspberry Pi firmware's os_prefix.
func Dir(slot string) string { return "slot-" + slot + "/" }

// Other is the slot that is not s.
func Other(s string) string {
	if s == A {
		return B
	}
	return A
}

// Valid says whether s names a slot.
func Valid(s string) bool { return s == A || s == B }

// Slot states in State.Slots.
const (
	Empty   = "empty"   // never written
	Writing = "writing" // an update is being written: never boot it
	Ready   = "ready"   // written and verified, not yet tried
	Trying  = "trying"  // on trial
	Good    = "good"    // committed, or was
	Bad     = "bad"     // its trial failed
)

// Outcomes of a trial in Result.
const (
	Committed  = "committed"
	RolledBack = "rolled back"
)

// State is rfs-slots.json: which slot the device runs, which is on trial,
// and what each holds.
type State struct {
	// Firmware is how the boot firmware picks a slot (FirmwareDirect,
	// FirmwareRPi, FirmwareRPiSwitch): the builder writes it.
	Firmware  string `json:"firmware,omitempty"`
	Committed string `json:"committed"`
	// Trial is the slot armed or on trial; "" when none.
	Trial string `json:"trial,omitempty"`
	// Tries counts the trial boots started (the init arms one, then
	// expects the next boot to be the trial's).
	Tries int                 `json:"tries,omitempty"`
	Slots map[string]SlotInfo `json:"slots"`
	// Last is how the last trial ended.
	Last *Result `json:"last,omitempty"`
}

// SlotInfo is what a slot holds.
type SlotInfo struct {
	State   string `json:"state"`
	Version string `json:"version,omitempty"`
	BuildID string `json:"build_id,omitempty"`
	// Root is the PARTUUID of the slot's root partition: fixed by the
	// image's layout, so an update keeps it.
	Root string `json:"root_partuuid,omitempty"`
	// Parts are the release's parts in the slot, by digest: an update
	// does not download what a slot already holds.
	Parts []Part `json:"parts,omitempty"`
}

// Part is one part of a release held by a slot.
type Part struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// Result is how a trial ended.
type Result struct {
	Slot    string `json:"slot"`
	Version string `json:"version,omitempty"`
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
	Time    string `json:"time,omitempty"` // RFC 3339, the device's clock
}

// New is the state of a new image: slot a committed and good, b empty;
// roots are the slots' root PARTUUIDs (a, b).
func New(version, buildID string, parts []Part, rootA, rootB string) State {
	return State{Committed: A, Slots: map[string]SlotInfo{
		A: {State: Good, Version: version, BuildID: buildID, Root: rootA, Parts: parts},
		B: {State: Empty, Root: rootB},
	}}
}

// Parse reads rfs-slots.json, checking what the init and the firmware
// rely on.
func Parse(b []byte) (State, error) {
	if len(b) > MaxStateFile {
		return State{}, fmt.Errorf("%s: %d bytes, more than %d", StateFile, len(b), MaxStateFile)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, fmt.Errorf("%s: %w", StateFile, err)
	}
	if err := s.check(); err != nil {
		return State{}, fmt.Errorf("%s: %w", StateFile, err)
	}
	if s.Slots == nil {
		s.Slots = map[string]SlotInfo{}
	}
	return s, nil
}

func (s State) check() error {
	switch {
	case !Valid(s.Committed):
		return fmt.Errorf("committed slot %q: want a or b", s.Committed)
	case s.Trial != "" && !Valid(s.Trial):
		return fmt.Errorf("trial slot %q: want a, b or none", s.Trial)
	case s.Trial == s.Committed:
		return fmt.Errorf("slot %s is both committed and on trial", s.Trial)
	case !checkFirmware(s.Firmware):
		return fmt.Errorf("firmware %q: want %q, %q or none", s.Firmware, FirmwareRPi, FirmwareRPiSwitch)
	case s.Tries < 0 || s.Tries > 1000:
		return fmt.Errorf("tries %d out of range", s.Tries)
	}
	for name := range s.Slots {
		if !Valid(name) {
			return fmt.Errorf("unknown slot %q", name)
		}
	}
	return nil
}

// Marshal encodes s as indented JSON with a final newline.
func (s State) Marshal() []byte {
	b, _ := json.MarshalIndent(s, "", "  ")
	return append(b, '\n')
}

// ParseFirmware reads slot.txt: one slot name, surrounding space ignored.
func ParseFirmware(b []byte) (string, error) {
	s := strings.TrimSpace(string(b))
	if !Valid(s) {
		return "", fmt.Errorf("%s: %q names no slot (want a or b)", FirmwareFile, trunc(s))
	}
	return s, nil
}

// FirmwareContent is slot.txt for a committed slot.
func FirmwareContent(slot string) []byte { return []byte(slot + "\n") }

// Action is what the init does about the slots at a boot.
type Action int

// Actions.
const (
	// Run: boot as usual.
	Run Action = iota
	// Arm: a trial is pending and not yet tried: count the try, set the
	// firmware's one-shot flag and reboot into the trial slot.
	Arm
	// Trial: this is the trial boot: boot, then check health and commit
	// or roll back.
	Trial
	// Failed: the trial was tried and the device is back on the committed
	// slot: record the failure and boot as usual.
	Failed
)

func (a Action) String() string {
	return [...]string{"run", "arm", "trial", "failed"}[a]
}

// Decide is the init's decision at a boot of slot booted.
func Decide(s State, booted string) Action {
	switch {
	case s.Trial == "":
		return Run
	case booted == s.Trial:
		return Trial
	case s.Tries == 0:
		return Arm
	}
	return Failed
}

// Armed is s with the trial's try counted, to be written before the
// firmware's flag is set.
func (s State) Armed() State {
	s = s.clone()
	s.Tries++
	setState(&s, s.Trial, Trying)
	return s
}

// RollBack is s with the trial ended as failed for reason.
func (s State) RollBack(reason string, now time.Time) State {
	s = s.clone()
	slot := s.Trial
	s.Last = &Result{Slot: slot, Version: s.Slots[slot].Version, Outcome: RolledBack, Reason: reason, Time: stamp(now)}
	setState(&s, slot, Bad)
	s.Trial, s.Tries = "", 0
	return s
}

// Commit is s with the trial slot committed.
func (s State) Commit(now time.Time) State {
	s = s.clone()
	slot := s.Trial
	s.Last = &Result{Slot: slot, Version: s.Slots[slot].Version, Outcome: Committed, Time: stamp(now)}
	setState(&s, slot, Good)
	s.Committed, s.Trial, s.Tries = slot, "", 0
	return s
}

// Begin is s with slot marked as being written: it is not on trial, and
// nothing boots it, until Ready.
func (s State) Begin(slot string) (State, error) {
	if slot == s.Committed {
		return s, fmt.Errorf("slot %s is the committed slot: an update writes the other one", slot)
	}
	s = s.clone()
	if s.Trial == slot {
		s.Trial, s.Tries = "", 0
	}
	s.Slots[slot] = SlotInfo{State: Writing, Root: s.Slots[slot].Root}
	return s, nil
}

// Ready is s with slot holding a verified release, armed for a trial.
func (s State) Ready(slot string, info SlotInfo) State {
	s = s.clone()
	info.State = Ready
	if info.Root == "" {
		info.Root = s.Slots[slot].Root
	}
	s.Slots[slot] = info
	s.Trial, s.Tries = slot, 0
	return s
}

// ErrNoSlots is an image or device without A/B slots.
var ErrNoSlots = errors.New("no A/B slots: rebuild the image with updates enabled (update: in rfs.yaml, or rfs build --slots)")

func setState(s *State, slot, state string) {
	info := s.Slots[slot]
	info.State = state
	s.Slots[slot] = info
}

func (s State) clone() State {
	m := make(map[string]SlotInfo, len(s.Slots))
	for k, v := range s.Slots {
		m[k] = v
	}
	s.Slots = m
	if s.Last != nil {
		l := *s.Last
		s.Last = &l
	}
	return s
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func trunc(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}
