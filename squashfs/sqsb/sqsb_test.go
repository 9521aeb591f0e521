package sqsb

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	good := make([]byte, Size)
	le := binary.LittleEndian
	le.PutUint32(good, Magic)
	le.PutUint32(good[12:], 131072)
	le.PutUint16(good[20:], GZIP)
	le.PutUint16(good[28:], 4)
	le.PutUint64(good[40:], 4096)
	sb, err := Read(bytes.NewReader(good))
	if err != nil || sb.BlockSize != 131072 || sb.Compressor() != "gzip" || sb.BytesUsed != 4096 {
		t.Fatalf("%+v %v", sb, err)
	}
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"short, not squashfs", []byte("this is not a squashfs"), `not a squashfs (magic "this", want "hsqs")`},
		{"short squashfs", good[:50], "read the squashfs superblock"},
		{"empty", nil, "read the squashfs superblock"},
		{"zeros", make([]byte, Size), `not a squashfs (magic "\x00\x00\x00\x00", want "hsqs")`},
		{"version 3", func() []byte { b := bytes.Clone(good); le.PutUint16(b[28:], 3); return b }(), "version 3.0"},
	} {
		if _, err := Read(bytes.NewReader(c.b)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	if n := CompressorName(9); n != "unknown compressor 9" {
		t.Errorf("CompressorName(9) = %q", n)
	}
}

// FuzzParse: any 96 bytes decode or give an error, never a panic.
func FuzzParse(f *testing.F) {
	f.Add(make([]byte, Size))
	f.Add([]byte("hsqs"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if sb, err := Read(bytes.NewReader(b)); err == nil && (sb.Major != 4 || sb.Minor != 0) {
			t.Fatalf("accepted version %d.%d", sb.Major, sb.Minor)
		}
	})
}
