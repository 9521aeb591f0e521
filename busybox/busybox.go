// Package busybox installs a static busybox into a tree, with a link for
// every applet it was built with. The applet list is read from the binary's
// own name table, so a foreign-arch busybox is never executed on the host.
package busybox

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/rfsbuild/rfs/rootfs"
)

// Applets returns the applet names compiled into a busybox binary.
//
// Busybox keeps its applet names as one sorted, NUL-separated string
// (applet_names[] in the generated applet_tables.h) whose first entries are
// "[" and "[[" whenever the test applet is built, which every useful config
// has. Reading it works the same for every architecture's ELF.
func Applets(bin []byte) ([]string, error) {
	start := bytes.Index(bin, []byte("[\x00[[\x00"))
	if start < 0 {
		return nil, errors.New("no applet name table found (is this a busybox binary with the [ applet?)")
	}
	rest := bin[start:]
	var names []string
	for {
		i := bytes.IndexByte(rest, 0)
		if i <= 0 {
			break
		}
		name := string(rest[:i])
		if !validName(name) {
			break
		}
		names = append(names, name)
		rest = rest[i+1:]
	}
	if len(names) < 10 || !slices.IsSorted(names) {
		return nil, fmt.Errorf("applet name table looks wrong (%d names)", len(names))
	}
	return names, nil
}

func validName(s string) bool {
	if len(s) > 32 {
		return false
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '[' || c == ']'
		if !ok {
			return false
		}
	}
	return true
}

// Layout says where the binary and its links go.
const (
	// BinDir holds busybox and one symlink per applet. /bin, /sbin and
	// /usr/sbin are symlinks to it (a merged /usr), so any path a script
	// uses for an applet — /bin/sh, /sbin/init, /usr/bin/env — resolves.
	BinDir = "/usr/bin"
	Binary = BinDir + "/busybox"
)

// Install adds the busybox binary at hostPath to t with a symlink per applet
// and the merged-/usr symlinks. Existing entries at applet paths are kept:
// user files win over applet links.
func Install(t *rootfs.Tree, hostPath string) ([]string, error) {
	bin, err := os.ReadFile(hostPath)
	if err != nil {
		return nil, fmt.Errorf("read busybox: %w", err)
	}
	applets, err := Applets(bin)
	if err != nil {
		return nil, fmt.Errorf("busybox %s: %w", hostPath, err)
	}
	if err := t.MkdirAll(BinDir, 0o755); err != nil {
		return nil, err
	}
	for _, l := range []struct{ path, target string }{
		{"/bin", "usr/bin"}, {"/sbin", "usr/bin"}, {"/usr/sbin", "bin"},
	} {
		if err := t.Add(l.path, &rootfs.Node{Type: rootfs.Symlink, Perm: 0o777, Target: l.target, MTime: t.MTime}); err != nil {
			return nil, fmt.Errorf("install busybox: %w", err)
		}
	}
	if err := t.Add(Binary, &rootfs.Node{Type: rootfs.Regular, Perm: 0o755, MTime: t.MTime, Content: rootfs.Bytes(bin)}); err != nil {
		return nil, fmt.Errorf("install busybox: %w", err)
	}
	for _, a := range applets {
		if a == "busybox" {
			continue
		}
		p := BinDir + "/" + a
		if t.Lookup(p) != nil {
			continue
		}
		if err := t.Add(p, &rootfs.Node{Type: rootfs.Symlink, Perm: 0o777, Target: "busybox", MTime: t.MTime}); err != nil {
			return nil, fmt.Errorf("install busybox applet %s: %w", a, err)
		}
	}
	return applets, nil
}
