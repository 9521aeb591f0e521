package kernel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func header(set func(b []byte)) []byte {
	b := make([]byte, 4096)
	set(b)
	return b
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name    string
		data    []byte
		want    Format
		wantErr string
	}{
		{"arm64", header(func(b []byte) { copy(b[0x38:], "ARM\x64") }), ARM64Image, ""},
		{"bzImage 64-bit", header(func(b []byte) {
			copy(b[0x202:], "HdrS")
			binary.LittleEndian.PutUint16(b[0x206:], 0x020f)
			b[0x236] = 1
		}), BzImage, ""},
		{"bzImage 32-bit", header(func(b []byte) {
			copy(b[0x202:], "HdrS")
			binary.LittleEndian.PutUint16(b[0x206:], 0x020f)
		}), "", "64-bit entry point"},
		{"zImage", header(func(b []byte) { binary.LittleEndian.PutUint32(b[0x24:], 0x016f2818) }), ARMzImage, ""},
		{"text", []byte("#!/bin/sh\necho not a kernel\n"), "", "not a recognised"},
		{"empty", nil, "", "not a recognised"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Detect(bytes.NewReader(tt.data))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Detect() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Detect() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestCheckWrongArch(t *testing.T) {
	p := filepath.Join(t.TempDir(), "Image")
	if err := os.WriteFile(p, header(func(b []byte) { copy(b[0x38:], "ARM\x64") }), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(p, "arm64"); err != nil {
		t.Fatalf("Check(arm64) = %v", err)
	}
	_, err := Check(p, "amd64")
	if err == nil || !strings.Contains(err.Error(), "board is amd64") {
		t.Fatalf("Check(amd64) = %v, want wrong-arch error", err)
	}
	if _, err := Check(filepath.Join(t.TempDir(), "missing"), "arm64"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Check(missing) = %v, want ErrNotExist", err)
	}
}
