package ext4fs

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

const xattrMagic = 0xea020000

// xattrPrefixes maps an entry's name index to its namespace prefix.
var xattrPrefixes = map[byte]string{
	0: "", 1: "user.", 2: "system.posix_acl_access", 3: "system.posix_acl_default",
	4: "trusted.", 6: "security.", 7: "system.", 8: "system.richacl",
}

// Xattrs returns an inode's extended attributes: those in the inode
// (after i_extra_isize) and those in its xattr block. Every entry and
// value must lie inside its area, so nothing larger than an inode or a
// block is allocated.
func (fs *FS) Xattrs(in *Inode) (map[string][]byte, error) {
	out := map[string][]byte{}
	if a := in.xattrsIn; len(a) >= 4 && binary.LittleEndian.Uint32(a) == xattrMagic {
		// Value offsets count from the first entry, after the magic.
		if err := parseXattrs(a[4:], 0, out); err != nil {
			return nil, fmt.Errorf("inode %d: in-inode xattrs: %w", in.Ino, err)
		}
	}
	if in.fileACL != 0 {
		b, err := fs.readBlock(in.fileACL)
		if err != nil {
			return nil, fmt.Errorf("inode %d: xattr block: %w", in.Ino, err)
		}
		if m, n := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[8:]); m != xattrMagic || n != 1 {
			return nil, fmt.Errorf("inode %d: xattr block %d: bad header (magic %#x, %d blocks)", in.Ino, in.fileACL, m, n)
		}
		if err := parseXattrs(b, 32, out); err != nil {
			return nil, fmt.Errorf("inode %d: xattr block %d: %w", in.Ino, in.fileACL, err)
		}
	}
	return out, nil
}

// parseXattrs reads the entries of area from off up to a zero word or the
// end; value offsets are relative to area's start.
func parseXattrs(area []byte, off int, out map[string][]byte) error {
	for off+4 <= len(area) && binary.LittleEndian.Uint32(area[off:]) != 0 {
		if len(area)-off < 16 {
			return fmt.Errorf("entry at %d: truncated", off)
		}
		nl, idx := int(area[off]), area[off+1]
		voff := int(binary.LittleEndian.Uint16(area[off+2:]))
		vino := binary.LittleEndian.Uint32(area[off+4:])
		vsize := uint64(binary.LittleEndian.Uint32(area[off+8:]))
		if off+16+nl > len(area) {
			return fmt.Errorf("entry at %d: name of %d bytes runs past the end", off, nl)
		}
		prefix, ok := xattrPrefixes[idx]
		if !ok {
			prefix = fmt.Sprintf("index%d.", idx)
		}
		name := prefix + string(area[off+16:off+16+nl])
		if vino != 0 {
			return fmt.Errorf("%s: value in inode %d (ea_inode) is not supported", name, vino)
		}
		if uint64(voff)+vsize > uint64(len(area)) {
			return fmt.Errorf("%s: value of %d bytes at %d runs past the %d-byte area", name, vsize, voff, len(area))
		}
		out[name] = bytes.Clone(area[voff : voff+int(vsize)])
		off += (16 + nl + 3) &^ 3
	}
	return nil
}
