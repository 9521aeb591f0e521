package qemu

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestParseMemory(t *testing.T) {
	for _, tt := range []struct{ in, machine, want, err string }{
		{"2G", "virt", "2048M", ""},
		{"512M", "q35", "512M", ""},
		{"1024MiB", "virt", "1024M", ""},
		{"1G", "raspi3b", "1024M", ""},
		{"2G", "raspi3b", "", "exactly 1G"},
		{"2G", "raspi4b", "2048M", ""},
		{"1G", "raspi4b", "", "raspi4b machine has exactly 2G"},
		{"512", "virt", "", "a bare number is bytes"},
		{"32M", "virt", "", "from 64M to 1T"},
		{"2T", "virt", "", "from 64M to 1T"},
		{fmt.Sprintf("%dM", hostMemory()/(1<<20)+1), "virt", "", "this host's memory"},
		{"1.5G", "virt", "", `--memory "1.5G": not a size`},
		{"1G,slots=2", "virt", "", "not a size"},
		{"-1G", "virt", "", "not a size"},
		{"1e3G", "virt", "", "not a size"},
	} {
		got, err := ParseMemory(tt.in, tt.machine)
		if tt.err == "" && (err != nil || got != tt.want) || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("ParseMemory(%q, %s) = %q, %v; want %q, %q", tt.in, tt.machine, got, err, tt.want, tt.err)
		}
	}
}

func TestCheckAppend(t *testing.T) {
	for in, want := range map[string]string{
		"console=ttyAMA0 rfs.shell":       "",
		"console=ttyAMA0 foo=\"a b\"":     "",
		"console=ttyAMA0\nrfs.shell":      `control character '\n'`,
		"console=ttyAMA0 \x00":            "control character",
		"console=ttyAMA0 \x1b]0;x\x07":    "control character",
		"console=ttyAMA0 foo=\"a":         "unbalanced",
		strings.Repeat("x", 2048):         "the limit is 2047",
		"console=ttyAMA0\trfs.debug":      "",
		"console=ttyAMA0 " + "rfs.init=/": "",
	} {
		err := Config{Append: "console=ttyAMA0 " + in}.CheckAppend(in)
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("CheckAppend(%.30q) = %v, want %q", in, err, want)
		}
	}
}

// A comma in a file name would start another -drive option.
func TestDriveCommas(t *testing.T) {
	c := Config{QEMU: Config{}.QEMU, Disk: "/tmp/a,snapshot=off,file=/etc/shadow", OtherDisks: []string{"/o,x.img"}, FirmwareCode: "/c,d", FirmwareVars: "/v,w"}
	args := c.Args()
	for _, want := range []string{
		"file=/tmp/a,,snapshot=off,,file=/etc/shadow,format=raw,if=,snapshot=on",
		"file=/o,,x.img,format=raw,if=,snapshot=on",
		"if=pflash,format=raw,readonly=on,file=/c,,d",
		"if=pflash,format=raw,file=/v,,w",
	} {
		if !slices.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
}
