package ext4

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The message for a missing mke2fs names each host's way to get it.
func TestMissingMke2fs(t *testing.T) {
	for _, tc := range []struct {
		goos string
		want []string
	}{
		{"linux", []string{"mke2fs not found: install e2fsprogs"}},
		{"darwin", []string{"brew install e2fsprogs", "$(brew --prefix e2fsprogs)/sbin", "/opt/homebrew/opt/e2fsprogs/sbin", "PATH"}},
		{"windows", []string{"mke2fs.exe on PATH", "WSL"}},
	} {
		msg := missingMke2fs(tc.goos)
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: %q lacks %q", tc.goos, msg, w)
			}
		}
	}
}

// copyNonZero, the copy of hosts without SEEK_DATA, gives the bytes
// copyData gives.
func TestCopyNonZero(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	content := make([]byte, 5<<20+123)
	copy(content[3<<20+7:], "data in the fourth MiB")
	content[len(content)-1] = 1
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for name, cp := range map[string]func(*writerAt, *os.File, int64) error{
		"copyData":    func(w *writerAt, f *os.File, n int64) error { return copyData(w, f, n) },
		"copyNonZero": func(w *writerAt, f *os.File, n int64) error { return copyNonZero(w, f, n) },
	} {
		w := &writerAt{b: make([]byte, len(content))}
		if err := cp(w, f, int64(len(content))); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(w.b, content) {
			t.Errorf("%s: copy differs", name)
		}
	}
}

type writerAt struct{ b []byte }

func (w *writerAt) WriteAt(p []byte, off int64) (int, error) { return copy(w.b[off:], p), nil }
