package regclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/rfsbuild/rfs/release"
)

// fetchAll resolves s.ref, verifies it and fetches every part into dir.
func fetchAll(t *testing.T, c *Client, s *synthetic, dir string) error {
	t.Helper()
	ctx := context.Background()
	b, err := c.Resolve(ctx, s.ref)
	if err != nil {
		return err
	}
	if err := release.Verify(b, s.pub, "qemu-arm64", "arm64", "6", false); err != nil {
		return err
	}
	for _, p := range b.Config.Parts {
		if err := c.FetchBlob(ctx, s.ref, p.Digest, p.Size, filepath.Join(dir, p.Name), nil); err != nil {
			return err
		}
	}
	return nil
}

func checkFiles(t *testing.T, s *synthetic, dir string) {
	t.Helper()
	for n, want := range s.blobs {
		got, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("part %s: %d bytes, %v; want the %d pushed", n, len(got), err, len(want))
		}
		if _, err := os.Stat(filepath.Join(dir, n+".partial")); err == nil {
			t.Errorf("part %s: .partial left behind", n)
		}
	}
}

func TestResolveAndFetch(t *testing.T) {
	tr := startRegistry(t)
	s := pushSynthetic(t, tr, "rfs/dev:v7", 3<<20)
	dir := t.TempDir()
	c := testClient(Options{})
	if err := fetchAll(t, c, s, dir); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, s, dir)
	// Parts already there are not downloaded again.
	tr.setHook(nil)
	if err := fetchAll(t, c, s, dir); err != nil {
		t.Fatal(err)
	}
	if n := len(tr.requests("blobs")); n != 1 { // the config only
		t.Errorf("second fetch made %d blob requests, want 1 (the config)", n)
	}
}

// The connection drops after some bytes: the next request asks for the
// rest with a Range, and the result verifies.
func TestResumeAfterDrop(t *testing.T) {
	tr := startRegistry(t)
	s := pushSynthetic(t, tr, "rfs/dev:v7", 3<<20)
	root := s.config.Parts[1]
	const cut = 1<<20 + 123
	var drops atomic.Int32
	tr.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if isBlob(r, root.Digest) && drops.Add(1) == 1 {
			tr.reg.ServeHTTP(&cutWriter{ResponseWriter: w, left: cut}, r)
			return true
		}
		return false
	})
	dir := t.TempDir()
	var last int64
	c := testClient(Options{})
	err := c.FetchBlob(context.Background(), s.ref, root.Digest, root.Size, filepath.Join(dir, "root"),
		func(done, total int64) { last = done })
	if err != nil {
		t.Fatal(err)
	}
	reqs := tr.requests("blobs")
	if len(reqs) != 2 {
		t.Fatalf("%d blob requests, want 2", len(reqs))
	}
	var from, to int64
	if _, err := fmt.Sscanf(reqs[1].Header.Get("Range"), "bytes=%d-%d", &from, &to); err != nil || from == 0 || from > cut || to != root.Size-1 {
		t.Errorf("second request's Range %q, want bytes=N-%d with 0 < N <= %d", reqs[1].Header.Get("Range"), root.Size-1, cut)
	}
	if last != root.Size {
		t.Errorf("progress ended at %d of %d", last, root.Size)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "root"))
	if !bytes.Equal(got, s.blobs["root"]) {
		t.Error("resumed blob differs")
	}
}

// A partial file left by a killed process or a reboot: a good prefix is
// resumed, a bad one restarted once, one too long restarted.
func TestResumePartialFile(t *testing.T) {
	tr := startRegistry(t)
	s := pushSynthetic(t, tr, "rfs/dev:v7", 1<<20)
	root := s.config.Parts[1]
	garbage := bytes.Repeat([]byte{0xaa}, 1000)
	for _, c := range []struct {
		name    string
		partial []byte
		ranges  []string // the Range of each blob request
	}{
		{"good prefix", s.blobs["root"][:5000], []string{fmt.Sprintf("bytes=5000-%d", root.Size-1)}},
		{"bad prefix", garbage, []string{fmt.Sprintf("bytes=1000-%d", root.Size-1), ""}},
		{"too long", append(bytes.Clone(s.blobs["root"]), 1), []string{""}},
		{"complete", s.blobs["root"], nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "root")
			if err := os.WriteFile(dst+".partial", c.partial, 0o644); err != nil {
				t.Fatal(err)
			}
			tr.setHook(nil)
			if err := testClient(Options{}).FetchBlob(context.Background(), s.ref, root.Digest, root.Size, dst, nil); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range tr.requests("blobs") {
				got = append(got, r.Header.Get("Range"))
			}
			if fmt.Sprint(got) != fmt.Sprint(c.ranges) {
				t.Errorf("requests with Range %q, want %q", got, c.ranges)
			}
			if b, _ := os.ReadFile(dst); !bytes.Equal(b, s.blobs["root"]) {
				t.Error("blob differs")
			}
		})
	}
}

