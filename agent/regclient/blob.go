package regclient

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rfsbuild/rfs/release"
)

const (
	// syncEvery bounds what a power cut loses of a partial download.
	syncEvery = 32 << 20
	// progressEvery is how often, in bytes, progress is called.
	progressEvery = 1 << 20
	copyBuf       = 64 << 10
)

// errTooLong: the server sent more than the blob's size.
var errTooLong = errors.New("more bytes than the blob's size")

// FetchBlob downloads blob digest (size bytes) of ref's repository into
// dst, verified: the bytes go to dst+".partial", which is renamed to dst
// (after fsync of the file and its directory) only when size bytes
// hashing to digest are there. A dst already holding them is kept.
//
// It resumes: a partial file left by a dropped connection, a killed
// process or a reboot is hashed and continued with a Range request (a
// server that ignores Range, or a partial longer than the blob, starts
// it over; a resumed download that does not verify is fetched once more
// from the start). Transient failures are retried (Options.Retries);
// when it gives up, the partial file stays for the next call, except
// after a digest mismatch. progress, if set, is called with the bytes
// done and size, every MiB or so and at the end.
func (c *Client) FetchBlob(ctx context.Context, ref, digest string, size int64, dst string, progress func(done, total int64)) error {
	r, err := ParseRef(ref)
	if err != nil {
		return err
	}
	if !release.ValidDigest(digest) || size < 0 {
		return fmt.Errorf("blob %q (%d bytes): want a sha256:HEX digest and a size", digest, size)
	}
	if progress == nil {
		progress = func(int64, int64) {}
	}
	if haveFile(dst, digest, size) {
		progress(size, size)
		return nil
	}
	if err := c.fetchBlob(ctx, r, digest, size, dst, progress); err != nil {
		return fmt.Errorf("%s: blob %s: %w", r, digest, err)
	}
	return nil
}

func (c *Client) fetchBlob(ctx context.Context, r Ref, digest string, size int64, dst string, progress func(done, total int64)) error {
	p, err := openPartial(dst+".partial", digest, size)
	if err != nil {
		return err
	}
	defer p.close()
	resumed := p.n > 0
	for {
		progress(p.n, size)
		err := c.retry(ctx, func() int64 { return p.n }, func() error { return c.download(ctx, r, p, progress) })
		if err == nil {
			err = p.finish(dst)
		}
		if errors.Is(err, ErrDigest) && resumed {
			// The kept prefix was not the blob's: start over, once.
			resumed = false
			if err = p.reset(); err == nil {
				continue
			}
		}
		if errors.Is(err, ErrDigest) || errors.Is(err, errTooLong) {
			p.remove()
		}
		return err
	}
}

