package ext4fs

import (
	"bytes"
	"fmt"
	"io"
	"sort"
)

// File is a regular file's content. ReadAt reads only what is asked for:
// nothing is allocated by the file's size.
type File struct {
	fs     *FS
	size   int64
	runs   []run
	inline []byte // the whole content, for inline data
}

// Open returns the content of a regular file (its block map is read and
// checked now).
func (fs *FS) Open(in *Inode) (*File, error) {
	if in.Type() != TypeRegular {
		return nil, fmt.Errorf("inode %d: not a regular file", in.Ino)
	}
	f := &File{fs: fs, size: int64(in.Size)} // checkInode bounded Size by the filesystem
	var err error
	if in.flags&flagInlineData != 0 {
		f.inline, err = fs.inlineData(in)
	} else {
		f.runs, err = fs.blockMap(in)
	}
	if err != nil {
		return nil, fmt.Errorf("inode %d: %w", in.Ino, err)
	}
	return f, nil
}

// Size is the file's length.
func (f *File) Size() int64 { return f.size }

// NewReader reads the file from the start.
func (f *File) NewReader() io.Reader { return &reader{f: f} }

// reader reads a File in order. Its WriteTo lets io.Copy use a buffer
// sized by the file (at most 128 KiB) instead of 32 KiB per file.
type reader struct {
	f   *File
	off int64
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.f.ReadAt(p, r.off)
	r.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (r *reader) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, min(max(r.f.size-r.off, 1), 128<<10))
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// ReadAt reads the file's bytes at off; holes and unwritten extents read
// as zeros.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read at negative offset %d", off)
	}
	if off >= f.size {
		return 0, io.EOF
	}
	want := int(min(int64(len(p)), f.size-off))
	if f.inline != nil {
		copy(p, f.inline[off:off+int64(want)])
	} else if err := f.readRuns(p[:want], off); err != nil {
		return 0, err
	}
	if want < len(p) {
		return want, io.EOF
	}
	return want, nil
}

func (f *File) readRuns(p []byte, off int64) error {
	bs := int64(f.fs.sb.BlockSize)
	for len(p) > 0 {
		blk := uint64(off / bs)
		i := sort.Search(len(f.runs), func(i int) bool { return f.runs[i].logical+f.runs[i].n > blk })
		var n int64
		switch {
		case i == len(f.runs) || f.runs[i].logical > blk: // a hole
			n = int64(len(p))
			if i < len(f.runs) {
				n = min(n, int64(f.runs[i].logical)*bs-off)
			}
			clear(p[:n])
		default:
			r := f.runs[i]
			n = min(int64(len(p)), int64(r.logical+r.n)*bs-off)
			if r.unwritten {
				clear(p[:n])
				break
			}
			phys := int64(r.phys+blk-r.logical)*bs + off%bs
			if err := f.fs.read(p[:n], phys); err != nil {
				return err
			}
		}
		p, off = p[n:], off+n
	}
	return nil
}

// inlineData returns an inline_data inode's content: i_block, then the
// system.data xattr.
func (fs *FS) inlineData(in *Inode) ([]byte, error) {
	x, err := fs.Xattrs(in)
	if err != nil {
		return nil, err
	}
	b := append(bytes.Clone(in.block[:]), x["system.data"]...)
	if in.Size > uint64(len(b)) {
		return nil, fmt.Errorf("inline data: size %d, but only %d bytes inline", in.Size, len(b))
	}
	return b[:in.Size], nil
}

// Readlink returns a symlink's target: in i_block (a fast symlink), inline
// data, or a data block.
func (fs *FS) Readlink(in *Inode) (string, error) {
	if in.Type() != TypeSymlink {
		return "", fmt.Errorf("inode %d: not a symlink", in.Ino)
	}
	var b []byte
	switch {
	case in.flags&flagInlineData != 0:
		d, err := fs.inlineData(in)
		if err != nil {
			return "", fmt.Errorf("inode %d: %w", in.Ino, err)
		}
		b = d
	case fs.fastSymlink(in):
		b = in.block[:in.Size]
	default:
		rs, err := fs.blockMap(in)
		if err != nil {
			return "", fmt.Errorf("inode %d: %w", in.Ino, err)
		}
		b = make([]byte, in.Size) // < MaxSymlink (checkInode)
		f := File{fs: fs, size: int64(in.Size), runs: rs}
		if _, err := f.ReadAt(b, 0); err != nil {
			return "", fmt.Errorf("inode %d: %w", in.Ino, err)
		}
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return "", fmt.Errorf("inode %d: symlink target %q has a NUL byte", in.Ino, b)
	}
	return string(b), nil
}

// fastSymlink says whether the target is in i_block: the inode owns no
// data blocks (at most its xattr block), as the kernel decides.
func (fs *FS) fastSymlink(in *Inode) bool {
	if in.flags&flagExtents != 0 || in.Size >= uint64(len(in.block)) {
		return false
	}
	ea := uint32(0)
	if in.fileACL != 0 {
		ea = fs.sb.BlockSize / 512
	}
	return in.blocks512 == ea
}
