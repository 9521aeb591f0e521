package ext4fs

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// DirEntry is a directory entry other than "." and "..".
type DirEntry struct {
	Name string
	Ino  uint32
}

// ReadDir returns a directory's entries sorted by name. Names are checked
// (not empty, no "/" or NUL, no duplicates) and so are inode numbers; an
// htree directory is read as its linear blocks, where the index nodes
// look like empty entries.
func (fsys *FS) ReadDir(in *Inode) ([]DirEntry, error) {
	if in.Type() != TypeDir {
		return nil, fmt.Errorf("inode %d: not a directory", in.Ino)
	}
	var out []DirEntry
	var err error
	if in.flags&flagInlineData != 0 {
		out, err = fsys.readInlineDir(in)
	} else {
		out, err = fsys.readBlockDir(in)
	}
	if err != nil {
		return nil, fmt.Errorf("directory inode %d: %w", in.Ino, err)
	}
	slices.SortFunc(out, func(a, b DirEntry) int { return strings.Compare(a.Name, b.Name) })
	for i := 1; i < len(out); i++ {
		if out[i].Name == out[i-1].Name {
			return nil, fmt.Errorf("directory inode %d: two entries named %q", in.Ino, out[i].Name)
		}
	}
	return out, nil
}

func (fsys *FS) readBlockDir(in *Inode) ([]DirEntry, error) {
	bs := uint64(fsys.sb.BlockSize)
	if in.Size%bs != 0 {
		return nil, fmt.Errorf("size %d is not a multiple of the block size %d", in.Size, bs)
	}
	rs, err := fsys.blockMap(in)
	if err != nil {
		return nil, err
	}
	var out []DirEntry
	next, nblocks := uint64(0), in.Size/bs
	for _, r := range rs {
		if r.logical >= nblocks {
			break // preallocated beyond the end
		}
		if r.logical != next || r.unwritten {
			return nil, fmt.Errorf("a hole at block %d", next)
		}
		for i := uint64(0); i < r.n && r.logical+i < nblocks; i++ {
			b, err := fsys.readBlock(r.phys + i)
			if err != nil {
				return nil, err
			}
			if out, err = fsys.parseDirents(b, out); err != nil {
				return nil, fmt.Errorf("block %d: %w", r.logical+i, err)
			}
		}
		next = r.logical + r.n
	}
	if next < nblocks {
		return nil, fmt.Errorf("a hole at block %d", next)
	}
	return out, nil
}

// readInlineDir reads an inline_data directory: the parent's inode number
// and entries in i_block, more entries in the system.data xattr.
func (fsys *FS) readInlineDir(in *Inode) ([]DirEntry, error) {
	out, err := fsys.parseDirents(in.block[4:], nil)
	if err != nil {
		return nil, fmt.Errorf("inline entries: %w", err)
	}
	x, err := fsys.Xattrs(in)
	if err != nil {
		return nil, err
	}
	if d := x["system.data"]; len(d) > 0 {
		if out, err = fsys.parseDirents(d, out); err != nil {
			return nil, fmt.Errorf("inline entries in system.data: %w", err)
		}
	}
	return out, nil
}

// parseDirents appends the entries of one directory block (or inline
// area) to out, checking every record as the kernel does.
func (fsys *FS) parseDirents(b []byte, out []DirEntry) ([]DirEntry, error) {
	for off := 0; off < len(b); {
		if len(b)-off < 8 {
			return nil, fmt.Errorf("entry at %d: truncated", off)
		}
		ino := binary.LittleEndian.Uint32(b[off:])
		rl := int(binary.LittleEndian.Uint16(b[off+4:]))
		nl := int(b[off+6])
		if fsys.sb.Incompat&incompatFiletype == 0 {
			nl = int(binary.LittleEndian.Uint16(b[off+6:]))
		}
		if len(b) == 65536 && (rl == 0 || rl == 65535) { // 64 KiB blocks: the whole block
			rl = 65536
		}
		if rl < 12 || rl%4 != 0 || rl > len(b)-off || 8+nl > rl {
			return nil, fmt.Errorf("entry at %d: record length %d (name %d bytes, %d bytes left): corrupt", off, rl, nl, len(b)-off)
		}
		name := string(b[off+8 : off+8+nl])
		off += rl
		if ino == 0 || name == "." || name == ".." {
			continue // unused, the checksum tail, an htree node, or self/parent
		}
		if nl == 0 || strings.ContainsAny(name, "/\x00") {
			return nil, fmt.Errorf("entry name %q: not a file name", name)
		}
		if ino > fsys.sb.InodesCount {
			return nil, fmt.Errorf("entry %q: inode %d beyond the %d inodes", name, ino, fsys.sb.InodesCount)
		}
		out = append(out, DirEntry{Name: name, Ino: ino})
	}
	return out, nil
}

// ErrNotExist is returned by Lookup for a path that is not there.
var ErrNotExist = fs.ErrNotExist

// Lookup returns the inode at p (slash-separated, from the root), not
// following symlinks.
func (fsys *FS) Lookup(p string) (*Inode, error) {
	in, err := fsys.Inode(RootIno)
	if err != nil {
		return nil, err
	}
	for _, name := range strings.Split(path.Clean("/" + p)[1:], "/") {
		if name == "" {
			continue
		}
		if in.Type() != TypeDir {
			return nil, fmt.Errorf("%s: not a directory", p)
		}
		ents, err := fsys.ReadDir(in)
		if err != nil {
			return nil, err
		}
		i, ok := slices.BinarySearchFunc(ents, name, func(e DirEntry, n string) int { return strings.Compare(e.Name, n) })
		if !ok {
			return nil, fmt.Errorf("%s: %w", p, ErrNotExist)
		}
		if in, err = fsys.Inode(ents[i].Ino); err != nil {
			return nil, err
		}
	}
	return in, nil
}
