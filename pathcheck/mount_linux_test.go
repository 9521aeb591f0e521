package pathcheck

import "syscall"

func bindMount(src, dst string) error { return syscall.Mount(src, dst, "", syscall.MS_BIND, "") }
func unmount(dst string) error        { return syscall.Unmount(dst, 0) }
