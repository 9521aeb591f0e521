package jbd2

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"
)

const fsBlocks = 1 << 40

// features are the journal layouts the tests write.
var features = []struct {
	name             string
	compat, incompat uint32
}{
	{"plain-32bit", 0, incompatRevoke},
	{"plain-64bit", 0, incompatRevoke | incompat64bit},
	{"v1", compatChecksum, incompatRevoke},
	{"v1-async", compatChecksum, incompatRevoke | incompatAsyncCommit},
	{"v2-32bit", 0, incompatRevoke | incompatCsumV2},
	{"v2-64bit", 0, incompatRevoke | incompat64bit | incompatCsumV2},
	{"v3-32bit", 0, incompatRevoke | incompatCsumV3},
	{"v3-64bit", 0, incompatRevoke | incompat64bit | incompatCsumV3},
	{"v3-async", 0, incompatRevoke | incompat64bit | incompatCsumV3 | incompatAsyncCommit},
}

func replayImage(img []byte, bs int) (*Replay, error) {
	j, err := Open(bytes.NewReader(img), int64(len(img)), bs, fsBlocks)
	if err != nil {
		return nil, err
	}
	return j.Replay()
}

// check verifies that rep maps exactly the blocks of want, each to a copy
// whose (unescaped) content is the block's fill.
func check(t *testing.T, img []byte, bs int, rep *Replay, want []uint64, magic map[uint64]bool) {
	t.Helper()
	var got []uint64
	for blk, c := range rep.Blocks {
		got = append(got, blk)
		b := slices.Clone(img[int(c.Block)*bs : int(c.Block+1)*bs])
		if c.Escaped {
			binary.BigEndian.PutUint32(b, Magic)
		}
		if !bytes.Equal(b, fill(bs, blk, magic[blk])) {
			t.Errorf("block %d: the copy in journal block %d is not its content", blk, c.Block)
		}
	}
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("replayed blocks %v, want %v", got, want)
	}
}

func TestReplay(t *testing.T) {
	for _, f := range features {
		for _, bs := range []int{1024, 4096} {
			t.Run(fmt.Sprintf("%s/%d", f.name, bs), func(t *testing.T) {
				b := newBuilder(bs, 64, f.compat, f.incompat)
				big := uint64(5)
				if f.incompat&incompat64bit != 0 {
					big = 1<<33 + 5
				}
				start := b.pos
				b.write(txn{blocks: []uint64{10, 11, 12, big}})
				b.write(txn{blocks: []uint64{11, 13}, magic: map[uint64]bool{13: true}, revoke: []uint64{12}})
				b.write(txn{revoke: []uint64{13}}) // revokes the copy before it
				b.write(txn{blocks: []uint64{13, 14}, revoke: []uint64{99}})
				b.write(txn{blocks: []uint64{15}, nocommit: true}) // interrupted: not replayed
				img := b.super(start, 100)
				rep, err := replayImage(img, bs)
				if err != nil {
					t.Fatal(err)
				}
				check(t, img, bs, rep, []uint64{10, 11, big, 13, 14}, nil)
				if rep.EndTID != 104 || rep.Revoked != 2 {
					t.Errorf("end %d revoked %d, want 104 and 2", rep.EndTID, rep.Revoked)
				}
				// Block 11's newest copy is transaction 101's.
				if c := rep.Blocks[11]; binary.BigEndian.Uint32(b.img[int(c.Block)*bs-bs+8:]) != 101 {
					t.Errorf("block 11 from journal block %d, not transaction 101's", c.Block)
				}
			})
		}
	}
}

func TestReplayEscapedAndWrap(t *testing.T) {
	for _, f := range features {
		t.Run(f.name, func(t *testing.T) {
			b := newBuilder(1024, 20, f.compat, f.incompat)
			b.pos = 15 // the log wraps round to block 1
			start := b.pos
			magic := map[uint64]bool{7: true, 8: true}
			b.write(txn{blocks: []uint64{5, 6, 7}, magic: magic})
			b.write(txn{blocks: []uint64{8, 9, 10, 11}, magic: magic})
			img := b.super(start, 100)
			rep, err := replayImage(img, 1024)
			if err != nil {
				t.Fatal(err)
			}
			check(t, img, 1024, rep, []uint64{5, 6, 7, 8, 9, 10, 11}, magic)
			if !rep.Blocks[7].Escaped || rep.Blocks[6].Escaped {
				t.Error("escape flags lost")
			}
		})
	}
}

func TestCleanJournal(t *testing.T) {
	b := newBuilder(1024, 20, 0, incompatCsumV3)
	b.write(txn{blocks: []uint64{5}})
	rep, err := replayImage(b.super(0, 100), 1024)
	if err != nil || len(rep.Blocks) != 0 {
		t.Fatalf("clean journal: %v, %d blocks", err, len(rep.Blocks))
	}
}

