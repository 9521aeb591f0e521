package regclient

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rfsbuild/rfs/release"
	"github.com/rfsbuild/rfs/updatesig"
)

// testRegistry is go-containerregistry's in-memory registry on
// 127.0.0.1 behind a hook that tests use to see and change traffic.
type testRegistry struct {
	reg  http.Handler
	srv  *httptest.Server
	host string // 127.0.0.1:PORT

	mu   sync.Mutex
	hook func(w http.ResponseWriter, r *http.Request) bool // true: handled
	seen []*http.Request
}

func startRegistry(t *testing.T) *testRegistry {
	t.Helper()
	tr := &testRegistry{reg: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	tr.srv = httptest.NewServer(tr) // binds 127.0.0.1
	t.Cleanup(tr.srv.Close)
	tr.host = strings.TrimPrefix(tr.srv.URL, "http://")
	return tr
}

func (tr *testRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tr.mu.Lock()
	tr.seen = append(tr.seen, r.Clone(r.Context()))
	hook := tr.hook
	tr.mu.Unlock()
	if hook != nil && hook(w, r) {
		return
	}
	tr.reg.ServeHTTP(w, r)
}

func (tr *testRegistry) setHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.hook, tr.seen = h, nil
}

// requests returns the GETs of path kind ("blobs", "manifests") seen
// since the last setHook.
func (tr *testRegistry) requests(kind string) []*http.Request {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []*http.Request
	for _, r := range tr.seen {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/"+kind+"/") {
			out = append(out, r)
		}
	}
	return out
}

// testClient is a Client that retries fast.
func testClient(opts Options) *Client {
	if opts.Backoff == 0 {
		opts.Backoff = 5e6 // 5ms
	}
	return New(opts)
}

// synthetic is a small release pushed by hand: a kernel and a root of
// rootSize random bytes.
type synthetic struct {
	ref    string
	blobs  map[string][]byte // by part name
	config release.Config
	pub    ed25519.PublicKey
}

func pushSynthetic(t *testing.T, tr *testRegistry, repoTag string, rootSize int) *synthetic {
	t.Helper()
	priv, pub, err := updatesig.Generate()
	if err != nil {
		t.Fatal(err)
	}
	root := make([]byte, rootSize)
	rand.Read(root)
	s := &synthetic{ref: "http://" + tr.host + "/" + repoTag, pub: pub,
		blobs: map[string][]byte{"kernel": []byte("a kernel"), "root": root}}
	s.config = release.Config{Board: "qemu-arm64", Arch: "arm64", Version: "7", BuildID: "b1"}
	m := release.Manifest{SchemaVersion: 2, MediaType: release.OCIManifest, ArtifactType: release.ArtifactType,
		Annotations: map[string]string{release.AnnotationBoard: "qemu-arm64", release.AnnotationVersion: "7", release.AnnotationBuildID: "b1"}}
	for _, p := range []struct{ name, role string }{{"kernel", release.RoleKernel}, {"root", release.RoleRoot}} {
		b := s.blobs[p.name]
		part := release.Part{Name: p.name, Role: p.role, MediaType: release.RoleMediaType(p.role), Digest: release.Digest(b), Size: int64(len(b))}
		s.config.Parts = append(s.config.Parts, part)
		m.Layers = append(m.Layers, release.Descriptor{MediaType: part.MediaType, Digest: part.Digest, Size: part.Size})
	}
	cfg := s.config.Marshal()
	sig, err := updatesig.Sign(priv, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Annotations[release.AnnotationSignature] = sig.String()
	m.Config = release.Descriptor{MediaType: release.ConfigMediaType, Digest: release.Digest(cfg), Size: int64(len(cfg))}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	putRaw(t, tr.host+"/"+repoTag, raw, types.OCIManifestSchema1, cfg, s.blobs["kernel"], s.blobs["root"])
	return s
}

// putRaw uploads blobs and then manifest raw under ref.
func putRaw(t *testing.T, ref string, raw []byte, mt types.MediaType, blobs ...[]byte) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blobs {
		if err := remote.WriteLayer(r.Context(), static.NewLayer(b, types.OCILayer)); err != nil {
			t.Fatal(err)
		}
	}
	if err := remote.Put(r, rawManifest{raw, mt}); err != nil {
		t.Fatal(err)
	}
}

type rawManifest struct {
	b  []byte
	mt types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.b, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

// cutWriter passes on left bytes of a response, then drops the
// connection.
type cutWriter struct {
	http.ResponseWriter
	left int
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if len(p) <= c.left {
		c.left -= len(p)
		return c.ResponseWriter.Write(p)
	}
	c.ResponseWriter.Write(p[:c.left])
	c.ResponseWriter.(http.Flusher).Flush()
	panic(http.ErrAbortHandler)
}

// tamperWriter flips the first byte it passes on.
type tamperWriter struct {
	http.ResponseWriter
	done bool
}

func (w *tamperWriter) Write(p []byte) (int, error) {
	if !w.done && len(p) > 0 {
		w.done = true
		q := bytes.Clone(p)
		q[0] ^= 1
		return w.ResponseWriter.Write(q)
	}
	return w.ResponseWriter.Write(p)
}

// isBlob says whether r is a GET of blob digest.
func isBlob(r *http.Request, digest string) bool {
	return r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+digest)
}
