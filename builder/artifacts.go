package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/rfsbuild/rfs"
	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/image/fat"
	"github.com/rfsbuild/rfs/initramfs"
	"github.com/rfsbuild/rfs/kernel"
	"github.com/rfsbuild/rfs/rootfs"
	"github.com/rfsbuild/rfs/slots"
)

// Artifacts are what a build makes before any disk exists: the boot
// chain (kernel, initramfs, command line), the root tree, the layers and
// the boot partition's files, with the build ID that names them.
// Packagers (DiskImage, Dir) turn them into outputs; each completes the
// command line and rfs.json with the partition ids of its layout.
type Artifacts struct {
	Board   boards.Board
	BuildID string
	Epoch   int64

	// Kernel is the kernel image's host path; KernelOrigin says where it
	// came from (module@version or the path given).
	Kernel       string
	KernelOrigin string
	Initramfs    []byte
	// Cmdline is the kernel command line but for the partition ids.
	Cmdline Cmdline
	// Root is the lower's tree; the packager writes it as squashfs
	// (rootOptions) into a partition or a file.
	Root *rootfs.Tree
	// Layers are the --layer files, bottom to top, with their records
	// for rfs.json (PARTUUIDs empty: the packager's layout assigns them).
	Layers []Layer
	// Boot is the boot partition's files that do not depend on the
	// layout: kernel (not on UEFI boards), initramfs, Pi firmware, device
	// trees, config.txt. cmdline.txt, rfs.json and the UKI are added per
	// layout (BootTree).
	Boot []BootFile
	// Meta is rfs.json but for the partition ids and the layout.
	Meta image.Meta
	// Layout is the partition layout of a disk image of these artifacts.
	Layout image.Descriptor
	// Version is the release version of a slotted image (Layout has
	// slots): its rfs-slots.json and release.json record it.
	Version string

	uki    func(cmdline string) ([]byte, error) // UEFI boards
	ukiFor string                               // the command line ukiImg holds
	ukiImg []byte
	log    func(format string, args ...any)
}

// Layer is one --layer file and its record in rfs.json.
type Layer struct {
	Path string
	Meta image.LayerMeta
}

// BootFile is one file of the boot partition; Name is relative to its
// root ("overlays/x.dtbo"). Without Content it is an empty directory.
type BootFile struct {
	Name    string
	Content rootfs.Source
}

// Produce validates c and makes the artifacts, in steps: the layers'
// checks, the kernel (a wrong one fails before any other work), the base
// tree, the initramfs, the boot files, the build ID.
func Produce(ctx context.Context, c Config) (*Artifacts, error) {
	c.defaults()
	if err := c.check(); err != nil {
		return nil, err
	}
	layers, err := c.checkLayers(ctx)
	if err != nil {
		return nil, err
	}
	kernelPath, kernelOrigin, err := c.kernelStep(ctx)
	if err != nil {
		return nil, err
	}
	bbDir, err := c.download(ctx, boards.BusyboxModule)
	if err != nil {
		return nil, err
	}
	bbPath := filepath.Join(bbDir, boards.BusyboxPath(c.Board.Arch))
	tree, skel, userland, err := c.baseTree(ctx, bbPath)
	if err != nil {
		return nil, err
	}
	digest, err := tree.DigestContext(ctx)
	if err != nil {
		return nil, err
	}
	initrd, err := c.initramfs(ctx, bbPath, userland)
	if err != nil {
		return nil, err
	}
	boot, err := c.bootFiles(ctx, kernelPath, initrd)
	if err != nil {
		return nil, err
	}
	buildID, err := c.buildID(kernelPath, digest, boot, layers)
	if err != nil {
		return nil, err
	}
	skel.BuildID = buildID
	if c.Version != "" || c.slotted() {
		skel.ImageVersion = c.releaseVersion()
	}
	if err := skel.AddOSRelease(tree); err != nil {
		return nil, err
	}
	layout := image.Standard(c.Board.Table, len(layers), c.DataSize)
	if c.slotted() {
		if layout, err = c.slotLayout(tree, boot); err != nil {
			return nil, err
		}
	}
	a := &Artifacts{
		Board: c.Board, BuildID: buildID, Epoch: c.Epoch,
		Kernel: kernelPath, KernelOrigin: kernelOrigin, Initramfs: initrd,
		Cmdline: c.cmdlineTemplate(), Root: tree, Layers: layers, Boot: boot,
		Meta:   image.Meta{Board: c.Board.Name, Arch: c.Board.Arch, RFSVersion: rfs.Version(), BuildID: buildID, Kernel: kernelOrigin, KernelFile: c.kernelName(), Upper: c.Upper, Userland: c.Userland},
		Layout: layout,
		log:    c.logf,
	}
	if c.slotted() {
		a.Version = c.releaseVersion()
	}
	if c.Board.UEFI != nil {
		a.uki = func(cmdline string) ([]byte, error) {
			img, err := c.unifiedKernelImage(kernelPath, initrd, cmdline, tree)
			if err == nil {
				c.logf("unified kernel image %s (stub %s)", image.HumanSize(int64(len(img))), c.efiStub())
			}
			return img, err
		}
	}
	return a, nil
}

