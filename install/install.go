// Package install writes a verified release into the inactive A/B slot
// of a device (on the device itself, or an image or card on a host,
// through a Target): each part is taken from the committed slot when it
// already holds those bytes, else downloaded (resumably) into a staging
// directory; every byte is checked against the part's digest before it is
// used, then written to the slot (kernel, initramfs and boot files into
// the boot partition's slot-X/, the root squashfs onto the slot's root
// partition, read back and checked again). The slot record moves from
// writing to ready only when everything is durable, and the trial is
// armed last: a power cut at any step leaves a device that boots its
// committed slot. Used on the device: standard library and rfs's contract
// packages only.
package install

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rfsbuild/rfs/slots"
)

// Names of a slot's files.
const (
	InitrdFile  = "initramfs.img"
	CmdlineFile = "cmdline.txt"
)

// Roles of a release's parts (bundle's).
const (
	RoleKernel    = "kernel"
	RoleInitramfs = "initramfs"
	RoleBootFiles = "boot-files"
	RoleRoot      = "root"
)

// Part is one part of a release.
type Part struct {
	Name   string
	Role   string
	Digest string // sha256:HEX
	Size   int64
}

// Release is a verified release: the caller has checked its signature,
// board, arch and version, and that its config lists these parts.
type Release struct {
	Version string
	BuildID string
	Parts   []Part
	// Config is the release's raw config, kept as the slot's release.json.
	Config []byte
}

// Fetcher downloads a part into dst (resuming a dst+".partial" left by an
// earlier try) and verifies its digest and size before dst appears.
type Fetcher func(ctx context.Context, p Part, dst string, progress func(done, total int64)) error

// Limits on what a release's boot files may hold.
const (
	maxBootFiles    = 1024
	maxBootFileSize = 256 << 20
)

// Target is where a slot is written: a boot partition (files by
// slash-separated path from its top) and the slots' root partitions.
type Target interface {
	// ReadFile reads a file of the boot partition, at most max bytes.
	ReadFile(name string, max int64) ([]byte, error)
	// Open opens a file of the boot partition.
	Open(name string) (io.ReadCloser, error)
	// WriteFile replaces a file of the boot partition (making its
	// directory) with size bytes from r, atomically: an error from r
	// (a digest that does not match: see Verified) leaves the old file.
	WriteFile(name string, r io.Reader, size int64) error
	// RemoveAll removes a directory of the boot partition and what it
	// holds (nothing there: nil).
	RemoveAll(name string) error
	// Root opens the root partition of a slot.
	Root(slot string) (Partition, error)
}

// Reclaimer is a Target that can free what a cut write left allocated.
type Reclaimer interface {
	Reclaim() (int64, error)
}

// Partition is a slot's root partition.
type Partition interface {
	io.ReaderAt
	io.WriterAt
	Size() int64
	// Sync makes the writes durable; reads after it come from the medium.
	Sync() error
	Close() error
}

// Device is the side of an update that is written: a device, an image
// or a card.
type Device struct {
	Target Target
	// Booted is the slot the device runs (on a host: the committed one).
	Booted string
	// StageDir holds downloads until they are written (on a device, the
	// data partition, so a download resumes after a reboot).
	StageDir string
	// Free says how many bytes StageDir can take (nil: unchecked).
	Free func(dir string) (int64, error)
	// Cmdline is the running kernel's command line: the new slot's line
	// keeps its rfs.data and rfs.boot ("": the committed slot's
	// cmdline.txt).
	Cmdline string
	// KernelName is the kernel's file name in a slot's directory.
	KernelName string
	Log        io.Writer
}

