// Package imagetarget is install's Target for an image file or a card on
// the host: the boot partition edited in place with image/fat's Editor
// (no mount, no root needed), the slots' roots as byte ranges of the same
// file. Host-only (the device's installer must not import image/fat).
package imagetarget

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"time"

	"github.com/rfsbuild/rfs/image/fat"
	"github.com/rfsbuild/rfs/install"
)

// Region is a partition of an image file or a card: its byte range.
type Region struct {
	Start, Size int64
}

// ImageTarget is an image file or a card on the host.
type ImageTarget struct {
	File  *os.File
	Boot  Region
	Roots map[string]Region // slot → root partition
	// MTime stamps the files written (the build epoch keeps images
	// reproducible; zero: now).
	MTime time.Time

	ed *fat.Editor
}

var _ install.Target = (*ImageTarget)(nil)

func (t *ImageTarget) editor() (*fat.Editor, error) {
	if t.ed == nil {
		ed, err := fat.OpenEditor(&sectionRW{f: t.File, r: t.Boot}, 0)
		if err != nil {
			return nil, fmt.Errorf("boot partition: %w", err)
		}
		t.ed = ed
	}
	return t.ed, nil
}

// Reclaim frees the boot partition's lost clusters (a write cut by a
// power loss leaves them); it returns the bytes freed.
func (t *ImageTarget) Reclaim() (int64, error) {
	ed, err := t.editor()
	if err != nil {
		return 0, err
	}
	return ed.Reclaim()
}

// ReadFile reads a boot partition file, at most max bytes.
func (t *ImageTarget) ReadFile(name string, max int64) ([]byte, error) {
	ed, err := t.editor()
	if err != nil {
		return nil, err
	}
	b, ok, err := ed.ReadFile(name)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return nil, fmt.Errorf("%s: %w", name, os.ErrNotExist)
	case int64(len(b)) > max:
		return nil, fmt.Errorf("%s: more than %d bytes", name, max)
	}
	return b, nil
}

// Open opens a boot partition file (read into memory: slot files are
// tens of MiB at most).
func (t *ImageTarget) Open(name string) (io.ReadCloser, error) {
	b, err := t.ReadFile(name, t.Boot.Size)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// WriteFile streams r into the boot partition. The Editor writes new
// clusters and switches the directory entry only after the last byte,
// so an error from r (install.Verified's digest check) or a power cut
// leaves the old file.
func (t *ImageTarget) WriteFile(name string, r io.Reader, size int64) error {
	ed, err := t.editor()
	if err != nil {
		return err
	}
	if dir := path.Dir(name); dir != "." {
		if err := ed.MkdirAll(dir, t.mtime()); err != nil {
			return fmt.Errorf("boot partition: %w", err)
		}
	}
	if err := ed.WriteFile(name, r, size, t.mtime()); err != nil {
		return fmt.Errorf("boot partition: %w", err)
	}
	return nil
}

// RemoveAll removes a boot partition directory.
func (t *ImageTarget) RemoveAll(name string) error {
	ed, err := t.editor()
	if err != nil {
		return err
	}
	if path.Clean("/"+name) == "/" {
		return fmt.Errorf("%q is the whole boot partition", name)
	}
	return ed.RemoveAll(name)
}

func (t *ImageTarget) mtime() time.Time {
	if t.MTime.IsZero() {
		return time.Now()
	}
	return t.MTime
}

// Root is a slot's root partition as a byte range of the file.
func (t *ImageTarget) Root(slot string) (install.Partition, error) {
	r, ok := t.Roots[slot]
	if !ok {
		return nil, fmt.Errorf("the image has no root partition for slot %s", slot)
	}
	return &regionPartition{f: t.File, r: r}, nil
}

// sectionRW is a region of a file as the Editor's ReaderWriterAt.
type sectionRW struct {
	f *os.File
	r Region
}

func (s *sectionRW) ReadAt(p []byte, off int64) (int, error) {
	if off >= s.r.Size {
		return 0, io.EOF
	}
	if rest := s.r.Size - off; int64(len(p)) > rest {
		n, err := s.f.ReadAt(p[:rest], s.r.Start+off)
		if err == nil {
			err = io.EOF
		}
		return n, err
	}
	return s.f.ReadAt(p, s.r.Start+off)
}

func (s *sectionRW) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > s.r.Size {
		return 0, fmt.Errorf("write of %d bytes at %d: outside the %d-byte partition", len(p), off, s.r.Size)
	}
	return s.f.WriteAt(p, s.r.Start+off)
}

// Sync makes the Editor's writes durable (it syncs between steps).
func (s *sectionRW) Sync() error { return s.f.Sync() }

type regionPartition struct {
	f *os.File
	r Region
}

func (p *regionPartition) ReadAt(b []byte, off int64) (int, error) {
	return (&sectionRW{f: p.f, r: p.r}).ReadAt(b, off)
}

func (p *regionPartition) WriteAt(b []byte, off int64) (int, error) {
	return (&sectionRW{f: p.f, r: p.r}).WriteAt(b, off)
}

func (p *regionPartition) Size() int64 { return p.r.Size }

func (p *regionPartition) Sync() error {
	return p.f.Sync()
}

func (p *regionPartition) Close() error { return nil }
