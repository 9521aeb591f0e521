//go:build linux

package squashfs

// Helpers that check an image against the tree model with squashfs-tools
// and with the kernel.

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/rfsbuild/rfs/rootfs"
)

// entry is one path of the model, in rootfs.Tree.Walk order.
type entry struct {
	path string // "/" or "/a/b"
	node *rootfs.Node
}

func modelOf(t testing.TB, tree *rootfs.Tree) []entry {
	t.Helper()
	var out []entry
	if err := tree.Walk(func(p string, n *rootfs.Node) error {
		out = append(out, entry{p, n})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func contentOf(t testing.TB, n *rootfs.Node) []byte {
	t.Helper()
	if n.Content == nil {
		return nil
	}
	rc, err := n.Content.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func needUnsquashfs(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("unsquashfs"); err != nil {
		t.Skip("unsquashfs (squashfs-tools) not installed: skipping the check of the image against squashfs-tools")
	}
}

func writeImage(t testing.TB, tree *rootfs.Tree, opts Options) string {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "img.sqfs"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := Write(f, tree, opts)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if n != st.Size() || n%4096 != 0 {
		t.Fatalf("Write returned %d, file is %d bytes (want equal, multiple of 4096)", n, st.Size())
	}
	return f.Name()
}

func run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.Bytes())
	}
	return out
}

func modeString(n *rootfs.Node) string {
	var m os.FileMode
	switch n.Type {
	case rootfs.Dir:
		m = os.ModeDir
	case rootfs.Symlink:
		m = os.ModeSymlink
	case rootfs.CharDev:
		m = os.ModeDevice | os.ModeCharDevice
	case rootfs.BlockDev:
		m = os.ModeDevice
	case rootfs.FIFO:
		m = os.ModeNamedPipe
	case rootfs.Socket:
		m = os.ModeSocket
	}
	m |= os.FileMode(n.Perm & 0o777)
	if n.Perm&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if n.Perm&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if n.Perm&0o1000 != 0 {
		m |= os.ModeSticky
	}
	return lsMode(m)
}

// lsMode renders a mode like ls -l (and unsquashfs -lln) does.
func lsMode(m os.FileMode) string {
	b := []byte("----------")
	switch {
	case m&os.ModeDir != 0:
		b[0] = 'd'
	case m&os.ModeSymlink != 0:
		b[0] = 'l'
	case m&os.ModeCharDevice != 0:
		b[0] = 'c'
	case m&os.ModeDevice != 0:
		b[0] = 'b'
	case m&os.ModeNamedPipe != 0:
		b[0] = 'p'
	case m&os.ModeSocket != 0:
		b[0] = 's'
	}
	const rwx = "rwxrwxrwx"
	for i := range 9 {
		if m&(1<<(8-i)) != 0 {
			b[1+i] = rwx[i]
		}
	}
	special := func(i int, set bool, c byte) {
		if !set {
			return
		}
		if b[i] == '-' {
			b[i] = c - 'a' + 'A'
		} else {
			b[i] = c
		}
	}
	special(3, m&os.ModeSetuid != 0, 's')
	special(6, m&os.ModeSetgid != 0, 's')
	special(9, m&os.ModeSticky != 0, 't')
	return string(b)
}

var llnLine = regexp.MustCompile(`^([-dlcbps][-rwxsStT]{9}) (\d+)/(\d+) +(\d+|-?\d+, *\d+) (\d{4}-\d\d-\d\d \d\d:\d\d) squashfs-root(.*)$`)

// checkLLN compares `unsquashfs -lln` with the model: mode string,
// uid/gid, size (device numbers for devices), mtime to the minute, path and
// symlink target, in order.
func checkLLN(t testing.TB, img string, model []entry) {
	t.Helper()
	out := run(t, "unsquashfs", "-lln", "-UTC", img)
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(model) {
		t.Fatalf("unsquashfs -lln: %d lines, model has %d entries\n%s", len(lines), len(model), out)
	}
	for i, line := range lines {
		e := model[i]
		m := llnLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("unsquashfs -lln: cannot parse %q", line)
		}
		n := e.node
		p := m[6]
		if n.Type == rootfs.Symlink {
			p = strings.TrimSuffix(p, " -> "+n.Target)
		}
		want := e.path
		if want == "/" {
			want = ""
		}
		if p != want {
			t.Errorf("line %d: path %q, want %q (line %q)", i, p, want, line)
			continue
		}
		var size string
		switch n.Type {
		case rootfs.CharDev, rootfs.BlockDev:
			maj, min := unsquashfsDev(n)
			size = fmt.Sprintf("%d,%d", maj, min)
			m[4] = strings.ReplaceAll(m[4], " ", "")
		case rootfs.Dir:
			size = m[4] // listing size: checked by the kernel walk
		default:
			size = strconv.FormatInt(n.Size(), 10)
		}
		got := fmt.Sprintf("%s %s/%s %s %s", m[1], m[2], m[3], m[4], m[5])
		wantS := fmt.Sprintf("%s %d/%d %s %s", modeString(n), n.UID, n.GID, size, unixUTC(n.MTime))
		if got != wantS {
			t.Errorf("%s: unsquashfs -lln says %q, want %q", e.path, got, wantS)
		}
	}
}

