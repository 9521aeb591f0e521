package overlay

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Layout of the data partition (an ext4 filesystem labelled DataLabel).
// Everything here works on a mounted data directory, so the host tools
// (rfs reset --now) use the same code as the init.
const (
	DataLabel       = "rfs-data"
	DataUpper       = "upper"             // the overlay's upper dir
	DataWork        = "work"              // the overlay's work dir
	DataVolumes     = "volumes"           // volumes/NAME, bind-mounted by the init
	DataTrash       = "trash"             // wiped dirs waiting to be deleted
	DataStateFile   = "rfs-state.json"    // DataState
	DataResetIntent = "rfs-reset-pending" // ResetIntent: a reset decided but maybe not done
)

// Reset triggers recorded in DataState.
const (
	TriggerCmdline = "cmdline" // rfs.reset on the kernel command line
	TriggerFlag    = "flag"    // rfs-reset file on the boot partition
	TriggerCommand = "command" // rfs-init reset on the device
	TriggerHost    = "host"    // rfs reset --now on the host
)

// ResetIntent is the content of DataResetIntent. Writing it (atomically,
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

// DataState is persisted on the data partition (DataStateFile).
type DataState struct {
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

// crashHook, if set (tests only), is called after every durable step of
// the reset and the growth; it simulates a power cut by exiting.
var crashHook func(step string)

func step(name string) {
	if crashHook != nil {
		crashHook(name)
	}
}

// fsyncDir makes a directory's entries (creates, renames, unlinks) durable.
func fsyncDir(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Fsync(fd); err != nil {
		return fmt.Errorf("fsync %s: %v", dir, err)
	}
	return nil
}

// writeFileDurable writes a file atomically and durably: temp file, fsync,
// rename, fsync of the directory. The temp name carries the pid, so two
// processes (the init and its helper mode) never share one.
func writeFileDurable(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	tmp := filepath.Join(dir, "."+filepath.Base(path)+".tmp"+strconv.Itoa(os.Getpid()))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return fsyncDir(dir)
}

// ReadDataState reads DataStateFile; a missing file is an empty state.
func ReadDataState(dataDir string) (*DataState, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, DataStateFile))
	if errors.Is(err, os.ErrNotExist) {
		return &DataState{}, nil
	}
	if err != nil {
		return &DataState{}, err
	}
	var s DataState
	if err := json.Unmarshal(b, &s); err != nil {
		return &DataState{}, fmt.Errorf("%s: %v", DataStateFile, err)
	}
	return &s, nil
}

// WriteDataState writes DataStateFile atomically and durably.
func WriteDataState(dataDir string, s *DataState) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return writeFileDurable(filepath.Join(dataDir, DataStateFile), append(b, '\n'), 0o644)
}