// download GETs what p lacks (all of it, or a Range from p.n) and
// appends it to p.
func (c *Client) download(ctx context.Context, r Ref, p *partial, progress func(done, total int64)) error {
	if p.n == p.size {
		return nil
	}
	hdr := http.Header{}
	if p.n > 0 {
		// A closed range: some registries (go-containerregistry's) take
		// no other form.
		hdr.Set("Range", fmt.Sprintf("bytes=%d-%d", p.n, p.size-1))
	}
	resp, err := c.get(ctx, r, r.url("blobs", p.digest), hdr)
	if err != nil {
		return err
	}
	switch {
	case resp.StatusCode == http.StatusOK && p.n > 0:
		// Range ignored: the whole blob comes; take it from the start.
		if err := p.reset(); err != nil {
			resp.Body.Close()
			return err
		}
	case resp.StatusCode == http.StatusPartialContent && p.n > 0:
		if err := checkContentRange(resp.Header.Get("Content-Range"), p.n, p.size); err != nil {
			resp.Body.Close()
			return resetAfter(p, err)
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		drain(resp)
		return resetAfter(p, fmt.Errorf("the server cannot resume at byte %d", p.n))
	case resp.StatusCode != http.StatusOK:
		return statusError(resp)
	}
	defer resp.Body.Close()
	if want := p.size - p.n; resp.ContentLength >= 0 && resp.ContentLength != want {
		return fmt.Errorf("%w: the server announces %d bytes, want %d", ErrDigest, resp.ContentLength, want)
	}
	return p.fill(ctx, resp.Body, progress)
}

// resetAfter starts p over and makes err transient: the next attempt
// downloads from byte 0.
func resetAfter(p *partial, err error) error {
	if rerr := p.reset(); rerr != nil {
		return rerr
	}
	return transient(err)
}

// checkContentRange checks "bytes START-END/TOTAL" against a request
// from start of a blob of size bytes.
func checkContentRange(cr string, start, size int64) error {
	spec, ok := strings.CutPrefix(cr, "bytes ")
	rng, total, ok2 := strings.Cut(spec, "/")
	from, to, ok3 := strings.Cut(rng, "-")
	a, err1 := strconv.ParseInt(from, 10, 64)
	b, err2 := strconv.ParseInt(to, 10, 64)
	if !ok || !ok2 || !ok3 || err1 != nil || err2 != nil {
		return fmt.Errorf("Content-Range %q: not bytes START-END/TOTAL", clean(cr))
	}
	if a != start || a < 0 || a > b || b != size-1 || (total != "*" && total != strconv.FormatInt(size, 10)) {
		return fmt.Errorf("Content-Range %q, asked for bytes %d-%d/%d", clean(cr), start, size-1, size)
	}
	return nil
}

// partial is a download in progress: the file, the hash of its n bytes.
type partial struct {
	path, digest string
	size, n      int64
	f            *os.File
	h            hash.Hash
	unsynced     int64
}

// openPartial opens (or makes) path and hashes what it holds; a file
// longer than size is emptied.
func openPartial(path, digest string, size int64) (*partial, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	p := &partial{path: path, digest: digest, size: size, f: f, h: sha256.New()}
	n, err := io.Copy(p.h, io.LimitReader(f, size+1))
	if err == nil && n > size {
		err = p.reset()
	} else if err == nil {
		p.n = n
		_, err = f.Seek(n, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

func (p *partial) reset() error {
	if err := p.f.Truncate(0); err != nil {
		return err
	}
	if _, err := p.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	p.h.Reset()
	p.n = 0
	return nil
}

// fill appends body to the file until size bytes are there; a body
// ending short is a transient error, one going past size a permanent one.
// It stops when ctx ends (bytes already buffered are not waited for).
func (p *partial) fill(ctx context.Context, body io.Reader, progress func(done, total int64)) error {
	buf := make([]byte, copyBuf)
	last := p.n
	for p.n < p.size {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := body.Read(buf[:min(int64(len(buf)), p.size-p.n+1)])
		if p.n+int64(n) > p.size {
			return fmt.Errorf("%w (%d)", errTooLong, p.size)
		}
		if werr := p.write(buf[:n]); werr != nil {
			return werr
		}
		if p.n-last >= progressEvery {
			progress(p.n, p.size)
			last = p.n
		}
		if err == io.EOF && p.n < p.size {
			return transient(fmt.Errorf("the server sent %d of %d bytes: %w", p.n, p.size, io.ErrUnexpectedEOF))
		}
		if err != nil && err != io.EOF {
			return err
		}
	}
	progress(p.n, p.size)
	return nil
}

func (p *partial) write(b []byte) error {
	if _, err := p.f.Write(b); err != nil {
		return err
	}
	p.h.Write(b)
	p.n += int64(len(b))
	if p.unsynced += int64(len(b)); p.unsynced >= syncEvery {
		p.unsynced = 0
		return p.f.Sync()
	}
	return nil
}

// finish checks the file and gives it its name, durably.
func (p *partial) finish(dst string) error {
	if got := "sha256:" + hex.EncodeToString(p.h.Sum(nil)); p.n != p.size || got != p.digest {
		return fmt.Errorf("%w: %d bytes hashing to %s, want %d bytes", ErrDigest, p.n, got, p.size)
	}
	if err := p.f.Sync(); err != nil {
		return err
	}
	if err := os.Rename(p.path, dst); err != nil {
		return err
	}
	return syncDir(filepath.Dir(dst))
}

// close syncs what is there (for a resume after a power cut) and closes.
func (p *partial) close() {
	p.f.Sync()
	p.f.Close()
}

func (p *partial) remove() { os.Remove(p.path) }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// haveFile reports whether path holds size bytes hashing to digest.
func haveFile(path, digest string, size int64) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() || st.Size() != size {
		return false
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false
	}
	return "sha256:"+hex.EncodeToString(h.Sum(nil)) == digest
}
