package jbd2

import (
	"bytes"
	"encoding/binary"
)

// builder writes synthetic journals for the tests: what the kernel's
// commit writes (descriptor, logged blocks, revoke and commit blocks)
// with the checksums of the chosen features.
type builder struct {
	bs       int
	maxlen   uint32
	first    uint32
	compat   uint32
	incompat uint32
	uuid     [16]byte
	img      []byte
	pos      uint32 // the next log block
	seq      uint32 // the next transaction
	time     uint64
}

func newBuilder(bs int, maxlen uint32, compat, incompat uint32) *builder {
	b := &builder{bs: bs, maxlen: maxlen, first: 1, compat: compat, incompat: incompat,
		img: make([]byte, bs*int(maxlen)), pos: 1, seq: 100, time: 1000}
	copy(b.uuid[:], "0123456789abcdef")
	return b
}

func (b *builder) j() *Journal {
	j := &Journal{bs: b.bs, version: 2, maxlen: b.maxlen, first: b.first, compat: b.compat, incompat: b.incompat}
	j.tagBytes = j.tagSize()
	if j.csum() {
		j.tailBytes = 4
		j.seed = crc32c(^uint32(0), b.uuid[:])
	}
	return j
}

// super writes the journal superblock: the log starts at start with
// transaction seq (start 0: a clean journal).
func (b *builder) super(start, seq uint32) []byte {
	s := make([]byte, 1024)
	be := binary.BigEndian
	be.PutUint32(s, Magic)
	be.PutUint32(s[4:], typeSuperV2)
	be.PutUint32(s[0xc:], uint32(b.bs))
	be.PutUint32(s[0x10:], b.maxlen)
	be.PutUint32(s[0x14:], b.first)
	be.PutUint32(s[0x18:], seq)
	be.PutUint32(s[0x1c:], start)
	be.PutUint32(s[0x24:], b.compat)
	be.PutUint32(s[0x28:], b.incompat)
	copy(s[0x30:], b.uuid[:])
	if b.j().csum() {
		s[0x50] = chksumCRC32C
		be.PutUint32(s[0xfc:], crc32c(^uint32(0), s))
	}
	copy(b.img, s)
	return b.img
}

// block returns log block n (wrapping) of the image.
func (b *builder) block(n uint32) []byte {
	for n >= b.maxlen {
		n -= b.maxlen - b.first
	}
	return b.img[int(n)*b.bs : int(n+1)*b.bs]
}

func (b *builder) next() []byte {
	blk := b.block(b.pos)
	clear(blk)
	b.pos++
	if b.pos >= b.maxlen {
		b.pos -= b.maxlen - b.first
	}
	return blk
}

func (b *builder) header(blk []byte, typ, seq uint32) {
	binary.BigEndian.PutUint32(blk, Magic)
	binary.BigEndian.PutUint32(blk[4:], typ)
	binary.BigEndian.PutUint32(blk[8:], seq)
}

// fill is a logged block's content: the target block number, repeated.
func fill(bs int, target uint64, magic bool) []byte {
	c := bytes.Repeat(binary.BigEndian.AppendUint64(nil, target), bs/8)
	if magic {
		binary.BigEndian.PutUint32(c, Magic)
	}
	return c
}

// txn is one transaction: blocks logged (content from fill, the first
// of each with the magic when in magic) and revoked.
type txn struct {
	blocks   []uint64
	magic    map[uint64]bool
	revoke   []uint64
	nocommit bool
}

// write logs t as the kernel would and returns the position of each of
// its blocks (descriptor, data, revoke, commit) for corruption tests.
func (b *builder) write(t txn) (desc, commit uint32, data []uint32) {
	j := b.j()
	seq := b.seq
	crc := ^uint32(0)
	if len(t.revoke) > 0 {
		blk := b.next()
		b.header(blk, typeRevoke, seq)
		off := 16
		for _, r := range t.revoke {
			if j.has64() {
				binary.BigEndian.PutUint64(blk[off:], r)
				off += 8
			} else {
				binary.BigEndian.PutUint32(blk[off:], uint32(r))
				off += 4
			}
		}
		binary.BigEndian.PutUint32(blk[12:], uint32(off))
		b.tail(blk)
	}
	if len(t.blocks) > 0 {
		desc = b.pos
		d := b.next()
		b.header(d, typeDescriptor, seq)
		off := headerSize
		var contents [][]byte
		for i, blk := range t.blocks {
			flags := uint16(0)
			if i > 0 {
				flags |= flagSameUUID
			}
			c := fill(b.bs, blk, t.magic[blk])
			if t.magic[blk] {
				flags |= flagEscape
				binary.BigEndian.PutUint32(c, 0) // escaped
			}
			if i == len(t.blocks)-1 {
				flags |= flagLastTag
			}
			binary.BigEndian.PutUint32(d[off:], uint32(blk))
			binary.BigEndian.PutUint16(d[off+6:], flags)
			if j.has64() {
				binary.BigEndian.PutUint32(d[off+8:], uint32(blk>>32))
			}
			if j.csum() {
				var s [4]byte
				binary.BigEndian.PutUint32(s[:], seq)
				sum := crc32c(crc32c(j.seed, s[:]), c)
				if j.incompat&incompatCsumV3 != 0 {
					binary.BigEndian.PutUint32(d[off+12:], sum)
				} else {
					binary.BigEndian.PutUint16(d[off+4:], uint16(sum))
				}
			}
			off += j.tagBytes
			if flags&flagSameUUID == 0 {
				copy(d[off:], b.uuid[:])
				off += 16
			}
			contents = append(contents, c)
		}
		b.tail(d)
		crc = crc32be(crc, d)
		for _, c := range contents {
			data = append(data, b.pos)
			copy(b.next(), c)
			crc = crc32be(crc, c)
		}
	}
	if t.nocommit {
		return desc, 0, data
	}
	commit = b.pos
	c := b.next()
	b.header(c, typeCommit, seq)
	b.time++
	binary.BigEndian.PutUint64(c[0x30:], b.time)
	if j.compat&compatChecksum != 0 {
		c[0xc], c[0xd] = chksumCRC32, 4
		binary.BigEndian.PutUint32(c[0x10:], crc)
	}
	if j.csum() {
		c[0xc], c[0xd] = chksumCRC32C, 4
		binary.BigEndian.PutUint32(c[0x10:], crc32c(j.seed, c))
	}
	b.seq++
	return desc, commit, data
}

// tail sets the checksum tail of a descriptor or revoke block.
func (b *builder) tail(blk []byte) {
	j := b.j()
	if j.csum() {
		binary.BigEndian.PutUint32(blk[len(blk)-4:], 0)
		binary.BigEndian.PutUint32(blk[len(blk)-4:], crc32c(j.seed, blk))
	}
}