// A server that ignores Range sends the whole blob: taken from byte 0.
func TestRangeIgnored(t *testing.T) {
	tr := startRegistry(t)
	s := pushSynthetic(t, tr, "rfs/dev:v7", 1<<20)
	root := s.config.Parts[1]
	tr.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		r.Header.Del("Range")
		return false
	})
	dst := filepath.Join(t.TempDir(), "root")
	os.WriteFile(dst+".partial", s.blobs["root"][:4096], 0o644)
	if err := testClient(Options{}).FetchBlob(context.Background(), s.ref, root.Digest, root.Size, dst, nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dst); !bytes.Equal(b, s.blobs["root"]) {
		t.Error("blob differs")
	}
}

func TestTamperedBlob(t *testing.T) {
	tr := startRegistry(t)
	s := pushSynthetic(t, tr, "rfs/dev:v7", 1<<20)
	root := s.config.Parts[1]
	tr.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if isBlob(r, root.Digest) {
			tr.reg.ServeHTTP(&tamperWriter{ResponseWriter: w}, r)
			return true
		}
		return false
	})
	dst := filepath.Join(t.TempDir(), "root")
	err := testClient(Options{}).FetchBlob(context.Background(), s.ref, root.Digest, root.Size, dst, nil)
	if !errors.Is(err, ErrDigest) {
		t.Fatalf("err %v, want ErrDigest", err)
	}
	for _, p := range []string{dst, dst + ".partial"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left behind", p)
		}
	}
}

// Transient failures (500, a drop before any byte) are retried; a 404
// is not.
func TestRetries(t *testing.T) {
	tr := startRegistry(t)
	s := pushSynthetic(t, tr, "rfs/dev:v7", 1<<10)
	var n atomic.Int32
	tr.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		switch n.Add(1) {
		case 1:
			http.Error(w, "busy", http.StatusServiceUnavailable)
		case 2:
			panic(http.ErrAbortHandler)
		default:
			return false
		}
		return true
	})
	if _, err := testClient(Options{}).Resolve(context.Background(), s.ref); err != nil {
		t.Fatal(err)
	}
	tr.setHook(nil)
	_, err := testClient(Options{}).Resolve(context.Background(), "http://"+tr.host+"/rfs/dev:nope")
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusNotFound || len(tr.requests("manifests")) != 1 {
		t.Errorf("err %v after %d requests, want one 404", err, len(tr.requests("manifests")))
	}
	tr.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		http.Error(w, "down", http.StatusBadGateway)
		return true
	})
	_, err = testClient(Options{Retries: 2}).Resolve(context.Background(), s.ref)
	if !errors.As(err, &se) || se.StatusCode != http.StatusBadGateway || len(tr.requests("manifests")) != 3 {
		t.Errorf("err %v after %d requests, want a 502 after 3", err, len(tr.requests("manifests")))
	}
}

func TestResolveRefuses(t *testing.T) {
	tr := startRegistry(t)
	s := pushSynthetic(t, tr, "rfs/dev:v7", 1<<10)
	b, err := testClient(Options{}).Resolve(context.Background(), s.ref)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := random.Index(100, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(mustRef(t, tr.host+"/rfs/multi:1"), idx); err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(100, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(mustRef(t, tr.host+"/rfs/app:1"), img); err != nil {
		t.Fatal(err)
	}
	huge := func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/manifests/") {
			w.Header().Set("Content-Type", release.OCIManifest)
			w.Write(bytes.Repeat([]byte(" "), release.MaxManifest+1)) // no Content-Length: chunked
			return true
		}
		return false
	}
	hugeAnnounced := func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/manifests/") {
			w.Header().Set("Content-Length", fmt.Sprint(release.MaxManifest+1))
			w.Write(bytes.Repeat([]byte(" "), release.MaxManifest+1))
			return true
		}
		return false
	}
	wrongDigest := func(w http.ResponseWriter, r *http.Request) bool {
		tr.reg.ServeHTTP(&digestWriter{ResponseWriter: w, digest: release.Digest([]byte("other"))}, r)
		return true
	}
	for _, c := range []struct {
		name, ref string
		hook      func(http.ResponseWriter, *http.Request) bool
		want      string
	}{
		{"index", "http://" + tr.host + "/rfs/multi:1", nil, "image index"},
		{"container image", "http://" + tr.host + "/rfs/app:1", nil, "not an rfs release"},
		{"huge manifest", s.ref, huge, "more than the"},
		{"huge manifest announced", s.ref, hugeAnnounced, fmt.Sprintf("%d bytes: more than the", release.MaxManifest+1)},
		{"wrong Docker-Content-Digest", s.ref, wrongDigest, "the registry says"},
		{"wrong @digest", s.ref + "@" + release.Digest([]byte("x")), func(w http.ResponseWriter, r *http.Request) bool {
			r.URL.Path = strings.Replace(r.URL.Path, "/manifests/"+release.Digest([]byte("x")), "/manifests/v7", 1)
			return false
		}, "asked for"},
		{"right @digest", "http://" + tr.host + "/rfs/dev@" + b.Digest, nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr.setHook(c.hook)
			_, err := testClient(Options{Retries: -1}).Resolve(context.Background(), c.ref)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err %v, want one saying %q", err, c.want)
			}
		})
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// digestWriter replaces the Docker-Content-Digest header.
type digestWriter struct {
	http.ResponseWriter
	digest string
}

