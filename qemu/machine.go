package qemu

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"runtime"
	"time"

	"github.com/rfsbuild/rfs/boards"
)

// ErrNoMachine is wrapped by Check's error when the installed QEMU lacks
// the machine (older than the machine's Since).
var ErrNoMachine = errors.New("the installed QEMU lacks the machine")

// checkMachine asks q.Binary whether it has q.Machine, for machines that
// common QEMUs lack (Since set): QEMU's own refusal ("unsupported machine
// type") would not say where a newer QEMU comes from.
func checkMachine(q boards.QEMU) error {
	if q.Since == "" || q.Machine == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, q.Binary, "-machine", "help").Output()
	if err != nil {
		return fmt.Errorf("%s -machine help: %w", q.Binary, err)
	}
	if hasMachine(out, q.Machine) {
		return nil
	}
	version := "an older QEMU"
	if v, err := exec.CommandContext(ctx, q.Binary, "-version").Output(); err == nil {
		if m := regexp.MustCompile(`version (\S+)`).FindSubmatch(v); m != nil {
			version = "QEMU " + string(m[1])
		}
	}
	return noMachineError(fmt.Sprintf("%s is %s, which has no %s machine (QEMU %s added it): install a newer QEMU (%s)",
		q.Binary, version, q.Machine, q.Since, newerQEMUHint(runtime.GOOS)))
}

// noMachineError is checkMachine's refusal: it is ErrNoMachine.
type noMachineError string

func (e noMachineError) Error() string        { return string(e) }
func (e noMachineError) Is(target error) bool { return target == ErrNoMachine }

// hasMachine reports whether QEMU's -machine help lists name: a line
// starting with it, its description after blanks.
func hasMachine(help []byte, name string) bool {
	return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(\s|$)`).Match(help)
}

// newerQEMUHint says where a QEMU with the newer Arm machines comes from.
func newerQEMUHint(goos string) string {
	switch goos {
	case "darwin":
		return "macOS: brew upgrade qemu"
	case "windows":
		return "Windows: a current installer from qemu.org"
	}
	return "Debian 12 bookworm: add bookworm-backports to apt's sources, then apt-get install -t bookworm-backports qemu-system-arm, which make deps in rfs's source does; Debian 13, Ubuntu 24.10 or newer: apt-get install qemu-system-arm"
}
