package ptable

import (
	"os"
	"strings"
	"testing"
)

type fileDisk struct{ *os.File }

// TestGrowGPTTornPrimary: a power cut in the middle of the primary GPT
// write (new entries, old header: CRC mismatch) reads as the grown table
// from the backup at the end of the disk, and the next GrowPartition
// repairs the primary; sgdisk -v is clean at each end state.
func TestGrowGPTTornPrimary(t *testing.T) {
	t.Parallel()
	sg := needTool(t, "sgdisk")
	img := sparseImage(t, 40<<20)
	run(t, "", sg, "--clear", "-n1:2048:+8M", "-n2:0:+8M", "-n3:0:+16M", "-u3:3d2c1b0a-5f4e-4b6a-9c8d-0123456789ab", img)
	if err := os.Truncate(img, 100<<20); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	orig := make([]byte, 34*512)
	f.ReadAt(orig, 0)
	plan, err := GrowPartition(fileDisk{f}, 100<<20, 512, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	if plan.NewSize <= plan.OldSize || plan.Start+plan.NewSize != (100<<20)-33*512 {
		t.Fatalf("plan %+v", plan)
	}
	if out := run(t, "", sg, "-v", img); !strings.Contains(out, "No problems found") {
		t.Fatalf("sgdisk -v after growth:\n%s", out)
	}
	grown := make([]byte, 34*512)
	f.ReadAt(grown, 0)
	// Torn primary: the old header (LBA 1) with the new entries.
	torn := append(append([]byte(nil), orig[:1024]...), grown[1024:]...)
	f.WriteAt(torn, 0)
	tbl, err := ReadTable(f, 100<<20, 512)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := tbl.Find("3d2c1b0a-5f4e-4b6a-9c8d-0123456789ab")
	if !tbl.Backup || p.Size != plan.NewSize {
		t.Fatalf("torn primary: backup=%v size=%d, want the grown backup table (%d)", tbl.Backup, p.Size, plan.NewSize)
	}
	plan2, err := GrowPartition(fileDisk{f}, 100<<20, 512, 3, nil)
	if err != nil || !plan2.Repaired || plan2.NewSize != plan.NewSize {
		t.Fatalf("repair: %+v %v", plan2, err)
	}
	if out := run(t, "", sg, "-v", img); !strings.Contains(out, "No problems found") {
		t.Fatalf("sgdisk -v after repair:\n%s", out)
	}
	// Nothing left to do.
	plan3, err := GrowPartition(fileDisk{f}, 100<<20, 512, 3, nil)
	if err != nil || plan3.Repaired || plan3.NewSize != plan3.OldSize {
		t.Fatalf("third run: %+v %v", plan3, err)
	}
	// Partition 2 is not the last: never grown.
	plan4, err := GrowPartition(fileDisk{f}, 100<<20, 512, 2, nil)
	if err != nil || plan4.NewSize != plan4.OldSize {
		t.Fatalf("partition 2: %+v %v", plan4, err)
	}
}

func TestGrowSmallerDiskRefused(t *testing.T) {
	t.Parallel()
	sg := needTool(t, "sgdisk")
	img := sparseImage(t, 40<<20)
	run(t, "", sg, "--clear", "-n1:2048:0", img)
	os.Truncate(img, 30<<20)
	f, _ := os.OpenFile(img, os.O_RDWR, 0)
	defer f.Close()
	if _, err := GrowPartition(fileDisk{f}, 30<<20, 512, 1, nil); err == nil || !strings.Contains(err.Error(), "smaller") {
		t.Fatalf("err = %v, want: the disk is smaller than the image", err)
	}
}
