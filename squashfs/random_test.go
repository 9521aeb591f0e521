//go:build linux

package squashfs

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rfsbuild/rfs/rootfs"
)

// nameRunes are used in random names: ASCII, punctuation that needs
// escaping in listings, and multi-byte UTF-8. No '/', NUL or newline.
var nameRunes = []rune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ._-+=,;:!#$%&'()[]{}~@^\\\"éüßøЖж日本語🙂")

func randomName(r *rand.Rand) string {
	var n int
	switch r.IntN(10) {
	case 0:
		n = 255 // NAME_MAX: the host cannot extract longer names (256: TestName256)
	case 1:
		n = 100 + r.IntN(156)
	default:
		n = 1 + r.IntN(20)
	}
	var b strings.Builder
	for b.Len() < n {
		c := string(nameRunes[r.IntN(len(nameRunes))])
		if b.Len()+len(c) > n {
			c = "z"
		}
		b.WriteString(c)
	}
	s := b.String()
	if s == "." || s == ".." || strings.Contains(s, " -> ") {
		return "x" + s[1:]
	}
	return s
}

func randomContent(r *rand.Rand, bs int, prev [][]byte) []byte {
	var n int
	switch r.IntN(12) {
	case 0:
		return nil
	case 1:
		n = bs
	case 2:
		n = 2 * bs
	case 3:
		n = bs - 1
	case 4:
		n = bs + 1
	case 5:
		n = 3*bs + r.IntN(bs)
	case 6:
		if len(prev) > 0 { // a duplicate of an earlier file
			return prev[r.IntN(len(prev))]
		}
		n = 1
	default:
		n = 1 + r.IntN(bs/2)
	}
	b := make([]byte, n)
	switch r.IntN(4) {
	case 0: // incompressible
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
	case 1: // text
		for i := range b {
			b[i] = "abc de\n"[r.IntN(7)]
		}
	case 2: // zero blocks with some data
		for i := 0; i < n; i += 1 + r.IntN(3*bs) {
			b[i] = byte(r.IntN(255) + 1)
		}
	case 3: // all zeros
	}
	return b
}

// randomTree builds a tree with every node type, hard links, duplicates,
// empty and multi-block files, long and non-ASCII names and special bits.
func randomTree(t testing.TB, r *rand.Rand) *rootfs.Tree {
	t.Helper()
	const bs = 4096
	tree := rootfs.New(int64(r.Uint32()))
	ids := []uint32{0, 0, 0, 1, 1000, 65534, 65535, 65536, 4294967294}
	var links []*rootfs.Node
	var prev [][]byte
	var dirs []string
	dirs = append(dirs, "")
	budget := 20 + r.IntN(60)
	used := map[string]bool{}
	for range budget {
		parent := dirs[r.IntN(len(dirs))]
		name := randomName(r)
		p := parent + "/" + name
		if used[p] {
			continue
		}
		used[p] = true
		n := &rootfs.Node{
			Perm:  uint32(r.IntN(0o10000)),
			UID:   ids[r.IntN(len(ids))],
			GID:   ids[r.IntN(len(ids))],
			MTime: int64(r.Uint32()),
		}
		switch k := r.IntN(20); {
		case k < 8:
			n.Type = rootfs.Regular
			c := randomContent(r, bs, prev)
			if len(c) > 0 {
				prev = append(prev, c)
			}
			n.Content = rootfs.Bytes(c)
		case k < 12:
			n.Type = rootfs.Dir
			n.Perm |= 0o700
		case k < 14:
			n.Type = rootfs.Symlink
			n.Perm = 0o777
			n.Target = randomName(r)
			if r.IntN(3) == 0 {
				n.Target = "/" + n.Target + "/" + randomName(r)
			}
		case k == 14:
			n.Type = rootfs.CharDev
			n.Major, n.Minor = uint32(r.IntN(4096)), uint32(r.IntN(1<<20))
		case k == 15:
			n.Type = rootfs.BlockDev
			n.Major, n.Minor = uint32(r.IntN(4096)), uint32(r.IntN(300))
		case k == 16:
			n.Type = rootfs.FIFO
		case k == 17:
			n.Type = rootfs.Socket
		default:
			if len(links) == 0 {
				continue
			}
			n = links[r.IntN(len(links))] // a hard link
		}
		if n.Type == rootfs.Dir {
			d := rootfs.NewDir(n.Perm, n.MTime)
			d.UID, d.GID = n.UID, n.GID
			n = d
			dirs = append(dirs, p)
		} else {
			links = append(links, n)
		}
		add(t, tree, p, n)
	}
	return tree
}

// randomOptions rotates compressors, block sizes, worker counts and xattr
// support over the seeds.
func randomOptions(seed uint64) Options {
	opts := Options{BlockSize: 4096, Workers: 1 + int(seed%3), MTime: int64(seed)}
	if seed%10 == 9 {
		opts.BlockSize = 8192
	}
	switch seed % 4 {
	case 1:
		opts.Compressor = "xz"
	case 2:
		opts.Compressor = "zstd"
		if seed%8 == 6 {
			opts.Level = 3
		}
	}
	opts.Xattrs = seed%3 == 1
	return opts
}

// addRandomXattrs gives some nodes xattrs: any namespace on files and
// directories, trusted.* and security.* elsewhere (Linux refuses user.*
// on symlinks and devices). Some sets repeat, to share xattr ids.
func addRandomXattrs(r *rand.Rand, tree *rootfs.Tree) {
	sets := []map[string][]byte{
		{"user.a": []byte("1")},
		{"trusted.overlay.opaque": []byte("y")},
	}
	tree.Walk(func(p string, n *rootfs.Node) error {
		if r.IntN(3) != 0 {
			return nil
		}
		if r.IntN(2) == 0 {
			x := sets[r.IntN(len(sets))]
			if n.Type != rootfs.Regular && n.Type != rootfs.Dir {
				x = sets[1]
			}
			n.Xattrs = x
			return nil
		}
		x := map[string][]byte{}
		for range 1 + r.IntN(4) {
			ns := []string{"user.", "trusted.", "security."}[r.IntN(3)]
			if n.Type != rootfs.Regular && n.Type != rootfs.Dir && ns == "user." {
				ns = "trusted."
			}
			v := make([]byte, r.IntN(300))
			for i := range v {
				v[i] = byte(r.IntN(256))
			}
			name := randomName(r)
			for len(name) > 200 {
				name = name[:len(name)/2]
			}
			if !utf8.ValidString(name) {
				name = "n" + fmt.Sprint(len(name))
			}
			x[ns+name] = v
		}
		n.Xattrs = x
		return nil
	})
}

// TestRandomTrees writes 120 seeded random trees and checks each image with
// unsquashfs (listing, pseudo-file dump with exact metadata and data,
// extraction); the first 10 are also checked through a kernel mount.
func TestRandomTrees(t *testing.T) {
	needUnsquashfs(t)
	const seeds = 120
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 0x5157))
			tree := randomTree(t, r)
			opts := randomOptions(seed)
			if opts.Xattrs {
				addRandomXattrs(r, tree)
			}
			img := writeImage(t, tree, opts)
			checkUnsquashfs(t, img, tree, opts)
			if opts.Xattrs {
				checkExtractXattrs(t, img, tree)
			}
			if seed < 10 && os.Geteuid() == 0 {
				checkMount(t, img, tree)
			}
		})
	}
}
