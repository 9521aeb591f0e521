package overlay

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
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
