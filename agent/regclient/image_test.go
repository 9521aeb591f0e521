package regclient

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/bundle"
	"github.com/rfsbuild/rfs/release"
	"github.com/rfsbuild/rfs/rootfs"
	"github.com/rfsbuild/rfs/updatesig"
)

// buildImage builds a small qemu-arm64 image.
func buildImage(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("mke2fs"); err != nil {
		t.Skip("mke2fs not installed")
	}
	b, err := boards.Lookup("qemu-arm64")
	if err != nil {
		t.Fatal(err)
	}
	res, err := builder.Build(context.Background(), builder.Config{
		Board: b, Output: filepath.Join(t.TempDir(), "qemu-arm64.img"), Epoch: builder.DefaultEpoch, Owner: &rootfs.Owner{},
	})
	if err != nil {
		if strings.Contains(err.Error(), "module proxy") {
			t.Skipf("kernel/busybox modules unavailable: %v", err)
		}
		t.Fatal(err)
	}
	return res.Path
}

// A real image pushed by rfs push's code (bundle.Push, signed) is
// resolved, verified and fetched by the device's client, byte for byte
// what the host's bundle.Fetch gets; blobs come through a redirect to
// "storage" on another server, which gets no Authorization.
func TestPushedImage(t *testing.T) {
	img := buildImage(t)
	tr := startRegistry(t)
	priv, pub, err := updatesig.Generate()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ref := tr.host + "/rfs/qemu-arm64:v1"
	anonymous := authn.NewMultiKeychain()
	pushed, err := bundle.Push(ctx, img, ref, bundle.Options{Keychain: anonymous, Signer: bundle.SignWith(priv)})
	if err != nil {
		t.Fatal(err)
	}
	hostDir := t.TempDir()
	if _, err := bundle.Fetch(ctx, ref, hostDir, bundle.Options{Keychain: anonymous}); err != nil {
		t.Fatal(err)
	}
	var leaked bool
	storage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked = leaked || r.Header.Get("Authorization") != ""
		r.Header.Del("Authorization")
		tr.reg.ServeHTTP(w, r)
	}))
	defer storage.Close()
	tr.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") != "Basic dXNlcjpwYXNz" {
			w.Header().Set("WWW-Authenticate", `Basic realm="r"`)
			w.WriteHeader(http.StatusUnauthorized)
			return true
		}
		if strings.Contains(r.URL.Path, "/blobs/") {
			http.Redirect(w, r, storage.URL+r.URL.Path, http.StatusTemporaryRedirect)
			return true
		}
		return false
	})
	c := testClient(Options{Logins: map[string]Login{tr.host: {"user", "pass"}}})
	b, err := c.Resolve(ctx, "http://"+ref)
	if err != nil {
		t.Fatal(err)
	}
	if b.Digest != pushed.Digest {
		t.Errorf("resolved %s, pushed %s", b.Digest, pushed.Digest)
	}
	if err := release.Verify(b, pub, "qemu-arm64", "arm64", "1", false); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, p := range b.Config.Parts {
		if err := c.FetchBlob(ctx, "http://"+ref, p.Digest, p.Size, filepath.Join(dir, p.Name), nil); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(filepath.Join(dir, p.Name))
		want, _ := os.ReadFile(filepath.Join(hostDir, p.Name))
		if !bytes.Equal(got, want) || int64(len(got)) != p.Size {
			t.Errorf("part %s: %d bytes, the host fetched %d", p.Name, len(got), len(want))
		}
	}
	if leaked {
		t.Error("Authorization sent to the storage server a blob redirect named")
	}
	if err := release.Verify(b, pub, "rpi4", "arm64", "1", false); err == nil {
		t.Error("release for qemu-arm64 accepted on rpi4")
	}
}
