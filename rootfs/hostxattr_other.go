//go:build !linux && !darwin

package rootfs

import (
	"errors"
	"runtime"
)

var errNoXattrs = errors.New("this host (" + runtime.GOOS + ") gives rfs no access to xattrs: keep them by building on Linux or macOS")

func listXattrs(string, []byte) ([]string, error) { return nil, errNoXattrs }

func getXattr(string, string, []byte) ([]byte, error) { return nil, nil }
