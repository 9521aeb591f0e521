package squashfs

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// fileData is where a regular file's content went: full blocks from start
// on (sizes lists their size words; 0 = sparse, all zeros) and the tail in
// a fragment block.
type fileData struct {
	size    int64
	start   uint64
	sizes   []uint32
	sparse  uint64 // bytes of sparse blocks
	frag    uint32 // fragment index, or invalidFrag
	fragOff uint32 // offset of the tail inside the fragment block
	dup     *fileData
	final   atomic.Bool // all of the above is set (see finals)
}

type fragEntry struct {
	start uint64
	size  uint32 // size word (dataUncompressed set when stored raw)
}

type jobKind uint8

const (
	jobFileStart jobKind = iota // record where a file's blocks begin
	jobBlock                    // one full block of a file
	jobFrag                     // a fragment block
	jobFileDone                 // all of a file's blocks are placed
)

// job is one unit of the data pipeline. Jobs are queued in output order;
// workers compress them in any order and the single writer goroutine
// places them in queue order, so the bytes never depend on scheduling.
type job struct {
	kind   jobKind
	f      *fileData
	idx    int
	data   []byte // uncompressed input; nil for a sparse block
	out    []byte // compressed output, or nil to store data raw
	err    error
	done   chan struct{} // nil when there is nothing to compress
	sparse bool
}

// dataWriter streams file contents into the data area: full blocks are
// compressed in parallel, tails are packed into fragment blocks.
type dataWriter struct {
	ctx       context.Context // checked before each block is queued
	w         io.WriterAt
	blockSize int
	zero      []byte

	work  chan *job
	order chan *job
	free  chan []byte // recycled block buffers
	wg    sync.WaitGroup
	done  chan struct{}

	failed atomic.Bool
	err    error // set by the writer goroutine, read after done
	finals finals

	// owned by the writer goroutine until done
	off   int64
	frags []fragEntry

	// owned by the submitting goroutine
	fragBuf []byte
	nfrag   uint32
}

func newDataWriter(ctx context.Context, w io.WriterAt, off int64, blockSize, workers int, c codec, cp compParams) (*dataWriter, error) {
	d := &dataWriter{
		ctx:       ctx,
		w:         w,
		blockSize: blockSize,
		zero:      make([]byte, blockSize),
		work:      make(chan *job, 2*workers),
		order:     make(chan *job, 16*workers+16),
		free:      make(chan []byte, 8*workers+8),
		done:      make(chan struct{}),
		off:       off,
	}
	d.finals.cond.L = &d.finals.mu
	comps := make([]blockCompressor, workers)
	for i := range comps {
		bc, err := c.newCompressor(cp)
		if err != nil {
			return nil, err
		}
		comps[i] = bc
	}
	for _, bc := range comps {
		d.wg.Add(1)
		go d.worker(bc)
	}
	go d.writer()
	return d, nil
}

func (d *dataWriter) getBuf() []byte {
	select {
	case b := <-d.free:
		return b[:d.blockSize]
	default:
		return make([]byte, d.blockSize)
	}
}

func (d *dataWriter) putBuf(b []byte) {
	if cap(b) < d.blockSize {
		return
	}
	select {
	case d.free <- b[:0]:
	default:
	}
}

func (d *dataWriter) worker(c blockCompressor) {
	defer d.wg.Done()
	for j := range d.work {
		if !d.failed.Load() {
			out, err := c.compress(j.data)
			switch {
			case err != nil:
				j.err = err
			case len(out) < len(j.data):
				j.out = append(d.getBuf()[:0], out...)
			}
		}
		close(j.done)
	}
}

func (d *dataWriter) writer() {
	defer close(d.done)
	for j := range d.order {
		if j.done != nil {
			<-j.done
		}
		if d.err == nil {
			if err := d.place(j); err != nil {
				d.err = err
				d.failed.Store(true)
			}
		}
		if j.data != nil {
			d.putBuf(j.data)
		}
		if j.out != nil {
			d.putBuf(j.out)
		}
	}
}

// place writes one job at the current offset.
func (d *dataWriter) place(j *job) error {
	if j.err != nil {
		return fmt.Errorf("compress: %w", j.err)
	}
	switch j.kind {
	case jobFileStart:
		j.f.start = uint64(d.off)
		return nil
	case jobFileDone:
		d.finals.mark(j.f)
		return nil
	}
	if j.sparse {
		j.f.sizes[j.idx] = 0
		return nil
	}
	p, word := j.out, uint32(len(j.out))
	if p == nil {
		p, word = j.data, uint32(len(j.data))|dataUncompressed
	}
	if _, err := d.w.WriteAt(p, d.off); err != nil {
		return fmt.Errorf("write data at %d: %w", d.off, err)
	}
	start := uint64(d.off)
	d.off += int64(len(p))
	switch j.kind {
	case jobBlock:
		j.f.sizes[j.idx] = word
	case jobFrag:
		d.frags = append(d.frags, fragEntry{start: start, size: word})
	}
	return nil
}

func (d *dataWriter) submit(j *job) error {
	if d.failed.Load() {
		return errAborted
	}
	if err := d.ctx.Err(); err != nil {
		return err
	}
	if j.done != nil {
		d.work <- j
	}
	d.order <- j
	return nil
}

var errAborted = errors.New("aborted")

// begin records a file about to be added: it sizes its block list and
// queues the record of where its blocks start.
func (d *dataWriter) begin(f *fileData) error {
	f.sizes = make([]uint32, f.size/int64(d.blockSize))
	f.frag = invalidFrag
	// Files without full blocks need no start (it stays 0): not queueing
	// a job for them keeps the queue short, so that many small files do
	// not stall the reader behind one fragment being compressed.
	if len(f.sizes) > 0 {
		return d.submit(&job{kind: jobFileStart, f: f})
	}
	return nil
}

