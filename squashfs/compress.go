package squashfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"

	"github.com/rfsbuild/rfs/deflate"
	"github.com/rfsbuild/rfs/squashfs/sqsb"
)

// DefaultLevel is the gzip level used when Options.Level is 0. It is the
// level mksquashfs uses by default for -comp gzip.
const DefaultLevel = 9

// DefaultZstdLevel is the zstd level used when Options.Level is 0, the
// mksquashfs default. The encoder (github.com/klauspost/compress/zstd) has
// four speeds; levels map to them like zstd.EncoderLevelFromZstd.
const DefaultZstdLevel = 15

// Compression ids in the superblock.
const (
	compGzip = sqsb.GZIP
	compXZ   = sqsb.XZ
	compZstd = sqsb.ZSTD
)

// codec describes a squashfs compressor. Each worker gets its own
// blockCompressor from newCompressor, so implementations need not be safe
// for concurrent use.
type codec struct {
	name          string
	id            uint16 // superblock compression id
	newCompressor func(p compParams) (blockCompressor, error)
}

// compParams are the resolved compressor settings of one image.
type compParams struct {
	level     int
	blockSize int
	dictSize  int  // xz
	smallest  bool // gzip: keep the smaller of two encoders' output
}

// blockCompressor compresses one block. The result is only valid until the
// next call. It must be deterministic: same input, same output.
type blockCompressor interface {
	compress(src []byte) ([]byte, error)
}

var codecs = map[string]codec{
	"gzip": {name: "gzip", id: compGzip, newCompressor: newZlib},
	"xz":   {name: "xz", id: compXZ, newCompressor: newXZ},
	"zstd": {name: "zstd", id: compZstd, newCompressor: newZstd},
}

