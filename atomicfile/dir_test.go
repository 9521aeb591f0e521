package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteDir(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	mine := func(d string) bool { _, err := os.Stat(filepath.Join(d, "mark")); return err == nil }
	write := func(content string) error {
		return WriteDir(out, mine, func(tmp string) error {
			if err := os.WriteFile(filepath.Join(tmp, "mark"), []byte(content), 0o644); err != nil {
				return err
			}
			if content == "fail" {
				return errors.New("fill failed")
			}
			return nil
		})
	}
	read := func() string { b, _ := os.ReadFile(filepath.Join(out, "mark")); return string(b) }
	if err := write("1"); err != nil || read() != "1" {
		t.Fatalf("new: %v %q", err, read())
	}
	if err := write("2"); err != nil || read() != "2" {
		t.Fatalf("replace an earlier output: %v %q", err, read())
	}
	if err := write("fail"); err == nil || read() != "2" {
		t.Fatalf("failed fill: %v, left %q", err, read())
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("mode %v %v", st, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
	os.WriteFile(filepath.Join(out, "mark"), nil, 0o644)
	os.Remove(filepath.Join(out, "mark"))
	os.WriteFile(filepath.Join(out, "other"), nil, 0o644)
	if err := write("3"); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("foreign directory: %v", err)
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	if err := WriteDir(file, mine, func(string) error { return nil }); err == nil || !strings.Contains(err.Error(), "regular file, not a directory") {
		t.Errorf("file: %v", err)
	}
	if err := CheckDir(".", mine); err == nil || !strings.Contains(err.Error(), "current directory") {
		t.Errorf("current directory: %v", err)
	}
}
