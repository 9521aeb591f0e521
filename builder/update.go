package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/release"
	"github.com/rfsbuild/rfs/rootfs"
	"github.com/rfsbuild/rfs/slots"
	"github.com/rfsbuild/rfs/squashfs"
	"github.com/rfsbuild/rfs/squashfs/sqsb"
)

// UpdateSettings turn on A/B slots (rfs build --slots, or update: in
// rfs.yaml): the image holds two slots and the device's update settings.
type UpdateSettings struct {
	// Config is /etc/rfs/update.json in the lower (the public key, the
	// polling reference and interval, reset paths, the health check).
	Config slots.Config
	// SlotSize is each root slot's partition size; 0: DefaultSlotSize of
	// the root's content.
	SlotSize int64
}

// MinSlotSize is the smallest default root slot.
const MinSlotSize = 64 * image.MiB

// DefaultSlotSize is a root slot's size for a root whose files hold
// content bytes: twice that (a release may grow), rounded up to 1 MiB,
// and at least MinSlotSize.
func DefaultSlotSize(content int64) int64 {
	return max(MinSlotSize, roundUp(2*content, image.MiB))
}

// slotted says whether the build has A/B slots.
func (c *Config) slotted() bool { return c.Update != nil }

// slotBoards names the boards whose images may have slots, for messages.
const slotBoards = "qemu-arm64, qemu-amd64 and the Raspberry Pi boards"

// validateSlots refuses what slots do not support yet: UEFI PCs (their
// firmware picks the boot file) and layers.
func (c *Config) validateSlots() error {
	if !c.slotted() {
		return nil
	}
	if c.Board.UEFI != nil || (c.Board.Pi == nil && c.Board.Table != "gpt") {
		return fmt.Errorf("A/B slots on %s are not supported yet (%s)", c.Board.Name, slotBoards)
	}
	if len(c.Layers) > 0 {
		return errors.New("layers with A/B slots are not supported yet")
	}
	if c.Emit != "" {
		return errors.New("--emit with A/B slots is not supported yet: build the image, then rfs push it")
	}
	if s := c.Update.SlotSize; s < 0 || s > MaxImageSize {
		return fmt.Errorf("%s %d: out of range", c.where("slot_size"), s)
	}
	if c.Version != "" {
		if err := ValidVersion(c.Version); err != nil {
			return fmt.Errorf("%s %q: %w", c.where("version"), c.Version, err)
		}
	}
	return nil
}

// ValidVersion checks a release version: 1 to 64 letters, digits and
// . _ + - (it goes into os-release, release.json and registry tags), one
// a device can order (release.CompareVersions: [v]N[.N]...[-PRE][+BUILD]).
func ValidVersion(v string) error {
	if v == "" || len(v) > 64 {
		return errors.New("want 1 to 64 characters")
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._+-", r)) {
			return fmt.Errorf("character %q: want letters, digits and . _ + -", r)
		}
	}
	if _, err := release.CompareVersions(v, v); err != nil {
		return errors.New("want numbers separated by dots (1.4, v2.0.1-rc1, an epoch): devices refuse older releases by it")
	}
	return nil
}

// releaseVersion is the image's release version: version:, else the
// build epoch in decimal seconds (what bundle.ReadImage reads from the
// root squashfs's time).
func (c *Config) releaseVersion() string {
	if c.Version != "" {
		return c.Version
	}
	return strconv.FormatInt(c.Epoch, 10)
}

// addUpdateConfig writes /etc/rfs/update.json into the lower.
func (c *Config) addUpdateConfig(t *rootfs.Tree) error {
	if !c.slotted() {
		return nil
	}
	if c.Update.Config.PublicKey == "" {
		c.warnf("warning: A/B slots without an update key: the device will refuse every update (rfs keygen, then update: {public_key: NAME.pub} in rfs.yaml or --update-key NAME.pub)")
	}
	return t.Add(slots.ConfigFile, &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, MTime: c.Epoch, Content: rootfs.Bytes(c.Update.Config.Marshal())})
}

// contentSize is the bytes of the tree's regular files.
func contentSize(t *rootfs.Tree) (int64, error) {
	var n int64
	err := t.Walk(func(_ string, node *rootfs.Node) error {
		if node.Type == rootfs.Regular {
			n += node.Size()
		}
		return nil
	})
	return n, err
}

