//go:build !linux

package install

import (
	"errors"
	"os"
)

func dropCache(*os.File) {}

// StatfsFree is Device.Free where rfs has no statfs: unknown.
func StatfsFree(string) (int64, error) { return 0, errors.ErrUnsupported }
