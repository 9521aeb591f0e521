package e2e

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/ext4fs"
)

// listCmd prints one line per path under a directory, sorted: type,
// mode, owner, then the content's md5 (files), the target (symlinks) or
// the device numbers (whiteouts are char 0/0).
const listCmd = `find . | sort | while read -r f; do ` +
	`if [ -L "$f" ]; then echo "$f L $(stat -c %a:%u:%g "$f") $(readlink "$f")"; ` +
	`elif [ -f "$f" ]; then echo "$f F $(stat -c %a:%u:%g:%s "$f") $(md5sum < "$f" | cut -d' ' -f1)"; ` +
	`elif [ -d "$f" ]; then echo "$f D $(stat -c %a:%u:%g "$f")"; ` +
	`else echo "$f O $(stat -c %F:%t:%T "$f")"; fi; done`

// powerCutWork changes files on the device in two steps: the first is
// synced; the second changes only metadata and is left to the journal's
// commit timer (5 s), so its changes are committed to the journal but
// not yet written in place when the power goes.
const (
	powerCutWork1 = `mkdir -p /pc/d1 /pc/d2 /pc/gone && ` +
		`for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do echo file $i > /pc/d1/f$i; done && ` +
		`dd if=/dev/urandom of=/pc/d2/big bs=1024 count=300 2>/dev/null && ` +
		`echo doomed > /pc/gone/x && echo changed > /etc/hostname && rm /etc/shadow && ` +
		`ln -s /pc/d1/f1 /pc/link && echo before > /pc/renamed-src && chmod 600 /pc/d1/f2 && sync`
	powerCutWork2 = `rm -r /pc/gone && mv /pc/renamed-src /pc/renamed && rm /pc/d1/f3 /pc/d1/f4 && ` +
		`mkdir /pc/late && touch /pc/late/empty && ln -s ../d2/big /pc/late/biglink && chmod 750 /pc/d2 && ` +
		`chown 1000:1000 /pc/d1/f5 && sleep 8`
)

// TestPowerCut: a device loses power (QEMU killed after the journal
// committed the last changes, before they were written in place); rfs
// diff and rfs commit on the image read what the device saw (the journal
// replayed in memory), and the committed layer, stacked by the kernel
// under a fresh data partition, gives the same tree.
func TestPowerCut(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	t.Parallel()
	rfsBin := buildRFS(t)
	d := withDataPartition(t, buildImage(t, "qemu-arm64", dataUpper), 0)
	vm := bootDisk(t, d, "", nil)
	waitShell(t, vm)
	run(t, vm, powerCutWork1)
	if _, err := vm.Run(powerCutWork2, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	upper := run(t, vm, "cd /run/rfs/upper && "+listCmd)
	merged := run(t, vm, "cd /pc && "+listCmd+"; cat /etc/hostname; test -e /etc/shadow && echo SHADOW; true")
	vm.Close() // the power cut: SIGKILL, no sync, no unmount
	t.Logf("the device's upper:\n%s", upper)

	needsRecovery(t, d)
	image0 := hashOf(t, d.path)

	// rfs diff lists exactly the upper's paths (whiteouts as D).
	out, err := exec.Command(rfsBin, "diff", d.path).CombinedOutput()
	if err != nil {
		t.Fatalf("rfs diff: %v\n%s", err, out)
	}
	t.Logf("rfs diff:\n%s", out)
	want := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(upper), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || f[0] == "." || f[1] == "D" {
			continue
		}
		want[strings.TrimPrefix(f[0], ".")] = true
	}
	got := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if k, p, ok := strings.Cut(l, " "); ok && (k == "A" || k == "C" || k == "D") {
			got[p] = true
		}
	}
	for p := range want {
		if !got[p] {
			t.Errorf("rfs diff lacks %s (in the device's upper)", p)
		}
	}
	for _, p := range []string{"/pc/gone", "/pc/gone/x", "/pc/renamed-src", "/pc/d1/f3"} {
		if got[p] {
			t.Errorf("rfs diff shows %s, removed before the power cut", p)
		}
	}

	// rfs commit: the layer, mounted by the kernel, is the device's upper.
	layerFile := filepath.Join(t.TempDir(), "layer.sqfs")
	if out, err := exec.Command(rfsBin, "commit", d.path, "-o", layerFile).CombinedOutput(); err != nil {
		t.Fatalf("rfs commit: %v\n%s", err, out)
	}
	if hashOf(t, d.path) != image0 {
		t.Error("rfs diff or commit wrote the image")
	}
	withLayer := buildImage(t, "qemu-arm64", func(c *builder.Config) { dataUpper(c); c.Layers = []string{layerFile} })
	vm = bootDisk(t, withDataPartition(t, withLayer, 0), "", nil)
	waitShell(t, vm)
	layer := run(t, vm, "cd /run/rfs/layers/1 && "+listCmd)
	stacked := run(t, vm, "cd /pc && "+listCmd+"; cat /etc/hostname; test -e /etc/shadow && echo SHADOW; true")
	vm.Close()
	if a, b := dirLines(upper), dirLines(layer); a != b {
		t.Errorf("the committed layer differs from the device's upper:\ndevice:\n%s\nlayer:\n%s", a, b)
	}
	if merged != stacked {
		t.Errorf("the stacked layer differs from the device's view:\ndevice:\n%s\nstacked:\n%s", merged, stacked)
	}
}

// dirLines drops the modes and owners of directories, which a layer
// does not keep for the directories the upper only copied up (path and
// type remain), and the shell's history: ash appends to it after every
// command, after the last sync, so the power cut loses its end.
func dirLines(s string) string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if strings.HasPrefix(l, "./.ash_history ") {
			continue
		}
		if f := strings.Fields(l); len(f) >= 2 && f[1] == "D" {
			l = f[0] + " D"
		}
		out = append(out, l)
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// needsRecovery checks that the image's data partition needs recovery
// and that its journal holds changes not yet in place (else the test
// would prove nothing).
func needsRecovery(t *testing.T, d *dataDisk) {
	t.Helper()
	p, ok := readTable(t, d.path).Find(d.data.PARTUUID)
	if !ok {
		t.Fatal("data partition gone")
	}
	f, err := os.Open(d.path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fsys, err := ext4fs.Open(io.NewSectionReader(f, p.Start, p.Size), p.Size)
	if err != nil {
		t.Fatal(err)
	}
	rec := fsys.Recovery()
	t.Logf("journal replayed in memory: %+v", rec)
	if !fsys.Superblock().NeedsRecovery || rec.Blocks == 0 {
		t.Fatal("the image does not need recovery: the power cut proves nothing")
	}
	// The filesystem as it is in place (debugfs does not replay) must
	// lack the last changes: they are only in the journal.
	cp := filepath.Join(t.TempDir(), "data.fs")
	buf := make([]byte, p.Size)
	if _, err := f.ReadAt(buf, p.Start); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(cp, buf, 0o644)
	out, err := exec.Command("debugfs", "-R", "ls /upper/pc", cp).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "renamed-src") || strings.Contains(string(out), "late") {
		t.Errorf("debugfs (no replay) of /upper/pc: want the synced state (renamed-src, no late): %v\n%s", err, out)
	}
}

func hashOf(t *testing.T, p string) string {
	t.Helper()
	out, err := exec.Command("sha256sum", p).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(out))[0]
}