// defaults fills the settings a caller may leave empty.
func (c *Config) defaults() {
	if c.Userland == "" {
		c.Userland = "busybox"
	}
	if c.Upper == "" {
		c.Upper = "data"
	}
	if c.DataSize == 0 {
		c.DataSize = DefaultDataSize
	}
}

// check refuses bad settings and paths before any work is done.
func (c *Config) check() error {
	if err := c.Validate(); err != nil {
		return err
	}
	if err := c.checkPaths(); err != nil {
		return err
	}
	for _, f := range c.Files {
		if st, err := os.Stat(f.Src); err != nil {
			return fmt.Errorf("files: %w", err)
		} else if !st.IsDir() {
			return fmt.Errorf("files %s: not a directory", f.Src)
		}
	}
	return nil
}

// kernelStep finds the kernel and checks it is one for the board.
func (c *Config) kernelStep(ctx context.Context) (path, origin string, err error) {
	path, origin, err = c.kernel(ctx)
	if err != nil {
		return "", "", err
	}
	if _, err := kernel.Check(path, c.Board.Arch); err != nil {
		return "", "", err
	}
	if st, err := os.Stat(path); err == nil {
		c.logf("kernel %s (%s)", origin, image.HumanSize(st.Size()))
	}
	return path, origin, nil
}

// baseTree makes the lower: the /etc skeleton, the base userland (from
// its Source), the apps, the --files dirs, the volume list, the agent and
// the rfs-init link. os-release is added once the build ID is known.
func (c *Config) baseTree(ctx context.Context, bbPath string) (*rootfs.Tree, *rootfs.Skeleton, string, error) {
	tree := rootfs.New(c.Epoch)
	skel := &rootfs.Skeleton{Hostname: c.Hostname, Login: c.Login, RootPasswordHash: c.RootHash, Version: rfs.Version(), Board: c.Board.Name}
	if err := skel.Add(tree); err != nil {
		return nil, nil, "", err
	}
	userland, err := c.installUserland(ctx, tree, bbPath)
	if err != nil {
		return nil, nil, "", err
	}
	if err := c.addFiles(ctx, tree); err != nil {
		return nil, nil, "", err
	}
	if err := c.addVolumes(tree); err != nil {
		return nil, nil, "", err
	}
	if err := c.installAgent(ctx, tree); err != nil {
		return nil, nil, "", err
	}
	if err := c.addUpdateConfig(tree); err != nil {
		return nil, nil, "", err
	}
	// The init copies itself to /run/rfs/bin at boot; this puts its on-device
	// commands (rfs-init status, rfs-init reset) on PATH.
	if err := tree.Add("/usr/bin/rfs-init", &rootfs.Node{Type: rootfs.Symlink, Perm: 0o777, Target: "/run/rfs/bin/rfs-init", MTime: c.Epoch}); err != nil {
		return nil, nil, "", err
	}
	return tree, skel, userland, nil
}

