package flash

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rfsbuild/rfs/infile"
)

// Open prepares writing image to target: it opens both (a block device
// exclusively, so the kernel refuses it while mounted or held), checks the
// size and plans the write. The caller has done the safety checks
// (Lookup, Check, Confirm); Open only refuses what would be a plain error.
func Open(image, target string, opts Options) (j *Job, err error) {
	if opts.Chunk <= 0 {
		opts.Chunk = DefaultChunk
	}
	if opts.Chunk%align != 0 {
		return nil, fmt.Errorf("chunk size %d is not a multiple of %d", opts.Chunk, align)
	}
	if opts.Progress == nil {
		opts.Progress = nopProgress{}
	}
	j = &Job{Image: image, Target: target, opts: opts, lbs: 512}
	job := j
	defer func() {
		if err != nil {
			job.Close()
		}
	}()
	if j.img, err = infile.Open("image", image); err != nil {
		return nil, err
	}
	ist, err := j.img.Stat()
	if err != nil {
		return nil, err
	}
	if !ist.Mode().IsRegular() {
		return nil, fmt.Errorf("image %s is not a regular file", image)
	}
	j.imgSt = ist
	imageSize := ist.Size()
	if imageSize == 0 {
		return nil, fmt.Errorf("image %s is empty", image)
	}
	var targetSize int64
	tst, err := os.Stat(target)
	switch {
	case err == nil && tst.Mode()&os.ModeDevice != 0 && tst.Mode()&os.ModeCharDevice == 0:
		if opts.ToFile {
			return nil, fmt.Errorf("%s is a block device: drop --to-file", target)
		}
		j.IsBlock = true
		flags := unix.O_WRONLY | unix.O_EXCL | unix.O_CLOEXEC
		if j.devBuf, err = os.OpenFile(target, flags, 0); err != nil {
			if errors.Is(err, unix.EBUSY) {
				return nil, fmt.Errorf("%s is busy (mounted, or held by another device or program): %w", target, err)
			}
			return nil, err
		}
		fd := int(j.devBuf.Fd())
		// Seeking to the end of a block device gives its size (BLKGETSIZE64).
		if targetSize, err = j.devBuf.Seek(0, io.SeekEnd); err != nil {
			return nil, fmt.Errorf("%s: size: %w", target, err)
		}
		if n, err := unix.IoctlGetInt(fd, unix.BLKSSZGET); err == nil && n > 0 {
			j.lbs = n
		}
	case err == nil && !tst.Mode().IsRegular() || err != nil && !os.IsNotExist(err):
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s is neither a block device nor a regular file", target)
	default:
		if !opts.ToFile {
			return nil, fmt.Errorf("%s: %w (add --to-file to write the image to a file)", target, ErrNotBlock)
		}
		if err == nil && os.SameFile(ist, tst) {
			return nil, fmt.Errorf("%s is the image itself", target)
		}
		if j.devBuf, err = os.OpenFile(target, os.O_WRONLY|os.O_CREATE|unix.O_CLOEXEC, 0o644); err != nil {
			return nil, err
		}
		// Start from an all-holes file of the image's size: what is not
		// written reads as zeros, like the image.
		if err := j.devBuf.Truncate(0); err != nil {
			return nil, err
		}
		if err := j.devBuf.Truncate(imageSize); err != nil {
			return nil, err
		}
		targetSize = imageSize
	}
	if targetSize < imageSize {
		return nil, fmt.Errorf("%s is smaller than the image: %s < %s", target, HumanSize(targetSize), HumanSize(imageSize))
	}
	if !opts.Buffered {
		// O_DIRECT: no page-cache copy, no dirty-page writeback storm;
		// some filesystems (tmpfs) refuse it: then write buffered.
		if f, err := os.OpenFile(target, unix.O_WRONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0); err == nil {
			j.dev, j.Direct = f, true
		}
	}
	if j.dev == nil {
		j.dev = j.devBuf
	}
	if j.Plan, err = MakePlan(j.img, imageSize, targetSize); err != nil {
		return nil, err
	}
	j.chunks = j.Plan.chunks(int64(opts.Chunk))
	return j, nil
}

// Close releases the job's files and buffers.
func (j *Job) Close() error {
	var first error
	for _, f := range []*os.File{j.img, j.dev, j.devBuf} {
		if f != nil {
			if err := f.Close(); err != nil && first == nil && !errors.Is(err, os.ErrClosed) {
				first = err
			}
		}
	}
	for _, b := range j.bufs {
		unix.Munmap(b)
	}
	j.bufs = nil
	return first
}

