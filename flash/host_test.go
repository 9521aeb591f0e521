package flash

import (
	"errors"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/hostos"
)

// The refusals of other hosts say what needs Linux and what to do there.
func TestNeedsLinuxMessages(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want []string
	}{
		{errNeedsLinux(), []string{"rfs flash needs Linux (", "/sys/block", "O_DIRECT", "balenaEtcher"}},
		{diskNeedsLinux("/dev/disk4"), []string{"using the disk /dev/disk4 needs Linux (", "/sys/block", "give an image file instead"}},
	} {
		var nl *hostos.NeedsLinuxError
		if !errors.As(tc.err, &nl) {
			t.Errorf("%v: not a NeedsLinuxError", tc.err)
		}
		for _, w := range tc.want {
			if !strings.Contains(tc.err.Error(), w) {
				t.Errorf("%q lacks %q", tc.err, w)
			}
		}
	}
}
