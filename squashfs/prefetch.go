package squashfs

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync"
)

// Read-ahead limits: files up to prefetchMax bytes are read (and hashed)
// whole by the reader goroutines, at most prefetchBudget bytes and
// prefetchWindow files ahead of the goroutine that places them; larger
// files are hashed ahead if needed and streamed when their turn comes.
const (
	prefetchMax    = 8 << 20
	prefetchBudget = 48 << 20
	prefetchWindow = 1024
)

// fileRead is what a reader goroutine learnt about one file.
type fileRead struct {
	blocks [][]byte // full blocks (from dataWriter.getBuf)
	tail   []byte   // the last partial block, in a pooled buffer
	tbuf   *[]byte  // tail's pool entry
	sum    [sha256.Size]byte
	hashed bool  // sum is set
	stream bool  // too large to hold: read it when placing it
	cost   int64 // bytes of budget held
	err    error
}

// prefetcher reads files on several goroutines, in any order, and hands
// the results back in file order, so the image does not depend on
// scheduling. Memory is bounded by prefetchBudget (plus one file larger
// than the budget) and prefetchWindow.
type prefetcher struct {
	d      *dataWriter
	files  []*inode
	hash   func(*fileData) bool
	slots  []chan *fileRead // result of file i in slots[i%prefetchWindow]
	window chan struct{}    // one token per file handed out, not yet consumed
	todo   chan int
	stop   chan struct{}
	wg     sync.WaitGroup

	mu      sync.Mutex
	cond    *sync.Cond
	avail   int64 // budget left
	stopped bool

	tails [21]sync.Pool // tail buffers of 1<<i bytes
}

func newPrefetcher(d *dataWriter, files []*inode, hash func(*fileData) bool, readers int) *prefetcher {
	w := min(prefetchWindow, max(len(files), 1))
	p := &prefetcher{
		d:      d,
		files:  files,
		hash:   hash,
		slots:  make([]chan *fileRead, w),
		window: make(chan struct{}, w),
		todo:   make(chan int, w),
		stop:   make(chan struct{}),
		avail:  prefetchBudget,
	}
	p.cond = sync.NewCond(&p.mu)
	for i := range p.slots {
		p.slots[i] = make(chan *fileRead, 1)
	}
	p.wg.Add(1 + readers)
	go p.dispatch()
	for range readers {
		go p.reader()
	}
	return p
}

// cost is how much of the budget reading f ahead takes.
func (p *prefetcher) cost(f *fileData) int64 {
	if f.size > prefetchMax {
		return 0
	}
	return min(f.size, prefetchBudget)
}

// dispatch hands out file indices in order, as budget and window allow.
// Taking budget in file order means the oldest file always gets it.
func (p *prefetcher) dispatch() {
	defer p.wg.Done()
	defer close(p.todo)
	for i, ino := range p.files {
		if !p.acquire(p.cost(ino.file)) {
			return
		}
		select {
		case p.window <- struct{}{}:
		case <-p.stop:
			return
		}
		select {
		case p.todo <- i:
		case <-p.stop:
			return
		}
	}
}

func (p *prefetcher) acquire(n int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.avail < n && !p.stopped {
		p.cond.Wait()
	}
	p.avail -= n
	return !p.stopped
}

func (p *prefetcher) reader() {
	defer p.wg.Done()
	for i := range p.todo {
		var r *fileRead
		select {
		case <-p.stop:
			r = &fileRead{err: errAborted}
		default:
			r = p.read(p.files[i])
		}
		p.slots[i%len(p.slots)] <- r // never blocks: see window
	}
}

// next returns the result for file i; files must be asked for in order.
func (p *prefetcher) next(i int) *fileRead {
	r := <-p.slots[i%len(p.slots)]
	<-p.window
	return r
}

// done gives back r's budget and its tail buffer; its blocks must have been
// handed to the data writer or recycled.
func (p *prefetcher) done(r *fileRead) {
	if r.tbuf != nil {
		p.putTail(r.tbuf)
		r.tbuf, r.tail = nil, nil
	}
	if r.cost > 0 {
		p.mu.Lock()
		p.avail += r.cost
		p.mu.Unlock()
		p.cond.Signal()
	}
}

// close stops the goroutines and waits for them.
func (p *prefetcher) close() {
	close(p.stop)
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	p.cond.Broadcast()
	p.wg.Wait()
}

