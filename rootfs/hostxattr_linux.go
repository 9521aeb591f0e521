package rootfs

import "golang.org/x/sys/unix"

// errNoAttr is getxattr's "no such attribute".
const errNoAttr = unix.ENODATA