// Install writes rel into the slot that is not booted and marks it ready
// for a trial; it returns that slot.
func (d *Device) Install(ctx context.Context, rel Release, fetch Fetcher) (string, error) {
	s, err := d.State()
	if err != nil {
		return "", err
	}
	booted := d.Booted
	if s.Trial == booted {
		return "", fmt.Errorf("slot %s is on trial: wait until it is committed (rfs-init status) before the next update", booted)
	}
	if booted != s.Committed {
		return "", fmt.Errorf("booted slot %s is not the committed one (%s): reboot first", booted, s.Committed)
	}
	target := slots.Other(booted)
	if err := d.plan(rel, target, s); err != nil {
		return "", err
	}
	if r, ok := d.Target.(Reclaimer); ok {
		n, err := r.Reclaim()
		if err != nil {
			return "", fmt.Errorf("the boot partition: %w", err)
		}
		if n > 0 {
			d.logf("reclaimed %s the boot partition had lost (a write cut by a power loss)", human(n))
		}
	}
	begun, err := s.Begin(target)
	if err != nil {
		return "", err
	}
	if err := d.writeState(begun); err != nil {
		return "", err
	}
	// The old release's files go first: the boot partition has room for
	// two slots, not three.
	if err := d.Target.RemoveAll(strings.TrimSuffix(slots.Dir(target), "/")); err != nil {
		return "", fmt.Errorf("clear slot %s: %w", target, err)
	}
	for _, p := range rel.Parts {
		if err := d.installPart(ctx, p, target, s.Slots[booted], fetch); err != nil {
			return "", fmt.Errorf("part %s: %w", p.Name, err)
		}
	}
	if err := d.writeFile(target, slots.ReleaseFile, rel.Config); err != nil {
		return "", err
	}
	var parts []slots.Part
	for _, p := range rel.Parts {
		parts = append(parts, slots.Part{Name: p.Name, Digest: p.Digest, Size: p.Size})
	}
	ready := begun.Ready(target, slots.SlotInfo{Version: rel.Version, BuildID: rel.BuildID, Parts: parts})
	if err := d.writeState(ready); err != nil {
		return "", err
	}
	os.RemoveAll(d.StageDir)
	return target, nil
}

// Arm counts the trial's try and sets the firmware's one-shot flag: the
// next reboot boots the trial slot once. On a Raspberry Pi 3
// (slots.FirmwareRPiSwitch) it points config.txt at the trial slot
// instead. On a Pi with tryboot (slots.FirmwareRPi) it leaves the trial
// to the next boot's init, which reboots with the firmware's tryboot
// flag ("0 tryboot"): an orderly reboot through PID 1 cannot pass that
// argument, so the committed slot boots once more, up to its init.
func (d *Device) Arm() error {
	s, err := d.State()
	if err != nil {
		return err
	}
	if s.Trial == "" || s.Slots[s.Trial].State != slots.Ready {
		return errors.New("no slot is ready for a trial")
	}
	switch s.Firmware {
	case slots.FirmwareRPi:
		d.logf("the next boot's init arms slot %s's trial (a reboot with the firmware's tryboot flag)", s.Trial)
		return nil
	case slots.FirmwareRPiSwitch:
		cfg, err := d.Target.ReadFile(slots.PiConfig, slots.MaxStateFile)
		if err != nil {
			return fmt.Errorf("%s: %w", slots.PiConfig, err)
		}
		if err := d.writeState(s.Armed()); err != nil {
			return err
		}
		return d.writeTop(slots.PiConfig, slots.SetOSPrefix(cfg, s.Trial))
	}
	if err := d.writeState(s.Armed()); err != nil {
		return err
	}
	return d.writeTop(slots.TrybootFile, []byte(s.Trial+"\n"))
}

// plan refuses, before anything is written, a release the slot cannot
// hold.
func (d *Device) plan(rel Release, target string, s slots.State) error {
	have := map[string]bool{}
	for _, p := range rel.Parts {
		switch p.Role {
		case RoleKernel, RoleInitramfs, RoleBootFiles, RoleRoot:
		default:
			return fmt.Errorf("part %s has role %s: A/B slots hold a kernel, an initramfs, boot files and a root (no layers)", p.Name, p.Role)
		}
		if have[p.Role] {
			return fmt.Errorf("the release has two %s parts", p.Role)
		}
		have[p.Role] = true
		if !strings.HasPrefix(p.Digest, "sha256:") || p.Size < 0 {
			return fmt.Errorf("part %s: bad digest or size", p.Name)
		}
	}
	for _, r := range []string{RoleKernel, RoleInitramfs, RoleRoot} {
		if !have[r] {
			return fmt.Errorf("the release has no %s", r)
		}
	}
	root, err := d.Target.Root(target)
	if err != nil {
		return fmt.Errorf("slot %s's root partition: %w", target, err)
	}
	size := root.Size()
	root.Close()
	for _, p := range rel.Parts {
		if p.Role == RoleRoot && p.Size > size {
			return fmt.Errorf("the release's root is %s; slot %s's partition holds %s", human(p.Size), target, human(size))
		}
	}
	return nil
}