// TestCorrupt: what the kernel refuses to recover is an error naming the
// transaction; what it takes for the end of the log (an interrupted or
// stale commit) ends the replay quietly.
func TestCorrupt(t *testing.T) {
	v3 := uint32(incompatRevoke | incompat64bit | incompatCsumV3)
	cases := []struct {
		name             string
		compat, incompat uint32
		corrupt          func(b *builder, desc, commit uint32, data []uint32)
		want             string // "" : no error, transaction 100 alone replayed
	}{
		{"v3 data block", 0, v3, func(b *builder, d, c uint32, data []uint32) { b.block(data[1])[9] ^= 1 },
			"transaction 101: journal block 6 (a copy of filesystem block 21): checksum mismatch"},
		{"v3 descriptor", 0, v3, func(b *builder, d, c uint32, data []uint32) { b.block(d)[20] ^= 1 },
			"transaction 101: descriptor or revoke block checksum mismatch"},
		{"v3 commit", 0, v3, func(b *builder, d, c uint32, data []uint32) { b.block(c)[0x40] ^= 1 },
			"transaction 101: commit block checksum mismatch"},
		{"v3 stale commit (older time)", 0, v3, func(b *builder, d, c uint32, data []uint32) {
			blk := b.block(c)
			binary.BigEndian.PutUint64(blk[0x30:], 5)
			blk[0x40] ^= 1
		}, ""},
		{"v3 async commit", 0, v3 | incompatAsyncCommit, func(b *builder, d, c uint32, data []uint32) { b.block(c)[0x40] ^= 1 }, ""},
		{"v1 data block", compatChecksum, incompatRevoke, func(b *builder, d, c uint32, data []uint32) { b.block(data[0])[9] ^= 1 },
			"transaction 101: commit block checksum mismatch"},
		{"missing commit", 0, v3, func(b *builder, d, c uint32, data []uint32) { clear(b.block(c)) }, ""},
		{"tag outside the filesystem", 0, v3, func(b *builder, d, c uint32, data []uint32) {}, "outside the filesystem's"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBuilder(1024, 64, c.compat, c.incompat)
			start := b.pos
			b.write(txn{blocks: []uint64{10}})
			second := []uint64{20, 21}
			if strings.HasPrefix(c.name, "tag outside") {
				second = []uint64{20, 1 << 41}
			}
			desc, commit, data := b.write(txn{blocks: second})
			c.corrupt(b, desc, commit, data)
			img := b.super(start, 100)
			rep, err := replayImage(img, 1024)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				check(t, img, 1024, rep, []uint64{10}, nil)
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

// TestHostile: superblocks and logs no kernel writes give errors, never a
// panic, a hang or a large allocation.
func TestHostile(t *testing.T) {
	be := binary.BigEndian
	cases := []struct {
		name string
		mut  func(b *builder, img []byte)
		want string
	}{
		{"magic", func(b *builder, img []byte) { be.PutUint32(img, 1) }, "magic"},
		{"block size", func(b *builder, img []byte) { be.PutUint32(img[0xc:], 4096) }, "block size 4096"},
		{"maxlen past the file", func(b *builder, img []byte) { be.PutUint32(img[0x10:], 1<<31) }, "the journal file holds 64"},
		{"first 0", func(b *builder, img []byte) { be.PutUint32(img[0x14:], 0) }, "first log block 0"},
		{"first past maxlen", func(b *builder, img []byte) { be.PutUint32(img[0x14:], 64) }, "first log block 64"},
		{"start past maxlen", func(b *builder, img []byte) { be.PutUint32(img[0x1c:], 99) }, "log start 99"},
		{"unknown feature", func(b *builder, img []byte) { be.PutUint32(img[0x28:], 0x1000) }, "unknown incompatible"},
		{"fast commit", func(b *builder, img []byte) { be.PutUint32(img[0x28:], incompatFastCommit) }, "fast commits"},
		{"revoke count huge", func(b *builder, img []byte) {
			blk := b.block(1)
			b.header(blk, typeRevoke, 100)
			be.PutUint32(blk[12:], 0xffffffff)
			b.header(b.block(2), typeCommit, 100)
		}, "4294967295 bytes of records"},
		{"log round the journal", func(b *builder, img []byte) {
			// A descriptor whose tags take the whole ring: the walk
			// comes back to it, still expecting its transaction.
			blk := b.block(1)
			clear(blk)
			b.header(blk, typeDescriptor, 100)
			for i := range 63 {
				be.PutUint16(blk[headerSize+8*i+6:], flagSameUUID)
			}
			be.PutUint16(blk[headerSize+8*62+6:], flagSameUUID|flagLastTag)
		}, "runs on past the journal's 64 blocks"},
		{"descriptor past the end", func(b *builder, img []byte) {
			// first = maxlen-1: a descriptor's tags run past the end.
			be.PutUint32(img[0x14:], 63)
			be.PutUint32(img[0x1c:], 63)
			blk := b.block(63)
			b.header(blk, typeDescriptor, 100)
			for o := headerSize; o+8 <= 1024; o += 8 {
				be.PutUint16(blk[o+6:], flagSameUUID)
			}
		}, "runs on past"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBuilder(1024, 64, 0, incompatRevoke)
			start := b.pos
			b.write(txn{blocks: []uint64{10}})
			img := b.super(start, 100)
			c.mut(b, img)
			_, err := replayImage(img, 1024)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

func TestCRC32BE(t *testing.T) {
	// CRC-32/MPEG-2 (crc32_be with seed ~0, no final inversion) of "123456789".
	if got := crc32be(^uint32(0), []byte("123456789")); got != 0x0376e6e7 {
		t.Errorf("crc32be = %#08x, want 0x0376e6e7", got)
	}
}
