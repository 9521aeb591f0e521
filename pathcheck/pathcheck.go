// Package pathcheck refuses a command's outputs that would destroy or be
// swallowed by its inputs: an output that is an input (the same file, also
// through symlinks or hard links), two outputs that are one file, and an
// output inside an input directory (a --files tree or a squashfs source:
// the next build would copy the image into itself). Files are compared by
// device and inode (os.SameFile), directories by walking the output's
// resolved parents, so links and bind mounts cannot hide a match.
package pathcheck

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/rfsbuild/rfs/atomicfile"
)

// Path is a file a command names, with the flag or argument that named it
// (for messages): {"-o", "out.img"}, {"--layer", "l.sqfs"}, {"SRC", "dir"}.
type Path struct {
	Flag string
	Path string
}

func (p Path) String() string { return p.Flag + " " + p.Path }

// Check returns an error naming both paths and their flags when an output
// cannot be written safely: it is not a regular file (atomicfile.Target),
// it is the same file as another output or as an input, or it lies inside
// an input directory. Empty paths and inputs that do not exist are skipped
// (the command reports missing inputs itself).
func Check(outputs, inputs []Path) error {
	type out struct {
		Path
		where string      // resolved absolute path
		info  fs.FileInfo // nil if it does not exist yet
	}
	var outs []out
	for _, o := range outputs {
		if o.Path == "" {
			continue
		}
		target, err := atomicfile.Target(o.Path)
		if nf := (*atomicfile.NotFileError)(nil); errors.As(err, &nf) {
			nf.Name = "output " + o.Flag
		}
		if err != nil {
			return err
		}
		where, err := resolve(target)
		if err != nil {
			return fmt.Errorf("%s %s: %w", o.Flag, o.Path, err)
		}
		info, _ := os.Stat(where)
		for _, prev := range outs {
			if prev.where == where || info != nil && prev.info != nil && os.SameFile(prev.info, info) {
				return fmt.Errorf("outputs %s and %s are the same file: one would replace the other; give them different names", prev, o)
			}
		}
		outs = append(outs, out{o, where, info})
	}
	for _, in := range inputs {
		if in.Path == "" {
			continue
		}
		st, err := os.Stat(in.Path)
		if err != nil {
			continue
		}
		for _, o := range outs {
			if o.info != nil && os.SameFile(o.info, st) {
				return fmt.Errorf("output %s is the same file as the input %s: writing it would destroy the input; choose another output path", o, in)
			}
			if st.IsDir() && inside(o.where, st) {
				return fmt.Errorf("output %s is inside the input directory %s: the next run would take it in as input; write it outside that directory", o, in)
			}
		}
	}
	return nil
}

// resolve returns p as an absolute path with every symlink in its existing
// part resolved; the parts that do not exist yet are appended as given.
func resolve(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	var rest []string
	for dir := abs; ; {
		real, err := filepath.EvalSymlinks(dir)
		if err == nil {
			for i := len(rest) - 1; i >= 0; i-- {
				real = filepath.Join(real, rest[i])
			}
			return real, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return abs, nil
		}
		rest = append(rest, filepath.Base(dir))
		dir = parent
	}
}

// inside reports whether the resolved path p lies under the directory dir:
// one of p's parents is dir (by device and inode, so bind mounts count).
func inside(p string, dir fs.FileInfo) bool {
	for d := filepath.Dir(p); ; d = filepath.Dir(d) {
		if st, err := os.Stat(d); err == nil && os.SameFile(st, dir) {
			return true
		}
		if filepath.Dir(d) == d {
			return false
		}
	}
}
