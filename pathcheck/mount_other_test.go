//go:build !linux

package pathcheck

import "errors"

func bindMount(src, dst string) error { return errors.ErrUnsupported }
func unmount(dst string) error        { return errors.ErrUnsupported }
