package project

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		check   func(*File) bool
		wantErr string
	}{
		{"empty", "", func(f *File) bool { return f.Board == "" }, ""},
		{"starter", Starter, func(f *File) bool {
			return f.Board == "qemu-arm64" && f.Upper == "data" && f.Login != nil && !*f.Login
		}, ""},
		{"files", "files:\n  - a\n  - b:/opt\n", func(f *File) bool { return len(f.Files) == 2 && f.Files[1] == "b:/opt" }, ""},
		{"layers", "layers:\n  - a.sqfs\n  - b.sqfs\n", func(f *File) bool { return len(f.Layers) == 2 && f.Layers[1] == "b.sqfs" }, ""},
		{"unknown key", "board: qemu-arm64\n\nbaord: x\n", nil, `line 3: unknown key "baord"`},
		{"wrong type", "login: maybe\n", nil, "line 1"},
		{"syntax", "board: [\n", nil, "line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(f) {
				t.Fatalf("Parse = %+v", f)
			}
		})
	}
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, DefaultFile)
	if err := os.WriteFile(p, []byte("board: qemu-amd64\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if f.Dir != dir || f.Board != "qemu-amd64" {
		t.Fatalf("Load = %+v", f)
	}
	if _, err := Load(filepath.Join(dir, "nope.yaml")); err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
}

// Messages about a value name the file, the line and the key.
func TestWhere(t *testing.T) {
	p := filepath.Join(t.TempDir(), "rfs.yaml")
	os.WriteFile(p, []byte("# c\nboard: qemu-arm64\n\ndata_size: 1e30\nconfig_txt:\n  - a\n"), 0o644)
	f, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"data_size":  p + ":4: data_size",
		"config_txt": p + ":5: config_txt",
		"hostname":   p + ": hostname", // not in the file
	} {
		if got := f.Where(key); got != want {
			t.Errorf("Where(%q) = %q, want %q", key, got, want)
		}
	}
	if got := (&File{}).Where("size"); got != "size" {
		t.Errorf("Where without a file = %q", got)
	}
}