func unixUTC(sec int64) string {
	return timeUTC(sec).Format("2006-01-02 15:04")
}

// pfEntry is a line of `unsquashfs -pf` (a pseudo file definition), which
// carries exact times, modes, ids, device numbers, link targets, hard links
// and the file data.
type pfEntry struct {
	kind                 string
	mtime                int64
	perm, uid, gid       uint64
	size, off            int64
	major, minor         int64
	target, link, ipcTyp string
}

// parseID parses a uid or gid; unsquashfs -pf prints them as signed ints.
func parseID(s string) uint64 {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 1 << 40 // never equal to a model id
	}
	return uint64(uint32(v))
}

func unescapePF(s string) (name, rest string) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case ' ':
			return b.String(), s[i+1:]
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), ""
}

// checkPF compares `unsquashfs -pf` with the model: exact metadata, content
// and hard links to regular files, fifos, sockets and devices.
func checkPF(t testing.TB, img string, model []entry) {
	t.Helper()
	pf := filepath.Join(t.TempDir(), "pf")
	run(t, "unsquashfs", "-n", "-pf", pf, img)
	raw, err := os.ReadFile(pf)
	if err != nil {
		t.Fatal(err)
	}
	const marker = "#\n# START OF DATA - DO NOT MODIFY\n#\n"
	i := bytes.Index(raw, []byte(marker))
	if i < 0 {
		t.Fatalf("unsquashfs -pf: no data marker")
	}
	data := raw[i+len(marker):]
	got := map[string]pfEntry{}
	sc := bufio.NewScanner(bytes.NewReader(raw[:i]))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, rest := unescapePF(line)
		f := strings.SplitN(rest, " ", 7)
		var e pfEntry
		e.kind = f[0]
		if e.kind == "L" {
			e.link, _ = unescapePF(rest[2:])
			got[name] = e
			continue
		}
		if len(f) < 5 {
			t.Fatalf("unsquashfs -pf: bad line %q", line)
		}
		e.mtime, _ = strconv.ParseInt(f[1], 10, 64)
		e.perm, _ = strconv.ParseUint(f[2], 8, 32)
		e.uid, e.gid = parseID(f[3]), parseID(f[4])
		switch e.kind {
		case "R":
			x := strings.Fields(strings.Join(f[5:], " "))
			e.size, _ = strconv.ParseInt(x[0], 10, 64)
			e.off, _ = strconv.ParseInt(x[1], 10, 64)
		case "C", "B":
			x := strings.Fields(strings.Join(f[5:], " "))
			e.major, _ = strconv.ParseInt(x[0], 10, 32)
			e.minor, _ = strconv.ParseInt(x[1], 10, 32)
		case "S":
			e.target = strings.Join(f[5:], " ")
		case "I":
			e.ipcTyp = f[5]
		}
		got[name] = e
	}
	if len(got) != len(model) {
		t.Errorf("unsquashfs -pf lists %d entries, model has %d", len(got), len(model))
	}
	byNode := map[*rootfs.Node]string{}
	for _, me := range model {
		name := strings.TrimPrefix(me.path, "/")
		if name == "" {
			name = "/"
		}
		byNode[me.node] = name
	}
	pathNode := map[string]*rootfs.Node{}
	for _, me := range model {
		name := strings.TrimPrefix(me.path, "/")
		if name == "" {
			name = "/"
		}
		pathNode[name] = me.node
	}
	for _, me := range model {
		n := me.node
		name := strings.TrimPrefix(me.path, "/")
		if name == "" {
			name = "/"
		}
		e, ok := got[name]
		if !ok {
			t.Errorf("%s: missing from unsquashfs -pf", me.path)
			continue
		}
		if e.kind == "L" {
			if pathNode[e.link] != n {
				t.Errorf("%s: unsquashfs says hard link to %q, which is not the same node", me.path, e.link)
			}
			continue
		}
		kinds := map[rootfs.Type]string{rootfs.Regular: "R", rootfs.Dir: "D", rootfs.Symlink: "S", rootfs.CharDev: "C", rootfs.BlockDev: "B", rootfs.FIFO: "I", rootfs.Socket: "I"}
		if e.kind != kinds[n.Type] {
			t.Errorf("%s: kind %s, want %s", me.path, e.kind, kinds[n.Type])
			continue
		}
		if e.mtime != n.MTime || e.perm != uint64(n.Perm) || e.uid != uint64(n.UID) || e.gid != uint64(n.GID) {
			t.Errorf("%s: mtime/perm/uid/gid %d %o %d %d, want %d %o %d %d", me.path, e.mtime, e.perm, e.uid, e.gid, n.MTime, n.Perm, n.UID, n.GID)
		}
		switch n.Type {
		case rootfs.Regular:
			want := contentOf(t, n)
			if e.size != int64(len(want)) || e.off+e.size > int64(len(data)) {
				t.Errorf("%s: size %d at %d, want size %d", me.path, e.size, e.off, len(want))
			} else if !bytes.Equal(data[e.off:e.off+e.size], want) {
				t.Errorf("%s: content differs", me.path)
			}
		case rootfs.Symlink:
			if e.target != n.Target {
				t.Errorf("%s: target %q, want %q", me.path, e.target, n.Target)
			}
		case rootfs.CharDev, rootfs.BlockDev:
			if maj, min := unsquashfsDev(n); e.major != maj || e.minor != min {
				t.Errorf("%s: device %d:%d, want %d:%d (as unsquashfs decodes %d:%d)", me.path, e.major, e.minor, maj, min, n.Major, n.Minor)
			}
		case rootfs.FIFO, rootfs.Socket:
			want := map[rootfs.Type]string{rootfs.FIFO: "f", rootfs.Socket: "s"}[n.Type]
			if e.ipcTyp != want {
				t.Errorf("%s: ipc type %s, want %s", me.path, e.ipcTyp, want)
			}
		}
	}
}

