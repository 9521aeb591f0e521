package squashfs

import (
	"encoding/binary"
	"fmt"
)

// metaWriter builds a metadata stream (inode table, directory table, ...):
// 8 KiB chunks, each compressed on its own and prefixed by a 16-bit header.
// A position in the stream is (offset of the chunk's header from the start
// of the table, offset inside the uncompressed chunk). Chunks are only
// flushed when full, so the position of the next byte is always known.
type metaWriter struct {
	comp  blockCompressor
	buf   []byte // pending uncompressed bytes, < metaBlockSize
	out   []byte // compressed chunks so far
	total int64  // uncompressed bytes written
	// starts lists the table offset of every flushed chunk, for tables that
	// need an index of their chunks (ids, fragments, export).
	starts []uint64
	err    error
}

func newMetaWriter(c blockCompressor) *metaWriter {
	return &metaWriter{comp: c, buf: make([]byte, 0, metaBlockSize)}
}

// pos returns the position of the next byte written.
func (m *metaWriter) pos() (block uint64, offset int) {
	return uint64(len(m.out)), len(m.buf)
}

// ref returns the position of the next byte as an inode reference.
func (m *metaWriter) ref() uint64 {
	b, o := m.pos()
	return b<<16 | uint64(o)
}

func (m *metaWriter) write(p []byte) {
	m.total += int64(len(p))
	for len(p) > 0 {
		n := min(metaBlockSize-len(m.buf), len(p))
		m.buf = append(m.buf, p[:n]...)
		p = p[n:]
		if len(m.buf) == metaBlockSize {
			m.flush()
		}
	}
}

func (m *metaWriter) flush() {
	if len(m.buf) == 0 || m.err != nil {
		m.buf = m.buf[:0]
		return
	}
	m.starts = append(m.starts, uint64(len(m.out)))
	c, err := m.comp.compress(m.buf)
	if err != nil {
		m.err = fmt.Errorf("compress metadata: %w", err)
		return
	}
	if len(c) < len(m.buf) {
		m.out = binary.LittleEndian.AppendUint16(m.out, uint16(len(c)))
		m.out = append(m.out, c...)
	} else {
		m.out = binary.LittleEndian.AppendUint16(m.out, uint16(len(m.buf))|metaUncompressed)
		m.out = append(m.out, m.buf...)
	}
	m.buf = m.buf[:0]
}

// finish flushes the last partial chunk and returns the table's bytes.
func (m *metaWriter) finish() ([]byte, error) {
	m.flush()
	return m.out, m.err
}
