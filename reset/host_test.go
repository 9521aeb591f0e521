package reset

import (
	"errors"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/hostos"
)

// rfs reset --now on other hosts says it needs Linux and what works there.
func TestNowNeedsLinux(t *testing.T) {
	err := nowNeedsLinux()
	var nl *hostos.NeedsLinuxError
	if !errors.As(err, &nl) {
		t.Fatalf("%v: not a NeedsLinuxError", err)
	}
	for _, w := range []string{"rfs reset --now needs Linux (", "mounts the data partition", "without --now"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q lacks %q", err, w)
		}
	}
}
