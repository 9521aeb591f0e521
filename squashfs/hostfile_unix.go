//go:build unix

package squashfs

import (
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/rfsbuild/rfs/rootfs"
)

// hostFile reads a host file through its descriptor directly: os.File
// costs an epoll registration attempt, a cleanup and more allocations per
// file, which shows on trees of many small files.
type hostFile struct {
	fd   int
	path string
}

// openHost opens content that is a host file; ok is false for other
// sources.
func openHost(ino *inode) (s source, ok bool, err error) {
	hf, isHost := ino.node.Content.(rootfs.HostFile)
	if !isHost {
		return nil, false, nil
	}
	for {
		// O_NONBLOCK: a file replaced by a FIFO since the tree was
		// scanned must not block here (regular files ignore the flag).
		fd, err := syscall.Open(hf.Path, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, true, &os.PathError{Op: "open", Path: hf.Path, Err: err}
		}
		var st syscall.Stat_t
		if err := syscall.Fstat(fd, &st); err != nil {
			syscall.Close(fd)
			return nil, true, &os.PathError{Op: "stat", Path: hf.Path, Err: err}
		}
		if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
			syscall.Close(fd)
			return nil, true, fmt.Errorf("%s is no longer a regular file", hf.Path)
		}
		return &hostFile{fd: fd, path: hf.Path}, true, nil
	}
}

func (h *hostFile) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, err := syscall.Read(h.fd, p)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return 0, &os.PathError{Op: "read", Path: h.path, Err: err}
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (h *hostFile) Close() error { return syscall.Close(h.fd) }

func (h *hostFile) shortMeansEOF() bool { return true }
