package layer

import (
	"errors"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/hostos"
)

// Other hosts refuse an upper directory with a message that says why and
// what to give instead.
func TestUpperDirNeedsLinux(t *testing.T) {
	err := upperDirNeedsLinux("/tmp/upper")
	var nl *hostos.NeedsLinuxError
	if !errors.As(err, &nl) {
		t.Fatalf("%v: not a NeedsLinuxError", err)
	}
	for _, want := range []string{"reading the upper directory /tmp/upper needs Linux", "trusted.overlay.*", "give the image instead"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
}
