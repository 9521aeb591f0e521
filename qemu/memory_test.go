package qemu

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseMemory(t *testing.T) {
	host := hostMemory()
	for _, tc := range []struct {
		in, want, err string
	}{
		{"1G", "1024M", ""},
		{"512M", "512M", ""},
		{"2048", "2048M", ""}, // QEMU's unit for plain numbers
		{"1.5G", "1536M", ""},
		{"100000000G", "", "want 16M to"},
		{fmt.Sprint(host/(1<<20) + 1), "", "this host's memory"},
		{"8M", "", "want 16M to"},
		{"0", "", "want 16M to"},
		{"lots", "", "want a size"},
		{"", "", "want a size"},
		{"16385K", "", "whole number of MiB"},
	} {
		got, err := ParseMemory(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("ParseMemory(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseMemory(%q) = %q, %v; want an error with %q", tc.in, got, err, tc.err)
		}
	}
}
