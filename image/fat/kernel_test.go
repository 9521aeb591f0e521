package fat

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// modFile finds a file in the Go module cache (the module must be in
// go.sum's set and already downloaded; nothing is fetched).
func modFile(t *testing.T, pattern string) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Skipf("go env GOMODCACHE: %v", err)
	}
	m, _ := filepath.Glob(filepath.Join(strings.TrimSpace(string(out)), pattern))
	if len(m) == 0 {
		t.Skipf("%s is not in the module cache", pattern)
	}
	return m[len(m)-1]
}

const kernelInit = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /mnt
/bin/busybox mount -t devtmpfs dev /dev
/bin/busybox mount -t proc proc /proc
echo RFS-BEGIN
if /bin/busybox mount -t vfat -o ro,utf8 /dev/vda /mnt; then
  cd /mnt
  /bin/busybox find . -type d | /bin/busybox sed 's/^/D /'
  /bin/busybox find . -type f -exec /bin/busybox sha256sum {} + | /bin/busybox sed 's/^/F /'
else
  echo "MOUNT-FAILED"
fi
echo RFS-END
/bin/busybox poweroff -f
`

// TestKernelVFAT boots the amd64 kernel rfs uses (VFAT built in) in QEMU
// with a busybox initramfs that mounts the image and hashes every file: the
// real kernel driver reads what we wrote, also where the host kernel has no
// vfat. All table cases go into one image, one directory each, so there is
// one boot (~5-15 s under TCG).
func TestKernelVFAT(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a kernel in QEMU; skipped with -short")
	}
	qemu := needTool(t, "qemu-system-x86_64")
	cpio := needTool(t, "cpio")
	kernel := modFile(t, "github.com/gokrazy/kernel.amd64@*/vmlinuz")
	busybox := modFile(t, "github.com/gokrazy/serial-busybox@*/third_party/busybox-*/busybox.amd64")

	files := map[string][]byte{}
	for _, tc := range testCases() {
		if tc.size != 0 {
			continue // sizes of their own; the cluster-size paths are covered by mtools and go-diskfs
		}
		files[tc.name+"/"] = nil
		for p, b := range tc.files {
			files[tc.name+"/"+p] = b
		}
	}
	tr := build(t, files)
	img := writeImage(t, tr, MinSize(tr), Options{MTime: testTime})

	// initramfs: /init and /bin/busybox
	stage := t.TempDir()
	bb, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(stage, "bin"), 0o755))
	must(os.WriteFile(filepath.Join(stage, "bin/busybox"), bb, 0o755))
	must(os.WriteFile(filepath.Join(stage, "init"), []byte(kernelInit), 0o755))
	initrd := filepath.Join(t.TempDir(), "initrd.cpio")
	cmd := exec.Command("sh", "-c", "find . | "+cpio+" -o -H newc --quiet > "+initrd)
	cmd.Dir = stage
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio: %v\n%s", err, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	q := exec.CommandContext(ctx, qemu, "-accel", "tcg", "-m", "512", "-no-reboot", "-display", "none",
		"-serial", "stdio", "-monitor", "none", "-kernel", kernel, "-initrd", initrd,
		"-append", "console=ttyS0 panic=-1 quiet",
		"-drive", "file="+img+",if=virtio,format=raw,readonly=on")
	stdout, err := q.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	q.Stderr = &stderr
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { q.Process.Kill(); q.Wait() }()

	got := map[string][]byte{}
	var log []string
	in, done := false, false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		l := strings.TrimRight(sc.Text(), "\r")
		log = append(log, l)
		switch {
		case l == "RFS-BEGIN":
			in = true
		case l == "RFS-END":
			done = true
		case l == "MOUNT-FAILED":
			t.Fatalf("the kernel cannot mount the image:\n%s", strings.Join(log, "\n"))
		case in && strings.HasPrefix(l, "D ./"):
			got[strings.TrimPrefix(l, "D ./")+"/"] = nil
		case in && strings.HasPrefix(l, "F ") && len(l) > 70: // "F <sha256>  ./path"
			got[strings.TrimPrefix(l[68:], "./")] = []byte(l[2:66])
		}
		if done {
			break
		}
	}
	if !done {
		t.Fatalf("no result from the VM (ctx: %v)\nserial:\n%s\nstderr:\n%s", ctx.Err(), strings.Join(log, "\n"), stderr.String())
	}
	want := map[string][]byte{}
	for p, b := range listing(t, tr) {
		if b == nil && strings.HasSuffix(p, "/") {
			want[p] = nil
			continue
		}
		h := sha256.Sum256(b)
		want[p] = []byte(hex.EncodeToString(h[:]))
	}
	compareListings(t, "kernel vfat (QEMU)", want, got)
}
