// Package rootfs holds the in-memory tree model that every output format is
// written from: the squashfs lower layer, the initramfs cpio and the FAT boot
// partition. Ownership, modes, device numbers and times live in the model, so
// no step needs root on the build host and the same tree always gives the same
// bytes.
package rootfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/rfsbuild/rfs/infile"
)

// Type is the kind of a node.
type Type uint8

const (
	Regular Type = iota
	Dir
	Symlink
	CharDev
	BlockDev
	FIFO
	Socket
)

func (t Type) String() string {
	switch t {
	case Regular:
		return "file"
	case Dir:
		return "dir"
	case Symlink:
		return "symlink"
	case CharDev:
		return "chardev"
	case BlockDev:
		return "blockdev"
	case FIFO:
		return "fifo"
	case Socket:
		return "socket"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Source is the content of a regular file. Open is called once per output
// written, so it must return a fresh reader every time.
type Source interface {
	Size() int64
	Open() (io.ReadCloser, error)
}

// Bytes is file content held in memory.
type Bytes []byte

func (b Bytes) Size() int64                  { return int64(len(b)) }
func (b Bytes) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }

// HostFile is file content read from the build host when an output is written.
type HostFile struct {
	Path string
	Len  int64
	// ID, when set, names content that cannot change — a file in a module
	// whose hash was verified, say "module@version h1:sum /path" — so
	// Digest can use the name instead of reading the content.
	ID string
}

func (f HostFile) Size() int64 { return f.Len }
func (f HostFile) Open() (io.ReadCloser, error) {
	fh, err := infile.Open("", f.Path)
	if err != nil {
		return nil, err
	}
	return fh, nil
}

// Node is one inode. Hard links are several directory entries that point to
// the same *Node; writers detect them by pointer identity.
type Node struct {
	Type  Type
	Perm  uint32 // permission bits including setuid, setgid and sticky (07777)
	UID   uint32
	GID   uint32
	MTime int64 // seconds since the Unix epoch

	Content Source            // Regular
	Target  string            // Symlink
	Major   uint32            // CharDev, BlockDev
	Minor   uint32            // CharDev, BlockDev
	Xattrs  map[string][]byte // extended attributes, if any

	children map[string]*Node // Dir
}

// Size is the content length of a regular file, the target length of a
// symlink, and 0 otherwise.
func (n *Node) Size() int64 {
	switch n.Type {
	case Regular:
		if n.Content == nil {
			return 0
		}
		return n.Content.Size()
	case Symlink:
		return int64(len(n.Target))
	}
	return 0
}

// Entry is a named child of a directory.
type Entry struct {
	Name string
	Node *Node
}

// Children returns a directory's entries sorted by name (byte order), which is
// the order squashfs and every reproducible archive needs.
func (n *Node) Children() []Entry {
	out := make([]Entry, 0, len(n.children))
	for name, c := range n.children {
		out = append(out, Entry{name, c})
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Child returns the named entry of a directory, or nil.
func (n *Node) Child(name string) *Node { return n.children[name] }

// NumChildren is the number of entries in a directory.
func (n *Node) NumChildren() int { return len(n.children) }

// Tree is a root directory and everything under it.
type Tree struct {
	Root *Node
	// MTime is given to nodes created implicitly (parent directories).
	MTime int64
}

// New returns a tree holding only "/" (0755, root:root) with the given time.
func New(mtime int64) *Tree {
	return &Tree{Root: &Node{Type: Dir, Perm: 0o755, MTime: mtime, children: map[string]*Node{}}, MTime: mtime}
}

// NewDir returns a directory node, ready to be added.
func NewDir(perm uint32, mtime int64) *Node {
	return &Node{Type: Dir, Perm: perm, MTime: mtime, children: map[string]*Node{}}
}

// ErrEscapes reports a path that would land outside the tree's root.
var ErrEscapes = errors.New("path escapes the root")

// Clean turns p into a slash-separated path relative to the root, with no
// "." or ".." components. A path that climbs above the root is an error:
// callers bring user input here and must not silently re-root it.
func Clean(p string) (string, error) {
	var parts []string
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "", ".":
		case "..":
			if len(parts) == 0 {
				return "", fmt.Errorf("%q: %w", p, ErrEscapes)
			}
			parts = parts[:len(parts)-1]
		default:
			parts = append(parts, c)
		}
	}
	return strings.Join(parts, "/"), nil
}

// maxSymlinks bounds symlink resolution, like the kernel's ELOOP limit.
const maxSymlinks = 40

// resolveDir walks to the directory at rel, following symlinks inside the
// tree as a chroot would (an absolute target or ".." never leaves the root).
// With create, missing directories are made with mode 0755.
func (t *Tree) resolveDir(rel string, create bool, hops *int) (*Node, error) {
	cur := t.Root
	var stack []*Node // ancestors of cur, for ".."
	comps := strings.Split(rel, "/")
	for i := 0; i < len(comps); i++ {
		c := comps[i]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) > 0 {
				cur, stack = stack[len(stack)-1], stack[:len(stack)-1]
			}
			continue
		}
		next := cur.children[c]
		if next == nil {
			if !create {
				return nil, fmt.Errorf("%s: %w", "/"+strings.Join(comps[:i+1], "/"), os.ErrNotExist)
			}
			next = NewDir(0o755, t.MTime)
			cur.children[c] = next
		}
		if next.Type == Symlink {
			*hops++
			if *hops > maxSymlinks {
				return nil, fmt.Errorf("/%s: too many levels of symbolic links", strings.Join(comps[:i+1], "/"))
			}
			target := next.Target
			rest := append(strings.Split(target, "/"), comps[i+1:]...)
			if strings.HasPrefix(target, "/") {
				cur, stack = t.Root, nil
			}
			comps, i = rest, -1
			continue
		}
		if next.Type != Dir {
			return nil, fmt.Errorf("/%s: not a directory", strings.Join(comps[:i+1], "/"))
		}
		stack = append(stack, cur)
		cur = next
	}
	return cur, nil
}

