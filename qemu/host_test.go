package qemu

import (
	"errors"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/hostos"
)

// What rfs run says on each host when QEMU or its firmware is missing, and
// when --kvm is asked for where there is no KVM.
func TestHostHints(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{installHint("linux"), "apt-get install qemu-system-arm qemu-system-x86"},
		{installHint("darwin"), "brew install qemu"},
		{installHint("windows"), "qemu.org"},
		{firmwareHint("linux"), "apt-get install ovmf"},
		{firmwareHint("darwin"), "brew install qemu"},
	} {
		if !strings.Contains(tc.got, tc.want) {
			t.Errorf("%q lacks %q", tc.got, tc.want)
		}
	}
	err := kvmNeedsLinux()
	var nl *hostos.NeedsLinuxError
	if !errors.As(err, &nl) || !strings.Contains(err.Error(), "rfs run --kvm needs Linux (") || !strings.Contains(err.Error(), "without --kvm") {
		t.Errorf("%v", err)
	}
}