// checkExtract extracts the image with unsquashfs -d and compares file
// contents, symlink targets and entry types with the model.
func checkExtract(t testing.TB, img string, model []entry) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "x")
	args := []string{"-n", "-q", "-d", dir, img}
	if os.Geteuid() != 0 {
		// Device nodes cannot be made without root.
		args = append([]string{"-ig", "-no-exit-code"}, args...)
	}
	run(t, "unsquashfs", args...)
	for _, e := range model {
		p := filepath.Join(dir, e.path)
		fi, err := os.Lstat(p)
		if err != nil {
			if os.Geteuid() != 0 && (e.node.Type == rootfs.CharDev || e.node.Type == rootfs.BlockDev) {
				continue
			}
			t.Errorf("extracted: %v", err)
			continue
		}
		if got, want := lsMode(fi.Mode())[0], modeString(e.node)[0]; got != want {
			t.Errorf("%s: extracted type %c, want %c", e.path, got, want)
		}
		switch e.node.Type {
		case rootfs.Regular:
			b, err := os.ReadFile(p)
			if err != nil {
				t.Error(err)
			} else if !bytes.Equal(b, contentOf(t, e.node)) {
				t.Errorf("%s: extracted content differs", e.path)
			}
		case rootfs.Symlink:
			if l, err := os.Readlink(p); err != nil || l != e.node.Target {
				t.Errorf("%s: extracted link %q %v, want %q", e.path, l, err, e.node.Target)
			}
		}
	}
}

