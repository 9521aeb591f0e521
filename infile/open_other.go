//go:build !unix

package infile

import (
	"fmt"
	"os"
)

// open checks the type before opening and again after (the path may have
// been replaced in between). Windows has no FIFOs or device nodes among
// ordinary paths, and os.Open does not block on the named pipes it has.
func open(what, path string, disk bool) (*os.File, error) {
	if err := check(what, path, disk); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if err := kind(what, path, st.Mode(), disk); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
