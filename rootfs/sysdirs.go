package rootfs

import "fmt"

// systemDirs are directories every user's programs must be able to read
// and search. /tmp and /var/tmp must also be world-writable and sticky.
var systemDirs = []string{
	"/", "/bin", "/sbin", "/lib", "/lib64", "/etc", "/usr", "/usr/bin", "/usr/sbin", "/usr/lib",
	"/usr/share", "/usr/local", "/usr/local/bin", "/var", "/var/lib", "/var/log", "/run",
	"/dev", "/home", "/opt", "/tmp", "/var/tmp",
}

// SystemDirProblems returns, by path, what is wrong with the mode of each
// system directory in t: not readable and searchable by others (only root
// could then use what is below), or a temporary directory that is not
// 1777. Paths that are missing or not directories (/bin may be a symlink)
// are not checked.
func (t *Tree) SystemDirProblems() map[string]string {
	out := map[string]string{}
	for _, p := range systemDirs {
		n := t.Lookup(p)
		if n == nil || n.Type != Dir {
			continue
		}
		switch {
		case (p == "/tmp" || p == "/var/tmp") && n.Perm&0o1777 != 0o1777:
			out[p] = fmt.Sprintf("mode %04o, not 1777 (world-writable with the sticky bit)", n.Perm)
		case n.Perm&0o005 != 0o005:
			out[p] = fmt.Sprintf("mode %04o: other users cannot read or enter it", n.Perm)
		}
	}
	return out
}
