package apps

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"os"
	"path/filepath"
	"testing"
)

// TestBuildPinsISALevel: GOARM64=v8.2 in the user's environment does not
// reach the board's program (it would die with SIGILL on a Cortex-A72).
func TestBuildPinsISALevel(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a Go program; skipped in -short mode")
	}
	t.Setenv("GOARM64", "v8.2")
	b := Builder{Dir: "../e2e/testdata"}
	bin, err := b.Build(context.Background(), "arm64", App{Path: "./hello"})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "hello")
	if err := os.WriteFile(p, bin, 0o644); err != nil {
		t.Fatal(err)
	}
	info, err := buildinfo.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range info.Settings {
		if s.Key == "GOARM64" {
			found = true
			if s.Value != "v8.0" {
				t.Errorf("app built with GOARM64=%s, want v8.0", s.Value)
			}
		}
	}
	if !found {
		t.Errorf("no GOARM64 in the build info: %v", info.Settings)
	}
	t.Setenv("GOARM64", "")
	plain, err := b.Build(context.Background(), "arm64", App{Path: "./hello"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(plain, bin) {
		t.Error("the app built under GOARM64=v8.2 differs from the plain build")
	}
}