// buffers returns n page-aligned buffers of the chunk size (O_DIRECT needs
// aligned memory), allocated once per job.
func (j *Job) buffers(n int) ([][]byte, error) {
	for len(j.bufs) < n {
		b, err := unix.Mmap(-1, 0, j.opts.Chunk, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
		if err != nil {
			return nil, fmt.Errorf("allocate buffer: %w", err)
		}
		j.bufs = append(j.bufs, b)
	}
	return j.bufs[:n], nil
}

func (j *Job) aligned(off int64, n int) bool {
	return off%int64(j.lbs) == 0 && n%j.lbs == 0
}

// fill reads chunk c's content into buf.
func (j *Job) fill(c *chunk, buf []byte) error {
	if c.zero {
		clear(buf)
		return nil
	}
	if _, err := j.img.ReadAt(buf, c.off); err != nil {
		return fmt.Errorf("read image at %d: %w", c.off, err)
	}
	return nil
}

func (j *Job) writeAt(buf []byte, off int64) error {
	f := j.dev
	if !j.aligned(off, len(buf)) {
		f = j.devBuf
	}
	if _, err := f.WriteAt(buf, off); err != nil {
		return fmt.Errorf("write %s at %d: %w", j.Target, off, err)
	}
	return nil
}

func (j *Job) sync() error {
	for _, f := range []*os.File{j.dev, j.devBuf} {
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return fmt.Errorf("flush %s: %w", j.Target, err)
		}
	}
	return nil
}

// Write writes the plan. The first MiB (the partition table) is zeroed
// first and written last, after everything else is flushed: a write that
// is interrupted leaves a disk without a partition table, which no
// computer will try to boot or mount, never one that looks complete.
func (j *Job) Write(ctx context.Context) (err error) {
	start := time.Now()
	defer func() { j.WriteTime = time.Since(start) }()
	total := j.Plan.Bytes()
	j.opts.Progress.Start("write", total)
	defer func() { j.opts.Progress.Done(err == nil) }()
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w after writing %s of %s (%s has no partition table now; flash it again): %w",
				ErrIncomplete, HumanSize(j.Written), HumanSize(total), j.Target, err)
		}
	}()
	if len(j.chunks) == 0 || j.chunks[0].off != 0 {
		return errors.New("internal error: the plan does not start at 0")
	}
	// Ask the kernel to read the image's data ahead, while the table is
	// zeroed and the first chunks are written.
	for _, e := range j.Plan.Extents {
		if !e.Zero {
			unix.Fadvise(int(j.img.Fd()), e.Off, e.Len, unix.FADV_WILLNEED)
		}
	}
	bufs, err := j.buffers(writeBuffers)
	if err != nil {
		return err
	}
	head := &j.chunks[0]
	clear(bufs[0][:head.n])
	if err := j.writeAt(bufs[0][:head.n], 0); err != nil {
		return err
	}
	if err := j.sync(); err != nil {
		return err
	}
	if err := j.pipeline(ctx, j.chunks[1:], bufs); err != nil {
		return err
	}
	if err := j.sync(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b := bufs[0][:head.n]
	if err := j.fill(head, b); err != nil {
		return err
	}
	if err := j.writeAt(b, 0); err != nil {
		return err
	}
	j.Written += int64(head.n)
	j.opts.Progress.Add(int64(head.n))
	return j.sync()
}

// Writes in flight and buffers: two concurrent O_DIRECT writes keep the
// device's queue from running dry while the next chunk is read; 4 writers
// with 8 buffers measured no better on a loop device (bench/flash.sh).
const (
	writers      = 2
	writeBuffers = 4
)

// pipeline reads and writes chunks: one goroutine reads the image, several
// write, so reading overlaps writing.
func (j *Job) pipeline(ctx context.Context, chunks []chunk, bufs [][]byte) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	free := make(chan []byte, len(bufs))
	for _, b := range bufs {
		free <- b
	}
	type item struct {
		c   *chunk
		buf []byte
	}
	work := make(chan item, len(bufs))
	go func() {
		defer close(work)
		for i := range chunks {
			c := &chunks[i]
			var b []byte
			select {
			case b = <-free:
			case <-ctx.Done():
				return
			}
			b = b[:c.n]
			if err := j.fill(c, b); err != nil {
				cancel(err)
				return
			}
			select {
			case work <- item{c, b}:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				if ctx.Err() != nil {
					continue // drain
				}
				if err := j.writeAt(it.buf, it.c.off); err != nil {
					cancel(err)
					continue
				}
				mu.Lock()
				j.Written += int64(it.c.n)
				mu.Unlock()
				j.opts.Progress.Add(int64(it.c.n))
				free <- it.buf[:cap(it.buf)]
			}
		}()
	}
	wg.Wait()
	return context.Cause(ctx)
}

