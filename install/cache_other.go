//go:build !linux

package install

import "os"

func dropCache(*os.File) {}
