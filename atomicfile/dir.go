package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// NotReplaceableError is WriteDir's refusal of an existing directory it
// must not replace.
type NotReplaceableError struct {
	Path   string
	Reason string
}

func (e *NotReplaceableError) Error() string { return e.Path + ": " + e.Reason }

// WriteDir writes a whole directory so that path is either its old state
// or the complete new one: fill writes into a hidden temporary directory
// next to path (".NAME.tmp-*"), whose files it should sync; WriteDir then
// renames it into place. path may be missing or an empty directory; an
// existing non-empty one only when replaceable says so (it is an earlier
// output of the same kind): it is renamed away, the new one renamed in,
// the old one removed. A path that is not a directory (a file, device,
// symlink) is never replaced, nor the current directory or one above it.
// On any error the temporary directory is removed and path is untouched.
func WriteDir(path string, replaceable func(dir string) bool, fill func(tmp string) error) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	exists, err := checkDirTarget(path, abs, replaceable)
	if err != nil {
		return err
	}
	parent := filepath.Dir(abs)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(abs)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create output %s: %w", path, err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := fill(tmp); err != nil {
		return err
	}
	syncDir(tmp)
	if err := swapDir(tmp, abs, exists); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	done = true
	syncDir(parent)
	return nil
}

// CheckDir refuses, before any work, a path WriteDir would refuse.
func CheckDir(path string, replaceable func(dir string) bool) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	_, err = checkDirTarget(path, abs, replaceable)
	return err
}

// checkDirTarget says whether abs exists, refusing what WriteDir must not
// replace.
func checkDirTarget(path, abs string, replaceable func(string) bool) (bool, error) {
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(abs, wd); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return false, &NotReplaceableError{path, "is the current directory or one above it: give a new directory"}
		}
	}
	st, err := os.Lstat(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !st.IsDir() {
		return false, &NotReplaceableError{path, fmt.Sprintf("exists and is a %s, not a directory", Kind(st.Mode()))}
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return false, err
	}
	if len(entries) > 0 && (replaceable == nil || !replaceable(abs)) {
		return false, &NotReplaceableError{path, "exists, is not empty and is not an earlier output of this kind: give a new or empty directory"}
	}
	return true, nil
}

// swapDir renames tmp to abs, moving an existing abs away first and
// removing it after.
func swapDir(tmp, abs string, exists bool) error {
	if !exists {
		return os.Rename(tmp, abs)
	}
	old := tmp + ".old"
	if err := os.Rename(abs, old); err != nil {
		return err
	}
	if err := os.Rename(tmp, abs); err != nil {
		os.Rename(old, abs) // put it back
		return err
	}
	os.RemoveAll(old) // the new one is in place: a leftover is only litter
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: some filesystems refuse fsync on a directory
		d.Close()
	}
}
