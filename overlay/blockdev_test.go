package overlay

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rfsbuild/rfs/ptable"
)

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/sbin"} {
			if _, serr := os.Stat(filepath.Join(dir, name)); serr == nil {
				return filepath.Join(dir, name)
			}
		}
		t.Skipf("%s not installed (apt-get install gdisk util-linux squashfs-tools): %v", name, err)
	}
	return p
}

func run(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// sparseImage creates an empty sparse file of size bytes.
func sparseImage(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

func openTable(t *testing.T, p string, ss int) *ptable.Table {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	tab, err := ptable.ReadTable(f, st.Size(), ss)
	if err != nil {
		t.Fatalf("ReadTable(%s): %v", p, err)
	}
	return tab
}

// A disk whose reads hang (QEMU's second Pi SD controller, a dying USB
// stick) must not keep the scan from seeing the other disks; its table is
// picked up by a later scan once the read returns.
func TestScanSkipsHungDisk(t *testing.T) {
	sys := t.TempDir()
	for _, d := range []struct{ name, dev string }{{"hung", "250:0"}, {"ok", "250:1"}} {
		dir := filepath.Join(sys, d.name)
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "dev"), []byte(d.dev+"\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "size"), []byte("2048\n"), 0o644)
	}
	release := make(chan struct{})
	okTable := &ptable.Table{Kind: "mbr"}
	s := &BlockScanner{SysBlock: sys, DevDir: t.TempDir(), readFn: func(d BlockDevice) (*ptable.Table, error) {
		if d.Name == "hung" {
			<-release
			return &ptable.Table{Kind: "gpt"}, nil
		}
		return okTable, nil
	}}
	start := time.Now()
	devs := s.Scan()
	if el := time.Since(start); el > 3*readWait {
		t.Fatalf("scan took %s with a hung disk", el)
	}
	got := map[string]BlockDevice{}
	for _, d := range devs {
		got[d.Name] = d
	}
	if got["ok"].Table != okTable {
		t.Fatalf("the answering disk's table was not read: %+v", got["ok"])
	}
	if !strings.Contains(got["hung"].TableErr, "no answer") {
		t.Fatalf("hung disk = %+v, want a no-answer note", got["hung"])
	}
	close(release)
	time.Sleep(50 * time.Millisecond)
	for _, d := range s.Scan() {
		if d.Name == "hung" && (d.Table == nil || d.Table.Kind != "gpt") {
			t.Fatalf("the late table was not picked up: %+v", d)
		}
	}
}