// Compressors lists the supported compressor names.
func Compressors() []string {
	names := make([]string, 0, len(codecs))
	for n := range codecs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// resolveCodec checks the compressor options and returns the codec, its
// parameters and the compressor options block to store in the image (nil
// when every setting is the kernel's/mksquashfs's default).
func resolveCodec(o Options, blockSize int) (codec, compParams, []byte, error) {
	name := o.Compressor
	if name == "" {
		name = "gzip"
	}
	c, ok := codecs[name]
	if !ok {
		return codec{}, compParams{}, nil, fmt.Errorf("compressor %q is not supported (supported: %s)", name, strings.Join(Compressors(), ", "))
	}
	p := compParams{level: o.Level, blockSize: blockSize, dictSize: o.XZDictSize, smallest: o.Smallest}
	if p.smallest && name != "gzip" {
		return codec{}, compParams{}, nil, fmt.Errorf("Smallest applies to gzip only, not %s", name)
	}
	if p.dictSize != 0 && name != "xz" {
		return codec{}, compParams{}, nil, fmt.Errorf("a dictionary size applies to xz only, not %s", name)
	}
	le := binary.LittleEndian
	var opts []byte
	switch name {
	case "gzip":
		if p.level == 0 {
			p.level = DefaultLevel
		}
		if p.level < 1 || p.level > 9 {
			return codec{}, compParams{}, nil, fmt.Errorf("gzip level %d out of range 1..9", p.level)
		}
		if p.level != DefaultLevel {
			// struct gzip_comp_opts: level, window size, strategies.
			opts = le.AppendUint32(opts, uint32(p.level))
			opts = le.AppendUint16(opts, 15)
			opts = le.AppendUint16(opts, 0)
		}
	case "xz":
		if p.level != 0 {
			return codec{}, compParams{}, nil, errors.New("xz has no level setting (set XZDictSize instead)")
		}
		if p.dictSize == 0 {
			p.dictSize = blockSize
		}
		if !validXZDict(p.dictSize) || p.dictSize > blockSize {
			return codec{}, compParams{}, nil, fmt.Errorf("xz dictionary size %d must be 2^n or 2^n+2^(n-1), from 4096 to the block size %d", p.dictSize, blockSize)
		}
		if p.dictSize != blockSize {
			// struct xz_comp_opts: dictionary size, filters (none).
			opts = le.AppendUint32(opts, uint32(p.dictSize))
			opts = le.AppendUint32(opts, 0)
		}
	case "zstd":
		if p.level == 0 {
			p.level = DefaultZstdLevel
		}
		if p.level < 1 || p.level > 22 {
			return codec{}, compParams{}, nil, fmt.Errorf("zstd level %d out of range 1..22", p.level)
		}
		if p.level != DefaultZstdLevel {
			// struct zstd_comp_opts: compression level.
			opts = le.AppendUint32(opts, uint32(p.level))
		}
	}
	return c, p, opts, nil
}

func validXZDict(n int) bool {
	if n < 4096 {
		return false
	}
	if n&(n-1) == 0 {
		return true
	}
	m := n / 3 // 2^n + 2^(n-1) = 3 * 2^(n-1)
	return n%3 == 0 && m&(m-1) == 0
}

// zlibCompressor makes zlib streams (RFC 1950), which is what the kernel's
// squashfs "gzip" decompressor expects, with rfs's deflate encoder (as
// small as C zlib at the same level; see package deflate). With smallest,
// every block is also compressed with github.com/klauspost/compress and
// the smaller output kept (both are deterministic, so the choice is too):
// klauspost never sends 3-byte matches, which wins on some binary data.
type zlibCompressor struct {
	enc *deflate.Encoder
	out []byte
	kb  bytes.Buffer
	kw  *zlib.Writer
}

func newZlib(p compParams) (blockCompressor, error) {
	enc, err := deflate.NewEncoder(p.level)
	if err != nil {
		return nil, err
	}
	z := &zlibCompressor{enc: enc}
	if p.smallest {
		if z.kw, err = zlib.NewWriterLevel(&z.kb, p.level); err != nil {
			return nil, err
		}
	}
	return z, nil
}

func (z *zlibCompressor) compress(src []byte) ([]byte, error) {
	z.out = z.enc.AppendZlib(z.out[:0], src)
	if z.kw == nil {
		return z.out, nil
	}
	z.kb.Reset()
	z.kw.Reset(&z.kb)
	if _, err := z.kw.Write(src); err != nil {
		return nil, err
	}
	if err := z.kw.Close(); err != nil {
		return nil, err
	}
	if z.kb.Len() < len(z.out) {
		return z.kb.Bytes(), nil
	}
	return z.out, nil
}

// xzCompressor makes single-block xz streams with a CRC32 check and one
// LZMA2 filter, as mksquashfs does (without -Xbcj) and the kernel's xz
// decompressor accepts.
type xzCompressor struct {
	buf bytes.Buffer
	cfg xz.WriterConfig
}

func newXZ(p compParams) (blockCompressor, error) {
	z := &xzCompressor{cfg: xz.WriterConfig{DictCap: p.dictSize, CheckSum: xz.CRC32}}
	if err := z.cfg.Verify(); err != nil {
		return nil, err
	}
	return z, nil
}

func (z *xzCompressor) compress(src []byte) ([]byte, error) {
	z.buf.Reset()
	w, err := z.cfg.NewWriter(&z.buf)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(src); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return z.buf.Bytes(), nil
}

// zstdCompressor makes one zstd frame per block, without a checksum (like
// mksquashfs) and with a window no larger than the block, which the
// kernel's decompressor requires.
type zstdCompressor struct {
	enc *zstd.Encoder
	out []byte
}

func newZstd(p compParams) (blockCompressor, error) {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(p.level)),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false),
		zstd.WithSingleSegment(true),
		zstd.WithWindowSize(max(p.blockSize, metaBlockSize)),
	)
	if err != nil {
		return nil, err
	}
	return &zstdCompressor{enc: enc}, nil
}

func (z *zstdCompressor) compress(src []byte) ([]byte, error) {
	z.out = z.enc.EncodeAll(src, z.out[:0])
	return z.out, nil
}

// decompressor expands one block into dst (whose capacity is the most the
// block may expand to) and returns it. It is used by one goroutine at a time.
type decompressor interface {
	decompress(dst, src []byte) ([]byte, error)
}

