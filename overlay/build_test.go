package overlay

import (
	"debug/elf"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs"
)

// TestCrossBuildInit builds cmd/rfs-init the way rfs does, for every
// target arch, and checks it is a static ELF of the right machine.
func TestCrossBuildInit(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	for arch, machine := range map[string]elf.Machine{"arm64": elf.EM_AARCH64, "amd64": elf.EM_X86_64, "arm": elf.EM_ARM} {
		t.Run(arch, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "rfs-init")
			cmd := exec.Command(gocmd, "build", "-trimpath", "-ldflags=-s -w -X github.com/rfsbuild/rfs/overlay.Version=test", "-o", out, "../cmd/rfs-init")
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go build: %v\n%s", err, b)
			}
			f, err := elf.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Machine != machine {
				t.Errorf("machine %v, want %v", f.Machine, machine)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					t.Error("dynamically linked")
				}
			}
			st, _ := os.Stat(out)
			t.Logf("rfs-init %s: %d bytes", arch, st.Size())
			if st.Size() > 4<<20 {
				t.Errorf("rfs-init for %s is %d bytes: keep the init lean (< 4 MiB)", arch, st.Size())
			}
		})
	}
}

// TestInitDeps keeps the init's dependencies to the standard library,
// golang.org/x/sys and rfs packages built from that alone, and checks that
// every rfs package the init imports is in rfs.InitSource (the embedded
// source rfs compiles the init from): a missing //go:embed pattern would
// break every build made by an installed rfs.
func TestInitDeps(t *testing.T) {
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	const mod = "github.com/rfsbuild/rfs"
	for _, arch := range []string{"arm64", "amd64", "arm"} {
		cmd := exec.Command(gocmd, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}} {{join .GoFiles \" \"}}{{end}}", "../cmd/rfs-init")
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
			p := f[0]
			if strings.HasPrefix(p, "golang.org/x/sys/") {
				continue
			}
			rel, ok := strings.CutPrefix(p, mod+"/")
			if !ok {
				t.Errorf("rfs-init depends on %s: only the standard library, golang.org/x/sys and rfs packages are allowed", p)
				continue
			}
			for _, name := range f[1:] {
				if _, err := fs.Stat(rfs.InitSource, path.Join(rel, name)); err != nil {
					t.Errorf("GOARCH=%s: rfs-init imports %s but %s/%s is not embedded: add %s/*.go to the //go:embed list of rfs.go", arch, p, rel, name, rel)
				}
			}
		}
	}
}
