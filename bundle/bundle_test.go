package bundle

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/rootfs"
)

var (
	imgOnce sync.Once
	imgPath string
	imgErr  error
	imgDir  string
)

// testImage builds one small qemu-arm64 image for the package's tests.
func testImage(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("mke2fs"); err != nil {
		t.Skip("mke2fs not installed")
	}
	imgOnce.Do(func() {
		imgDir, imgErr = os.MkdirTemp("", "rfs-bundle-test-")
		if imgErr != nil {
			return
		}
		var b boards.Board
		if b, imgErr = boards.Lookup("qemu-arm64"); imgErr != nil {
			return
		}
		var res *builder.Result
		res, imgErr = builder.Build(context.Background(), builder.Config{
			Board: b, Output: filepath.Join(imgDir, "qemu-arm64.img"), Epoch: builder.DefaultEpoch, Owner: &rootfs.Owner{},
		})
		if imgErr == nil {
			imgPath = res.Path
		}
	})
	if imgErr != nil {
		if strings.Contains(imgErr.Error(), "module proxy") {
			t.Skipf("kernel/busybox modules unavailable: %v", imgErr)
		}
		t.Fatal(imgErr)
	}
	return imgPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if imgDir != "" {
		os.RemoveAll(imgDir)
	}
	os.Exit(code)
}

// counter counts a registry's requests by method and path kind.
type counter struct {
	h          http.Handler
	blobPuts   atomic.Int64 // uploads finished (PUT to an upload URL)
	blobPosts  atomic.Int64 // uploads started
	blobGets   atomic.Int64
	tamperWith atomic.Value // string: a blob digest whose GETs get a flipped byte
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/blobs/uploads/"):
		c.blobPosts.Add(1)
	case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/"):
		c.blobPuts.Add(1)
	case r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:"):
		c.blobGets.Add(1)
		if d, _ := c.tamperWith.Load().(string); d != "" && strings.HasSuffix(r.URL.Path, d) {
			rec := httptest.NewRecorder()
			c.h.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			body[len(body)/2] ^= 1
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(body)
			return
		}
	}
	c.h.ServeHTTP(w, r)
}

// startRegistry runs go-containerregistry's in-memory registry on
// 127.0.0.1 and returns its host:port.
func startRegistry(t *testing.T) (string, *counter) {
	t.Helper()
	c := &counter{h: registry.New(registry.Logger(nopLogger()))}
	srv := httptest.NewServer(c) // binds 127.0.0.1
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), c
}

// anonymous keeps tests off the user's ~/.docker/config.json.
var anonymous = authn.NewMultiKeychain()

func fakeSigner(cfg []byte) (string, error) { return "fake:" + sha256Hash(cfg).Hex[:16], nil }

func TestPushFetchRegistry(t *testing.T) {
	img := testImage(t)
	host, cnt := startRegistry(t)
	ctx := context.Background()
	ref := host + "/rfs/qemu-arm64:v1"
	var lastDone, lastTotal int64
	start := time.Now()
	pushed, err := Push(ctx, img, ref, Options{Keychain: anonymous, Signer: fakeSigner,
		Progress: func(done, total int64) { lastDone, lastTotal = done, total }})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pushed %s in %v (%d blob uploads, progress %d/%d)", pushed.Digest, time.Since(start), cnt.blobPuts.Load(), lastDone, lastTotal)
	if lastTotal == 0 || lastDone != lastTotal {
		t.Errorf("progress ended at %d of %d", lastDone, lastTotal)
	}
	checkParts(t, pushed.Config)
	b, err := Inspect(ctx, ref, Options{Keychain: anonymous})
	if err != nil {
		t.Fatal(err)
	}
	if b.Digest != pushed.Digest {
		t.Errorf("inspected digest %s, pushed %s", b.Digest, pushed.Digest)
	}
	if want, _ := fakeSigner(b.RawConfig); b.Signature != want {
		t.Errorf("signature %q, want %q", b.Signature, want)
	}
	compareFetched(t, img, ref)
}

// checkParts: the parts a qemu-arm64 image without layers has.
func checkParts(t *testing.T, c Config) {
	t.Helper()
	var names []string
	for _, p := range c.Parts {
		names = append(names, p.Name)
	}
	if got := strings.Join(names, " "); got != "kernel initramfs boot-files root" {
		t.Errorf("parts %q", got)
	}
	if c.Board != "qemu-arm64" || c.Arch != "arm64" || c.BuildID == "" || c.Version != "1767225600" || c.Created != "2026-01-01T00:00:00Z" {
		t.Errorf("config %+v", c)
	}
}

// compareFetched fetches ref and compares each part with the release
// read from the image.
func compareFetched(t *testing.T, img, ref string) {
	t.Helper()
	dir := t.TempDir()
	b, err := Fetch(context.Background(), ref, dir, Options{Keychain: anonymous})
	if err != nil {
		t.Fatal(err)
	}
	rel, err := ReadImage(img, "")
	if err != nil {
		t.Fatal(err)
	}
	defer rel.Close()
	for i, p := range rel.Config.Parts {
		got, err := os.ReadFile(filepath.Join(dir, p.Name))
		if err != nil {
			t.Fatal(err)
		}
		rc, _ := rel.blobs[i].open()
		want, _ := io.ReadAll(rc)
		if !bytes.Equal(got, want) {
			t.Errorf("part %s: fetched %d bytes differ from the image's %d", p.Name, len(got), len(want))
		}
	}
	if len(b.Config.Parts) != len(rel.Config.Parts) {
		t.Errorf("fetched %d parts, image has %d", len(b.Config.Parts), len(rel.Config.Parts))
	}
}

