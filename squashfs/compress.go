package squashfs

import (
	"bytes"
	"fmt"

	"github.com/klauspost/compress/zlib"
)

// DefaultLevel is the gzip level used when Options.Level is 0. It is the
// level mksquashfs uses by default for -comp gzip.
const DefaultLevel = 9

// codec describes a squashfs compressor. Each worker gets its own
// blockCompressor from newCompressor, so implementations need not be safe
// for concurrent use. Adding xz or zstd means adding a codec here (and
// writing compressor options into the image when they differ from the
// kernel's defaults).
type codec struct {
	id            uint16 // superblock compression id
	newCompressor func(level int) (blockCompressor, error)
}

// blockCompressor compresses one block. The result is only valid until the
// next call. It must be deterministic: same input, same output.
type blockCompressor interface {
	compress(src []byte) ([]byte, error)
}

var codecs = map[string]codec{
	"gzip": {id: 1, newCompressor: newZlib},
}

func lookupCodec(name string, level int) (codec, int, error) {
	if name == "" {
		name = "gzip"
	}
	c, ok := codecs[name]
	if !ok {
		return codec{}, 0, fmt.Errorf("compressor %q is not supported (supported: gzip)", name)
	}
	if level == 0 {
		level = DefaultLevel
	}
	if level < 1 || level > 9 {
		return codec{}, 0, fmt.Errorf("gzip level %d out of range 1..9", level)
	}
	return c, level, nil
}

// zlibCompressor makes zlib streams (RFC 1950), which is what the kernel's
// squashfs "gzip" decompressor expects.
type zlibCompressor struct {
	buf bytes.Buffer
	zw  *zlib.Writer
}

func newZlib(level int) (blockCompressor, error) {
	z := &zlibCompressor{}
	zw, err := zlib.NewWriterLevel(&z.buf, level)
	if err != nil {
		return nil, err
	}
	z.zw = zw
	return z, nil
}

func (z *zlibCompressor) compress(src []byte) ([]byte, error) {
	z.buf.Reset()
	z.zw.Reset(&z.buf)
	if _, err := z.zw.Write(src); err != nil {
		return nil, err
	}
	if err := z.zw.Close(); err != nil {
		return nil, err
	}
	return z.buf.Bytes(), nil
}
