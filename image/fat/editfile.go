package fat

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"
)

// ReadFile reads the file at path ("slot-b/cmdline.txt"; names match their
// long or short name regardless of case, as FAT does); ok is false if
// there is none. What it reads is bounded by the file system: a size its
// chain cannot hold is an error.
func (fs *Editor) ReadFile(path string) (data []byte, ok bool, err error) {
	_, e, _, err := fs.lookup(path)
	if isNotExist(err) || (err == nil && e == nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if e.isDir() {
		return nil, false, fmt.Errorf("%s: is a directory", path)
	}
	cs, err := fs.chainN(e.cluster, fs.clustersFor(int64(e.size)), path)
	if err != nil {
		return nil, false, err
	}
	data = make([]byte, e.size)
	done := int64(0)
	for _, r := range runs(cs) {
		n := min(int64(len(r))*fs.clusterSz, int64(e.size)-done)
		if _, err := fs.rw.ReadAt(data[done:done+n], fs.clusterOff(r[0])); err != nil {
			return nil, false, fmt.Errorf("%s: read cluster %d: %w", path, r[0], err)
		}
		done += n
	}
	return data, true, nil
}

// DirEntry is one name in a directory listed by ReadDir.
type DirEntry struct {
	Name  string // the long name, else the short one
	Size  int64
	IsDir bool
}

// ReadDir lists the directory at path ("" or "/" for the root) without
// "." and "..", in directory order.
func (fs *Editor) ReadDir(path string) ([]DirEntry, error) {
	names, err := splitPath(path)
	if err != nil {
		return nil, err
	}
	d, err := fs.dirAt(names)
	if err != nil {
		return nil, err
	}
	var out []DirEntry
	for _, e := range d.ents {
		if e.name != "." && e.name != ".." {
			out = append(out, DirEntry{Name: e.name, Size: int64(e.size), IsDir: e.isDir()})
		}
	}
	return out, nil
}

func isNotExist(err error) bool { return errors.Is(err, ErrNotExist) }

// WriteFile creates or replaces the file at path (its directory must
// exist) with size bytes read from r, stamped mtime. The content goes to
// newly allocated clusters (one contiguous run when the free space has
// one); a replaced file keeps its name and entry, switched to the new
// chain by one entry write after the content and the FAT are durable,
// and its old clusters are freed after that: a power cut leaves the old
// file or the new one. So a replacement needs the new size free besides
// the old; when it is not, the error wraps ErrFull ("boot partition full:
// need X, free Y") and nothing is changed. r must hold exactly size bytes.
func (fs *Editor) WriteFile(path string, r io.Reader, size int64, mtime time.Time) error {
	return fs.op(func() error { return fs.writeFile(path, r, size, mtime) })
}

func (fs *Editor) writeFile(path string, r io.Reader, size int64, mtime time.Time) error {
	if size < 0 || size > maxFileSize {
		return fmt.Errorf("%s: size %d is out of FAT32's range", path, size)
	}
	d, old, name, err := fs.lookup(path)
	if err != nil {
		return err
	}
	if old != nil && old.isDir() {
		return fmt.Errorf("%s: is a directory", path)
	}
	need := fs.clustersFor(size)
	if old == nil {
		need += fs.growNeed(d, name)
	}
	if err := fs.needFree(need); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := fs.begin(); err != nil {
		return err
	}
	cs, err := fs.alloc(fs.clustersFor(size))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := fs.writeData(cs, r, size); err != nil {
		fs.release(cs) // only in memory so far
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := fs.commitFAT(); err != nil { // data and FAT before the entry
		return err
	}
	first := uint32(0)
	if len(cs) > 0 {
		first = cs[0]
	}
	if err := fs.switchEntry(d, old, name, newBody(attrArchive, first, uint32(size), mtime)); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return fs.end()
}

// switchEntry points old (keeping its attributes) or a new entry called
// name at the chain in body, syncs, and frees old's previous chain.
func (fs *Editor) switchEntry(d *editDir, old *editEntry, name string, body entryBody) error {
	if old == nil {
		if err := fs.addEntry(d, name, body); err != nil {
			return err
		}
		return fs.sync()
	}
	body[0] |= old.attr &^ attrDir
	if err := fs.setBody(old, body); err != nil {
		return err
	}
	if err := fs.sync(); err != nil {
		return err
	}
	return fs.freeChain(old.cluster, old.name)
}

// freeChain frees the chain from first (nothing for cluster 0, an empty
// file) in memory; end or commitFAT writes it.
func (fs *Editor) freeChain(first uint32, what string) error {
	if first == 0 {
		return nil
	}
	cs, err := fs.chain(first)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	fs.release(cs)
	return nil
}

// writeData copies size bytes from r into the clusters cs (zero-padding
// the last), a run of consecutive clusters at a time through a buffer of
// at most 4 MiB.
func (fs *Editor) writeData(cs []uint32, r io.Reader, size int64) error {
	buf := make([]byte, min(writeBufferSize, max(fs.clusterSz, int64(len(cs))*fs.clusterSz)))
	per := int64(len(buf)) / fs.clusterSz
	left := size
	for _, run := range runs(cs) {
		for len(run) > 0 {
			k := min(int64(len(run)), per)
			b := buf[:k*fs.clusterSz]
			n := min(left, int64(len(b)))
			if _, err := io.ReadFull(r, b[:n]); err != nil {
				return fmt.Errorf("content ended after %d of %d bytes: %w", size-left, size, err)
			}
			clear(b[n:])
			if _, err := fs.rw.WriteAt(b, fs.clusterOff(run[0])); err != nil {
				return fmt.Errorf("write cluster %d: %w", run[0], err)
			}
			left -= n
			run = run[k:]
		}
	}
	var one [1]byte
	if n, _ := io.ReadFull(r, one[:]); n > 0 {
		return fmt.Errorf("content is longer than its size %d", size)
	}
	return nil
}

// WriteSmall creates or replaces a root directory file (rfs reset's flag);
// it is WriteFile with the content in memory.
func (fs *Editor) WriteSmall(name string, content []byte, mtime time.Time) error {
	return fs.WriteFile(name, bytes.NewReader(content), int64(len(content)), mtime)
}

// Mkdir makes the directory path, whose parent must exist; an existing
// name is an error wrapping fs.ErrExist.
func (fs *Editor) Mkdir(path string, mtime time.Time) error {
	return fs.op(func() error { return fs.mkdir(path, mtime) })
}

func (fs *Editor) mkdir(path string, mtime time.Time) error {
	d, e, name, err := fs.lookup(path)
	if err != nil {
		return err
	}
	if e != nil {
		return fmt.Errorf("mkdir %s: %w", path, errExist)
	}
	if err := fs.needFree(1 + fs.growNeed(d, name)); err != nil {
		return fmt.Errorf("mkdir %s: %w", path, err)
	}
	if err := fs.begin(); err != nil {
		return err
	}
	cs, err := fs.alloc(1)
	if err != nil {
		return err
	}
	parent := d.first
	if parent == fs.rootClus {
		parent = 0 // ".." of a root child points at cluster 0
	}
	b := make([]byte, fs.clusterSz)
	dot, dotdot := newBody(attrDir, cs[0], 0, mtime), newBody(attrDir, parent, 0, mtime)
	dn, ddn := dotName("."), dotName("..")
	copy(b[0:], dn[:])
	copy(b[11:], dot[:])
	copy(b[32:], ddn[:])
	copy(b[43:], dotdot[:])
	if _, err := fs.rw.WriteAt(b, fs.clusterOff(cs[0])); err != nil {
		fs.release(cs)
		return fmt.Errorf("mkdir %s: %w", path, err)
	}
	if err := fs.commitFAT(); err != nil {
		return err
	}
	if err := fs.addEntry(d, name, newBody(attrDir, cs[0], 0, mtime)); err != nil {
		return fmt.Errorf("mkdir %s: %w", path, err)
	}
	return fs.end()
}

// errExist is io/fs's ErrExist (the name fs is taken by the
// receiver in this file).
var errExist = fs.ErrExist

// MkdirAll makes the directory path and its missing parents; existing
// directories are fine.
func (fs *Editor) MkdirAll(path string, mtime time.Time) error {
	names, err := splitPath(path)
	if err != nil {
		return err
	}
	for i := range names {
		p := strings.Join(names[:i+1], "/")
		_, e, _, err := fs.lookup(p)
		switch {
		case err != nil:
			return err
		case e == nil:
			if err := fs.Mkdir(p, mtime); err != nil {
				return err
			}
		case !e.isDir():
			return fmt.Errorf("mkdir %s: %s is a file", path, p)
		}
	}
	return nil
}
