package badinput

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const jbd2Magic = 0xc03b3998

// powerCut loop-mounts the partition, changes upper/ (a new file, an
// overwritten one, a removed one), fsyncs and copies the partition while
// it is still mounted: what a card pulled from a device that lost power
// holds (the journal has committed changes not yet in place).
func (p *dataPart) powerCut() {
	p.t.Helper()
	mnt := p.t.TempDir()
	if out, err := exec.Command("mount", "-o", "loop,noatime", p.path, mnt).CombinedOutput(); err != nil {
		p.t.Fatalf("mount: %v\n%s", err, out)
	}
	defer exec.Command("umount", mnt).Run()
	up := filepath.Join(mnt, "upper")
	for _, f := range []struct{ name, content string }{
		{"etc/crash", "written before the power cut\n"},
		{"etc/motd", "overwritten before the power cut\n"},
	} {
		if err := os.WriteFile(filepath.Join(up, f.name), []byte(f.content), 0o644); err != nil {
			p.t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(up, "srv/www/index.html")); err != nil {
		p.t.Fatal(err)
	}
	for _, s := range []string{"etc/crash", "etc/motd", "etc", "srv/www"} {
		f, err := os.Open(filepath.Join(up, s))
		if err != nil {
			p.t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			p.t.Fatal(err)
		}
		f.Close()
	}
	crash := p.path + ".crash"
	if out, err := exec.Command("cp", "--sparse=always", p.path, crash).CombinedOutput(); err != nil {
		p.t.Fatalf("cp: %v\n%s", err, out)
	}
	if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
		p.t.Fatalf("umount: %v\n%s", err, out)
	}
	if err := os.Rename(crash, p.path); err != nil {
		p.t.Fatal(err)
	}
	if !strings.Contains(p.debugfs("features"), "needs_recovery") {
		p.t.Fatal("the copy does not need recovery")
	}
}

// journalBlock is the partition offset of the first journal block of the
// given type (1 descriptor, 2 commit, 0 the journal superblock, -1 the
// block after the first descriptor: a logged copy).
func (p *dataPart) journalBlock(typ int) int64 {
	p.t.Helper()
	dump := filepath.Join(p.t.TempDir(), "journal")
	p.debugfs("dump <8> " + dump)
	j, err := os.ReadFile(dump)
	if err != nil {
		p.t.Fatal(err)
	}
	bs := int(p.bs)
	for i := 0; (i+1)*bs <= len(j); i++ {
		b := j[i*bs:]
		if binary.BigEndian.Uint32(b) != jbd2Magic {
			continue
		}
		t := int(binary.BigEndian.Uint32(b[4:]))
		switch {
		case typ == 0 && i == 0, typ > 0 && t == typ:
			return p.blockOff("<8>", i)
		case typ == -1 && t == 1:
			return p.blockOff("<8>", i+1)
		}
	}
	p.t.Fatalf("no journal block of type %d", typ)
	return 0
}

// TestDataPartitionJournal: a data partition whose journal needs recovery
// reads as the device last saw it (the journal replayed in memory, the
// image not written); a corrupt journal is a clear error naming the
// partition, never a wrong diff.
func TestDataPartitionJournal(t *testing.T) {
	var cases []badCase
	corrupt := func(name string, typ int, off int64, want ...string) {
		for _, args := range [][]string{{"diff", "{image}"}, {"commit", "{image}", "-o", "{dir}/x.sqfs"}, {"inspect", "{image}"}} {
			cases = append(cases, badCase{
				name: args[0] + "/" + name, args: args, root: true, timeout: 30 * time.Second,
				setup: upperCase(func(p *dataPart) {
					p.powerCut()
					p.patch(p.journalBlock(typ)+off, uint8(0x5a))
				}),
				want: append([]string{"data partition", "journal"}, want...),
			})
		}
	}
	corrupt("journal superblock", 0, 0x30, "superblock: checksum")
	corrupt("descriptor block", 1, 20, "descriptor or revoke block checksum mismatch")
	corrupt("commit block", 2, 0x40, "commit block checksum mismatch")
	corrupt("logged block", -1, 100, "checksum mismatch")
	runCases(t, cases)
}

// TestDataPartitionNeedsRecovery: diff and commit read the upper as the
// device last wrote it.
func TestDataPartitionNeedsRecovery(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (a loop mount makes the power-cut journal)")
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "dev.img")
	copyFile(t, fixtureImage(t), img)
	upperCase(func(p *dataPart) { p.powerCut() })(t, dir)
	before := hashFile(t, img)
	out, err := exec.Command(rfsBin, "diff", img).CombinedOutput()
	if err != nil {
		t.Fatalf("rfs diff: %v\n%s", err, out)
	}
	for _, want := range []string{"A /etc/crash", "A /etc/motd", "A /etc/localtime"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("rfs diff output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "index.html") {
		t.Errorf("rfs diff shows the file removed before the power cut:\n%s", out)
	}
	if out, err := exec.Command(rfsBin, "inspect", img).CombinedOutput(); err != nil || !strings.Contains(string(out), "not shut down cleanly") {
		t.Errorf("rfs inspect: %v\n%s", err, out)
	}
	if after := hashFile(t, img); after != before {
		t.Error("reading the image changed it")
	}
}
