package overlay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// LiveChange is one line of `rfs-init diff`: Kind is "A", "C" or "D".
type LiveChange struct {
	Kind string `json:"kind"`
	Path string `json:"path"`
}

// LiveDiff lists what changed on the running system: the upper directory
// against the lowers (top first), with the rules of `rfs diff` on the host
// (package layer): A added (everything under an added directory too), D for
// the top of a deleted lower subtree (a whiteout, char 0/0; or a lower entry
// hidden by an opaque directory), C for a changed entry and for every
// directory with a change beneath. A file copied up unchanged is not listed.
func LiveDiff(upper string, lowers []string) ([]LiveChange, error) {
	changes := map[string]string{}
	var walk func(rel string) error
	walk = func(rel string) error {
		ents, err := os.ReadDir(filepath.Join(upper, rel))
		if err != nil {
			return err
		}
		for _, e := range ents {
			p := path.Join(rel, e.Name())
			up := filepath.Join(upper, p)
			var st unix.Stat_t
			if err := unix.Lstat(up, &st); err != nil {
				return err
			}
			low, lowSt := lowerLookup(lowers, p)
			if isWhiteout(&st) {
				if low != "" {
					changes["/"+p] = "D"
				}
				continue
			}
			if low == "" {
				addAll(up, "/"+p, changes)
				continue
			}
			isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
			if isDir && lowSt.Mode&unix.S_IFMT == unix.S_IFDIR {
				if opaque(up) {
					changes["/"+p] = "C"
					hidden, _ := os.ReadDir(low)
					for _, h := range hidden {
						if _, err := os.Lstat(filepath.Join(up, h.Name())); errors.Is(err, os.ErrNotExist) {
							changes["/"+path.Join(p, h.Name())] = "D"
						}
					}
				} else if metaDiffers(&st, lowSt) {
					changes["/"+p] = "C"
				}
				if err := walk(p); err != nil {
					return err
				}
				continue
			}
			if differs(up, &st, low, lowSt) {
				changes["/"+p] = "C"
			}
		}
		return nil
	}
	if err := walk(""); err != nil {
		return nil, fmt.Errorf("diff %s: %w", upper, err)
	}
	// A change makes each existing parent directory C.
	for p, k := range changes {
		if k == "" {
			continue
		}
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if changes[d] == "" {
				changes[d] = "C"
			}
		}
	}
	out := make([]LiveChange, 0, len(changes))
	for p, k := range changes {
		out = append(out, LiveChange{Kind: k, Path: p})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// lowerLookup finds rel in the topmost lower that has it, honouring the
// whiteouts that committed layers carry (char 0/0 on the path or a parent).
func lowerLookup(lowers []string, rel string) (string, *unix.Stat_t) {
	for _, l := range lowers {
		var st unix.Stat_t
		parts := strings.Split(rel, "/")
		for i := 1; i < len(parts); i++ {
			if unix.Lstat(filepath.Join(l, filepath.Join(parts[:i]...)), &st) == nil && isWhiteout(&st) {
				return "", nil
			}
		}
		p := filepath.Join(l, rel)
		if unix.Lstat(p, &st) == nil {
			if isWhiteout(&st) {
				return "", nil
			}
			return p, &st
		}
	}
	return "", nil
}

func isWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

func opaque(dir string) bool {
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(dir, "trusted.overlay.opaque", buf)
	return err == nil && n == 1 && buf[0] == 'y'
}

func addAll(hostPath, p string, changes map[string]string) {
	changes[p] = "A"
	ents, err := os.ReadDir(hostPath)
	if err != nil {
		return
	}
	for _, e := range ents {
		addAll(filepath.Join(hostPath, e.Name()), path.Join(p, e.Name()), changes)
	}
}

func metaDiffers(a, b *unix.Stat_t) bool {
	return a.Mode != b.Mode || a.Uid != b.Uid || a.Gid != b.Gid || a.Mtim.Sec != b.Mtim.Sec
}

func differs(a string, as *unix.Stat_t, b string, bs *unix.Stat_t) bool {
	if metaDiffers(as, bs) || as.Size != bs.Size || as.Rdev != bs.Rdev {
		return true
	}
	switch as.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		ta, _ := os.Readlink(a)
		tb, _ := os.Readlink(b)
		return ta != tb
	case unix.S_IFREG:
		return !sameContent(a, b)
	}
	return false
}

func sameContent(a, b string) bool {
	fa, err := os.Open(a)
	if err != nil {
		return false
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false
	}
	defer fb.Close()
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false
		}
		if ea != nil || eb != nil {
			return ea != nil && eb != nil
		}
	}
}

// helperDiff is `rfs-init diff [--json]` on the booted device.
func helperDiff(args []string, stdout, stderr io.Writer) int {
	asJSON := false
	for _, a := range args {
		if a != "--json" {
			fmt.Fprintf(stderr, "rfs-init diff: unknown option %s\n", a)
			return 2
		}
		asJSON = true
	}
	s, err := ReadStatus(statusRoot + StatusPath)
	if err != nil {
		fmt.Fprintf(stderr, "rfs-init diff: %v (was the system booted by rfs-init?)\n", err)
		return 1
	}
	// Lowers top first: the layers (status lists the base first).
	var lowers []string
	for i := len(s.Lower) - 1; i >= 0; i-- {
		lowers = append(lowers, statusRoot+s.Lower[i].Mountpoint)
	}
	changes, err := LiveDiff(statusRoot+UpperDir, lowers)
	if err != nil {
		fmt.Fprintf(stderr, "rfs-init diff: %v\n", err)
		return 1
	}
	if asJSON {
		b, _ := json.MarshalIndent(changes, "", "  ")
		fmt.Fprintf(stdout, "%s\n", b)
		return 0
	}
	for _, c := range changes {
		fmt.Fprintf(stdout, "%s %s\n", c.Kind, c.Path)
	}
	return 0
}
