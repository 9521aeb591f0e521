package flash

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Policy is what the user allowed on the command line.
type Policy struct {
	Force   bool // allow a disk that is not removable (with a typed confirmation)
	Unmount bool // unmount the filesystems of a removable disk first
	Yes     bool // do not ask (needed when not on a terminal)
}

// Refusal is the reason a target is not written. Every refusal names the
// disk and says what would make it acceptable, if anything.
type Refusal struct {
	Target string
	Reason string
	Hint   string
}

func (r *Refusal) Error() string {
	s := "refusing to write " + r.Target + ": " + r.Reason
	if r.Hint != "" {
		s += " (" + r.Hint + ")"
	}
	return s
}

func describe(d *Disk) string {
	s := d.Path
	var parts []string
	if d.Model != "" {
		parts = append(parts, d.Model)
	}
	parts = append(parts, HumanSize(d.Size))
	if d.Transport != "" {
		parts = append(parts, d.Transport)
	}
	if d.Removable {
		parts = append(parts, "removable")
	}
	return s + " (" + strings.Join(parts, ", ") + ")"
}

func mountList(ms []Mount) string {
	var s []string
	for _, m := range ms {
		s = append(s, fmt.Sprintf("%s on %s", m.On, m.Point))
	}
	return strings.Join(s, ", ")
}

// Check decides whether an image of imageSize bytes may be written to d.
// It refuses, whatever the policy, the disk of the running system, a disk
// with something stacked on it (device-mapper, md), a write-protected or
// too small disk; a disk with mounted filesystems unless it is removable
// and p.Unmount; a disk that is not removable unless p.Force.
func Check(d *Disk, imageSize int64, p Policy) error {
	refuse := func(reason, hint string) error {
		return &Refusal{Target: describe(d), Reason: reason, Hint: hint}
	}
	if d.System {
		return refuse("this is the disk of the running system: "+d.SystemWhy, "")
	}
	if len(d.Holders) > 0 {
		return refuse("it is in use by "+strings.Join(d.Holders, ", ")+" (device-mapper, LVM, RAID or an open LUKS volume)", "close those first, e.g. dmsetup remove / cryptsetup close / vgchange -an")
	}
	if len(d.Mounts) > 0 {
		if !d.Removable {
			return refuse("it has mounted filesystems: "+mountList(d.Mounts), "unmount them yourself; --unmount only applies to removable disks")
		}
		if !p.Unmount {
			return refuse("it has mounted filesystems: "+mountList(d.Mounts), "add --unmount to unmount them, or unmount them yourself")
		}
	}
	if d.Size == 0 {
		return refuse("no medium (an empty card reader?)", "")
	}
	if d.ReadOnly {
		return refuse("it is read-only (an SD card's lock switch?)", "")
	}
	if d.Size < imageSize {
		return refuse(fmt.Sprintf("it is smaller than the image: %s < %s (%d < %d bytes)", HumanSize(d.Size), HumanSize(imageSize), d.Size, imageSize), "build a smaller image with rfs build --size")
	}
	if !d.Removable && !p.Force {
		return refuse("it is not a removable disk (not USB, not an SD card, removable flag not set): it may be an internal disk", "if you are sure, add --force and confirm by typing its name")
	}
	return nil
}

// Confirm asks the user, when interactive, to confirm writing to d. When
// not interactive it only accepts p.Yes. A non-removable disk (allowed by
// --force) needs its name typed on a terminal even with --yes.
func Confirm(d *Disk, image string, imageSize int64, p Policy, interactive bool, in io.Reader, out io.Writer) error {
	refuse := func(reason, hint string) error {
		return &Refusal{Target: describe(d), Reason: reason, Hint: hint}
	}
	if !interactive {
		if !p.Yes {
			hint := "add --yes"
			if !d.Removable {
				hint = "add --force --yes"
			}
			return refuse("not confirmed: not running on a terminal", hint)
		}
		return nil
	}
	fmt.Fprintf(out, "Write %s (%s) to %s.\n", image, HumanSize(imageSize), describe(d))
	if len(d.Mounts) > 0 {
		fmt.Fprintf(out, "Its mounted filesystems will be unmounted: %s.\n", mountList(d.Mounts))
	}
	fmt.Fprintf(out, "EVERYTHING ON %s WILL BE LOST.\n", d.Path)
	r := bufio.NewReader(in)
	if !d.Removable {
		fmt.Fprintf(out, "%s is NOT a removable disk. Type its name (%s) to write to it: ", d.Path, d.Name)
		line, _ := r.ReadString('\n')
		line = strings.TrimSpace(line)
		if line != d.Name && line != d.Path {
			return refuse(fmt.Sprintf("confirmation %q does not match %q", line, d.Name), "")
		}
		return nil
	}
	if p.Yes {
		return nil
	}
	fmt.Fprint(out, "Continue? [y/N] ")
	line, _ := r.ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return refuse("not confirmed", "")
}