// checkSuper runs unsquashfs -s and checks a few of the values it prints.
func checkSuper(t testing.TB, img string, model []entry, opts Options) {
	t.Helper()
	out := string(run(t, "unsquashfs", "-s", img))
	inodes := map[*rootfs.Node]bool{}
	for _, e := range model {
		inodes[e.node] = true
	}
	bs := opts.BlockSize
	if bs == 0 {
		bs = DefaultBlockSize
	}
	for _, want := range []string{
		"Found a valid SQUASHFS 4:0 superblock",
		"Compression " + cmp.Or(opts.Compressor, "gzip"),
		fmt.Sprintf("Block size %d\n", bs),
		fmt.Sprintf("Number of inodes %d\n", len(inodes)),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("unsquashfs -s: no %q in\n%s", want, out)
		}
	}
}

// checkUnsquashfs runs every squashfs-tools check.
func checkUnsquashfs(t testing.TB, img string, tree *rootfs.Tree, opts Options) {
	t.Helper()
	model := modelOf(t, tree)
	checkSuper(t, img, model, opts)
	checkLLN(t, img, model)
	checkPF(t, img, model)
	checkExtract(t, img, model)
}

func needRootMount(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("not root: skipping the kernel loop-mount check")
	}
	if b, err := os.ReadFile("/proc/filesystems"); err != nil || !bytes.Contains(b, []byte("squashfs")) {
		// The module may still load on demand; try anyway.
		_ = b
	}
}

// mountImage loop-mounts img read-only and returns the mount point.
func mountImage(t testing.TB, img string) string {
	t.Helper()
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "squashfs", "-o", "loop,ro", img, mnt).CombinedOutput()
	if err != nil {
		t.Fatalf("mount %s: %v\n%s", img, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", mnt, err, out)
		}
	})
	return mnt
}

