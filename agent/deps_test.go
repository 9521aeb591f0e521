package agent_test

import (
	"io/fs"
	"os"
	"os/exec"
	"path"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs"
)

// TestAgentDeps checks that every rfs package the agent imports is in
// rfs.AgentSource (the embedded source rfs compiles the agent from): a
// missing //go:embed pattern would break every build made by an installed
// rfs. Third-party packages need no embedding: their modules are in the
// embedded go.mod and go.sum, and come from the module cache or proxy.
func TestAgentDeps(t *testing.T) {
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	const mod = "github.com/rfsbuild/rfs"
	for _, arch := range []string{"arm64", "amd64", "arm"} {
		cmd := exec.Command(gocmd, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}} {{join .GoFiles \" \"}} {{join .EmbedFiles \" \"}}{{end}}", "../cmd/rfs-agent")
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
				continue // a third-party package
			}
			for _, name := range f[1:] {
				if _, err := fs.Stat(rfs.AgentSource, path.Join(rel, name)); err != nil {
					t.Errorf("GOARCH=%s: rfs-agent imports %s but %s/%s is not embedded: add %s/*.go to rfs.AgentSource's //go:embed list in rfs.go", arch, f[0], rel, name, rel)
				}
			}
		}
	}
}
