package install

import (
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// DirTarget is a mounted boot partition and the slots' root partitions
// as files (block devices on a device; plain files in tests).
type DirTarget struct {
	Boot  string            // the boot partition's mount point
	Roots map[string]string // slot → root partition (device path)
}

var _ Target = DirTarget{}

// path maps a boot partition path into Boot, refusing what escapes it.
func (t DirTarget) path(name string) (string, error) {
	clean := path.Clean(name)
	if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("%q is outside the boot partition", name)
	}
	return filepath.Join(t.Boot, filepath.FromSlash(clean)), nil
}

// ReadFile reads a boot partition file, at most max bytes.
func (t DirTarget) ReadFile(name string, max int64) ([]byte, error) {
	p, err := t.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err == nil && int64(len(b)) > max {
		err = fmt.Errorf("%s: more than %d bytes", name, max)
	}
	return b, err
}

// Open opens a boot partition file.
func (t DirTarget) Open(name string) (io.ReadCloser, error) {
	p, err := t.path(name)
	if err != nil {
		return nil, err
	}
	return os.Open(p)
}

// WriteFile replaces a boot partition file: a synced temporary file
// renamed over it, then the directory synced.
func (t DirTarget) WriteFile(name string, r io.Reader, size int64) error {
	p, err := t.path(name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := p + ".new"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	n, err := io.Copy(f, io.LimitReader(r, size+1))
	if err == nil && n != size {
		err = fmt.Errorf("%d bytes, want %d", n, size)
	}
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	if d, err := os.Open(filepath.Dir(p)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// RemoveAll removes a boot partition directory.
func (t DirTarget) RemoveAll(name string) error {
	p, err := t.path(name)
	if err != nil {
		return err
	}
	if p == filepath.Clean(t.Boot) {
		return fmt.Errorf("%q is the whole boot partition", name)
	}
	return os.RemoveAll(p)
}

// Root opens a slot's root partition read-write.
func (t DirTarget) Root(slot string) (Partition, error) {
	dev := t.Roots[slot]
	if dev == "" {
		return nil, fmt.Errorf("slot %s's root partition was not found at boot (rfs-init status)", slot)
	}
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("size of %s: %w", dev, err)
	}
	return &filePartition{File: f, size: size}, nil
}

type filePartition struct {
	*os.File
	size int64
}

func (p *filePartition) Size() int64 { return p.size }

// Sync flushes the writes and drops the cached pages, so the reads that
// check them come from the medium.
func (p *filePartition) Sync() error {
	if err := p.File.Sync(); err != nil {
		return err
	}
	dropCache(p.File)
	return nil
}