// checkMount mounts the image and compares every entry with the model
// through the kernel: type, permissions, ids, mtime, size, device numbers,
// symlink targets, content, link counts and hard-link inode identity.
func checkMount(t testing.TB, img string, tree *rootfs.Tree) {
	t.Helper()
	needRootMount(t)
	mnt := mountImage(t, img)
	model := modelOf(t, tree)
	links := map[*rootfs.Node]uint32{}
	subdirs := map[*rootfs.Node]uint32{}
	for _, e := range model {
		links[e.node]++
		if e.node.Type == rootfs.Dir {
			for _, c := range e.node.Children() {
				if c.Node.Type == rootfs.Dir {
					subdirs[e.node]++
				}
			}
		}
	}
	ino := map[*rootfs.Node]uint64{}
	seenIno := map[uint64]*rootfs.Node{}
	for _, e := range model {
		p := filepath.Join(mnt, e.path)
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			t.Errorf("lstat %s: %v", e.path, err)
			continue
		}
		n := e.node
		types := map[rootfs.Type]uint32{rootfs.Regular: syscall.S_IFREG, rootfs.Dir: syscall.S_IFDIR, rootfs.Symlink: syscall.S_IFLNK, rootfs.CharDev: syscall.S_IFCHR, rootfs.BlockDev: syscall.S_IFBLK, rootfs.FIFO: syscall.S_IFIFO, rootfs.Socket: syscall.S_IFSOCK}
		wantMode := types[n.Type] | n.Perm
		if n.Type == rootfs.Symlink {
			wantMode = syscall.S_IFLNK | 0o777
		}
		if st.Mode != wantMode || st.Uid != n.UID || st.Gid != n.GID || st.Mtim.Sec != n.MTime {
			t.Errorf("%s: mode %o uid %d gid %d mtime %d, want %o %d %d %d", e.path, st.Mode, st.Uid, st.Gid, st.Mtim.Sec, wantMode, n.UID, n.GID, n.MTime)
		}
		wantNlink := links[n]
		if n.Type == rootfs.Dir {
			wantNlink = 2 + subdirs[n]
		}
		if uint32(st.Nlink) != wantNlink {
			t.Errorf("%s: nlink %d, want %d", e.path, st.Nlink, wantNlink)
		}
		if old, ok := ino[n]; ok {
			if old != st.Ino {
				t.Errorf("%s: hard link has inode %d, first link had %d", e.path, st.Ino, old)
			}
		} else {
			if other := seenIno[st.Ino]; other != nil {
				t.Errorf("%s: inode %d is shared with another node", e.path, st.Ino)
			}
			ino[n], seenIno[st.Ino] = st.Ino, n
		}
		switch n.Type {
		case rootfs.Regular:
			if st.Size != n.Size() {
				t.Errorf("%s: size %d, want %d", e.path, st.Size, n.Size())
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Errorf("read %s: %v", e.path, err)
			} else if !bytes.Equal(b, contentOf(t, n)) {
				t.Errorf("%s: content differs through the kernel", e.path)
			}
		case rootfs.Symlink:
			if l, err := os.Readlink(p); err != nil || l != n.Target {
				t.Errorf("%s: readlink %q %v, want %q", e.path, l, err, n.Target)
			}
		case rootfs.CharDev, rootfs.BlockDev:
			maj, min := unixMajor(st.Rdev), unixMinor(st.Rdev)
			if maj != n.Major || min != n.Minor {
				t.Errorf("%s: device %d:%d, want %d:%d", e.path, maj, min, n.Major, n.Minor)
			}
		case rootfs.Dir:
			names, err := readDirNames(p)
			if err != nil {
				t.Errorf("readdir %s: %v", e.path, err)
				break
			}
			var want []string
			for _, c := range n.Children() {
				want = append(want, c.Name)
			}
			if strings.Join(names, "\x00") != strings.Join(want, "\x00") {
				t.Errorf("%s: readdir gives %d names, want %d", e.path, len(names), len(want))
			}
		}
	}
}

func readDirNames(p string) ([]string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1) // squashfs returns them in stored (sorted) order
}

// unsquashfsDev is how unsquashfs 4.5 shows a device number: it splits the
// 32-bit kernel encoding as old-style major<<8|minor (signed), so minors over
// 255 look odd; mksquashfs images show the same. The kernel mount check
// verifies the real numbers.
func unsquashfsDev(n *rootfs.Node) (major, minor int64) {
	rdev := n.Minor&0xff | n.Major<<8 | (n.Minor&^0xff)<<12
	return int64(int32(rdev) >> 8), int64(rdev & 0xff)
}

func unixMajor(dev uint64) uint32 { return uint32((dev>>8)&0xfff) | uint32((dev>>32)&^0xfff) }
func unixMinor(dev uint64) uint32 { return uint32(dev&0xff) | uint32((dev>>12)&0xffffff00) }
