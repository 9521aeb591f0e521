// Package builder turns a resolved build configuration into a bootable disk
// image: userland tree -> squashfs lower, init -> initramfs, kernel + initramfs
// + command line -> FAT boot partition, all behind a GPT.
package builder

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rfsbuild/rfs"
	"github.com/rfsbuild/rfs/apps"
	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/datapart"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/image/ext4"
	"github.com/rfsbuild/rfs/image/fat"
	"github.com/rfsbuild/rfs/infile"
	"github.com/rfsbuild/rfs/initramfs"
	"github.com/rfsbuild/rfs/kernel"
	"github.com/rfsbuild/rfs/modfetch"
	"github.com/rfsbuild/rfs/rootfs"
	"github.com/rfsbuild/rfs/squashfs"
	"github.com/rfsbuild/rfs/squashfs/sqsb"
)

// DefaultEpoch is every file's timestamp when neither the project file nor
// SOURCE_DATE_EPOCH gives one: 2026-01-01T00:00:00Z.
const DefaultEpoch = 1767225600

// DefaultDataSize is the data partition's size in a fresh image.
const DefaultDataSize = 64 * image.MiB

// Files is one --files entry: a host directory and where it lands.
type Files struct {
	Src  string
	Dest string
}

// ParseFiles reads "DIR" or "DIR:/dest".
func ParseFiles(spec string) Files {
	if i := strings.LastIndex(spec, ":/"); i > 0 {
		return Files{Src: spec[:i], Dest: spec[i+1:]}
	}
	return Files{Src: spec, Dest: "/"}
}

// Volume is a directory kept on the data partition across factory resets.
type Volume struct {
	Name string // [a-z0-9_.-]+
	Path string // absolute, clean
}

// ParseVolume reads "/path" or "name:/path"; without a name, one is made
// from the path (/var/lib/app -> var-lib-app).
func ParseVolume(spec string) (Volume, error) {
	if strings.ContainsAny(spec, " \t\r\n#") {
		return Volume{}, fmt.Errorf("volume %q: spaces and # are not allowed (the init's list is one NAME /path per line)", spec)
	}
	name, p, ok := strings.Cut(spec, ":")
	if !ok {
		p, name = spec, ""
	}
	if !strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "/" {
		return Volume{}, fmt.Errorf("volume %q: want a clean absolute path other than / (e.g. /var/lib/app or app:/var/lib/app)", spec)
	}
	if name == "" {
		name = strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
				return r
			case r >= 'A' && r <= 'Z':
				return r + ('a' - 'A')
			}
			return '-'
		}, strings.TrimPrefix(p, "/"))
	}
	line := name + " " + p + "\n"
	vols, warnings := datapart.ParseVolumes(strings.NewReader(line))
	if len(warnings) > 0 || len(vols) != 1 {
		return Volume{}, fmt.Errorf("volume %q: %s", spec, strings.Join(warnings, "; "))
	}
	return Volume{Name: vols[0].Name, Path: vols[0].Path}, nil
}

// Config is a fully resolved build.
type Config struct {
	Board    boards.Board
	Userland string // "busybox" or "u-root"
	// URootCommands is the u-root command set (empty: uroot.DefaultCommands).
	URootCommands []string
	// Apps are the user's Go programs, built for the board; relative
	// paths are relative to AppsDir (the project directory).
	Apps     []apps.App
	AppsDir  string
	Kernel   string // kernel image file or directory holding vmlinuz; empty: the board's pinned kernel
	Files    []Files
	Owner    *rootfs.Owner // owner of Files entries; nil keeps the host's
	Hostname string
	Cmdline  string // extra kernel parameters
	Upper    string // rfs.upper value
	Size     int64  // image size; 0 fits
	Output   string
	Login    bool
	RootHash string
	Epoch    int64
	// Volumes are paths bind-mounted from the data partition's volumes/NAME:
	// they survive a factory reset (unless reset --all).
	Volumes []Volume
	// DataSize is the data partition's size in the image (0: DefaultDataSize);
	// the first boot grows it to fill the medium.
	DataSize int64
	// ConfigTxt lines are appended to a Raspberry Pi's config.txt
	// (dtoverlay=..., dtparam=..., or model sections of their own).
	ConfigTxt []string
	// EFIStub is the EFI stub a UEFI board's Unified Kernel Image is built
	// on; empty: the board's default (systemd-boot-efi's). Other boards
	// ignore it.
	EFIStub string
	// Origin names where each setting came from, by its rfs.yaml key
	// ("data_size"): "--data-size" or "rfs.yaml:7: data_size". Messages
	// use it; a key not in it is named as the key.
	Origin map[string]string
	// Layers are squashfs files stacked above the base root, bottom to
	// top (rfs build --layer, e.g. made by rfs commit). Each gets its own
	// partition rfs-layer-N between the root and the data partition.
	Layers []string
	// ProjectFile is the rfs.yaml the settings came from, if any: an input
	// the output must not replace.
	ProjectFile string

	Fetcher modfetch.Fetcher
	Init    initramfs.Builder
	// Log receives one line per step; nil discards.
	Log func(format string, args ...any)
	// Warn receives what the user should know even when the build
	// succeeds; nil: Log.
	Warn func(format string, args ...any)

	modules map[string]modfetch.Module // directories of downloaded modules
}