// addBlock queues full block i of f; buf (from getBuf) now belongs to the
// pipeline.
func (d *dataWriter) addBlock(f *fileData, i int, buf []byte) error {
	j := &job{kind: jobBlock, f: f, idx: i}
	if bytes.Equal(buf, d.zero) {
		j.sparse = true
		f.sparse += uint64(d.blockSize)
		d.putBuf(buf)
	} else {
		j.data = buf
		j.done = make(chan struct{})
	}
	return d.submit(j)
}

// tailSpace returns room for a tail of n bytes at the end of the current
// fragment block (flushing it first if it is too full).
func (d *dataWriter) tailSpace(f *fileData, n int) ([]byte, error) {
	if len(d.fragBuf)+n > d.blockSize {
		if err := d.flushFrag(); err != nil {
			return nil, err
		}
	}
	if d.fragBuf == nil {
		d.fragBuf = d.getBuf()[:0]
	}
	off := len(d.fragBuf)
	d.fragBuf = d.fragBuf[:off+n]
	f.frag, f.fragOff = d.nfrag, uint32(off)
	return d.fragBuf[off:], nil
}

// addTail packs the tail of f into the current fragment block.
func (d *dataWriter) addTail(f *fileData, tail []byte) error {
	p, err := d.tailSpace(f, len(tail))
	if err != nil {
		return err
	}
	copy(p, tail)
	return nil
}

// end marks f final once what was queued for it is placed.
func (d *dataWriter) end(f *fileData) error {
	if len(f.sizes) > 0 {
		return d.submit(&job{kind: jobFileDone, f: f})
	}
	d.finals.mark(f)
	return nil
}

// finals lets the inode table be written while file data still is: the
// goroutine writing inodes waits for each file's record to be final. A
// file is final when its last queued job is placed, or, without full
// blocks, once its tail is packed.
type finals struct {
	mu      sync.Mutex
	cond    sync.Cond
	waiting atomic.Bool
	aborted atomic.Bool
}

func (n *finals) mark(f *fileData) {
	f.final.Store(true)
	if n.waiting.Load() {
		n.mu.Lock()
		n.cond.Broadcast()
		n.mu.Unlock()
	}
}

// wait waits until f is final (one waiting goroutine at a time), or the
// data is aborted.
func (n *finals) wait(f *fileData) error {
	if f.final.Load() {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.waiting.Store(true)
	for !f.final.Load() && !n.aborted.Load() {
		n.cond.Wait()
	}
	n.waiting.Store(false)
	if !f.final.Load() {
		return errAborted
	}
	return nil
}

// abort wakes the waiter for good: no more files will be final.
func (n *finals) abort() {
	n.aborted.Store(true)
	n.mu.Lock()
	n.cond.Broadcast()
	n.mu.Unlock()
}

// addFile streams a file's content r (exactly f.size bytes) into the image.
func (d *dataWriter) addFile(f *fileData, r io.Reader) error {
	if err := d.begin(f); err != nil {
		return err
	}
	for i := range f.sizes {
		buf := d.getBuf()
		if _, err := io.ReadFull(r, buf); err != nil {
			return shortRead(err)
		}
		if err := d.addBlock(f, i, buf); err != nil {
			return err
		}
	}
	if tail := int(f.size % int64(d.blockSize)); tail > 0 {
		p, err := d.tailSpace(f, tail)
		if err != nil {
			return err
		}
		if _, err := io.ReadFull(r, p); err != nil {
			d.fragBuf = d.fragBuf[:len(d.fragBuf)-tail]
			f.frag, f.fragOff = invalidFrag, 0
			return shortRead(err)
		}
	}
	var one [1]byte
	if n, err := io.ReadFull(r, one[:]); n > 0 {
		return fmt.Errorf("content is longer than its Size() of %d bytes", f.size)
	} else if err != io.EOF {
		return fmt.Errorf("read content: %w", err)
	}
	return nil
}

func shortRead(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errors.New("content is shorter than its Size()")
	}
	return fmt.Errorf("read content: %w", err)
}

func (d *dataWriter) flushFrag() error {
	if len(d.fragBuf) == 0 {
		return nil
	}
	j := &job{kind: jobFrag, data: d.fragBuf, done: make(chan struct{})}
	d.fragBuf = nil
	d.nfrag++
	return d.submit(j)
}

// close flushes the last fragment, waits for the pipeline to drain and
// returns the offset after the data area.
func (d *dataWriter) close() (int64, error) {
	ferr := d.flushFrag()
	close(d.work)
	close(d.order)
	d.wg.Wait()
	<-d.done
	if d.err != nil {
		return 0, d.err
	}
	if ferr != nil {
		return 0, ferr
	}
	return d.off, nil
}

// abort stops the pipeline after an error on the submitting side.
func (d *dataWriter) abort() {
	d.failed.Store(true)
	close(d.work)
	close(d.order)
	d.wg.Wait()
	<-d.done
}

// fragTable encodes the fragment table entries.
func (d *dataWriter) fragTable() []byte {
	b := make([]byte, 0, 16*len(d.frags))
	for _, f := range d.frags {
		b = binary.LittleEndian.AppendUint64(b, f.start)
		b = binary.LittleEndian.AppendUint32(b, f.size)
		b = binary.LittleEndian.AppendUint32(b, 0)
	}
	return b
}
