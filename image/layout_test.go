package image

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func fill(b byte, n int64) func(context.Context, io.WriterAt) (int64, error) {
	return func(_ context.Context, w io.WriterAt) (int64, error) {
		_, err := w.WriteAt(bytes.Repeat([]byte{b}, int(n)), 0)
		return n, err
	}
}

func TestWriteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "disk.img")
	l := Layout{
		DiskGUID: "11111111-2222-4333-8444-555555555555",
		Partitions: []Partition{
			{Name: "a", Type: TypeESP, GUID: "aaaaaaaa-0000-4000-8000-000000000001", Size: 2 * MiB, Write: fill('a', 1000)},
			{Name: "b", Type: TypeRootARM64, GUID: "bbbbbbbb-0000-4000-8000-000000000002", Write: fill('b', MiB+1)},
		},
	}
	placed, err := l.WriteFile(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if placed[0].Start != MiB || placed[1].Start != 3*MiB || placed[1].Size != 2*MiB {
		t.Fatalf("placed = %+v", placed)
	}
	st, _ := os.Stat(path)
	if st.Size() != 6*MiB {
		t.Fatalf("image size %d, want 6 MiB (content + 1 MiB for the backup GPT)", st.Size())
	}
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b, err := d.Partition("b")
	if err != nil || b.GUID != "bbbbbbbb-0000-4000-8000-000000000002" || b.Type != TypeRootARM64 {
		t.Fatalf("read back b = %+v, %v", b, err)
	}
	head := make([]byte, 4)
	d.Section(b).ReadAt(head, 0)
	if string(head) != "bbbb" {
		t.Fatalf("partition b starts with %q", head)
	}
	if _, err := exec.LookPath("sgdisk"); err == nil {
		out, err := exec.Command("sgdisk", "-v", path).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "No problems found") {
			t.Fatalf("sgdisk -v: %v\n%s", err, out)
		}
	}
}

func TestWriteFileErrorsLeaveNothing(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		layout  Layout
		wantErr string
	}{
		{"too small", Layout{Size: 2 * MiB, Partitions: []Partition{{Name: "a", Write: fill('a', MiB)}}}, "too small"},
		{"write fails", Layout{Partitions: []Partition{{Name: "a", Write: func(context.Context, io.WriterAt) (int64, error) { return 0, boom }}}}, "boom"},
		{"overflow", Layout{Partitions: []Partition{{Name: "a", Size: MiB, Write: fill('a', 2*MiB)}}}, "wrote"},
		{"unaligned", Layout{Partitions: []Partition{{Name: "a", Size: 1000, Write: fill('a', 1)}}}, "multiple of 1 MiB"},
		{"no partitions", Layout{}, "partitions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "disk.img")
			_, err := tt.layout.WriteFile(context.Background(), path)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("WriteFile error = %v, want %q", err, tt.wantErr)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("left behind: %v", entries)
			}
		})
	}
}

func TestWriteFileKeepsOldImageOnFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	os.WriteFile(path, []byte("previous image"), 0o644)
	l := Layout{Partitions: []Partition{{Name: "a", Write: func(context.Context, io.WriterAt) (int64, error) { return 0, errors.New("interrupted") }}}}
	if _, err := l.WriteFile(context.Background(), path); err == nil {
		t.Fatal("expected an error")
	}
	if got, _ := os.ReadFile(path); string(got) != "previous image" {
		t.Fatalf("previous image clobbered: %q", got)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"512M": 512 << 20, "2G": 2 << 30, "1.5GiB": 3 << 29, "4096": 4096, "64k": 64 << 10, "1MB": 1 << 20} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "lots", "-1G", "G"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) succeeded", bad)
		}
	}
}
