package fat

import (
	"fmt"
	"strings"
)

// Remove deletes the file at path and frees its clusters; false if there
// was none. The entry is deleted (and synced) before the clusters are
// freed, so a cut can only leak them. Directories need RemoveAll.
func (fs *Editor) Remove(path string) (bool, error) {
	_, e, _, err := fs.lookup(path)
	if isNotExist(err) || (err == nil && e == nil) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if e.isDir() {
		return false, fmt.Errorf("remove %s: is a directory", path)
	}
	var cs []uint32
	if e.cluster != 0 {
		if cs, err = fs.chain(e.cluster); err != nil {
			return false, fmt.Errorf("remove %s: %w", path, err)
		}
	}
	return true, fs.unlink(e, cs)
}

// unlink deletes e's entry, syncs, then frees cs.
func (fs *Editor) unlink(e *editEntry, cs []uint32) error {
	return fs.op(func() error {
		if err := fs.begin(); err != nil {
			return err
		}
		if err := fs.deleteEntry(e); err != nil {
			return err
		}
		if err := fs.sync(); err != nil {
			return err
		}
		fs.release(cs)
		return fs.end()
	})
}

// RemoveAll removes path and, for a directory, everything in it (to a
// depth of 16); a missing path is not an error. The whole tree's chains
// are walked first, so a damaged one (a loop, a cluster out of range, a
// directory inside itself) is an error before anything changes; then the
// one entry of path is deleted and synced, then every chain freed.
func (fs *Editor) RemoveAll(path string) error {
	_, e, _, err := fs.lookup(path)
	if isNotExist(err) || (err == nil && e == nil) {
		return nil
	}
	if err != nil {
		return err
	}
	var cs []uint32
	if e.isDir() {
		cs, err = fs.treeChains(e.cluster, path, 0, map[uint32]bool{})
	} else if e.cluster != 0 {
		cs, err = fs.chain(e.cluster)
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return fs.unlink(e, cs)
}

// treeChains lists the clusters of the directory at first and of
// everything in it.
func (fs *Editor) treeChains(first uint32, path string, depth int, seen map[uint32]bool) ([]uint32, error) {
	if depth > maxWalkDepth {
		return nil, fmt.Errorf("directory %s: deeper than %d levels", path, maxWalkDepth)
	}
	if seen[first] || first == fs.rootClus {
		return nil, fmt.Errorf("directory %s: contains itself", path)
	}
	seen[first] = true
	d, err := fs.readDir(first, path)
	if err != nil {
		return nil, err
	}
	out := append([]uint32(nil), d.chain...)
	for _, e := range d.ents {
		var cs []uint32
		switch {
		case e.name == "." || e.name == "..":
			continue
		case e.isDir():
			cs, err = fs.treeChains(e.cluster, path+"/"+e.name, depth+1, seen)
		case e.cluster != 0:
			cs, err = fs.chain(e.cluster)
		}
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", path, e.name, err)
		}
		out = append(out, cs...)
	}
	return out, nil
}

// Rename renames the file old to new in the same directory, replacing a
// file called new: write-temp-then-rename. With a file to replace, old's
// entry is deleted first, then new's entry switched to old's chain by one
// write, then new's previous chain freed (syncs between): a cut leaves
// new's old content (with old's clusters leaked) or its new content,
// never two names sharing clusters. Without one, old's entry is deleted
// before new's is written: a cut between them loses the name (fsck.fat
// recovers the clusters as a lost chain), never duplicates it.
func (fs *Editor) Rename(old, new string) error {
	on, err := splitPath(old)
	if err != nil {
		return err
	}
	nn, err := splitPath(new)
	if err != nil {
		return err
	}
	if len(on) == 0 || len(nn) != len(on) || !strings.EqualFold(strings.Join(parentOf(on), "/"), strings.Join(parentOf(nn), "/")) {
		return fmt.Errorf("rename %s to %s: only within one directory", old, new)
	}
	d, src, _, err := fs.lookup(old)
	if err != nil {
		return err
	}
	if src == nil {
		return fmt.Errorf("rename %s: %w", old, ErrNotExist)
	}
	name := nn[len(nn)-1]
	dst := d.find(name)
	if dst != nil && dst.off != src.off && dst.isDir() {
		return fmt.Errorf("rename %s to %s: %s is a directory", old, new, new)
	}
	body, err := fs.readBody(src)
	if err != nil {
		return err
	}
	if dst != nil && dst.off != src.off {
		return fs.replace(src, dst, body)
	}
	return fs.rename(d, src, name, body)
}

// replace switches dst to src's chain and frees dst's old one.
func (fs *Editor) replace(src, dst *editEntry, body entryBody) error {
	return fs.op(func() error {
		var cs []uint32
		if dst.cluster != 0 {
			var err error
			if cs, err = fs.chain(dst.cluster); err != nil {
				return fmt.Errorf("rename over %s: %w", dst.name, err)
			}
		}
		if err := fs.begin(); err != nil {
			return err
		}
		if err := fs.deleteEntry(src); err != nil {
			return err
		}
		if err := fs.sync(); err != nil {
			return err
		}
		if err := fs.setBody(dst, body); err != nil {
			return err
		}
		if err := fs.sync(); err != nil {
			return err
		}
		fs.release(cs)
		return fs.end()
	})
}

// rename moves src's entry to name (a case change of the same name too).
func (fs *Editor) rename(d *editDir, src *editEntry, name string, body entryBody) error {
	return fs.op(func() error {
		if err := checkName(name); err != nil {
			return err
		}
		if err := fs.needFree(fs.growNeed(d, name)); err != nil {
			return err
		}
		if err := fs.deleteEntry(src); err != nil {
			return err
		}
		if err := fs.sync(); err != nil {
			return err
		}
		d, err := fs.readDir(d.first, d.path)
		if err != nil {
			return err
		}
		if err := fs.begin(); err != nil {
			return err
		}
		if err := fs.addEntry(d, name, body); err != nil {
			return err
		}
		return fs.end()
	})
}
