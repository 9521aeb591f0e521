package qemu

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/rfsbuild/rfs/bootparam"
)

// HostDir is a host directory rfs run --mount offers the guest over
// virtio-9p; the init mounts it (rfs.mount on the command line).
type HostDir struct {
	Host string // absolute path of the host directory
	bootparam.HostMount
}

// ParseMount reads rfs run --mount HOSTDIR:/path[:ro|:rw] as the n-th
// mount (its tag is rfsN). The guest path is the last colon-separated
// field (after an optional ro or rw), so a host path may hold colons.
// HOSTDIR must be an existing directory.
func ParseMount(s string, n int) (HostDir, error) {
	fields := strings.Split(s, ":")
	ro := false
	if k := len(fields); k >= 3 && (fields[k-1] == "ro" || fields[k-1] == "rw") {
		ro = fields[k-1] == "ro"
		fields = fields[:k-1]
	}
	if k := len(fields); k >= 3 && !strings.HasPrefix(fields[k-1], "/") {
		return HostDir{}, fmt.Errorf("--mount %q: %q after the path: want :ro or :rw", s, fields[k-1])
	}
	if len(fields) < 2 || fields[0] == "" {
		return HostDir{}, fmt.Errorf("--mount %q: want HOSTDIR:/path or HOSTDIR:/path:ro", s)
	}
	guest := fields[len(fields)-1]
	host := strings.Join(fields[:len(fields)-1], ":")
	if p := bootparam.MountPathProblem(guest); p != "" {
		return HostDir{}, fmt.Errorf("--mount %q: %s", s, p)
	}
	abs, err := filepath.Abs(host)
	if err != nil {
		return HostDir{}, fmt.Errorf("--mount %q: %w", s, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return HostDir{}, fmt.Errorf("--mount %q: the host directory: %w", s, err)
	}
	if !st.IsDir() {
		return HostDir{}, fmt.Errorf("--mount %q: %s is not a directory (rfs run mounts directories; rfs cp copies single files into an image)", s, host)
	}
	return HostDir{Host: abs, HostMount: bootparam.HostMount{Tag: "rfs" + strconv.Itoa(n), Path: guest, ReadOnly: ro}}, nil
}

// ninePDevice is the virtio-9p device of every machine that has one
// (all with PCI: virt, q35, pc).
const ninePDevice = "virtio-9p-pci"

// checkNineP says why machine on a host running goos cannot have a
// virtio-9p device, nil if it can.
func checkNineP(machine, goos string) error {
	if goos == "windows" {
		return errors.New("--mount: QEMU on Windows has no virtio-9p (host directories); copy files in with rfs cp instead")
	}
	switch machine {
	case "virt", "q35", "pc":
		return nil
	}
	return fmt.Errorf("--mount: QEMU's %s machine has no virtio bus (no PCI), so a host directory cannot be shared with it; copy files in and out with rfs cp instead, or use a qemu-arm64 image", machine)
}

// AddMounts shares dirs with the guest: a virtio-9p device each, and an
// rfs.mount parameter each on the kernel command line for the init.
// Machines without virtio (QEMU's Raspberry Pi models) are refused.
func (c *Config) AddMounts(dirs []HostDir) error {
	if len(dirs) == 0 {
		return nil
	}
	if err := checkNineP(c.QEMU.Machine, runtime.GOOS); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, d := range dirs {
		if seen[d.Path] {
			return fmt.Errorf("--mount: two host directories on %s", d.Path)
		}
		seen[d.Path] = true
		c.Mounts = append(c.Mounts, d)
		param := "rfs.mount=" + d.HostMount.String()
		if strings.ContainsAny(param, " \t") {
			param = `"` + param + `"`
		}
		c.Append += " " + param
	}
	return nil
}

// mountArgs are QEMU's options for c.Mounts: a local fsdev per directory
// (security_model=none: files the guest creates belong to the user
// running QEMU, as with a docker bind mount; chown by the guest is
// ignored) and its virtio-9p device with the tag the init mounts.
func (c Config) mountArgs() []string {
	var args []string
	for i, d := range c.Mounts {
		id := "rfsfs" + strconv.Itoa(i)
		fsdev := "local,id=" + id + ",path=" + driveValue(d.Host) + ",security_model=none,multidevs=remap"
		if d.ReadOnly {
			fsdev += ",readonly=on"
		}
		args = append(args, "-fsdev", fsdev, "-device", ninePDevice+",fsdev="+id+",mount_tag="+d.Tag)
	}
	return args
}