// initramfs packs the init, compiled for the board, and busybox.
func (c *Config) initramfs(ctx context.Context, bbPath, userland string) ([]byte, error) {
	initPath, err := c.Init.Init(ctx, c.Board.Arch)
	if err != nil {
		return nil, err
	}
	initBin, err := os.ReadFile(initPath)
	if err != nil {
		return nil, fmt.Errorf("read init: %w", err)
	}
	bbBin, err := os.ReadFile(bbPath)
	if err != nil {
		return nil, fmt.Errorf("read busybox: %w", err)
	}
	initrd, err := c.Init.Pack(initramfs.Contents{Init: initBin, Busybox: bbBin, MTime: c.Epoch})
	if err != nil {
		return nil, err
	}
	c.logf("userland %s, init %s, initramfs %s", userland, image.HumanSize(int64(len(initBin))), image.HumanSize(int64(len(initrd))))
	return initrd, nil
}

// buildID hashes everything that decides the image's bytes; every id is
// derived from it: same inputs, same image.
func (c *Config) buildID(kernelPath string, digest [32]byte, boot []BootFile, layers []Layer) (string, error) {
	bt, err := bootTree(c.Epoch, boot)
	if err != nil {
		return "", err
	}
	bootDigest, err := bt.Digest()
	if err != nil {
		return "", err
	}
	var ukiDigest []byte
	if c.Board.UEFI != nil {
		// The kernel is not a file of a UEFI board's ESP but goes into the
		// UKI, with the stub: both decide the image's bytes.
		d, err := c.ukiInputs(kernelPath)
		if err != nil {
			return "", err
		}
		ukiDigest = d[:]
	}
	h := sha256.New()
	fmt.Fprintf(h, "rfs-image-v2\nboard=%s\nupper=%s\ncmdline=%s\nsize=%d\ndata=%d\n", c.Board.Name, c.Upper, c.Cmdline, c.Size, c.DataSize)
	h.Write(digest[:])
	h.Write(bootDigest[:])
	h.Write(ukiDigest)
	for _, l := range layers {
		// Only with layers, so images without any keep their build IDs.
		fmt.Fprintf(h, "layer=%s\n", l.Meta.SHA256)
	}
	if c.Version != "" || c.slotted() {
		// Only when set: os-release's IMAGE_VERSION is not in the digest.
		fmt.Fprintf(h, "version=%s\n", c.releaseVersion())
	}
	if c.slotted() {
		fmt.Fprintf(h, "slots=%d\n", c.Update.SlotSize)
	}
	return hex.EncodeToString(h.Sum(nil))[:32], nil
}