func newDecompressor(id uint16, blockSize int) (decompressor, error) {
	switch id {
	case compGzip:
		return &zlibDecompressor{}, nil
	case compXZ:
		return &xzDecompressor{maxDict: max(blockSize, metaBlockSize)}, nil
	case compZstd:
		d, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxMemory(uint64(max(blockSize, metaBlockSize))),
			zstd.WithDecoderMaxWindow(uint64(max(blockSize, metaBlockSize))),
			zstd.WithDecodeAllCapLimit(true))
		if err != nil {
			return nil, err
		}
		return &zstdDecompressor{d: d}, nil
	}
	return nil, fmt.Errorf("compression id %d is not supported (gzip, xz and zstd are)", id)
}

var errTooLong = errors.New("block expands beyond its maximum size")

// readLimited reads r into dst up to cap(dst) bytes and fails if there is
// more.
func readLimited(dst []byte, r io.Reader) ([]byte, error) {
	dst = dst[:cap(dst)]
	n, err := io.ReadFull(r, dst)
	switch err {
	case io.ErrUnexpectedEOF, io.EOF:
		return dst[:n], nil
	case nil:
		var one [1]byte
		if k, _ := r.Read(one[:]); k > 0 {
			return nil, errTooLong
		}
		return dst, nil
	}
	return nil, err
}

type zlibDecompressor struct {
	br bytes.Reader
	zr io.ReadCloser
}

func (z *zlibDecompressor) decompress(dst, src []byte) ([]byte, error) {
	z.br.Reset(src)
	if z.zr == nil {
		zr, err := zlib.NewReader(&z.br)
		if err != nil {
			return nil, err
		}
		z.zr = zr
	} else if err := z.zr.(zlib.Resetter).Reset(&z.br, nil); err != nil {
		return nil, err
	}
	return readLimited(dst, z.zr)
}

type zstdDecompressor struct{ d *zstd.Decoder }

func (z *zstdDecompressor) decompress(dst, src []byte) ([]byte, error) {
	return z.d.DecodeAll(src, dst[:0])
}

// xzDecompressor parses the xz stream and block headers itself, so that a
// hostile image cannot make the LZMA2 decoder allocate a large dictionary,
// and decodes the block's LZMA2 data. Filters other than LZMA2 (BCJ, which
// mksquashfs -Xbcj adds) are not supported; checks are not verified.
type xzDecompressor struct {
	maxDict int
	br      bytes.Reader
}

func (z *xzDecompressor) decompress(dst, src []byte) ([]byte, error) {
	const streamHeader = 12
	if len(src) < streamHeader+8 || !bytes.Equal(src[:6], []byte{0xFD, '7', 'z', 'X', 'Z', 0}) {
		return nil, errors.New("xz: bad stream header")
	}
	h := src[streamHeader:]
	hsize := (int(h[0]) + 1) * 4
	if h[0] == 0 || hsize > len(h) {
		return nil, errors.New("xz: bad block header")
	}
	flags := h[1]
	if flags&0x3c != 0 || flags&3 != 0 {
		return nil, errors.New("xz: only a single LZMA2 filter is supported")
	}
	p := h[2:hsize]
	skip := func() bool { // a varint
		for i := 0; i < len(p) && i < 9; i++ {
			if p[i]&0x80 == 0 {
				p = p[i+1:]
				return true
			}
		}
		return false
	}
	if flags&0x40 != 0 && !skip() {
		return nil, errors.New("xz: bad block header")
	}
	if flags&0x80 != 0 && !skip() {
		return nil, errors.New("xz: bad block header")
	}
	if len(p) < 3 || p[0] != 0x21 || p[1] != 1 || p[2] > 40 {
		return nil, errors.New("xz: only a single LZMA2 filter is supported")
	}
	dict := (2 | int64(p[2]&1)) << (p[2]/2 + 11)
	if dict > int64(z.maxDict) {
		return nil, fmt.Errorf("xz: dictionary of %d bytes is larger than the block size", dict)
	}
	z.br.Reset(h[hsize:])
	r, err := lzma.Reader2Config{DictCap: max(int(dict), lzma.MinDictCap)}.NewReader2(&z.br)
	if err != nil {
		return nil, err
	}
	return readLimited(dst, r)
}
