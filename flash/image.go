package flash

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rfsbuild/rfs/ptable"
	"github.com/rfsbuild/rfs/squashfs/sqsb"
)

// CheckImage refuses an IMAGE that is not a whole disk image (no valid GPT
// or MBR partition table: a random file, a squashfs), whose partitions do
// not fit in it (a truncated download or copy: the card would boot into
// garbage), or that a loop device mounted read-write is backed by (its
// content may change while it is written, and the copy would be torn).
func (s System) CheckImage(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("image %s: %w", path, err)
	}
	t, err := ptable.ReadTable(f, size, 0)
	if err != nil {
		if sqsb.HasMagic(f) {
			return fmt.Errorf("refusing to flash %s: it is a squashfs file system, not a disk image (flash the image rfs build wrote; rfs build --layer takes a squashfs)", path)
		}
		return fmt.Errorf("refusing to flash %s: not a disk image: no valid GPT or MBR partition table (%v)", path, err)
	}
	if err := t.Check(size, "image"); err != nil {
		return fmt.Errorf("refusing to flash %s: %w", path, err)
	}
	return s.checkLoopMounts(path)
}

// checkLoopMounts refuses an image file attached to a loop device with a
// filesystem mounted read-write.
func (s System) checkLoopMounts(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	ents, _ := os.ReadDir(s.sys("block"))
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "loop") {
			continue
		}
		b, err := os.ReadFile(s.sys("block", e.Name(), "loop", "backing_file"))
		if err != nil {
			continue
		}
		bst, err := os.Stat(strings.TrimSpace(string(b)))
		if err != nil || !os.SameFile(st, bst) {
			continue
		}
		d, err := s.Lookup(filepath.Join(s.devDir(), e.Name()))
		if err != nil {
			continue
		}
		for _, m := range d.Mounts {
			if m.RW {
				return fmt.Errorf("refusing to flash %s: it is attached to %s, and %s is mounted read-write on %s: its content may change while it is copied; unmount it (and losetup -d %s) first",
					path, d.Path, m.On, m.Point, d.Path)
			}
		}
	}
	return nil
}
