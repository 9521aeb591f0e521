package ext4sb

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	le := binary.LittleEndian
	mk := func(f func(b []byte)) []byte {
		b := make([]byte, Offset+Size)
		sb := b[Offset:]
		le.PutUint16(sb[0x38:], Magic)
		le.PutUint32(sb[0x04:], 1000) // blocks (low)
		le.PutUint32(sb[0x18:], 2)    // 4 KiB blocks
		le.PutUint32(sb[0x4c:], 1)    // dynamic revision
		le.PutUint16(sb[0x58:], 256)  // inode size
		copy(sb[0x78:], "rfs-data\x00junk")
		if f != nil {
			f(sb)
		}
		return b
	}
	sb, err := Read(bytes.NewReader(mk(nil)), 0)
	if err != nil || sb.BlockSize != 4096 || sb.BlocksCount != 1000 || sb.Label != "rfs-data" || sb.InodeSize != 256 {
		t.Fatalf("%+v %v", sb, err)
	}
	sb, err = Read(bytes.NewReader(mk(func(b []byte) {
		le.PutUint32(b[0x60:], Incompat64bit)
		le.PutUint32(b[0x150:], 1)
	})), 0)
	if err != nil || sb.BlocksCount != 1<<32|1000 {
		t.Fatalf("64bit: %+v %v", sb, err)
	}
	csum := mk(func(b []byte) { le.PutUint32(b[0x64:], RoCompatMetadataCsum) })
	le.PutUint32(csum[Offset+0x3fc:], Checksum(csum[Offset:]))
	if err := VerifyChecksum(csum[Offset:]); err != nil {
		t.Errorf("good checksum: %v", err)
	}
	le.PutUint32(csum[Offset+0x3fc:], 1)
	if err := VerifyChecksum(csum[Offset:]); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("bad checksum: %v", err)
	}
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"no magic", mk(func(b []byte) { b[0x38] = 0 }), "no ext2/3/4 superblock"},
		{"block size", mk(func(b []byte) { le.PutUint32(b[0x18:], 7) }), "block size 2^(10+7)"},
		{"short", make([]byte, Offset+10), "read the ext4 superblock"},
	} {
		if _, err := Read(bytes.NewReader(c.b), 0); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// FuzzParse: any superblock decodes or gives an error, never a panic, and
// a decoded one has a usable block size.
func FuzzParse(f *testing.F) {
	f.Add(make([]byte, Size))
	f.Fuzz(func(t *testing.T, b []byte) {
		sb, err := Parse(b)
		if err == nil && (sb.BlockSize < 1024 || sb.BlockSize > 64<<10) {
			t.Fatalf("block size %d", sb.BlockSize)
		}
		VerifyChecksum(b)
	})
}
