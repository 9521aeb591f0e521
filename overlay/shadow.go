package overlay

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rfsbuild/rfs/atomicfile"
	"github.com/rfsbuild/rfs/bootparam"
	"github.com/rfsbuild/rfs/datapart"
	"github.com/rfsbuild/rfs/slots"
)

// UpdateReportFile, on the data partition, is what the first boot of a
// new release found in the upper (UpdateReport).
const UpdateReportFile = "update-report.json"

// Bounds of the shadow report: the upper is walked up to maxUpperWalk
// entries; at most maxShadowed paths are listed.
const (
	maxUpperWalk = 200000
	maxShadowed  = 1000
)

// OldLowerDir is where a trial boot mounts the committed slot's root to
// tell what the release changed.
const OldLowerDir = "/run/rfs/.old-lower"

// UpdateReport is what the upper made against the old release does to
// the new one: paths whose upper copy (or deletion) hides what the
// release changed, and the reset_paths dropped so the release wins.
type UpdateReport struct {
	Slot      string   `json:"slot"`
	Version   string   `json:"version,omitempty"`
	Time      string   `json:"time,omitempty"`
	Shadowed  []Shadow `json:"shadowed"`
	Dropped   []string `json:"dropped,omitempty"`
	Truncated bool     `json:"truncated,omitempty"`
	Error     string   `json:"error,omitempty"`
}

// Shadow is one path of the upper that hides the release's version.
type Shadow struct {
	Path string `json:"path"`
	Why  string `json:"why"`
}

// Why a path is shadowed.
const (
	WhyChanged   = "changed by the release; the upper's copy hides it"
	WhyAdded     = "added by the release; the upper's copy hides it"
	WhyRestored  = "brought back by the release; the upper's deletion hides it"
	WhyOpaqueDir = "changed by the release; the upper's opaque directory hides it"
)

// prepareTrialUpper runs on a trial boot with a persistent upper, before
// the overlay is mounted: it drops the release's reset_paths from the
// upper and reports the paths the upper shadows (against the committed
// slot's root). Problems are warnings: the report is advice.
func (b *Boot) prepareTrialUpper() {
	if b.trial == nil || b.Status.Mode != bootparam.UpperData || b.upperRW == "" {
		return
	}
	r := &UpdateReport{Slot: b.Params.Slot, Version: b.slotStatus.Version, Time: time.Now().UTC().Format(time.RFC3339), Shadowed: []Shadow{}}
	cfg, _ := readLowerUpdateConfig(b.P(LowerDir))
	r.Dropped = b.dropResetPaths(cfg.ResetPaths)
	if err := b.reportShadowed(r); err != nil {
		r.Error = err.Error()
		b.Logf("warning: update: the shadow report: %v", err)
	}
	for _, s := range r.Shadowed {
		b.Logf("update: %s: %s", s.Path, s.Why)
	}
	data, _ := json.MarshalIndent(r, "", "  ")
	if err := atomicfile.WriteFile(filepath.Join(b.data.staging, UpdateReportFile), append(data, '\n'), 0o644); err != nil {
		b.Logf("warning: update: %v", err)
	}
}

func readLowerUpdateConfig(lower string) (slots.Config, error) {
	data, err := readBounded(filepath.Join(lower, slots.ConfigFile), slots.MaxStateFile)
	if err != nil {
		return slots.Config{}, err
	}
	return slots.ParseConfig(data)
}