// installPart brings one part into the target slot.
func (d *Device) installPart(ctx context.Context, p Part, target string, committed slots.SlotInfo, fetch Fetcher) error {
	src, cleanup, err := d.source(ctx, p, committed, fetch)
	if err != nil {
		return err
	}
	defer cleanup()
	switch p.Role {
	case RoleKernel:
		return d.copyFile(target, d.KernelName, src, p)
	case RoleInitramfs:
		return d.copyFile(target, InitrdFile, src, p)
	case RoleBootFiles:
		return d.bootFiles(target, src, p)
	}
	return d.writeRoot(target, src, p)
}

// source opens the part's bytes: from the committed slot when it holds
// the same digest (checked again while copied), else downloaded.
func (d *Device) source(ctx context.Context, p Part, committed slots.SlotInfo, fetch Fetcher) (io.Reader, func(), error) {
	for _, c := range committed.Parts {
		if c.Digest != p.Digest || c.Size != p.Size || p.Role == RoleBootFiles {
			continue
		}
		var f io.ReadCloser
		var err error
		switch p.Role {
		case RoleKernel:
			f, err = d.Target.Open(slots.Dir(d.Booted) + d.KernelName)
		case RoleInitramfs:
			f, err = d.Target.Open(slots.Dir(d.Booted) + InitrdFile)
		case RoleRoot:
			var root Partition
			if root, err = d.Target.Root(d.Booted); err == nil {
				f = struct {
					io.Reader
					io.Closer
				}{io.NewSectionReader(root, 0, root.Size()), root}
			}
		}
		if err == nil {
			d.logf("%s: the running slot has it (%s), not downloaded", p.Name, short(p.Digest))
			return io.LimitReader(f, p.Size), func() { f.Close() }, nil
		}
	}
	if err := os.MkdirAll(d.StageDir, 0o700); err != nil {
		return nil, nil, err
	}
	dst := filepath.Join(d.StageDir, strings.TrimPrefix(p.Digest, "sha256:"))
	if err := d.checkSpace(p, dst); err != nil {
		return nil, nil, err
	}
	d.logf("%s: downloading %s (%s)", p.Name, human(p.Size), short(p.Digest))
	if err := fetch(ctx, p, dst, d.progress(p)); err != nil {
		return nil, nil, err
	}
	f, err := os.Open(dst)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// checkSpace refuses a download the data partition cannot hold.
func (d *Device) checkSpace(p Part, dst string) error {
	var have int64
	if st, err := os.Stat(dst + ".partial"); err == nil {
		have = st.Size()
	}
	if d.Free == nil {
		return nil
	}
	free, err := d.Free(d.StageDir)
	if err != nil {
		return nil
	}
	if need := p.Size - have; need > free {
		return fmt.Errorf("the data partition has %s free; downloading it needs %s", human(free), human(need))
	}
	return nil
}

// progress prints a line per 10% of a download.
func (d *Device) progress(p Part) func(done, total int64) {
	last := int64(-1)
	return func(done, total int64) {
		if total <= 0 {
			return
		}
		if step := done * 10 / total; step != last {
			last = step
			d.logf("%s: %d%% of %s", p.Name, step*10, human(total))
		}
	}
}

// copyFile writes a part into the slot's directory on the boot partition,
// verifying it on the way.
func (d *Device) copyFile(slot, name string, src io.Reader, p Part) error {
	return d.Target.WriteFile(slots.Dir(slot)+name, Verified(src, p), p.Size)
}

// bootFiles writes the release's other boot files into the slot's
// directory; its cmdline.txt is made to boot this device's partitions.
func (d *Device) bootFiles(slot string, src io.Reader, p Part) error {
	var buf bytes.Buffer
	if err := verifyCopy(&buf, src, p); err != nil {
		return err
	}
	tr := tar.NewReader(&buf)
	overlays, readme := false, false
	for n := 0; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			return d.addOverlaysReadme(slot, overlays && !readme)
		}
		if err != nil {
			return fmt.Errorf("boot files: %w", err)
		}
		if n >= maxBootFiles || h.Size > maxBootFileSize {
			return fmt.Errorf("boot files: more than %d files or a file over %d bytes", maxBootFiles, maxBootFileSize)
		}
		name, err := bootFileName(h)
		if err != nil || name == "" {
			if err != nil {
				return err
			}
			continue
		}
		data, err := io.ReadAll(io.LimitReader(tr, h.Size))
		if err != nil {
			return fmt.Errorf("boot files: %s: %w", name, err)
		}
		overlays = overlays || strings.HasPrefix(name, "overlays/")
		readme = readme || name == overlaysReadme
		if name == "cmdline.txt" {
			line, err := slots.Cmdline(strings.TrimSpace(string(data)), d.cmdlineSet(slot))
			if err != nil {
				return err
			}
			data = []byte(line + "\n")
		}
		if err := d.writeFile(slot, name, data); err != nil {
			return err
		}
	}
}

