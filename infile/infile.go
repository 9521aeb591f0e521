// Package infile opens the files rfs reads its inputs from (kernels,
// layers, project files, EFI stubs, images) so that a named pipe, a
// terminal, a socket or another special file given by mistake is refused
// with a message naming the option, instead of blocking in open(2) or
// read(2) forever: opening a FIFO for reading waits for a writer, and
// reading /dev/zero never ends.
package infile

import (
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/rfsbuild/rfs/atomicfile"
)

// NotRegularError says an input is not a file of the kind wanted.
type NotRegularError struct {
	What string // the option or role, e.g. "--kernel"; may be empty
	Path string
	Mode fs.FileMode
	Want string // "a file", or "a file or a block device"
}

func (e *NotRegularError) Error() string {
	name := e.Path
	if e.What != "" {
		name = e.What + " " + e.Path
	}
	return fmt.Sprintf("%s is %s, not %s", name, Describe(e.Mode), e.Want)
}

// Describe names a file type for messages: "a named pipe", "a directory".
func Describe(m fs.FileMode) string {
	return "a " + atomicfile.Kind(m) // every kind starts with a consonant
}

// Check says whether path (links followed) is a regular file, for inputs
// handed to code that opens them itself. A missing file is the os error.
func Check(what, path string) error {
	return check(what, path, false)
}

// CheckDisk is Check for a disk image: a regular file or a block device.
func CheckDisk(what, path string) error {
	return check(what, path, true)
}

func check(what, path string, disk bool) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	return kind(what, path, st.Mode(), disk)
}

func kind(what, path string, m fs.FileMode, disk bool) error {
	if m.IsRegular() || disk && m&fs.ModeDevice != 0 && m&fs.ModeCharDevice == 0 {
		return nil
	}
	want := "a file"
	if disk {
		want = "an image file or a block device"
	}
	return &NotRegularError{What: what, Path: path, Mode: m.Type(), Want: want}
}

// Open opens path read-only; it must be a regular file (links followed).
func Open(what, path string) (*os.File, error) {
	return open(what, path, false)
}

// OpenDisk opens a disk image read-only: a regular file or a block device.
func OpenDisk(what, path string) (*os.File, error) {
	return open(what, path, true)
}

// ReadFile is os.ReadFile for an input that must be a regular file.
func ReadFile(what, path string) ([]byte, error) {
	f, err := Open(what, path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
