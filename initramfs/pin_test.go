package initramfs

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// hostile is what a user's shell or `go env -w` may hold; none of it may
// change the init rfs builds or caches.
var hostile = map[string]string{
	"GOARM64": "v8.2", "GOAMD64": "v3", "GOEXPERIMENT": "arenas",
	"GOFLAGS": "-tags=hostile", "CGO_ENABLED": "1", "GOFIPS140": "latest",
}

// clearGoEnv runs the test with none of the hostile settings and with an
// empty go config file, so "normal" means Go's defaults.
func clearGoEnv(t *testing.T) {
	t.Helper()
	for k := range hostile {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("GOENV", filepath.Join(t.TempDir(), "goenv"))
}

func TestInitKeyIgnoresHostileSettings(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not in PATH")
	}
	clearGoEnv(t)
	ctx := context.Background()
	key := func(arch string) string {
		t.Helper()
		b := Builder{}
		k, _, err := b.cacheKey(ctx, "go", arch, "v-test", buildEnv(arch), Builder{}.initProgram())
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	base := map[string]string{"arm64": key("arm64"), "amd64": key("amd64")}
	if base["arm64"] == base["amd64"] {
		t.Fatal("arm64 and amd64 share a cache key")
	}
	// The key holds the effective settings: unpinned, GOARM64 changes it.
	unpinned, _, err := Builder{}.cacheKey(ctx, "go", "arm64", "v-test", append(buildEnv("arm64"), "GOARM64=v8.2"), Builder{}.initProgram())
	if err != nil {
		t.Fatal(err)
	}
	if unpinned == base["arm64"] {
		t.Error("an init built with GOARM64=v8.2 would share the v8.0 init's cache key")
	}
	for k, v := range hostile {
		t.Run(k, func(t *testing.T) {
			t.Setenv(k, v)
			for arch, want := range base {
				if got := key(arch); got != want {
					t.Errorf("%s=%s changes the %s init's cache key: it is not pinned", k, v, arch)
				}
			}
		})
	}
	// The go config file can set what an empty variable does not override
	// (GOEXPERIMENT is pinned to "," for that); a setting that still gets
	// through must at least change the key. GOTOOLCHAIN is such a setting:
	// it picks the Go version, which the key holds.
	t.Run("go env -w", func(t *testing.T) {
		file := os.Getenv("GOENV")
		if err := os.WriteFile(file, []byte("GOARM64=v8.2\nGOEXPERIMENT=arenas\nGOFLAGS=-tags=x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(file)
		if got := key("arm64"); got != base["arm64"] {
			t.Errorf("the go config file changes the arm64 init's cache key: a setting is not pinned")
		}
	})
}

func TestInitBinaryIgnoresHostileSettings(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not in PATH")
	}
	if testing.Short() {
		t.Skip("builds the init twice")
	}
	clearGoEnv(t)
	ctx := context.Background()
	normalCache, hostileCache := t.TempDir(), t.TempDir()
	normal, err := Builder{CacheDir: normalCache}.Init(ctx, "arm64")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hostile {
		t.Setenv(k, v)
	}
	bad, err := Builder{CacheDir: hostileCache}.Init(ctx, "arm64")
	if err != nil {
		t.Fatal(err)
	}
	rn, _ := filepath.Rel(normalCache, normal)
	rb, _ := filepath.Rel(hostileCache, bad)
	if rn != rb {
		t.Errorf("cache paths differ: %s vs %s", rn, rb)
	}
	a, err := os.ReadFile(normal)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(bad)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("the init built under %v differs from the normal one", hostile)
	}
	info, err := buildinfo.ReadFile(bad)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range info.Settings {
		got[s.Key] = s.Value
	}
	for k, want := range map[string]string{"GOARM64": "v8.0", "CGO_ENABLED": "0", "GOARCH": "arm64", "-tags": ""} {
		if got[k] != want {
			t.Errorf("build info %s = %q, want %q (all: %v)", k, got[k], want, info.Settings)
		}
	}
}