// bootFileName checks a boot file's tar name: "" for what a slot does
// not take (directories, the release record and firmware-level files).
func bootFileName(h *tar.Header) (string, error) {
	if h.Typeflag == tar.TypeDir {
		return "", nil
	}
	name := path.Clean(h.Name)
	if h.Typeflag != tar.TypeReg || path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") || strings.ContainsAny(name, "\\:*?\"<>|") {
		return "", fmt.Errorf("boot files: %q is not a plain relative file", h.Name)
	}
	switch lower := strings.ToLower(name); {
	case slices.Contains([]string{slots.ReleaseFile, "rfs.json", slots.StateFile, slots.FirmwareFile, slots.TrybootFile, slots.PiConfig, slots.PiTrybootConfig}, lower):
		return "", nil
	case piFirmwareFile(lower):
		// The Pi firmware runs from the partition's top, before
		// os_prefix is known: a slot does not take it.
		return "", nil
	}
	return name, nil
}

// piFirmwareFile says whether name is a Raspberry Pi firmware file
// (bootcode.bin, start*.elf, fixup*.dat), which a release read from an
// image without slots carries among its boot files.
func piFirmwareFile(name string) bool {
	return name == "bootcode.bin" ||
		!strings.Contains(name, "/") && (strings.HasPrefix(name, "start") && strings.HasSuffix(name, ".elf") ||
			strings.HasPrefix(name, "fixup") && strings.HasSuffix(name, ".dat"))
}

// overlaysReadme must be in a Pi slot's overlays/ for the firmware to
// load overlays from os_prefix rather than from the top-level overlays/
// (config.txt documentation, os_prefix).
const overlaysReadme = "overlays/README"

// addOverlaysReadme writes overlays/README into a Pi slot whose release
// brought overlays without one (need false: nothing to do).
func (d *Device) addOverlaysReadme(slot string, need bool) error {
	if !need {
		return nil
	}
	if s, err := d.State(); err != nil || !slots.IsPi(s.Firmware) {
		return nil
	}
	return d.writeFile(slot, overlaysReadme, []byte("Device tree overlays of this slot (rfs).\n"))
}

// cmdlineSet is what a slot's command line must say on this device.
func (d *Device) cmdlineSet(slot string) map[string]string {
	set := map[string]string{"rfs.slot": slot}
	line := d.Cmdline
	if line == "" {
		b, _ := d.Target.ReadFile(slots.Dir(d.Booted)+CmdlineFile, 64<<10)
		line = string(b)
	}
	for _, tok := range strings.Fields(line) {
		k, v, _ := strings.Cut(tok, "=")
		if k == "rfs.data" || k == "rfs.boot" {
			set[k] = v
		}
	}
	if id := d.rootPARTUUID(slot); id != "" {
		set["rfs.root"] = "PARTUUID=" + id
	}
	return set
}

func (d *Device) rootPARTUUID(slot string) string {
	s, err := d.State()
	if err != nil {
		return ""
	}
	return s.Slots[slot].Root
}

