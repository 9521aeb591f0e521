package qemu

import "runtime"

func hostArch() string { return runtime.GOARCH }