// Result describes a written image.
type Result struct {
	Path     string
	BuildID  string
	Size     int64
	Parts    []image.Placed
	RootSize int64 // squashfs bytes
	Duration time.Duration
}

func (c *Config) logf(format string, args ...any) {
	if c.Log != nil {
		c.Log(format, args...)
	}
}

// Build writes the image at c.Output.
func Build(ctx context.Context, c Config) (*Result, error) {
	start := time.Now()
	if c.Userland == "" {
		c.Userland = "busybox"
	}
	if c.Upper == "" {
		c.Upper = "data"
	}
	if c.DataSize == 0 {
		c.DataSize = DefaultDataSize
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := c.checkPaths(); err != nil {
		return nil, err
	}
	for _, f := range c.Files {
		if st, err := os.Stat(f.Src); err != nil {
			return nil, fmt.Errorf("files: %w", err)
		} else if !st.IsDir() {
			return nil, fmt.Errorf("files %s: not a directory", f.Src)
		}
	}
	arch := c.Board.Arch
	layers, err := c.checkLayers(ctx)
	if err != nil {
		return nil, err
	}

	// Kernel first: a wrong kernel should fail before any work is done.
	kernelPath, kernelOrigin, err := c.kernel(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := kernel.Check(kernelPath, arch); err != nil {
		return nil, err
	}
	if st, err := os.Stat(kernelPath); err == nil {
		c.logf("kernel %s (%s)", kernelOrigin, image.HumanSize(st.Size()))
	}

	bbDir, err := c.download(ctx, boards.BusyboxModule)
	if err != nil {
		return nil, err
	}
	bbPath := filepath.Join(bbDir, boards.BusyboxPath(arch))

	// The lower layer.
	tree := rootfs.New(c.Epoch)
	skel := rootfs.Skeleton{Hostname: c.Hostname, Login: c.Login, RootPasswordHash: c.RootHash, Version: rfs.Version(), Board: c.Board.Name}
	if err := skel.Add(tree); err != nil {
		return nil, err
	}
	userland, err := c.installUserland(ctx, tree, bbPath)
	if err != nil {
		return nil, err
	}
	if err := c.addFiles(ctx, tree); err != nil {
		return nil, err
	}
	if err := c.addVolumes(tree); err != nil {
		return nil, err
	}
	// The init copies itself to /run/rfs/bin at boot; this puts its on-device
	// commands (rfs-init status, rfs-init reset) on PATH.
	if err := tree.Add("/usr/bin/rfs-init", &rootfs.Node{Type: rootfs.Symlink, Perm: 0o777, Target: "/run/rfs/bin/rfs-init", MTime: c.Epoch}); err != nil {
		return nil, err
	}
	digest, err := tree.DigestContext(ctx)
	if err != nil {
		return nil, err
	}

	// The initramfs.
	initPath, err := c.Init.Init(ctx, arch)
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

	// The boot partition, but for the files that name the build.
	boot, err := c.bootFiles(ctx, kernelPath, initrd)
	if err != nil {
		return nil, err
	}
	bootDigest, err := boot.Digest()
	if err != nil {
		return nil, err
	}
	var ukiDigest []byte
	if c.Board.UEFI != nil {
		// The kernel is not a file of a UEFI board's ESP but goes into the
		// UKI, with the stub: both decide the image's bytes.
		d, err := c.ukiInputs(kernelPath)
		if err != nil {
			return nil, err
		}
		ukiDigest = d[:]
	}

	// Everything that decides the image's bytes goes into the build ID, and
	// every UUID is derived from it: same inputs, same image.
	h := sha256.New()
	fmt.Fprintf(h, "rfs-image-v2\nboard=%s\nupper=%s\ncmdline=%s\nsize=%d\ndata=%d\n", c.Board.Name, c.Upper, c.Cmdline, c.Size, c.DataSize)
	h.Write(digest[:])
	h.Write(bootDigest[:])
	h.Write(ukiDigest)
	for _, l := range layers {
		// Only with layers, so images without any keep their build IDs.
		fmt.Fprintf(h, "layer=%s\n", l.SHA256)
	}
	buildID := hex.EncodeToString(h.Sum(nil))[:32]
	skel.BuildID = buildID
	if err := skel.AddOSRelease(tree); err != nil {
		return nil, err
	}

	rootType, err := image.RootType(arch)
	if err != nil {
		return nil, err
	}
	layout := image.Layout{Table: c.Board.Table, Size: c.Size}
	var bootID, rootID, dataID string
	if layout.Table == "mbr" {
		id, _ := hex.DecodeString(DeriveGUID(buildID, "disk")[:8])
		layout.DiskID = binary.BigEndian.Uint32(id)
		// MBR has 4 primary slots: boot, root, data last. One layer is
		// primary 3; more are logical partitions (5, 6, ...) in an
		// extended partition. The numbers are the layout's own.
		logical := make([]bool, 2+len(layers)+1)
		for i := range layers {
			logical[2+i] = len(layers) > 1
		}
		nums, _ := image.MBRNumbers(logical)
		partUUID := func(i int) string { return image.MBRPartUUID(layout.DiskID, nums[i]) }
		bootID, rootID, dataID = partUUID(0), partUUID(1), partUUID(len(nums)-1)
		for i := range layers {
			layers[i].PARTUUID = partUUID(2 + i)
		}
	} else {
		layout.DiskGUID = DeriveGUID(buildID, "disk")
		bootID, rootID, dataID = DeriveGUID(buildID, "boot"), DeriveGUID(buildID, "root"), DeriveGUID(buildID, "data")
		for i := range layers {
			layers[i].PARTUUID = DeriveGUID(buildID, fmt.Sprintf("layer-%d", i+1))
		}
	}

	ids := partIDs{root: rootID, data: dataID, boot: bootID}
	for _, l := range layers {
		ids.layers = append(ids.layers, l.PARTUUID)
	}
	cmdline := c.kernelCmdline(ids)
	meta := image.Meta{Board: c.Board.Name, Arch: arch, RFSVersion: rfs.Version(), BuildID: buildID, Kernel: kernelOrigin, KernelFile: c.kernelName(), Upper: c.Upper, RootGUID: rootID, DataGUID: dataID, BootGUID: bootID, Userland: c.Userland, Layers: layers}
	files := map[string][]byte{
		image.CmdlineFile: []byte(cmdline + "\n"),
		image.MetaFile:    meta.Marshal(),
	}
	if c.Board.UEFI != nil {
		img, err := c.unifiedKernelImage(kernelPath, initrd, cmdline, tree)
		if err != nil {
			return nil, err
		}
		files[c.Board.UEFI.BootFile] = img
		c.logf("unified kernel image %s (stub %s)", image.HumanSize(int64(len(img))), c.efiStub())
	}
	for name, content := range files {
		if err := boot.Add("/"+name, &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, MTime: c.Epoch, Content: rootfs.Bytes(content)}); err != nil {
			return nil, err
		}
	}
	// Headroom lets a bigger kernel or initramfs replace these in place.
	bootSize := roundUp(fat.MinSize(boot)+16*image.MiB, image.MiB)
	volID, _ := hex.DecodeString(DeriveGUID(buildID, "fat")[:8])

	var rootSize int64
	layout.Partitions = []image.Partition{
		{
			Name: image.BootPartition, Type: image.TypeESP, GUID: bootID, Size: bootSize,
			MBRType: image.MBRTypeFAT32LBA, Bootable: true,
			Write: func(ctx context.Context, w io.WriterAt) (int64, error) {
				opts := fat.Options{Label: "RFS-BOOT", VolumeID: binary.BigEndian.Uint32(volID), MTime: c.Epoch}
				return bootSize, fat.WriteContext(ctx, w, bootSize, boot, opts)
			},
		},
		{
			Name: image.RootPartition, Type: rootType, GUID: rootID, MBRType: image.MBRTypeLinux,
			Write: func(ctx context.Context, w io.WriterAt) (int64, error) {
				n, err := squashfs.WriteContext(ctx, w, tree, squashfs.Options{MTime: c.Epoch})
				rootSize = n
				return n, err
			},
		},
	}
	for i, l := range layers {
		layout.Partitions = append(layout.Partitions, image.Partition{
			Name: image.LayerPartition(i + 1), Type: image.TypeLinuxData, GUID: l.PARTUUID, MBRType: image.MBRTypeLinux,
			Logical: layout.Table == "mbr" && len(layers) > 1, // as numbered above
			Write:   func(ctx context.Context, w io.WriterAt) (int64, error) { return copyFile(ctx, w, c.Layers[i]) },
		})
	}
	layout.Partitions = append(layout.Partitions,
		image.Partition{
			// Last, so the first boot can grow it to the end of the medium.
			Name: image.DataPartition, Type: image.TypeLinuxData, GUID: dataID, MBRType: image.MBRTypeLinux, Size: c.DataSize,
			Write: func(ctx context.Context, w io.WriterAt) (int64, error) {
				err := ext4.Make(ctx, w, c.DataSize, ext4.Options{
					Label: image.DataPartition, UUID: DeriveGUID(buildID, "data-fs"), HashSeed: DeriveGUID(buildID, "data-hash"), Epoch: c.Epoch,
				})
				return c.DataSize, err
			},
		},
	)
	parts, err := layout.WriteFile(ctx, c.Output)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(c.Output)
	if err != nil {
		return nil, err
	}
	res := &Result{Path: c.Output, BuildID: buildID, Size: st.Size(), Parts: parts, RootSize: rootSize, Duration: time.Since(start)}
	var lsizes string
	for i, l := range layers {
		lsizes += fmt.Sprintf(", layer %d %s", i+1, image.HumanSize(l.Size))
	}
	c.logf("wrote %s (%s: boot %s, root squashfs %s%s, data %s) in %s", c.Output, image.HumanSize(res.Size), image.HumanSize(bootSize), image.HumanSize(rootSize), lsizes, image.HumanSize(c.DataSize), res.Duration.Round(time.Millisecond))
	return res, nil
}

// addFiles merges the --files directories. Each source's contents merge
// into its destination, which keeps its own mode and owner; a system
// directory a source leaves unusable for other users gets a warning that
// names the source.
func (c *Config) addFiles(ctx context.Context, tree *rootfs.Tree) error {
	for _, f := range c.Files {
		before := tree.SystemDirProblems()
		opts := rootfs.HostDirOptions{Owner: c.Owner, MTime: &c.Epoch, KeepDest: true}
		if err := tree.AddHostDirContext(ctx, f.Src, f.Dest, opts); err != nil {
			return err
		}
		after := tree.SystemDirProblems()
		for _, p := range slices.Sorted(maps.Keys(after)) {
			if before[p] != after[p] {
				c.warnf("warning: %s %s makes the image's %s %s", c.where("files"), f.Src, p, after[p])
			}
		}
	}
	return nil
}

func (c *Config) warnf(format string, args ...any) {
	if c.Warn != nil {
		c.Warn(format, args...)
		return
	}
	c.logf(format, args...)
}

// checkLayers checks every --layer file: a squashfs our reader reads,
// compressed with what the kernel supports; it returns their records for
// rfs.json (PARTUUIDs still empty).
func (c *Config) checkLayers(ctx context.Context) ([]image.LayerMeta, error) {
	var out []image.LayerMeta
	for i, p := range c.Layers {
		m, err := c.checkLayer(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("layer %d (%s): %w", i+1, p, err)
		}
		out = append(out, m)
	}
	return out, nil
}

func (c *Config) checkLayer(ctx context.Context, p string) (image.LayerMeta, error) {
	f, err := infile.Open("", p)
	if err != nil {
		return image.LayerMeta{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return image.LayerMeta{}, err
	}
	if !st.Mode().IsRegular() {
		return image.LayerMeta{}, errors.New("not a regular file (want a squashfs file, e.g. from rfs commit)")
	}
	if _, err := sqsb.Read(f); err != nil {
		return image.LayerMeta{}, err
	}
	r, err := squashfs.Open(f)
	if err != nil {
		return image.LayerMeta{}, err
	}
	info := r.Info()
	if info.Compressor != "gzip" {
		if c.Kernel == "" {
			return image.LayerMeta{}, fmt.Errorf("compressed with %s: the %s kernel reads gzip squashfs only (rebuild it with gzip, or bring a kernel that has it with --kernel)", info.Compressor, c.Board.Name)
		}
		c.logf("layer %s: compressed with %s; your --kernel must support it", p, info.Compressor)
	}
	if info.Xattrs && c.Kernel == "" {
		c.logf("layer %s has xattrs; the %s kernel ignores them (opaque directories need explicit whiteouts, as rfs commit writes)", p, c.Board.Name)
	}
	h := sha256.New()
	if _, err := io.Copy(h, ctxReader{ctx, io.NewSectionReader(f, 0, st.Size())}); err != nil {
		return image.LayerMeta{}, err
	}
	return image.LayerMeta{File: p, SHA256: hex.EncodeToString(h.Sum(nil)), Size: st.Size()}, nil
}

// copyFile writes the file at p to w from offset 0, until ctx is done.
func copyFile(ctx context.Context, w io.WriterAt, p string) (int64, error) {
	f, err := infile.Open("", p)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return io.Copy(io.NewOffsetWriter(w, 0), ctxReader{ctx, f})
}

// addVolumes writes the volume list the init reads from the lower.
func (c *Config) addVolumes(t *rootfs.Tree) error {
	if len(c.Volumes) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("# Volumes: NAME /path, bind-mounted from the data partition's volumes/NAME.\n")
	b.WriteString("# They survive a factory reset; rfs reset --all wipes them too.\n")
	names, paths := map[string]bool{}, map[string]bool{}
	for _, v := range c.Volumes {
		if names[v.Name] || paths[v.Path] {
			return fmt.Errorf("volume %s %s: name or path given twice", v.Name, v.Path)
		}
		names[v.Name], paths[v.Path] = true, true
		fmt.Fprintf(&b, "%s %s\n", v.Name, v.Path)
	}
	return t.Add(datapart.VolumesFile, &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, MTime: c.Epoch, Content: rootfs.Bytes(b.String())})
}

func (c *Config) kernel(ctx context.Context) (path, origin string, err error) {
	if c.Kernel != "" {
		p := c.Kernel
		st, err := os.Stat(p)
		if err != nil {
			return "", "", fmt.Errorf("kernel: %w", err)
		}
		if st.IsDir() {
			p = filepath.Join(p, "vmlinuz")
			if _, err := os.Stat(p); err != nil {
				return "", "", fmt.Errorf("kernel directory %s has no vmlinuz: %w", c.Kernel, err)
			}
		}
		if err := infile.Check("kernel", p); err != nil {
			return "", "", err
		}
		return p, p, nil
	}
	src := c.Board.Kernel
	dir, err := c.download(ctx, src.Module)
	if err != nil {
		return "", "", err
	}
	return filepath.Join(dir, src.File), src.Module.String(), nil
}

// DeriveGUID returns a GUID that is a function of the build ID and a role,
// formatted as a version-4 (random) UUID so tools treat it as one.
func DeriveGUID(buildID, role string) string {
	s := sha256.Sum256([]byte("rfs-guid\x00" + buildID + "\x00" + role))
	b := s[:16]
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	x := hex.EncodeToString(b)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }

// ctxReader ends a copy with ctx's error once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
