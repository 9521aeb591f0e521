package overlay

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMountErrorsKeepCause: a mount refused by the kernel reaches the
// caller as a StageError that still is the kernel's errno, so code above
// can tell EBUSY (someone holds the device) from other failures.
func TestMountErrorsKeepCause(t *testing.T) {
	needRoot(t)
	dev := attach(t, makeSquashfs(t, "A"))
	// Another holder opened the device exclusively: mount(2) gets EBUSY.
	hold, err := os.OpenFile(dev, os.O_RDONLY|unix.O_EXCL, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	b := NewBoot(t.TempDir(), io.Discard)
	err = b.MountLower(&RootMatch{Node: dev, Path: dev})
	defer b.Undo()
	if err == nil {
		t.Fatal("mounted a device held open with O_EXCL")
	}
	var se *StageError
	if !errors.As(err, &se) || se.Stage != "lower" {
		t.Fatalf("error %v (%T), want a StageError of stage lower", err, err)
	}
	if !errors.Is(err, unix.EBUSY) {
		t.Errorf("errors.Is(%v, EBUSY) = false: the cause is lost", err)
	}
	if !strings.Contains(err.Error(), "mount squashfs "+dev+" on "+LowerDir) {
		t.Errorf("message %q does not say which mount failed", err)
	}
}

// TestStageErrorUnwrap: the wrapping itself, without a kernel.
func TestStageErrorUnwrap(t *testing.T) {
	err := stageErr("upper", mountErr("tmpfs", "tmpfs", StagingDir, unix.ENOSPC), "detail")
	if !errors.Is(err, unix.ENOSPC) {
		t.Errorf("errors.Is(%v, ENOSPC) = false", err)
	}
	if want := "upper: mount tmpfs tmpfs on " + StagingDir + ": no space left on device"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
}
