package hostos

import (
	"errors"
	"fmt"
	"testing"
)

func TestNeedsLinux(t *testing.T) {
	for _, tc := range []struct{ goos, want string }{
		{"darwin", "rfs flash needs Linux (it reads /sys/block); this host runs macOS"},
		{"windows", "rfs flash needs Linux (it reads /sys/block); this host runs Windows"},
		{"plan9", "rfs flash needs Linux (it reads /sys/block); this host runs plan9"},
	} {
		err := fmt.Errorf("wrapped: %w", &NeedsLinuxError{What: "rfs flash", Why: "it reads /sys/block", GOOS: tc.goos})
		var nl *NeedsLinuxError
		if !errors.As(err, &nl) {
			t.Fatalf("%s: errors.As failed", tc.goos)
		}
		if got := nl.Error(); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.goos, got, tc.want)
		}
	}
	var nl *NeedsLinuxError
	if !errors.As(NeedsLinux("x", "y"), &nl) || nl.What != "x" || nl.Why != "y" {
		t.Errorf("NeedsLinux: %#v", nl)
	}
}