// dropResetPaths moves the upper's entries at paths into the data
// partition's trash (the background deletion removes them).
func (b *Boot) dropResetPaths(paths []string) []string {
	var dropped []string
	trash := filepath.Join(b.data.staging, datapart.Trash, "update-"+time.Now().UTC().Format("20060102T150405"))
	for _, p := range paths {
		if slots.CheckResetPath(p) != nil {
			continue
		}
		src := filepath.Join(b.upperRW, p)
		if _, err := os.Lstat(src); err != nil {
			continue
		}
		dst := filepath.Join(trash, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err == nil {
			err = os.Rename(src, dst)
			if err != nil {
				b.Logf("warning: update: reset path %s: %v", p, err)
				continue
			}
		}
		datapart.SyncDir(filepath.Dir(src))
		b.Logf("update: reset path %s: the upper's copy dropped, the release's version wins", p)
		dropped = append(dropped, p)
	}
	return dropped
}

// reportShadowed mounts the committed slot's root and compares.
func (b *Boot) reportShadowed(r *UpdateReport) error {
	dev := b.slotStatus.Roots[b.trial.state.Committed]
	if dev == "" {
		return errors.New("the committed slot's root was not found")
	}
	old := b.P(OldLowerDir)
	if err := os.MkdirAll(old, 0o700); err != nil {
		return err
	}
	defer os.Remove(old)
	if err := unix.Mount(dev, old, "squashfs", unix.MS_RDONLY, ""); err != nil {
		return mountErr("squashfs", dev, OldLowerDir, err)
	}
	defer unix.Unmount(old, unix.MNT_DETACH)
	shadowed, truncated, err := Shadowed(b.upperRW, b.P(LowerDir), old)
	r.Shadowed, r.Truncated = shadowed, truncated
	return err
}

// Shadowed walks upper (an overlay upper directory made against the
// lower oldLower) and lists the paths where it hides what newLower
// changed: a copy of a file the release changed or added, a whiteout of
// a file the release brings back, an opaque directory whose lower
// content changed.
func Shadowed(upper, newLower, oldLower string) ([]Shadow, bool, error) {
	out := []Shadow{}
	walked, truncated := 0, false
	err := filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == upper {
			return err
		}
		if walked++; walked > maxUpperWalk || len(out) >= maxShadowed {
			truncated = true
			return filepath.SkipAll
		}
		rel := strings.TrimPrefix(p, upper)
		why, err := shadowOf(p, filepath.Join(newLower, rel), filepath.Join(oldLower, rel), d)
		if err != nil {
			return err
		}
		if why != "" {
			out = append(out, Shadow{Path: rel, Why: why})
		}
		return nil
	})
	return out, truncated, err
}

// shadowOf says why the upper entry at p hides the new lower's entry.
func shadowOf(p, newP, oldP string, d fs.DirEntry) (string, error) {
	newSt, newErr := os.Lstat(newP)
	if newErr != nil {
		return "", nil // the release has nothing there
	}
	_, oldErr := os.Lstat(oldP)
	if d.IsDir() {
		if !opaque(p) || !newSt.IsDir() {
			return "", nil
		}
		if oldErr != nil || !sameNames(newP, oldP) {
			return WhyOpaqueDir, nil
		}
		return "", nil
	}
	if whiteoutEntry(p, d) {
		if oldErr != nil || !sameEntry(newP, oldP) {
			return WhyRestored, nil
		}
		return "", nil
	}
	if oldErr != nil {
		return WhyAdded, nil
	}
	if !sameEntry(newP, oldP) {
		return WhyChanged, nil
	}
	return "", nil
}

func whiteoutEntry(p string, d fs.DirEntry) bool {
	var st unix.Stat_t
	return d.Type()&fs.ModeCharDevice != 0 && unix.Lstat(p, &st) == nil && isWhiteout(&st)
}

// sameEntry compares two lower entries: type, mode, owner, and content
// (a symlink's target, a file's bytes).
func sameEntry(a, b string) bool {
	var sa, sb unix.Stat_t
	if unix.Lstat(a, &sa) != nil || unix.Lstat(b, &sb) != nil {
		return false
	}
	if sa.Mode != sb.Mode || sa.Uid != sb.Uid || sa.Gid != sb.Gid || sa.Size != sb.Size || sa.Rdev != sb.Rdev {
		return false
	}
	switch sa.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		ta, ea := os.Readlink(a)
		tb, eb := os.Readlink(b)
		return ea == nil && eb == nil && ta == tb
	case unix.S_IFREG:
		return sameContent(a, b) // livediff.go
	case unix.S_IFDIR:
		return sameNames(a, b)
	}
	return true
}

func sameNames(a, b string) bool {
	na, ea := dirNames(a)
	nb, eb := dirNames(b)
	return ea == nil && eb == nil && slices.Equal(na, nb)
}

func dirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(maxUpperWalk)
	if err != nil && err != io.EOF {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

// readUpdateReport reads the last update's report from the data
// partition dir, nil if none.
func readUpdateReport(dir string) (*UpdateReport, error) {
	data, err := readBounded(filepath.Join(dir, UpdateReportFile), 4<<20)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r UpdateReport
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", UpdateReportFile, err)
	}
	return &r, nil
}