// Add puts n at p, creating missing parent directories (0755). Symlinks in
// the parent path are followed inside the tree. An existing entry of the same
// type is replaced unless both are directories, in which case the existing
// directory keeps its children and takes n's metadata. Replacing an entry by
// one of another type is an error, as it almost always is a mistake in the
// user's files (a directory where the base has a symlink, say).
func (t *Tree) Add(p string, n *Node) error {
	rel, err := Clean(p)
	if err != nil {
		return err
	}
	if rel == "" {
		if n.Type != Dir {
			return fmt.Errorf("/: cannot replace the root with a %s", n.Type)
		}
		t.Root.Perm, t.Root.UID, t.Root.GID, t.Root.MTime, t.Root.Xattrs = n.Perm, n.UID, n.GID, n.MTime, n.Xattrs
		return nil
	}
	dir, name := path.Split(rel)
	hops := 0
	parent, err := t.resolveDir(dir, true, &hops)
	if err != nil {
		return fmt.Errorf("add /%s: %w", rel, err)
	}
	if old := parent.children[name]; old != nil {
		switch {
		case old.Type == Dir && n.Type == Dir:
			old.Perm, old.UID, old.GID, old.MTime, old.Xattrs = n.Perm, n.UID, n.GID, n.MTime, n.Xattrs
			return nil
		case old.Type != n.Type:
			return fmt.Errorf("add /%s: a %s is already there, refusing to replace it with a %s", rel, old.Type, n.Type)
		}
	}
	if n.Type == Dir && n.children == nil {
		n.children = map[string]*Node{}
	}
	parent.children[name] = n
	return nil
}

// MkdirAll makes p and its missing parents with the given mode.
func (t *Tree) MkdirAll(p string, perm uint32) error {
	return t.Add(p, NewDir(perm, t.MTime))
}

// Lookup returns the node at p without following a final symlink, or nil.
func (t *Tree) Lookup(p string) *Node {
	rel, err := Clean(p)
	if err != nil {
		return nil
	}
	if rel == "" {
		return t.Root
	}
	dir, name := path.Split(rel)
	hops := 0
	parent, err := t.resolveDir(dir, false, &hops)
	if err != nil {
		return nil
	}
	return parent.children[name]
}

// Remove deletes the entry at p (and everything under it).
func (t *Tree) Remove(p string) error {
	rel, err := Clean(p)
	if err != nil {
		return err
	}
	if rel == "" {
		return errors.New("cannot remove /")
	}
	dir, name := path.Split(rel)
	hops := 0
	parent, err := t.resolveDir(dir, false, &hops)
	if err != nil {
		return err
	}
	if parent.children[name] == nil {
		return fmt.Errorf("/%s: %w", rel, os.ErrNotExist)
	}
	delete(parent.children, name)
	return nil
}

// WalkFunc is called for each entry; p is absolute ("/" for the root).
type WalkFunc func(p string, n *Node) error

// Walk visits the root and then every entry depth-first, children in name
// order, so every consumer sees the same sequence.
func (t *Tree) Walk(fn WalkFunc) error {
	if err := fn("/", t.Root); err != nil {
		return err
	}
	return walk("", t.Root, fn)
}

func walk(prefix string, dir *Node, fn WalkFunc) error {
	for _, e := range dir.Children() {
		p := prefix + "/" + e.Name
		if err := fn(p, e.Node); err != nil {
			return err
		}
		if e.Node.Type == Dir {
			if err := walk(p, e.Node, fn); err != nil {
				return err
			}
		}
	}
	return nil
}
