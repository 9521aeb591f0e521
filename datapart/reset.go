package datapart

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rfsbuild/rfs/atomicfile"
)

// Dir is a mounted data partition.
type Dir struct {
	Path string
	// Step, if set, is called after every durable step of a reset with
	// its name ("reset:intent", ...): power-cut tests stop there.
	Step func(name string)
}

func (d Dir) step(name string) {
	if d.Step != nil {
		d.Step(name)
	}
}

func (d Dir) path(name string) string { return filepath.Join(d.Path, name) }

// ResetIntent is the content of ResetIntentFile. Writing it (atomically,
// durably) is the commit point of a reset: from then on every boot
// completes the reset before mounting the overlay.
type ResetIntent struct {
	ID      string `json:"id"` // names the trash entries, so resuming is idempotent
	Trigger string `json:"trigger"`
	All     bool   `json:"all"` // also wipe volumes
	Time    string `json:"time"`
}

// ResetRecord is the last completed reset.
type ResetRecord struct {
	ID      string `json:"id"`   // the ResetIntent's
	Time    string `json:"time"` // RFC 3339, the device clock when it was requested
	Trigger string `json:"trigger"`
	All     bool   `json:"all"`
	// DoneTime is when the wipe was made durable (device clock).
	DoneTime string `json:"done_time"`
	// WipeMS is how long the user waited for the wipe itself (renames +
	// fsyncs); deleting the old files happens in the background.
	WipeMS float64 `json:"wipe_ms"`
}

// State is persisted on the data partition (StateFile).
type State struct {
	LastReset *ResetRecord `json:"last_reset,omitempty"`
	Resets    int          `json:"resets"`
	// LastGrow is the last first-boot growth of the partition/filesystem.
	LastGrow *GrowRecord `json:"last_grow,omitempty"`
}

// GrowRecord describes a growth of the data partition.
type GrowRecord struct {
	Time      string `json:"time"`
	FromBytes int64  `json:"from_bytes"`
	ToBytes   int64  `json:"to_bytes"`
}