// slotLayout is the layout of a slotted image: the slot size given or
// DefaultSlotSize of the root, and room on the boot partition for a
// second slot's files.
func (c *Config) slotLayout(tree *rootfs.Tree, boot []BootFile) (image.Descriptor, error) {
	size := c.Update.SlotSize
	if size == 0 {
		content, err := contentSize(tree)
		if err != nil {
			return image.Descriptor{}, err
		}
		size = DefaultSlotSize(content)
	}
	size = roundUp(size, image.MiB)
	// The slot's small files (command line, release record) fit in 64 KiB;
	// each file is counted in whole 4 KiB clusters (a Pi slot holds a few
	// hundred small overlays).
	var files int64 = 64 << 10
	for _, f := range boot {
		if inSlot(c.Board.Pi, f.Name) {
			files += roundUp(f.Content.Size()+1, 4<<10)
		}
	}
	return image.Slotted(c.Board.Table, size, c.DataSize, files), nil
}

// inSlot says whether a boot file of the image goes into a slot's
// directory: all but a Raspberry Pi's firmware and config.txt, which the
// firmware reads from the top before it knows the os_prefix.
func inSlot(pi *boards.Pi, name string) bool {
	if pi == nil {
		return true
	}
	return name != slots.PiConfig && !slices.Contains(pi.Firmware, name)
}

// slotFirmware is how a board's firmware picks a slot (rfs-slots.json's
// firmware): tryboot on a Pi whose every model has it, config.txt
// switching when the image may boot a Pi 3 (its firmware has no tryboot
// flag; see slots.FirmwareRPiSwitch).
func slotFirmware(pi *boards.Pi) string {
	switch {
	case pi == nil:
		return slots.FirmwareDirect
	case slices.Contains(pi.Models, "pi3"):
		return slots.FirmwareRPiSwitch
	}
	return slots.FirmwareRPi
}

// slotParts are slot a's parts as bundle.ReadImage names and digests
// them: the kernel's and the initramfs's bytes, and the root squashfs's.
func (a *Artifacts) slotParts(root slots.Part) ([]slots.Part, error) {
	kernel, err := hashFile("kernel", a.Kernel)
	if err != nil {
		return nil, fmt.Errorf("kernel: %w", err)
	}
	sum := sha256.Sum256(a.Initramfs)
	initrd := slots.Part{Name: "initramfs", Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(a.Initramfs))}
	return []slots.Part{kernel, initrd, root}, nil
}