// ReadResetIntent returns the pending reset, or nil if there is none.
func ReadResetIntent(dataDir string) (*ResetIntent, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, DataResetIntent))
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
func ScheduleReset(dataDir, trigger string, all bool, now time.Time) (*ResetIntent, error) {
	if old, err := ReadResetIntent(dataDir); err == nil && old != nil {
		all = all || old.All
	}
	in := &ResetIntent{ID: "r" + strconv.FormatInt(now.UnixNano(), 10), Trigger: trigger, All: all, Time: now.UTC().Format(time.RFC3339)}
	b, _ := json.Marshal(in)
	if err := writeFileDurable(filepath.Join(dataDir, DataResetIntent), append(b, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("record reset: %v", err)
	}
	step("reset:intent")
	return in, nil
}

// ResumeReset performs the pending reset, if any, on a data directory
// whose upper is not in use (no overlay mounted on it). Every step is
// idempotent, so a power cut anywhere is completed by the next call:
//
//  1. (ScheduleReset) write rfs-reset-pending durably — the commit point
//  2. rename upper, work (and volumes) into trash/ID-NAME, one rename each
//  3. create fresh, empty upper, work (and volumes); fsync data and trash
//  4. record the reset in rfs-state.json, remove rfs-reset-pending, fsync
//
// The old files are not deleted here (see RemoveTrash): the time taken
// does not depend on how many files the upper holds.
func ResumeReset(dataDir string, now time.Time) (*ResetRecord, error) {
	in, err := ReadResetIntent(dataDir)
	if err != nil || in == nil {
		return nil, err
	}
	t0 := time.Now()
	trash := filepath.Join(dataDir, DataTrash)
	if err := os.Mkdir(trash, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, err
	}
	dirs := []string{DataUpper, DataWork}
	if in.All {
		dirs = append(dirs, DataVolumes)
	}
	for _, d := range dirs {
		dst := filepath.Join(trash, in.ID+"-"+d)
		if _, err := os.Lstat(dst); err == nil {
			continue // moved before a power cut; what is there now is new
		}
		if err := os.Rename(filepath.Join(dataDir, d), dst); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("move %s to the trash: %v", d, err)
		}
		step("reset:move-" + d)
	}
	if err := fsyncDir(trash); err != nil {
		return nil, err
	}
	for _, d := range dirs {
		if err := os.Mkdir(filepath.Join(dataDir, d), 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, err
		}
	}
	if err := fsyncDir(dataDir); err != nil {
		return nil, err
	}
	step("reset:fresh")
	rec := &ResetRecord{ID: in.ID, Time: in.Time, Trigger: in.Trigger, All: in.All, DoneTime: now.UTC().Format(time.RFC3339)}
	st, _ := ReadDataState(dataDir)                      // a damaged state file is replaced
	if st.LastReset == nil || st.LastReset.ID != in.ID { // not counted before a power cut
		st.Resets++
	}
	st.LastReset = rec
	rec.WipeMS = ms(time.Since(t0))
	if err := WriteDataState(dataDir, st); err != nil {
		return nil, fmt.Errorf("record the reset: %v", err)
	}
	step("reset:state")
	if err := os.Remove(filepath.Join(dataDir, DataResetIntent)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := fsyncDir(dataDir); err != nil {
		return nil, err
	}
	step("reset:done")
	return rec, nil
}

// ResetData wipes a data directory now (what `rfs reset --now` does on a
// mounted data partition of an image that is not running): schedule +
// resume + delete the trash.
func ResetData(dataDir, trigger string, all bool) (*ResetRecord, error) {
	if _, err := ScheduleReset(dataDir, trigger, all, time.Now()); err != nil {
		return nil, err
	}
	rec, err := ResumeReset(dataDir, time.Now())
	if err != nil {
		return nil, err
	}
	return rec, RemoveTrash(dataDir)
}

// TrashEntries lists what is waiting in trash/.
func TrashEntries(dataDir string) []string {
	f, err := os.Open(filepath.Join(dataDir, DataTrash))
	if err != nil {
		return nil
	}
	defer f.Close()
	names, _ := f.Readdirnames(-1)
	return names
}

// RemoveTrash deletes everything in trash/ (slow with many files; the
// init runs it in the background, see GCTrash).
func RemoveTrash(dataDir string) error {
	var first error
	for _, n := range TrashEntries(dataDir) {
		if err := os.RemoveAll(filepath.Join(dataDir, DataTrash, n)); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// EnsureDataLayout creates upper/, work/ and volumes/ if missing (a data
// partition made by hand, or a reset interrupted before the fresh dirs).
func EnsureDataLayout(dataDir string) error {
	made := false
	for _, d := range []string{DataUpper, DataWork, DataVolumes} {
		err := os.Mkdir(filepath.Join(dataDir, d), 0o755)
		if err == nil {
			made = true
		} else if !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	if made {
		return fsyncDir(dataDir)
	}
	return nil
}

// Volume is one line of /etc/rfs/volumes: NAME /absolute/path.
type Volume struct {
	Name string `json:"name"`
	Path string `json:"path"`
	// Seeded is set when the volume was created (and seeded from the
	// lower) during this boot.
	Seeded bool `json:"seeded,omitempty"`
	// Error says why the volume is not mounted ("" if it is).
	Error string `json:"error,omitempty"`
}

// VolumesFile is the volume list in the lower layer.
const VolumesFile = "/etc/rfs/volumes"

// ParseVolumes parses the volumes file: one "NAME /absolute/path" per
// line, # comments, blank lines ignored. NAME is [a-z0-9_.-]+ (not . or
// ..), the path absolute and clean and not /. Bad lines are returned as
// warnings and skipped; duplicate names or paths keep the first.
func ParseVolumes(r io.Reader) (vols []Volume, warnings []string) {
	b, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, []string{"read " + VolumesFile + ": " + err.Error()}
	}
	names, paths := map[string]bool{}, map[string]bool{}
	for i, line := range strings.Split(string(b), "\n") {
		if c := strings.IndexByte(line, '#'); c >= 0 {
			line = line[:c]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		where := VolumesFile + " line " + strconv.Itoa(i+1) + ": "
		if len(f) != 2 {
			warnings = append(warnings, where+"expected NAME /absolute/path")
			continue
		}
		name, p := f[0], f[1]
		if !validVolumeName(name) {
			warnings = append(warnings, where+"bad volume name "+strconv.Quote(name)+" (want [a-z0-9_.-]+)")
			continue
		}
		if !strings.HasPrefix(p, "/") || filepath.Clean(p) != p || p == "/" {
			warnings = append(warnings, where+"bad path "+strconv.Quote(p)+" (want a clean absolute path, not /)")
			continue
		}
		if names[name] || paths[p] {
			warnings = append(warnings, where+"duplicate volume "+name+" "+p+" ignored")
			continue
		}
		names[name], paths[p] = true, true
		vols = append(vols, Volume{Name: name, Path: p})
	}
	return vols, warnings
}

func validVolumeName(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 200 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// SeedVolume creates dataDir/volumes/NAME if it does not exist, filled
// with a copy of src (the lower's content at the volume's path; "" or
// missing = empty, mode 0755). The copy is made in a temp dir and renamed
// into place, so a volume that exists was seeded completely, once: an
// emptied volume is never seeded again. It reports whether it seeded.
func SeedVolume(dataDir, name, src string) (bool, error) {
	vdir := filepath.Join(dataDir, DataVolumes)
	dst := filepath.Join(vdir, name)
	if _, err := os.Lstat(dst); err == nil {
		return false, nil
	}
	tmp := filepath.Join(vdir, ".seed-"+name)
	if err := os.RemoveAll(tmp); err != nil { // a seed cut short by a power loss
		return false, err
	}
	st, err := os.Lstat(src)
	switch {
	case src == "" || errors.Is(err, os.ErrNotExist):
		err = os.Mkdir(tmp, 0o755)
	case err != nil:
		return false, err
	case !st.IsDir():
		return false, fmt.Errorf("%s in the lower is not a directory", src)
	default:
		err = copyTree(src, tmp)
	}
	if err == nil {
		err = syncTree(tmp)
	}
	if err == nil {
		step("seed:copied")
		err = os.Rename(tmp, dst)
	}
	if err == nil {
		err = fsyncDir(vdir)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return false, fmt.Errorf("seed volume %s: %v", name, err)
	}
	return true, nil
}

// copyTree copies a directory tree (dirs, regular files, symlinks, device
// nodes, fifos) with owner, mode and mtime. xattrs are not copied (the
// squashfs lowers have none).
func copyTree(src, dst string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdir(dst, 0o700); err != nil {
			return err
		}
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := copyTree(filepath.Join(src, n), filepath.Join(dst, n)); err != nil {
				return err
			}
		}
	case unix.S_IFREG:
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			in.Close()
			return err
		}
		_, err = io.Copy(out, in)
		in.Close()
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO, unix.S_IFSOCK:
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return err
		}
	default:
		return nil
	}
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return err
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	return unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// syncTree fsyncs every regular file and directory below (and including)
// dir, so a rename of dir publishes complete content.
func syncTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() && !d.IsDir() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
}
