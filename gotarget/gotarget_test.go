package gotarget

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestEnvOverridesUserSettings(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not in PATH")
	}
	goenv := filepath.Join(t.TempDir(), "goenv")
	if err := os.WriteFile(goenv, []byte("GOEXPERIMENT=arenas\nGOAMD64=v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	user := append(os.Environ(), "GOENV="+goenv, "GOARM64=v8.2", "GOAMD64=v3", "CGO_ENABLED=1", "GOFLAGS=-tags=x")
	for arch, want := range map[string][]string{
		"arm64": {"GOARCH=arm64", "GOARM64=v8.0", "GOEXPERIMENT=,", "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOOS=linux"},
		"amd64": {"GOARCH=amd64", "GOAMD64=v1", "GOEXPERIMENT=,", "CGO_ENABLED=0"},
	} {
		got, err := Settings(context.Background(), "go", t.TempDir(), append(user, Env(arch)...))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains("\n"+got, "\n"+w+"\n") {
				t.Errorf("%s: settings lack %s:\n%s", arch, w, got)
			}
		}
		// Without Env, the user's settings show: Settings reads them.
		raw, err := Settings(context.Background(), "go", t.TempDir(), user)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(raw, "GOARM64=v8.2\n") || !strings.Contains(raw, "GOEXPERIMENT=arenas\n") {
			t.Errorf("Settings does not report the user's settings:\n%s", raw)
		}
	}
}