func (w *digestWriter) WriteHeader(code int) {
	w.Header().Set("Docker-Content-Digest", w.digest)
	w.ResponseWriter.WriteHeader(code)
}

// stallWriter passes on left bytes, then stalls until the client gives
// up (a link that went silent, no FIN).
type stallWriter struct {
	http.ResponseWriter
	left int
	done <-chan struct{}
}

func (s *stallWriter) Write(p []byte) (int, error) {
	if len(p) <= s.left {
		s.left -= len(p)
		return s.ResponseWriter.Write(p)
	}
	s.ResponseWriter.Write(p[:s.left])
	s.ResponseWriter.(http.Flusher).Flush()
	<-s.done
	panic(http.ErrAbortHandler)
}

// A server that goes silent mid-blob is given up on after IdleTimeout
// and the download resumes.
func TestStallResumes(t *testing.T) {
	tr := startRegistry(t)
	s := pushSynthetic(t, tr, "rfs/dev:v7", 1<<20)
	root := s.config.Parts[1]
	var n atomic.Int32
	tr.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if isBlob(r, root.Digest) && n.Add(1) == 1 {
			tr.reg.ServeHTTP(&stallWriter{ResponseWriter: w, left: 100000, done: r.Context().Done()}, r)
			return true
		}
		return false
	})
	dst := filepath.Join(t.TempDir(), "root")
	c := testClient(Options{IdleTimeout: 200e6})
	if err := c.FetchBlob(context.Background(), s.ref, root.Digest, root.Size, dst, nil); err != nil {
		t.Fatal(err)
	}
	if reqs := tr.requests("blobs"); len(reqs) != 2 || reqs[1].Header.Get("Range") == "" {
		t.Errorf("%d requests, want 2, the second with a Range", len(reqs))
	}
}

// A cancelled context stops the download and keeps the partial file.
func TestCancelKeepsPartial(t *testing.T) {
	tr := startRegistry(t)
	s := pushSynthetic(t, tr, "rfs/dev:v7", 3<<20)
	root := s.config.Parts[1]
	ctx, cancel := context.WithCancel(context.Background())
	dst := filepath.Join(t.TempDir(), "root")
	err := testClient(Options{}).FetchBlob(ctx, s.ref, root.Digest, root.Size, dst, func(done, total int64) {
		if done >= 1<<20 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	st, err := os.Stat(dst + ".partial")
	if err != nil || st.Size() < 1<<20 {
		t.Fatalf("partial file: %v", err)
	}
	if err := testClient(Options{}).FetchBlob(context.Background(), s.ref, root.Digest, root.Size, dst, nil); err != nil {
		t.Fatal(err)
	}
	if reqs := tr.requests("blobs"); len(reqs) < 2 || !strings.HasPrefix(reqs[len(reqs)-1].Header.Get("Range"), fmt.Sprintf("bytes=%d-", st.Size())) {
		t.Errorf("the rerun did not resume from byte %d", st.Size())
	}
}

// Drops that each get further do not use up the retries; drops at the
// same place do.
func TestRetriesWhileAdvancing(t *testing.T) {
	tr := startRegistry(t)
	s := pushSynthetic(t, tr, "rfs/dev:v7", 1<<20)
	root := s.config.Parts[1]
	for _, c := range []struct {
		name    string
		advance bool
		ok      bool
	}{{"advancing", true, true}, {"stuck", false, false}} {
		t.Run(c.name, func(t *testing.T) {
			var n atomic.Int32
			tr.setHook(func(w http.ResponseWriter, r *http.Request) bool {
				if !isBlob(r, root.Digest) || n.Add(1) > 4 {
					return false
				}
				left := 1000 // bytes of this response
				if !c.advance && r.Header.Get("Range") != "" {
					left = 0
				}
				tr.reg.ServeHTTP(&cutWriter{ResponseWriter: w, left: left}, r)
				return true
			})
			dst := filepath.Join(t.TempDir(), "root")
			err := testClient(Options{Retries: 1}).FetchBlob(context.Background(), s.ref, root.Digest, root.Size, dst, nil)
			if (err == nil) != c.ok {
				t.Errorf("err %v after %d requests", err, n.Load())
			}
		})
	}
}