// bootTree is a tree of boot files.
func bootTree(epoch int64, files []BootFile) (*rootfs.Tree, error) {
	t := rootfs.New(epoch)
	for _, f := range files {
		n := &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, MTime: epoch, Content: f.Content}
		if f.Content == nil {
			n = rootfs.NewDir(0o755, epoch) // an empty directory (a slot's)
		}
		if err := t.Add("/"+f.Name, n); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Plan assigns the layout's ids from the build ID.
func (a *Artifacts) Plan() (image.Plan, error) {
	return a.Layout.Assign(a.BuildID, a.Board.Arch)
}

// Booted is what the boot partition holds for one layout.
type Booted struct {
	Cmdline string     // completed with the layout's partition ids
	Meta    image.Meta // rfs.json
	Files   []BootFile // all of the boot partition's files
}

// BootFor completes the boot partition for a plan: cmdline.txt with the
// plan's ids, rfs.json with the layout and the partitions' sizes (in plan
// order), and on UEFI boards the UKI (which holds the command line, not
// rfs.json).
func (a *Artifacts) BootFor(plan image.Plan, sizes []int64) (*Booted, error) {
	return a.bootFor(plan, sizes, measureRoot)
}

// bootFor is BootFor with a slotted image's root part (its digest and
// size go into rfs-slots.json and release.json).
func (a *Artifacts) bootFor(plan image.Plan, sizes []int64, root slots.Part) (*Booted, error) {
	ids := idsOf(plan)
	b := &Booted{Cmdline: a.Cmdline.Complete(ids), Meta: a.Meta}
	b.Meta.RootGUID, b.Meta.DataGUID, b.Meta.BootGUID = ids.root, ids.data, ids.boot
	for i, l := range a.Layers {
		m := l.Meta
		m.PARTUUID = ids.layers[i]
		b.Meta.Layers = append(b.Meta.Layers, m)
	}
	b.Meta.Layout = plan.Meta(sizes)
	if plan.Slotted() {
		b.Meta.Slots = true
		b.Cmdline = slotCmdline(b.Cmdline)
		files, err := a.slotFiles(plan, b.Cmdline, root)
		if err != nil {
			return nil, err
		}
		b.Files = append(files, BootFile{image.MetaFile, rootfs.Bytes(b.Meta.Marshal())})
		return b, nil
	}
	b.Files = append(b.Files, a.Boot...)
	b.Files = append(b.Files,
		BootFile{image.CmdlineFile, rootfs.Bytes(b.Cmdline + "\n")},
		BootFile{image.MetaFile, rootfs.Bytes(b.Meta.Marshal())})
	if a.uki != nil {
		if a.ukiFor != b.Cmdline || a.ukiImg == nil {
			img, err := a.uki(b.Cmdline)
			if err != nil {
				return nil, err
			}
			a.ukiFor, a.ukiImg = b.Cmdline, img
		}
		b.Files = append(b.Files, BootFile{a.Board.UEFI.BootFile, rootfs.Bytes(a.ukiImg)})
	}
	return b, nil
}

// BootMin is the size the boot partition's files need in a FAT (its
// SizeHeadroom content). It is decided before the other partitions are
// written, so rfs.json, which records their sizes, is measured with the
// longest sizes it can hold.
func (a *Artifacts) BootMin(plan image.Plan) (int64, error) {
	sizes := make([]int64, len(plan.Parts))
	for i := range sizes {
		sizes[i] = math.MaxInt64
	}
	b, err := a.BootFor(plan, sizes)
	if err != nil {
		return 0, err
	}
	t, err := bootTree(a.Epoch, b.Files)
	if err != nil {
		return 0, err
	}
	return fat.MinSize(t), nil
}

// PartSizes are the partitions' sizes, in plan order, given the boot
// partition's size and the root squashfs's bytes: fit partitions are
// their content rounded up to 1 MiB.
func (a *Artifacts) PartSizes(plan image.Plan, bootSize, rootBytes int64) []int64 {
	var sizes []int64
	for _, pp := range plan.Parts {
		n := pp.SizeOf(0)
		switch pp.Role {
		case image.RoleBoot:
			n = bootSize
		case image.RoleRoot:
			if pp.Slot == "" {
				n = roundUp(rootBytes, image.MiB)
			}
		case image.RoleLayer:
			n = roundUp(a.Layers[pp.Layer-1].Meta.Size, image.MiB)
		}
		sizes = append(sizes, n)
	}
	return sizes
}

// idsOf are the partition ids a plan gives the command line.
func idsOf(plan image.Plan) partIDs {
	var ids partIDs
	for _, pp := range plan.Parts {
		switch pp.Role {
		case image.RoleBoot:
			ids.boot = pp.PARTUUID
		case image.RoleRoot:
			if pp.Slot == "" || pp.Slot == slots.A {
				ids.root = pp.PARTUUID
			}
		case image.RoleData:
			ids.data = pp.PARTUUID
		case image.RoleLayer:
			ids.layers = append(ids.layers, pp.PARTUUID)
		}
	}
	return ids
}

func (a *Artifacts) logf(format string, args ...any) {
	if a.log != nil {
		a.log(format, args...)
	}
}
