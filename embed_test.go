package rfs_test

import (
	"io/fs"
	"os"
	"os/exec"
	"path"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs"
)

// TestInitDeps keeps the init's dependencies to the standard library,
// golang.org/x/sys and rfs packages built from that alone, and checks that
// every rfs package it imports is in rfs.InitSource.
func TestInitDeps(t *testing.T) {
	checkEmbedded(t, "./cmd/rfs-init", "InitSource", rfs.InitSource, func(p string) bool {
		return strings.HasPrefix(p, "golang.org/x/sys/")
	})
}

// TestAgentDeps checks that every rfs package the agent imports is in
// rfs.AgentSource. Third-party packages need no embedding: their modules
// are in the embedded go.mod and go.sum, and come from the module cache or
// proxy.
func TestAgentDeps(t *testing.T) {
	checkEmbedded(t, "./cmd/rfs-agent", "AgentSource", rfs.AgentSource, func(string) bool { return true })
}

// checkEmbedded lists what program imports for each target arch and fails
// for an rfs source file missing from src (a missing //go:embed pattern
// would break every build an installed rfs makes) or a third-party
// package thirdParty does not allow.
func checkEmbedded(t *testing.T, program, srcName string, src fs.FS, thirdParty func(importPath string) bool) {
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	const mod = "github.com/rfsbuild/rfs"
	for _, arch := range []string{"arm64", "amd64", "arm"} {
		cmd := exec.Command(gocmd, "list", "-deps", "-f", `{{if not .Standard}}{{.ImportPath}} {{join .GoFiles " "}} {{join .EmbedFiles " "}}{{end}}`, program)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, b)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			rel, ok := strings.CutPrefix(f[0], mod+"/")
			if !ok {
				if !thirdParty(f[0]) {
					t.Errorf("%s depends on %s: not allowed on the device", program, f[0])
				}
				continue
			}
			for _, name := range f[1:] {
				if _, err := fs.Stat(src, path.Join(rel, name)); err != nil {
					t.Errorf("GOARCH=%s: %s imports %s but %s/%s is not embedded: add %s/*.go to rfs.%s's //go:embed list in rfs.go", arch, program, f[0], rel, name, rel, srcName)
				}
			}
		}
	}
}