// hashFile is a part of the file at p.
func hashFile(name, p string) (slots.Part, error) {
	f, err := os.Open(p)
	if err != nil {
		return slots.Part{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return slots.Part{}, err
	}
	return slots.Part{Name: name, Digest: "sha256:" + hex.EncodeToString(h.Sum(nil)), Size: n}, nil
}

// measureRoot is the root part BootMin measures rfs-slots.json and
// release.json with: a digest's length and the longest size.
var measureRoot = slots.Part{Name: "root", Digest: "sha256:" + strings.Repeat("0", 64), Size: math.MaxInt64}

// slotFiles are the boot partition's files of a slotted image but for
// rfs.json: slot.txt, rfs-slots.json, slot a's kernel, initramfs,
// command line and release.json, and an empty slot-b/. release.json is
// a release.Config of the kernel, initramfs and root parts (the names
// are the roles); an update replaces it with its bundle's config.
func (a *Artifacts) slotFiles(plan image.Plan, cmdline string, root slots.Part) ([]BootFile, error) {
	parts, err := a.slotParts(root)
	if err != nil {
		return nil, err
	}
	state := slots.New(a.Version, a.BuildID, parts, plan.FindSlot(slots.A).PARTUUID, plan.FindSlot(slots.B).PARTUUID)
	state.Firmware = slotFirmware(a.Board.Pi)
	rel := release.Config{Board: a.Board.Name, Arch: a.Board.Arch, Version: a.Version, BuildID: a.BuildID,
		Created: time.Unix(a.Epoch, 0).UTC().Format(time.RFC3339)}
	for _, p := range parts {
		rel.Parts = append(rel.Parts, release.Part{Name: p.Name, Role: p.Name, MediaType: release.RoleMediaType(p.Name), Digest: p.Digest, Size: p.Size})
	}
	dir := slots.Dir(slots.A)
	files := []BootFile{
		{slots.FirmwareFile, rootfs.Bytes(slots.FirmwareContent(slots.A))},
		{slots.StateFile, rootfs.Bytes(state.Marshal())},
	}
	pi, err := a.piSlotFiles()
	if err != nil {
		return nil, err
	}
	files = append(files, pi...)
	for _, f := range a.Boot {
		if inSlot(a.Board.Pi, f.Name) {
			files = append(files, BootFile{dir + f.Name, f.Content})
		}
	}
	return append(files,
		BootFile{dir + image.CmdlineFile, rootfs.Bytes(cmdline + "\n")},
		BootFile{dir + slots.ReleaseFile, rootfs.Bytes(append(rel.Marshal(), '\n'))},
		BootFile{Name: strings.TrimSuffix(slots.Dir(slots.B), "/")}), nil
}

// piSlotFiles are a Raspberry Pi's top-level files of a slotted image:
// the firmware, config.txt booting slot a (os_prefix=slot-a/) and
// tryboot.txt, the same booting slot b, which the firmware reads instead
// at a tryboot boot. The firmware prefixes the kernel, initramfs,
// cmdline.txt, device trees and overlays with os_prefix, so they go into
// the slot (see piOverlaysReadme).
func (a *Artifacts) piSlotFiles() ([]BootFile, error) {
	if a.Board.Pi == nil {
		return nil, nil
	}
	var out []BootFile
	var cfg []byte
	hasReadme := false
	for _, f := range a.Boot {
		switch {
		case f.Name == slots.PiConfig:
			r, err := f.Content.Open()
			if err != nil {
				return nil, err
			}
			cfg, err = io.ReadAll(r)
			r.Close()
			if err != nil {
				return nil, fmt.Errorf("config.txt: %w", err)
			}
		case !inSlot(a.Board.Pi, f.Name):
			out = append(out, f)
		case f.Name == piOverlaysReadme:
			hasReadme = true
		}
	}
	if !hasReadme {
		out = append(out, BootFile{slots.Dir(slots.A) + piOverlaysReadme, rootfs.Bytes("Device tree overlays of this slot (rfs).\n")})
	}
	return append(out,
		BootFile{slots.PiConfig, rootfs.Bytes(slots.SetOSPrefix(cfg, slots.A))},
		BootFile{slots.PiTrybootConfig, rootfs.Bytes(slots.SetOSPrefix(cfg, slots.B))}), nil
}

// piOverlaysReadme must be in a slot's overlays/: the firmware loads
// overlays from ${os_prefix}${overlay_prefix} only when that directory
// holds a README, and from the top-level overlays/ otherwise (config.txt
// documentation, os_prefix).
const piOverlaysReadme = "overlays/README"

// slotCmdline is slot a's command line: the image's, with the slot named
// and a panic rebooting (a trial kernel that panics returns the device
// to the committed slot).
func slotCmdline(line string) string {
	return line + " rfs.slot=" + slots.A + " panic=5"
}

// writeSlotRoot writes the root squashfs into slot a's partition w of
// size bytes, through a temporary file: its digest goes into
// rfs-slots.json and release.json.
func writeSlotRoot(ctx context.Context, w io.WriterAt, a *Artifacts, size int64) (slots.Part, error) {
	tmp, err := os.CreateTemp("", "rfs-root-*.sqfs")
	if err != nil {
		return slots.Part{}, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	n, err := squashfs.WriteContext(ctx, tmp, a.Root, rootOptions(a))
	if err != nil {
		return slots.Part{}, err
	}
	if n > size {
		return slots.Part{}, fmt.Errorf("the root squashfs is %s, more than the slot's %s: give a bigger slot size (update: {slot_size: ...} in rfs.yaml, or --slot-size)", image.HumanSize(n), image.HumanSize(size))
	}
	sb, err := sqsb.Read(io.NewSectionReader(tmp, 0, n))
	if err != nil {
		return slots.Part{}, err
	}
	used := int64(sb.BytesUsed)
	if used > n {
		return slots.Part{}, fmt.Errorf("root squashfs: uses %d bytes of %d written", used, n)
	}
	// The digest is of the bytes the squashfs uses, as bundle.ReadImage's.
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(tmp, 0, used)); err != nil {
		return slots.Part{}, err
	}
	if _, err := io.Copy(io.NewOffsetWriter(w, 0), ctxReader{ctx, io.NewSectionReader(tmp, 0, n)}); err != nil {
		return slots.Part{}, err
	}
	return slots.Part{Name: "root", Digest: "sha256:" + hex.EncodeToString(h.Sum(nil)), Size: used}, nil
}
