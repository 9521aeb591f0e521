package initramfs

import (
	"bytes"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/u-root/u-root/pkg/cpio"

	"github.com/rfsbuild/rfs/rootfs"
)

// Contents says what goes into the initramfs.
type Contents struct {
	Init    []byte // the rfs-init binary, installed as /init
	Busybox []byte // a static busybox for the rescue shell
	MTime   int64
}

// Tree lays out the initramfs: /init, /bin/busybox with sh, /dev/console
// (the kernel opens it before any devtmpfs exists), and the mount points
// the init uses.
func (c Contents) Tree() (*rootfs.Tree, error) {
	t := rootfs.New(c.MTime)
	for _, d := range []string{"/dev", "/proc", "/sys", "/run", "/sysroot", "/bin"} {
		if err := t.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	nodes := map[string]*rootfs.Node{
		"/init":        {Type: rootfs.Regular, Perm: 0o755, Content: rootfs.Bytes(c.Init)},
		"/bin/busybox": {Type: rootfs.Regular, Perm: 0o755, Content: rootfs.Bytes(c.Busybox)},
		"/bin/sh":      {Type: rootfs.Symlink, Perm: 0o777, Target: "busybox"},
		"/dev/console": {Type: rootfs.CharDev, Perm: 0o600, Major: 5, Minor: 1},
	}
	for p, n := range nodes {
		n.MTime = c.MTime
		if err := t.Add(p, n); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Write writes t as a gzip-compressed newc cpio archive, entries in tree
// order with inode numbers counted from 1, so equal trees give equal bytes.
func Write(w io.Writer, t *rootfs.Tree) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	rw := cpio.Newc.Writer(zw)
	inodes := map[*rootfs.Node]uint64{}
	err = t.Walk(func(p string, n *rootfs.Node) error {
		if p == "/" {
			return nil // the kernel's rootfs already exists
		}
		ino, ok := inodes[n]
		if !ok {
			ino = uint64(len(inodes) + 1)
			inodes[n] = ino
		}
		info := cpio.Info{
			Ino:   ino,
			Mode:  uint64(n.Perm),
			UID:   uint64(n.UID),
			GID:   uint64(n.GID),
			NLink: 1,
			MTime: uint64(n.MTime),
			Name:  p[1:],
		}
		var content []byte
		switch n.Type {
		case rootfs.Dir:
			info.Mode |= cpio.S_IFDIR
			info.NLink = 2
		case rootfs.Regular:
			info.Mode |= cpio.S_IFREG
			if n.Content != nil {
				rc, err := n.Content.Open()
				if err != nil {
					return fmt.Errorf("initramfs %s: %w", p, err)
				}
				content, err = io.ReadAll(rc)
				rc.Close()
				if err != nil {
					return fmt.Errorf("initramfs %s: %w", p, err)
				}
			}
		case rootfs.Symlink:
			info.Mode |= cpio.S_IFLNK
			content = []byte(n.Target)
		case rootfs.CharDev, rootfs.BlockDev:
			info.Mode |= cpio.S_IFCHR
			if n.Type == rootfs.BlockDev {
				info.Mode = info.Mode&^cpio.S_IFCHR | cpio.S_IFBLK
			}
			info.Rmajor, info.Rminor = uint64(n.Major), uint64(n.Minor)
		case rootfs.FIFO:
			info.Mode |= cpio.S_IFIFO
		case rootfs.Socket:
			info.Mode |= cpio.S_IFSOCK
		}
		info.FileSize = uint64(len(content))
		return rw.WriteRecord(cpio.Record{ReaderAt: bytes.NewReader(content), Info: info})
	})
	if err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	if err := cpio.WriteTrailer(rw); err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	return zw.Close()
}