// writeJSON writes v as indented JSON atomically and durably.
func writeJSON(path string, v any, indent bool) error {
	var b []byte
	var err error
	if indent {
		b, err = json.MarshalIndent(v, "", "  ")
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadState reads StateFile; a missing file is an empty state.
func (d Dir) ReadState() (*State, error) {
	b, err := os.ReadFile(d.path(StateFile))
	if errors.Is(err, os.ErrNotExist) {
		return &State{}, nil
	}
	if err != nil {
		return &State{}, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return &State{}, fmt.Errorf("%s: %v", StateFile, err)
	}
	return &s, nil
}

// WriteState writes StateFile atomically and durably.
func (d Dir) WriteState(s *State) error { return writeJSON(d.path(StateFile), s, true) }

// ReadResetIntent returns the pending reset, or nil if there is none.
func (d Dir) ReadResetIntent() (*ResetIntent, error) {
	b, err := os.ReadFile(d.path(ResetIntentFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var in ResetIntent
	if err := json.Unmarshal(b, &in); err != nil || in.ID == "" || strings.ContainsAny(in.ID, "/.") {
		// A torn intent cannot exist (it is renamed into place), but a
		// hand-written one might: treat it as "reset upper now".
		return &ResetIntent{ID: "r" + strconv.FormatInt(time.Now().UnixNano(), 10), Trigger: TriggerCommand}, nil
	}
	return &in, nil
}

// ScheduleReset records a reset durably (the commit point) without
// touching upper/work/volumes: the init performs it at the next boot, or
// ResumeReset right away when the overlay is not mounted. A pending reset
// with All set stays All.
func (d Dir) ScheduleReset(trigger string, all bool, now time.Time) (*ResetIntent, error) {
	if old, err := d.ReadResetIntent(); err == nil && old != nil {
		all = all || old.All
	}
	in := &ResetIntent{ID: "r" + strconv.FormatInt(now.UnixNano(), 10), Trigger: trigger, All: all, Time: now.UTC().Format(time.RFC3339)}
	if err := writeJSON(d.path(ResetIntentFile), in, false); err != nil {
		return nil, fmt.Errorf("record reset: %w", err)
	}
	d.step("reset:intent")
	return in, nil
}

// ResumeReset performs the pending reset, if any, on a data directory
// whose upper is not in use (no overlay mounted on it). Every step is
// idempotent, so a power cut anywhere is completed by the next call:
//
//  1. (ScheduleReset) write rfs-reset-pending durably — the commit point
//  2. rename upper, work (and volumes and identity), and the upper's
//     record (rfs-upper.json) into trash/ID-NAME, one rename each
//  3. create fresh, empty upper, work (and volumes); fsync data and trash
//  4. record the reset in rfs-state.json, remove rfs-reset-pending, fsync
//
// The old files are not deleted here (see RemoveTrash): the time taken
// does not depend on how many files the upper holds. The init writes a
// new upper record for the lower it boots.
func (d Dir) ResumeReset(now time.Time) (*ResetRecord, error) {
	in, err := d.ReadResetIntent()
	if err != nil || in == nil {
		return nil, err
	}
	t0 := time.Now()
	trash := d.path(Trash)
	if err := os.Mkdir(trash, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, err
	}
	dirs := []string{Upper, Work}
	moved := []string{UpperRecordFile}
	if in.All {
		// The identity goes too, and is not recreated: the agent makes
		// new host keys at the next boot.
		dirs = append(dirs, Volumes)
		moved = append(moved, Identity)
	}
	for _, name := range append(dirs, moved...) {
		dst := filepath.Join(trash, in.ID+"-"+name)
		if _, err := os.Lstat(dst); err == nil {
			continue // moved before a power cut; what is there now is new
		}
		// Not atomicfile: this rename into trash/ is itself the step of
		// the state machine (a directory, moved whole in one rename).
		if err := os.Rename(d.path(name), dst); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("move %s to the trash: %w", name, err)
		}
		if name != UpperRecordFile && name != Identity {
			d.step("reset:move-" + name)
		}
	}
	if err := SyncDir(trash); err != nil {
		return nil, err
	}
	for _, name := range dirs {
		if err := os.Mkdir(d.path(name), 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, err
		}
	}
	if err := SyncDir(d.Path); err != nil {
		return nil, err
	}
	d.step("reset:fresh")
	rec := &ResetRecord{ID: in.ID, Time: in.Time, Trigger: in.Trigger, All: in.All, DoneTime: now.UTC().Format(time.RFC3339)}
	st, _ := d.ReadState()                               // a damaged state file is replaced
	if st.LastReset == nil || st.LastReset.ID != in.ID { // not counted before a power cut
		st.Resets++
	}
	st.LastReset = rec
	rec.WipeMS = math.Round(float64(time.Since(t0).Microseconds())) / 1000
	if err := d.WriteState(st); err != nil {
		return nil, fmt.Errorf("record the reset: %w", err)
	}
	d.step("reset:state")
	if err := os.Remove(d.path(ResetIntentFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := SyncDir(d.Path); err != nil {
		return nil, err
	}
	d.step("reset:done")
	return rec, nil
}

// Reset wipes a data directory now (what `rfs reset --now` does on a
// mounted data partition of an image that is not running): schedule +
// resume + delete the trash.
func (d Dir) Reset(trigger string, all bool) (*ResetRecord, error) {
	if _, err := d.ScheduleReset(trigger, all, time.Now()); err != nil {
		return nil, err
	}
	rec, err := d.ResumeReset(time.Now())
	if err != nil {
		return nil, err
	}
	return rec, d.RemoveTrash()
}

// TrashEntries lists what is waiting in trash/.
func (d Dir) TrashEntries() []string {
	f, err := os.Open(d.path(Trash))
	if err != nil {
		return nil
	}
	defer f.Close()
	names, _ := f.Readdirnames(-1)
	return names
}

// RemoveTrash deletes everything in trash/ (slow with many files; the
// init runs it in the background).
func (d Dir) RemoveTrash() error {
	var first error
	for _, n := range d.TrashEntries() {
		if err := os.RemoveAll(filepath.Join(d.Path, Trash, n)); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// EnsureLayout creates upper/, work/ and volumes/ if missing (a data
// partition made by hand, or a reset interrupted before the fresh dirs).
func (d Dir) EnsureLayout() error {
	made := false
	for _, name := range []string{Upper, Work, Volumes} {
		err := os.Mkdir(d.path(name), 0o755)
		if err == nil {
			made = true
		} else if !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	if made {
		return SyncDir(d.Path)
	}
	return nil
}
