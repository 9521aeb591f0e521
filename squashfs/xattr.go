package squashfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Xattr layout (written after the id table, as mksquashfs does; the kernel
// requires the xattr id index to end the image):
//
//	key/value stream   metadata blocks: per xattr set, count pairs of
//	                   {u16 type, u16 name size, name without prefix,
//	                    u32 value size, value}
//	xattr id entries   metadata blocks: {u64 ref into the stream, u32 count,
//	                    u32 size of the pairs}
//	header             {u64 start of the stream, u32 ids, u32 unused}
//	index              u64 position of each id entry block
//
// The superblock's xattr table field points to the header, and an inode
// carries the index of its xattr id entry. Identical sets share one id.
// Values are stored inline (mksquashfs moves repeated values larger than
// 64 bytes out of line; the kernel reads both).

const (
	xattrUser     = 0
	xattrTrusted  = 1
	xattrSecurity = 2
	xattrOOL      = 0x100 // value stored out of line

	maxXattrValue = 65536 // XATTR_SIZE_MAX
	maxXattrName  = 255   // XATTR_NAME_MAX
)

var xattrPrefixes = []string{xattrUser: "user.", xattrTrusted: "trusted.", xattrSecurity: "security."}

func splitXattrName(name string) (typ uint16, suffix string, ok bool) {
	for i, p := range xattrPrefixes {
		if s, found := strings.CutPrefix(name, p); found && s != "" {
			return uint16(i), s, true
		}
	}
	return 0, "", false
}

func checkXattrs(x map[string][]byte) error {
	for name, v := range x {
		if _, _, ok := splitXattrName(name); !ok {
			return fmt.Errorf("xattr %q: squashfs stores only user.*, trusted.* and security.* names", name)
		}
		if len(name) > maxXattrName {
			return fmt.Errorf("xattr %q: name longer than %d bytes", name[:32]+"...", maxXattrName)
		}
		if len(v) > maxXattrValue {
			return fmt.Errorf("xattr %q: value of %d bytes, at most %d allowed", name, len(v), maxXattrValue)
		}
	}
	return nil
}

// buildXattrs gives every inode with xattrs an xattr id (in inode number
// order) and writes the key/value stream.
func (b *builder) buildXattrs(c blockCompressor) error {
	le := binary.LittleEndian
	ids := map[string]uint32{}
	for _, ino := range b.order {
		x := ino.node.Xattrs
		if len(x) == 0 {
			continue
		}
		names := make([]string, 0, len(x))
		for k := range x {
			names = append(names, k)
		}
		slices.Sort(names)
		var kv []byte
		for _, k := range names {
			typ, suffix, _ := splitXattrName(k)
			kv = le.AppendUint16(kv, typ)
			kv = le.AppendUint16(kv, uint16(len(suffix)))
			kv = append(kv, suffix...)
			kv = le.AppendUint32(kv, uint32(len(x[k])))
			kv = append(kv, x[k]...)
		}
		if id, ok := ids[string(kv)]; ok {
			ino.xattr = id
			continue
		}
		if b.xtab == nil {
			b.xtab = newMetaWriter(c)
		}
		id := uint32(len(ids))
		if id == invalidXattr {
			return errors.New("too many distinct xattr sets")
		}
		ids[string(kv)] = id
		ino.xattr = id
		ref := b.xtab.ref()
		b.xtab.write(kv)
		b.xattrIDs = le.AppendUint64(b.xattrIDs, ref)
		b.xattrIDs = le.AppendUint32(b.xattrIDs, uint32(len(names)))
		b.xattrIDs = le.AppendUint32(b.xattrIDs, uint32(len(kv)))
	}
	if b.xtab != nil && b.xtab.ref()>>16 > 0xFFFFFFFFFFFF {
		return errors.New("xattr table too large")
	}
	return nil
}

// writeXattrTables writes the stream, the id entries, the header and the
// index, and returns the header's position for the superblock.
func (b *builder) writeXattrTables(tw *tableWriter, c blockCompressor) (uint64, error) {
	kv, err := b.xtab.finish()
	if err != nil {
		return 0, err
	}
	start := tw.off
	if err := tw.write(kv); err != nil {
		return 0, err
	}
	m := newMetaWriter(c)
	m.write(b.xattrIDs)
	blocks, err := m.finish()
	if err != nil {
		return 0, err
	}
	idStart := tw.off
	if err := tw.write(blocks); err != nil {
		return 0, err
	}
	le := binary.LittleEndian
	hdrPos := tw.off
	hdr := le.AppendUint64(nil, start)
	hdr = le.AppendUint32(hdr, uint32(len(b.xattrIDs)/16))
	hdr = le.AppendUint32(hdr, 0)
	for _, s := range m.starts {
		hdr = le.AppendUint64(hdr, idStart+s)
	}
	return hdrPos, tw.write(hdr)
}
