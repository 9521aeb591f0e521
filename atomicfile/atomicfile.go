// Package atomicfile writes output files so that a reader never sees a
// half-written one and an interrupted write leaves the old file (or
// nothing) in place: the bytes go to a hidden temporary file next to the
// target (".NAME.tmp-*"), which Commit syncs and renames over the target.
//
// Create refuses a target that exists and is not a regular file (a device
// node, directory, fifo or socket, also behind a symlink): renaming over a
// device node would replace a system's /dev/null or a disk's node with a
// regular file. Writing to devices is `rfs flash`'s job.
//
// Standard library only, so any package may use it.
package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// File is a temporary file that becomes the target on Commit. The embedded
// *os.File is the temporary file: write, seek and WriteAt through it, but
// finish with Commit or Abort, never Close.
type File struct {
	*os.File
	target string
	perm   fs.FileMode
	done   bool
}

// Create starts writing path. A symlink at path is followed: the file it
// points to is replaced and the link stays. The file gets perm on Commit.
func Create(path string, perm fs.FileMode) (*File, error) {
	target, err := Target(path)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create output %s: %w", path, err)
	}
	return &File{File: f, target: target, perm: perm}, nil
}

// Target checks that path can be written as a regular file and returns the
// path the file will be renamed to (path itself, or what a symlink at path
// points to). Commands call it before long work, so a bad output fails fast.
func Target(path string) (string, error) {
	if path == "" {
		return "", errors.New("no output path")
	}
	target := path
	if li, err := os.Lstat(path); err == nil && li.Mode()&fs.ModeSymlink != 0 {
		// A dangling link is replaced by the file (rename replaces the link).
		if resolved, err := filepath.EvalSymlinks(path); err == nil {
			target = resolved
		}
	}
	st, err := os.Stat(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return target, nil
	case err != nil:
		return "", fmt.Errorf("output %s: %w", path, err)
	case st.Mode().IsRegular():
		return target, nil
	}
	return "", &NotFileError{Path: path, Target: target, Mode: st.Mode()}
}

// NotFileError is Target's refusal of an existing non-regular file.
type NotFileError struct {
	Path   string      // as given
	Target string      // what a symlink at Path points to, or Path
	Mode   fs.FileMode // the target's type
	// Name is how messages call the path: "output" by default; a command
	// may name its flag ("output -o").
	Name string
}

func (e *NotFileError) Error() string {
	name := e.Name
	if name == "" {
		name = "output"
	}
	via := ""
	if e.Target != e.Path {
		via = " (through the symlink to " + e.Target + ")"
	}
	if e.Mode.IsDir() {
		return fmt.Sprintf("%s %s%s exists and is a directory, not a file: give a file name such as %s", name, e.Path, via, filepath.Join(e.Path, "disk.img"))
	}
	return fmt.Sprintf("%s %s%s exists and is a %s, not a file: rfs writes image files (use `rfs flash` to write a device)", name, e.Path, via, Kind(e.Mode))
}

// Kind names a file type for messages ("character device", "named pipe",
// ...); infile.Describe adds the article.
func Kind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "regular file"
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "special file"
}

// Target is the path the file will have after Commit.
func (f *File) Target() string { return f.target }

// Commit makes the written bytes the target: sync, close, set the mode,
// rename over the target, sync the directory (so the rename survives a
// power cut). On failure the temporary file is removed and the target is
// untouched. Calling it twice, or after Abort, is an error.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("write %s: already committed or aborted", f.target)
	}
	f.done = true
	err := f.File.Sync()
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), f.perm)
	}
	if err == nil {
		// The target may have become a device or directory since Create
		// (unlikely, but renaming over it would destroy it). Renaming over
		// a symlink replaces only the link.
		if st, serr := os.Lstat(f.target); serr == nil && !st.Mode().IsRegular() && st.Mode()&fs.ModeSymlink == 0 {
			err = fmt.Errorf("%s is now a %s, not a file", f.target, Kind(st.Mode()))
		}
	}
	if err == nil {
		err = os.Rename(f.Name(), f.target)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", f.target, err)
	}
	if d, err := os.Open(filepath.Dir(f.target)); err == nil {
		d.Sync() // best effort: some filesystems refuse fsync on a directory
		d.Close()
	}
	return nil
}

// Abort discards the temporary file; the target is untouched. It is safe
// to call more than once and after Commit (then it does nothing), so
// `defer f.Abort()` covers every early return.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.File.Close()
	os.Remove(f.Name())
}

// WriteFile writes data to path atomically with mode perm.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	return WriteFrom(path, bytes.NewReader(data), perm)
}

// WriteFrom writes everything r holds to path atomically with mode perm.
func WriteFrom(path string, r io.Reader, perm fs.FileMode) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := io.Copy(f.File, r); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Commit()
}