// Verify reads every written range back from the target, bypassing the
// page cache (O_DIRECT; or the cache dropped with BLKFLSBUF and
// POSIX_FADV_DONTNEED where O_DIRECT is refused), and compares it byte for
// byte with the image (read again: usually still in the page cache from the
// write) or, beyond the image, with zeros. On a mismatch it returns a
// *VerifyError with the first differing byte.
func (j *Job) Verify(ctx context.Context) (err error) {
	return j.verify(ctx, nil)
}

// verify reads back through r when not nil (tests), else from the target.
func (j *Job) verify(ctx context.Context, r io.ReaderAt) (err error) {
	start := time.Now()
	defer func() { j.VerTime = time.Since(start) }()
	j.opts.Progress.Start("verify", j.Plan.Bytes())
	defer func() { j.opts.Progress.Done(err == nil) }()

	var direct, buffered *os.File
	if r == nil {
		if buffered, err = os.OpenFile(j.Target, os.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
			return err
		}
		defer buffered.Close()
		if j.IsBlock {
			unix.IoctlSetInt(int(buffered.Fd()), unix.BLKFLSBUF, 0)
		}
		unix.Fadvise(int(buffered.Fd()), 0, 0, unix.FADV_DONTNEED)
		if f, err := os.OpenFile(j.Target, os.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0); err == nil {
			direct = f
			defer f.Close()
		}
	}
	readAt := func(b []byte, off int64) error {
		var err error
		switch {
		case r != nil:
			_, err = r.ReadAt(b, off)
		case direct != nil && j.aligned(off, len(b)):
			_, err = direct.ReadAt(b, off)
		default:
			_, err = buffered.ReadAt(b, off)
		}
		if err != nil {
			return fmt.Errorf("read back %s at %d: %w", j.Target, off, err)
		}
		return nil
	}
	bufs, err := j.buffers(4)
	if err != nil {
		return err
	}
	// One goroutine reads ahead while this one compares, in order, so the
	// first mismatch found is the lowest offset.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type item struct {
		c   *chunk
		buf []byte
		err error
	}
	free := make(chan []byte, len(bufs)-1)
	for _, b := range bufs[1:] {
		free <- b
	}
	read := make(chan item, len(bufs)-1)
	go func() {
		defer close(read)
		for i := range j.chunks {
			c := &j.chunks[i]
			var b []byte
			select {
			case b = <-free:
			case <-ctx.Done():
				return
			}
			b = b[:c.n]
			err := readAt(b, c.off)
			select {
			case read <- item{c, b, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for it := range read {
		if it.err != nil {
			return it.err
		}
		if err := j.compare(it.c, it.buf, bufs[0][:it.c.n]); err != nil {
			return err
		}
		j.opts.Progress.Add(int64(it.c.n))
		free <- it.buf[:cap(it.buf)]
	}
	return ctx.Err()
}

// compare compares got, chunk c read back from the target, with the
// image's bytes, read into want.
func (j *Job) compare(c *chunk, got, want []byte) error {
	if err := j.fill(c, want); err != nil {
		return err
	}
	if bytes.Equal(got, want) {
		return nil
	}
	i := 0
	for got[i] == want[i] {
		i++
	}
	st, err := j.img.Stat()
	changed := err != nil || st.Size() != j.imgSt.Size() || !st.ModTime().Equal(j.imgSt.ModTime())
	return &VerifyError{Target: j.Target, Offset: c.off + int64(i), Got: got[i], Want: want[i], ImageChanged: changed}
}

// Reread asks the kernel to re-read the target's partition table
// (BLKRRPART), so the new partitions appear without replugging.
func (j *Job) Reread() error {
	if !j.IsBlock {
		return nil
	}
	if err := unix.IoctlSetInt(int(j.devBuf.Fd()), unix.BLKRRPART, 0); err != nil {
		return fmt.Errorf("re-read partition table of %s: %w", j.Target, err)
	}
	return nil
}
