package bootparam

import (
	"path"
	"strings"
)

// HostMount is one rfs.mount=TAG:/path[:ro]: the 9P export QEMU offers
// under the virtio mount tag TAG, mounted by the init on /path in the new
// root (rfs run --mount). Unlike other parameters, rfs.mount may be given
// several times: each one is a mount.
type HostMount struct {
	Tag      string // virtio-9p mount tag: [A-Za-z0-9_.-], 1 to MaxTagLen bytes
	Path     string // absolute, clean, outside ReservedMountPaths
	ReadOnly bool
}

// MaxTagLen bounds a mount tag (QEMU and the kernel allow more; rfs run
// uses rfs0, rfs1, ...).
const MaxTagLen = 31

// ReservedMountPaths are the trees a host directory must not be mounted
// on: the root itself, the API filesystems the init moves into the new
// root (/dev, /proc, /sys, /run: /run/rfs is the init's), and /tmp, which
// the userland's init mounts a tmpfs over (busybox rcS, u-root), hiding
// anything mounted below it before.
var ReservedMountPaths = []string{"/dev", "/proc", "/sys", "/run", "/tmp"}

// String renders m as rfs.mount's value.
func (m HostMount) String() string {
	s := m.Tag + ":" + m.Path
	if m.ReadOnly {
		s += ":ro"
	}
	return s
}

// ParseHostMount parses rfs.mount's value TAG:/path[:ro|:rw]. On error
// the message says why.
func ParseHostMount(v string) (HostMount, string) {
	tag, rest, ok := strings.Cut(v, ":")
	if !ok {
		return HostMount{}, "expected TAG:/path[:ro]"
	}
	if p := MountTagProblem(tag); p != "" {
		return HostMount{}, p
	}
	m := HostMount{Tag: tag, Path: rest}
	if p, mode, ok := strings.Cut(rest, ":"); ok {
		switch mode {
		case "ro":
			m.ReadOnly = true
		case "rw":
		default:
			return HostMount{}, "expected :ro or :rw after the path, not :" + mode
		}
		m.Path = p
	}
	if p := MountPathProblem(m.Path); p != "" {
		return HostMount{}, p
	}
	return m, ""
}

// MountTagProblem says what is wrong with a mount tag ("" if nothing).
func MountTagProblem(tag string) string {
	if tag == "" || len(tag) > MaxTagLen {
		return "the mount tag must be 1 to 31 characters"
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return "the mount tag " + tag + " may hold only letters, digits, _ . -"
		}
	}
	return ""
}

// MountPathProblem says what is wrong with p as the path a host
// directory is mounted on in the device ("" if nothing): it must be
// absolute and clean, hold no colon (rfs.mount's separator), double quote
// or control character (the kernel command line could not carry it), and
// lie outside ReservedMountPaths.
func MountPathProblem(p string) string {
	if !strings.HasPrefix(p, "/") {
		return "the path in the device must be absolute, not " + p
	}
	if path.Clean(p) != p {
		return "the path in the device must be clean (" + path.Clean(p) + ", not " + p + ")"
	}
	if p == "/" {
		return "a host directory cannot be mounted on / (the overlay root)"
	}
	if i := strings.IndexFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '"' || r == ':' }); i >= 0 {
		return "the path in the device may not hold a colon, a double quote or a control character: " + p
	}
	for _, r := range ReservedMountPaths {
		if p == r || strings.HasPrefix(p, r+"/") {
			return p + " is under " + r + ", which the init or the userland mounts over: pick another path"
		}
	}
	return ""
}

// checkDuplicateMount refuses a second mount on the same path or tag.
func checkDuplicateMount(have []HostMount, m HostMount) string {
	for _, h := range have {
		if h.Path == m.Path {
			return "a host directory is already mounted on " + m.Path
		}
		if h.Tag == m.Tag {
			return "the mount tag " + m.Tag + " is already used"
		}
	}
	return ""
}
