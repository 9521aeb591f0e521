package ptable

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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

func openTable(t *testing.T, p string, ss int) *Table {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	tab, err := ReadTable(f, st.Size(), ss)
	if err != nil {
		t.Fatalf("ReadTable(%s): %v", p, err)
	}
	return tab
}

func TestGUIDString(t *testing.T) {
	// Linux filesystem data type GUID as stored on disk (mixed endian).
	b := []byte{0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4}
	if got, want := GUIDString(b), "0fc63daf-8483-4772-8e79-3d69d8477de4"; got != want {
		t.Errorf("GUIDString = %s, want %s", got, want)
	}
}

func TestNormalizePARTUUID(t *testing.T) {
	for in, want := range map[string]string{
		"6F3B1C8E-2A4D-4C1B-9E55-0A1B2C3D4E5F": "6f3b1c8e-2a4d-4c1b-9e55-0a1b2c3d4e5f",
		"DEADBEEF-0a":                          "deadbeef-0a",
		"deadbeef-2":                           "",
		"deadbeef-00":                          "",
		"6f3b1c8e2a4d4c1b9e550a1b2c3d4e5f":     "",
		"6f3b1c8e-2a4d-4c1b-9e55-0a1b2c3d4e5g": "",
		"":                                     "",
	} {
		got, err := NormalizePARTUUID(in)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("NormalizePARTUUID(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

const (
	guidBoot  = "c0ffee00-1111-4222-8333-444455556666"
	guidRootA = "6f3b1c8e-2a4d-4c1b-9e55-0a1b2c3d4e5f"
	guidRootB = "0a1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d3"
	guidDisk  = "12345678-9abc-4def-8123-456789abcdef"
)

// makeGPT partitions a sparse 64 MiB image with sgdisk: 1 ESP, 2 root A,
// 3 root B (a second rfs slot), 4 data.
func makeGPT(t *testing.T) string {
	sg := needTool(t, "sgdisk")
	img := sparseImage(t, 64<<20)
	run(t, "", sg, "--clear", "--disk-guid="+guidDisk,
		"-n1:2048:+8M", "-t1:ef00", "-u1:"+guidBoot, "-c1:EFI system",
		"-n2:0:+16M", "-t2:4f68bce3-e8cd-4db1-96e7-fbcaf984b709", "-u2:"+strings.ToUpper(guidRootA), "-c2:root-a",
		"-n3:0:+16M", "-t3:4f68bce3-e8cd-4db1-96e7-fbcaf984b709", "-u3:"+guidRootB, "-c3:root-b",
		"-n4:0:0", "-t4:8300", "-u4:R", "-c4:data",
		img)
	return img
}

func TestReadTableGPT(t *testing.T) {
	img := makeGPT(t)
	tab := openTable(t, img, 0)
	if tab.Kind != TableGPT || tab.DiskID != guidDisk || tab.SectorSize != 512 || tab.Backup {
		t.Fatalf("table = %+v", tab)
	}
	if len(tab.Partitions) != 4 {
		t.Fatalf("got %d partitions, want 4: %+v", len(tab.Partitions), tab.Partitions)
	}
	for _, tc := range []struct {
		id    string
		num   int
		start int64
		size  int64
		name  string
		typ   string
	}{
		{guidBoot, 1, 2048 * 512, 8 << 20, "EFI system", "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"},
		{guidRootA, 2, 2048*512 + 8<<20, 16 << 20, "root-a", "4f68bce3-e8cd-4db1-96e7-fbcaf984b709"},
		{strings.ToUpper(guidRootB), 3, 2048*512 + 24<<20, 16 << 20, "root-b", "4f68bce3-e8cd-4db1-96e7-fbcaf984b709"},
	} {
		p, ok := tab.Find(tc.id)
		if !ok {
			t.Errorf("Find(%s): not found", tc.id)
			continue
		}
		if p.Number != tc.num || p.Start != tc.start || p.Size != tc.size || p.Name != tc.name || p.Type != tc.typ ||
			p.PARTUUID != strings.ToLower(tc.id) {
			t.Errorf("Find(%s) = %+v, want number %d start %d size %d name %q type %s", tc.id, p, tc.num, tc.start, tc.size, tc.name, tc.typ)
		}
	}
	// Cross-check the random GUID of partition 4 with sgdisk's own view.
	info := run(t, "", needTool(t, "sgdisk"), "-i4", img)
	p4 := tab.Partitions[3]
	if !strings.Contains(strings.ToLower(info), "unique guid: "+p4.PARTUUID) {
		t.Errorf("sgdisk -i4 says\n%s\nwe read %s", info, p4.PARTUUID)
	}

	f, _ := os.Open(img)
	defer f.Close()
	if _, _, err := FindPartition(f, 64<<20, 0, "11111111-2222-4333-8444-555555555555"); err == nil ||
		!strings.Contains(err.Error(), "no partition with PARTUUID 11111111-2222-4333-8444-555555555555 in gpt table "+guidDisk) {
		t.Errorf("unknown GUID: err = %v", err)
	}
	if _, _, err := FindPartition(f, 64<<20, 0, "nonsense"); err == nil || !strings.Contains(err.Error(), "invalid PARTUUID") {
		t.Errorf("invalid id: err = %v", err)
	}
	// An MBR-style id never matches a GPT disk.
	if _, ok := tab.Find("12345678-02"); ok {
		t.Error("MBR id matched on a GPT disk")
	}
}

func TestReadTableGPTBackup(t *testing.T) {
	img := makeGPT(t)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Damage the primary header's CRC area.
	if _, err := f.WriteAt([]byte{0xde, 0xad}, 512+16); err != nil {
		t.Fatal(err)
	}
	tab, err := ReadTable(f, 64<<20, 0)
	if err != nil {
		t.Fatalf("ReadTable with damaged primary: %v", err)
	}
	if !tab.Backup || len(tab.Partitions) != 4 {
		t.Fatalf("want 4 partitions from the backup header, got %+v", tab)
	}
	if p, ok := tab.Find(guidRootA); !ok || p.Number != 2 {
		t.Errorf("Find in backup = %+v %v", p, ok)
	}
	// Without the size there is no backup to read: a clear error.
	if _, err := ReadTable(f, 0, 0); err == nil || !strings.Contains(err.Error(), "CRC mismatch") {
		t.Errorf("ReadTable without size: %v, want CRC mismatch", err)
	}
}

// makeMBR partitions a sparse image with sfdisk: 1 FAT boot (0x0c,
// bootable), 2 root, 3 extended with logicals 5 and 6.
func makeMBR(t *testing.T, labelID string) string {
	sf := needTool(t, "sfdisk")
	img := sparseImage(t, 64<<20)
	script := "label: dos\nlabel-id: 0x" + labelID + "\nunit: sectors\n\n" +
		"start=2048, size=16384, type=c, bootable\n" +
		"start=18432, size=32768, type=83\n" +
		"start=51200, size=65536, type=5\n" +
		"start=53248, size=8192, type=83\n" +
		"start=63488, size=8192, type=83\n"
	run(t, script, sf, "--no-reread", "--no-tell-kernel", img)
	return img
}

func TestReadTableMBR(t *testing.T) {
	img := makeMBR(t, "1a2b3c4d")
	tab := openTable(t, img, 0)
	if tab.Kind != TableMBR || tab.DiskID != "1a2b3c4d" {
		t.Fatalf("table = %+v", tab)
	}
	for _, tc := range []struct {
		id          string
		num         int
		start, size int64
		typ         string
	}{
		{"1a2b3c4d-01", 1, 2048 * 512, 16384 * 512, "0x0c"},
		{"1A2B3C4D-02", 2, 18432 * 512, 32768 * 512, "0x83"},
		{"1a2b3c4d-03", 3, 51200 * 512, 65536 * 512, "0x05"},
		{"1a2b3c4d-05", 5, 53248 * 512, 8192 * 512, "0x83"},
		{"1a2b3c4d-06", 6, 63488 * 512, 8192 * 512, "0x83"},
	} {
		p, ok := tab.Find(tc.id)
		if !ok {
			t.Errorf("Find(%s): not found in %+v", tc.id, tab.Partitions)
			continue
		}
		if p.Number != tc.num || p.Start != tc.start || p.Size != tc.size || p.Type != tc.typ {
			t.Errorf("Find(%s) = %+v, want number %d start %d size %d type %s", tc.id, p, tc.num, tc.start, tc.size, tc.typ)
		}
	}
	// sfdisk's own dump must agree on every start.
	dump := run(t, "", needTool(t, "sfdisk"), "--dump", img)
	for _, p := range tab.Partitions {
		want := "start=" + padLeft(p.Start/512, 12) // sfdisk pads starts to 12 columns
		if !strings.Contains(dump, want) {
			t.Errorf("sfdisk --dump has no %q for partition %d:\n%s", want, p.Number, dump)
		}
	}
	f, _ := os.Open(img)
	defer f.Close()
	for _, id := range []string{"1a2b3c4d-04", "1a2b3c4d-07", "deadbeef-02"} {
		if _, _, err := FindPartition(f, 64<<20, 0, id); err == nil || !strings.Contains(err.Error(), "no partition with PARTUUID "+id+" in mbr table 1a2b3c4d") {
			t.Errorf("FindPartition(%s): err = %v", id, err)
		}
	}
}

func padLeft(n int64, w int) string {
	s := []byte(strings.Repeat(" ", w))
	d := []byte(strings.TrimSpace(strings.Repeat(" ", 0) + itoa(n)))
	copy(s[w-len(d):], d)
	return string(s)
}

func itoa(n int64) string {
	var b []byte
	if n == 0 {
		return "0"
	}
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

func TestReadTableNone(t *testing.T) {
	img := sparseImage(t, 1<<20)
	f, _ := os.Open(img)
	defer f.Close()
	if _, err := ReadTable(f, 1<<20, 0); err != ErrNoTable {
		t.Errorf("empty disk: err = %v, want ErrNoTable", err)
	}
	// A squashfs written straight to a disk (no table) is not a table either.
	if _, err := ReadTable(bytes.NewReader(append([]byte("hsqs"), make([]byte, 8192)...)), 8196, 0); err != ErrNoTable {
		t.Errorf("squashfs: err = %v", err)
	}
	// Too short to read.
	if _, err := ReadTable(bytes.NewReader(make([]byte, 100)), 100, 0); err == nil {
		t.Error("short disk: no error")
	}
}

// TestReadTableGPT4K checks a GPT on a 4096-byte-sector disk, made by
// sgdisk on a loop device with 4 KiB logical sectors (root only).
func TestReadTableGPT4K(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root for a 4K-sector loop device")
	}
	sg := needTool(t, "sgdisk")
	losetup := needTool(t, "losetup")
	img := sparseImage(t, 64<<20)
	loop := strings.TrimSpace(run(t, "", losetup, "--find", "--show", "--sector-size", "4096", img))
	t.Cleanup(func() { exec.Command(losetup, "-d", loop).Run() })
	run(t, "", sg, "--clear", "--disk-guid="+guidDisk, "-n1:256:+8M", "-u1:"+guidRootA, loop)
	exec.Command(losetup, "-d", loop).Run()
	for _, ss := range []int{0, 4096} {
		tab := openTable(t, img, ss)
		p, ok := tab.Find(guidRootA)
		if tab.SectorSize != 4096 || !ok || p.Number != 1 || p.Start != 256*4096 || p.Size != 8<<20 {
			t.Errorf("sectorSize %d: table %+v, partition %+v", ss, tab, p)
		}
	}
}
