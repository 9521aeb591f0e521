package rootfs

import (
	"fmt"
	"strings"
)

// Skeleton describes the base system files every image gets.
type Skeleton struct {
	Hostname string
	// Login makes the console ask for a login instead of starting a root shell.
	Login bool
	// RootPasswordHash is root's crypt(3) hash for /etc/shadow; empty means
	// root has no password (a login prompt then lets root in without one).
	RootPasswordHash string
	// OSRelease fields.
	Version string // rfs version
	BuildID string // derived from the build inputs
	// ImageVersion is the release version (os-release IMAGE_VERSION);
	// "": none.
	ImageVersion string
	Board        string
}

// Add puts the skeleton into t: the directory hierarchy, device nodes the
// kernel needs before devtmpfs is mounted, and /etc.
func (s Skeleton) Add(t *Tree) error {
	dirs := []struct {
		path string
		perm uint32
	}{
		{"/dev", 0o755}, {"/proc", 0o555}, {"/sys", 0o555}, {"/run", 0o755},
		{"/tmp", 0o1777}, {"/root", 0o700}, {"/home", 0o755}, {"/mnt", 0o755},
		{"/etc", 0o755}, {"/etc/init.d", 0o755}, {"/etc/rc.d", 0o755},
		{"/var", 0o755}, {"/var/log", 0o755}, {"/var/tmp", 0o1777}, {"/var/lib", 0o755},
		{"/usr", 0o755}, {"/usr/bin", 0o755},
	}
	for _, d := range dirs {
		if err := t.MkdirAll(d.path, d.perm); err != nil {
			return fmt.Errorf("skeleton: %w", err)
		}
	}
	nodes := []struct {
		path         string
		typ          Type
		perm         uint32
		major, minor uint32
		target       string
	}{
		{path: "/dev/console", typ: CharDev, perm: 0o600, major: 5, minor: 1},
		{path: "/dev/null", typ: CharDev, perm: 0o666, major: 1, minor: 3},
		{path: "/var/run", typ: Symlink, perm: 0o777, target: "../run"},
		{path: "/etc/mtab", typ: Symlink, perm: 0o777, target: "../proc/self/mounts"},
	}
	for _, n := range nodes {
		if err := t.Add(n.path, &Node{Type: n.typ, Perm: n.perm, Major: n.major, Minor: n.minor, Target: n.target, MTime: t.MTime}); err != nil {
			return fmt.Errorf("skeleton: %w", err)
		}
	}
	hostname := s.Hostname
	if hostname == "" {
		hostname = "rfs"
	}
	console := "::respawn:/sbin/cttyhack /bin/sh -l"
	if s.Login {
		console = "::respawn:/sbin/getty -L 0 console linux"
	}
	files := []struct {
		path    string
		perm    uint32
		content string
	}{
		{"/etc/inittab", 0o644, `# busybox init. The rfs init has already mounted the overlay root and moved
# /dev, /proc, /sys and /run into it; rcS mounts what is left. No fstab.
::sysinit:/etc/init.d/rcS
` + console + `
::ctrlaltdel:/sbin/reboot
::shutdown:/bin/sync
::shutdown:/bin/umount -a -r
`},
		{"/etc/init.d/rcS", 0o755, `#!/bin/sh
# Mounts without an fstab: each only if the init has not already done it.
mountpoint -q /proc || mount -t proc -o nosuid,nodev,noexec proc /proc
mountpoint -q /sys || mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mountpoint -q /dev || mount -t devtmpfs -o nosuid devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mountpoint -q /dev/pts || mount -t devpts -o nosuid,noexec,gid=5,mode=620 devpts /dev/pts
mountpoint -q /dev/shm || mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /dev/shm
mountpoint -q /run || mount -t tmpfs -o nosuid,nodev,mode=755 tmpfs /run
mountpoint -q /tmp || mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /tmp
hostname -F /etc/hostname
ip link set lo up 2>/dev/null
# Start scripts: /etc/rc.d/S* in order, each called with "start".
for s in /etc/rc.d/S*; do
	[ -x "$s" ] && "$s" start
done
`},
		{"/etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"},
		{"/etc/group", 0o644, "root:x:0:\ndaemon:x:1:\ntty:x:5:\ndisk:x:6:\nwheel:x:10:root\nnogroup:x:65534:\n"},
		{"/etc/shadow", 0o600, "root:" + s.RootPasswordHash + ":0:0:99999:7:::\ndaemon:*:0:0:99999:7:::\nnobody:*:0:0:99999:7:::\n"},
		{"/etc/hostname", 0o644, hostname + "\n"},
		{"/etc/hosts", 0o644, "127.0.0.1\tlocalhost\n127.0.1.1\t" + hostname + "\n::1\tlocalhost ip6-localhost ip6-loopback\n"},
		{"/etc/shells", 0o644, "/bin/sh\n/bin/ash\n"},
		{"/etc/profile", 0o644, "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nexport PS1='\\u@\\h:\\w\\$ '\numask 022\n"},
	}
	for _, f := range files {
		if err := t.Add(f.path, &Node{Type: Regular, Perm: f.perm, Content: Bytes(f.content), MTime: t.MTime}); err != nil {
			return fmt.Errorf("skeleton: %w", err)
		}
	}
	return s.AddOSRelease(t)
}

// AddOSRelease (re)writes /etc/os-release, which names the build; builders
// call it again once the build ID is known.
func (s Skeleton) AddOSRelease(t *Tree) error {
	n := &Node{Type: Regular, Perm: 0o644, Content: Bytes(s.osRelease()), MTime: t.MTime}
	if err := t.Add("/etc/os-release", n); err != nil {
		return fmt.Errorf("skeleton: %w", err)
	}
	return nil
}

func (s Skeleton) osRelease() string {
	var b strings.Builder
	fmt.Fprintf(&b, "NAME=rfs\nID=rfs\n")
	fmt.Fprintf(&b, "PRETTY_NAME=\"rfs %s (%s)\"\n", s.Version, s.Board)
	fmt.Fprintf(&b, "VERSION_ID=%q\n", s.Version)
	fmt.Fprintf(&b, "VARIANT_ID=%s\n", s.Board)
	fmt.Fprintf(&b, "BUILD_ID=%s\n", s.BuildID)
	if s.ImageVersion != "" {
		fmt.Fprintf(&b, "IMAGE_VERSION=%q\n", s.ImageVersion)
	}
	return b.String()
}