// writeRoot writes the root squashfs onto the slot's partition, syncs
// it, and reads it back to check the digest.
func (d *Device) writeRoot(slot string, src io.Reader, p Part) error {
	root, err := d.Target.Root(slot)
	if err != nil {
		return err
	}
	defer root.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(io.NewOffsetWriter(root, 0), h), io.LimitReader(src, p.Size+1))
	if err == nil {
		err = root.Sync()
	}
	if err != nil {
		return fmt.Errorf("write slot %s's root: %w", slot, err)
	}
	if err := checkDigest(h, n, p); err != nil {
		return err
	}
	h.Reset()
	n, err = io.Copy(h, io.NewSectionReader(root, 0, p.Size))
	if err != nil {
		return fmt.Errorf("read back slot %s's root: %w", slot, err)
	}
	if err := checkDigest(h, n, p); err != nil {
		return fmt.Errorf("read back slot %s's root: %w", slot, err)
	}
	return nil
}

func verifyCopy(w io.Writer, src io.Reader, p Part) error {
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(src, p.Size+1))
	if err != nil {
		return err
	}
	return checkDigest(h, n, p)
}

func checkDigest(h interface{ Sum([]byte) []byte }, n int64, p Part) error {
	if n != p.Size {
		return fmt.Errorf("%d bytes, want %d", n, p.Size)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != p.Digest {
		return fmt.Errorf("digest %s, want %s", got, p.Digest)
	}
	return nil
}

// State reads the slot record from the boot partition.
func (d *Device) State() (slots.State, error) {
	b, err := d.Target.ReadFile(slots.StateFile, slots.MaxStateFile)
	if err != nil {
		return slots.State{}, fmt.Errorf("the slot record: %w", err)
	}
	return slots.Parse(b)
}

func (d *Device) writeState(s slots.State) error { return d.writeTop(slots.StateFile, s.Marshal()) }

func (d *Device) writeTop(name string, data []byte) error {
	return d.Target.WriteFile(name, bytes.NewReader(data), int64(len(data)))
}

func (d *Device) writeFile(slot, name string, data []byte) error {
	return d.Target.WriteFile(slots.Dir(slot)+name, bytes.NewReader(data), int64(len(data)))
}

func (d *Device) logf(format string, args ...any) {
	if d.Log != nil {
		fmt.Fprintf(d.Log, "rfs: update: "+format+"\n", args...)
	}
}

func short(digest string) string {
	s := strings.TrimPrefix(digest, "sha256:")
	if len(s) > 12 {
		s = s[:12]
	}
	return s
}

func human(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// Verified reads part p from src: exactly p.Size bytes, and the read
// that would complete them fails instead when their digest is not p's,
// or when src holds more. A writer that stops at the first error (the
// FAT Editor, a temporary file) so never commits bytes that are not the
// part's, even when it reads with io.ReadFull.
func Verified(src io.Reader, p Part) io.Reader {
	return &verifier{src: src, h: sha256.New(), left: p.Size, p: p}
}

type verifier struct {
	src  io.Reader
	h    hash.Hash
	left int64
	p    Part
	err  error
}

func (v *verifier) Read(b []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if v.left == 0 {
		v.err = v.finish()
		if v.err == nil {
			v.err = io.EOF
		}
		return 0, v.err
	}
	if int64(len(b)) > v.left {
		b = b[:v.left]
	}
	n, err := v.src.Read(b)
	v.h.Write(b[:n])
	v.left -= int64(n)
	if v.left == 0 {
		if v.err = v.finish(); v.err != nil {
			return 0, v.err
		}
		return n, nil
	}
	if err == io.EOF {
		v.err = fmt.Errorf("%d bytes, want %d", v.p.Size-v.left, v.p.Size)
		return 0, v.err
	}
	return n, err
}

// finish checks the digest and that src has nothing more.
func (v *verifier) finish() error {
	var one [1]byte
	if n, _ := io.ReadFull(v.src, one[:]); n > 0 {
		return fmt.Errorf("more than %d bytes", v.p.Size)
	}
	if got := "sha256:" + hex.EncodeToString(v.h.Sum(nil)); got != v.p.Digest {
		return fmt.Errorf("digest %s, want %s", got, v.p.Digest)
	}
	return nil
}
