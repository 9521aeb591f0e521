package overlay

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ResizePartition tells the kernel the new size of partition pno of the
// disk at diskNode (BLKPG_RESIZE_PARTITION; works on a mounted partition).
func ResizePartition(diskNode string, pno int, start, length int64) error {
	fd, err := unix.Open(diskNode, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	part := unix.BlkpgPartition{Start: start, Length: length, Pno: int32(pno)}
	arg := unix.BlkpgIoctlArg{
		Op:      unix.BLKPG_RESIZE_PARTITION,
		Datalen: int32(unsafe.Sizeof(part)),
		Data:    (*byte)(unsafe.Pointer(&part)),
	}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.BLKPG, uintptr(unsafe.Pointer(&arg))); e != 0 {
		return e
	}
	return nil
}

// ext4IocResizeFS is EXT4_IOC_RESIZE_FS, _IOW('f', 16, __u64), the same on
// arm, arm64 and amd64.
const ext4IocResizeFS = 0x40086610

// ResizeExt4 grows the ext4 filesystem mounted at mountpoint to newBlocks
// (online, EXT4_IOC_RESIZE_FS).
func ResizeExt4(mountpoint string, newBlocks uint64) error {
	fd, err := unix.Open(mountpoint, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), ext4IocResizeFS, uintptr(unsafe.Pointer(&newBlocks))); e != 0 {
		return e
	}
	return nil
}

// blockDevSize returns the size in bytes of an open block device.
func blockDevSize(f *os.File) (int64, error) {
	var n uint64
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&n))); e != 0 {
		return 0, e
	}
	return int64(n), nil
}
