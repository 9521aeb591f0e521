package modfetch

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

// These use a tiny, widely cached module; they need the module proxy or a
// warm module cache.
var small = Module{Path: "github.com/google/uuid", Version: "v1.6.0", Sum: "h1:NIvaJDMOsjHA8n1jAhLSgzrAzy1Hgr+hNrb57e+94F0="}

func TestDownload(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not in PATH")
	}
	dir, err := Fetcher{}.Download(context.Background(), small)
	if err != nil {
		t.Skipf("module proxy unreachable and module not cached: %v", err)
	}
	if !strings.Contains(dir, "github.com/google/uuid@v1.6.0") {
		t.Fatalf("Download dir = %q", dir)
	}
}

func TestDownloadWrongSum(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not in PATH")
	}
	if _, err := (Fetcher{}).Download(context.Background(), small); err != nil {
		t.Skipf("module proxy unreachable and module not cached: %v", err)
	}
	bad := small
	bad.Sum = "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	_, err := Fetcher{}.Download(context.Background(), bad)
	if err == nil || !strings.Contains(err.Error(), "does not match the pinned") {
		t.Fatalf("Download with wrong sum = %v, want hash mismatch", err)
	}
}

func TestDownloadOfflineUncached(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not in PATH")
	}
	f := Fetcher{Env: []string{"GOPROXY=off"}}
	_, err := f.Download(context.Background(), Module{Path: "github.com/rfsbuild/does-not-exist", Version: "v0.0.1"})
	if err == nil || !strings.Contains(err.Error(), "module proxy") {
		t.Fatalf("offline Download = %v, want a clear proxy error", err)
	}
}

// The fast path answers from the module cache only when the go command
// would: a wrong pinned sum must still fail.
func TestCachedFastPath(t *testing.T) {
	if _, err := (Fetcher{}).Download(context.Background(), small); err != nil {
		t.Skipf("module proxy unreachable and module not cached: %v", err)
	}
	dir, ok := Fetcher{}.cached(small)
	if !ok || !strings.HasSuffix(dir, "github.com/google/uuid@v1.6.0") {
		t.Fatalf("cached = %q, %v; want the module cache directory", dir, ok)
	}
	bad := small
	bad.Sum = "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	if _, ok := (Fetcher{}).cached(bad); ok {
		t.Fatal("fast path accepted a module whose hash differs from the pin")
	}
	t.Setenv("GOMODCACHE", t.TempDir())
	if _, ok := (Fetcher{}).cached(small); ok {
		t.Fatal("fast path found a module in an empty module cache")
	}
}
