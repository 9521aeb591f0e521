package initramfs

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"strings"
	"testing"
	"testing/fstest"
)

func TestAgentBuilds(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not in PATH")
	}
	b := Builder{CacheDir: t.TempDir()}
	for arch, machine := range map[string]elf.Machine{"arm64": elf.EM_AARCH64, "amd64": elf.EM_X86_64} {
		p, err := b.Agent(context.Background(), arch)
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		f, err := elf.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		if f.Machine != machine || f.Section(".interp") != nil {
			t.Errorf("%s: agent is %v, want a static %v executable", arch, f.Machine, machine)
		}
		f.Close()
		if init, err := b.Init(context.Background(), arch); err != nil || init == p {
			t.Errorf("%s: Init = %q, %v: want its own binary", arch, init, err)
		}
	}
}

// A program importing a third-party module builds from the embedded
// go.mod/go.sum with the module cache alone (GOPROXY=off): the agent's
// netlink, DHCP, NTP and SSH modules work the same way.
func TestProgramWithThirdPartyModuleOffline(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not in PATH")
	}
	sum := goSumLines(t, "golang.org/x/crypto v0.58.0", "golang.org/x/sys v0.49.0")
	src := fstest.MapFS{
		"go.mod":        {Data: []byte("module example.com/p\n\ngo 1.26.0\n\nrequire (\n\tgolang.org/x/crypto v0.58.0\n\tgolang.org/x/sys v0.49.0 // indirect\n)\n")},
		"go.sum":        {Data: []byte(sum)},
		"cmd/p/main.go": {Data: []byte("package main\n\nimport \"golang.org/x/crypto/ssh\"\n\nfunc main() { _, _, _, _, _ = ssh.ParseAuthorizedKey(nil) }\n")},
	}
	// The modules must be in the cache: fill it once, online if need be.
	if out, err := exec.Command("go", "mod", "download", "golang.org/x/crypto@v0.58.0", "golang.org/x/sys@v0.49.0").CombinedOutput(); err != nil {
		t.Skipf("modules not available: %v\n%s", err, out)
	}
	t.Setenv("GOPROXY", "off")
	b := Builder{CacheDir: t.TempDir()}
	p, err := b.Build(context.Background(), "arm64", Program{Name: "rfs-p", Source: src, Package: "./cmd/p"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
}

// goSumLines returns the module's own go.sum lines for the given modules.
func goSumLines(t *testing.T, mods ...string) string {
	data, err := os.ReadFile("../go.sum")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		for _, m := range mods {
			if strings.HasPrefix(sc.Text(), m+" ") || strings.HasPrefix(sc.Text(), m+"/go.mod ") {
				out.WriteString(sc.Text() + "\n")
			}
		}
	}
	return out.String()
}