// TestPushTwiceUploadsNothing: a second push of the same image (to
// another tag) sends no blob and gives the same digest.
func TestPushTwiceUploadsNothing(t *testing.T) {
	img := testImage(t)
	host, cnt := startRegistry(t)
	ctx := context.Background()
	first, err := Push(ctx, img, host+"/rfs/a:one", Options{Keychain: anonymous})
	if err != nil {
		t.Fatal(err)
	}
	if n := cnt.blobPosts.Load(); n != 5 { // 4 parts + config
		t.Errorf("first push started %d uploads, want 5", n)
	}
	cnt.blobPosts.Store(0)
	cnt.blobPuts.Store(0)
	second, err := Push(ctx, img, host+"/rfs/a:two", Options{Keychain: anonymous})
	if err != nil {
		t.Fatal(err)
	}
	if n, m := cnt.blobPosts.Load(), cnt.blobPuts.Load(); n != 0 || m != 0 {
		t.Errorf("second push uploaded blobs: %d started, %d finished", n, m)
	}
	if first.Digest != second.Digest {
		t.Errorf("digests differ: %s, %s", first.Digest, second.Digest)
	}
}

// TestDeterministicDigest: two reads of the same image make the same
// manifest bytes; a version override changes the digest.
func TestDeterministicDigest(t *testing.T) {
	img := testImage(t)
	digest := func(version string) string {
		rel, err := ReadImage(img, version)
		if err != nil {
			t.Fatal(err)
		}
		defer rel.Close()
		a, err := newArtifact(rel, nil)
		if err != nil {
			t.Fatal(err)
		}
		return a.digest().String()
	}
	a, b := digest(""), digest("")
	if a != b {
		t.Errorf("same image, digests %s and %s", a, b)
	}
	if c := digest("2.0"); c == a {
		t.Errorf("version 2.0 has the default version's digest")
	}
}

func TestLayoutRoundTrip(t *testing.T) {
	img := testImage(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "oci")
	one, err := Push(ctx, img, LayoutPrefix+dir+":v1", Options{})
	if err != nil {
		t.Fatal(err)
	}
	two, err := Push(ctx, img, LayoutPrefix+dir+":v2", Options{Version: "2"})
	if err != nil {
		t.Fatal(err)
	}
	// Pushing v1 again replaces its index entry, not adds one.
	if _, err := Push(ctx, img, LayoutPrefix+dir+":v1", Options{}); err != nil {
		t.Fatal(err)
	}
	for tag, want := range map[string]string{"v1": one.Digest, "v2": two.Digest} {
		b, err := Inspect(ctx, LayoutPrefix+dir+":"+tag, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if b.Digest != want {
			t.Errorf("tag %s: digest %s, want %s", tag, b.Digest, want)
		}
	}
	if _, err := Inspect(ctx, LayoutPrefix+dir, Options{}); err == nil || !strings.Contains(err.Error(), "2 manifests") {
		t.Errorf("untagged inspect of a 2-manifest layout: %v", err)
	}
	if _, err := Inspect(ctx, LayoutPrefix+dir+":v3", Options{}); err == nil {
		t.Error("missing tag inspected")
	}
	compareFetched(t, img, LayoutPrefix+dir+":v1")
}

// TestTamperedBlob: a registry that serves a part with a byte changed
// makes Fetch fail, and the part's file is not left behind.
func TestTamperedBlob(t *testing.T) {
	img := testImage(t)
	host, cnt := startRegistry(t)
	ctx := context.Background()
	ref := host + "/rfs/t:1"
	pushed, err := Push(ctx, img, ref, Options{Keychain: anonymous})
	if err != nil {
		t.Fatal(err)
	}
	p := pushed.Config.Parts[1] // initramfs
	cnt.tamperWith.Store(p.Digest)
	dir := t.TempDir()
	_, err = Fetch(ctx, ref, dir, Options{Keychain: anonymous})
	if err == nil {
		t.Fatal("tampered blob fetched")
	}
	t.Logf("fetch: %v", err)
	if _, serr := os.Stat(filepath.Join(dir, p.Name)); serr == nil {
		t.Error("tampered part written under its name")
	}
}

// TestVerifier: the reader under every fetched part.
func TestVerifier(t *testing.T) {
	data := []byte("release part")
	h := sha256Hash(data)
	for _, c := range []struct {
		name string
		body []byte
		size int64
		ok   bool
	}{
		{"exact", data, int64(len(data)), true},
		{"short", data[:5], int64(len(data)), false},
		{"long", append(bytes.Clone(data), 'x'), int64(len(data)), false},
		{"changed", []byte("release pars"), int64(len(data)), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := io.Copy(io.Discard, newVerifier(bytes.NewReader(c.body), h, c.size))
			if (err == nil) != c.ok {
				t.Errorf("err %v, want ok=%v", err, c.ok)
			}
			if err != nil && !errors.Is(err, ErrDigest) {
				t.Errorf("err %v is not ErrDigest", err)
			}
		})
	}
}

func TestParseLayoutRef(t *testing.T) {
	for _, c := range []struct{ in, dir, tag string }{
		{"oci-layout:out", "out", ""},
		{"oci-layout:out:v1", "out", "v1"},
		{"oci-layout:/a/b:latest", "/a/b", "latest"},
		{"oci-layout:c:/x/y", "c:/x/y", ""},
	} {
		dir, tag, ok := parseLayoutRef(c.in)
		if !ok || dir != c.dir || tag != c.tag {
			t.Errorf("%s: %q %q %v", c.in, dir, tag, ok)
		}
	}
	if _, _, ok := parseLayoutRef("ghcr.io/x/y:1"); ok {
		t.Error("registry ref taken for a layout")
	}
}

func nopLogger() *log.Logger { return log.New(io.Discard, "", 0) }