func (p *prefetcher) getTail(n int) *[]byte {
	c := bits.Len(uint(n - 1))
	if b, ok := p.tails[c].Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 1<<c)
	return &b
}

func (p *prefetcher) putTail(b *[]byte) {
	p.tails[bits.Len(uint(cap(*b)-1))].Put(b)
}

// read reads (or for a large file, only hashes) one file.
func (p *prefetcher) read(ino *inode) *fileRead {
	f := ino.file
	r := &fileRead{cost: p.cost(f)}
	src, err := openSource(ino)
	if err != nil {
		r.err = err
		return r
	}
	defer src.Close()
	if f.size > prefetchMax {
		r.stream = true
		if p.hash(f) {
			h := sha256.New()
			if _, err := io.Copy(h, ctxReader{p.d.ctx, src}); err != nil {
				r.err = fmt.Errorf("read content: %w", err)
			}
			h.Sum(r.sum[:0])
			r.hashed = true
		}
		return r
	}
	r.err = p.readAll(r, f, src)
	if r.err == nil && p.hash(f) {
		r.hashed = true
		if len(r.blocks) == 0 {
			r.sum = sha256.Sum256(r.tail)
		} else {
			h := sha256.New()
			for _, b := range r.blocks {
				h.Write(b)
			}
			h.Write(r.tail)
			h.Sum(r.sum[:0])
		}
	}
	return r
}

func (p *prefetcher) readAll(r *fileRead, f *fileData, src source) error {
	bs := int64(p.d.blockSize)
	for range f.size / bs {
		b := p.d.getBuf()
		r.blocks = append(r.blocks, b)
		if err := readFull(src, b); err != nil {
			return err
		}
	}
	tail := int(f.size % bs)
	if tail == 0 {
		var one [1]byte
		return checkEOF(src, one[:])
	}
	// Ask for one byte more than the tail: a regular file answers with
	// the tail and nothing more in a single read.
	r.tbuf = p.getTail(tail + 1)
	buf := (*r.tbuf)[:tail+1]
	n, err := src.Read(buf)
	if n < tail && err == nil {
		var m int
		m, err = io.ReadAtLeast(src, buf[n:], tail-n)
		n += m
	}
	switch {
	case n > tail:
		return fmt.Errorf("content is longer than its Size() of %d bytes", f.size)
	case n < tail:
		return shortRead(err)
	}
	if err != nil && err != io.EOF {
		return fmt.Errorf("read content: %w", err)
	}
	r.tail = buf[:tail]
	if err == nil && !src.shortMeansEOF() {
		return checkEOF(src, buf[tail:])
	}
	return nil
}

func readFull(src io.Reader, b []byte) error {
	if _, err := io.ReadFull(src, b); err != nil {
		return shortRead(err)
	}
	return nil
}

// checkEOF checks that src has nothing more to read, using one as buffer.
func checkEOF(src io.Reader, one []byte) error {
	n, err := io.ReadFull(src, one[:1])
	switch {
	case n > 0:
		return errors.New("content is longer than its Size()")
	case err != io.EOF:
		return fmt.Errorf("read content: %w", err)
	}
	return nil
}

// release recycles the buffers of a file that is not written (a duplicate
// or after an error).
func (p *prefetcher) release(r *fileRead) {
	for _, b := range r.blocks {
		p.d.putBuf(b)
	}
	r.blocks = nil
	p.done(r)
}

// source is an open file content.
type source interface {
	io.ReadCloser
	// shortMeansEOF says a read that returns less than asked for (and no
	// error) has reached the end of the content (true of regular files).
	shortMeansEOF() bool
}

type readerSource struct{ io.ReadCloser }

func (readerSource) shortMeansEOF() bool { return false }

func openSource(ino *inode) (source, error) {
	if s, ok, err := openHost(ino); ok {
		if err != nil {
			return nil, fmt.Errorf("open content: %w", err)
		}
		return s, nil
	}
	rc, err := ino.node.Content.Open()
	if err != nil {
		return nil, fmt.Errorf("open content: %w", err)
	}
	if rc == nil {
		return nil, errors.New("open content: Open returned no reader")
	}
	return readerSource{rc}, nil
}

// ctxReader stops reading once ctx is done: hashing a large file ahead
// must not hold up a cancelled write.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
