// Package builder turns a resolved build configuration into a bootable disk
// image: userland tree -> squashfs lower, init -> initramfs, kernel + initramfs
// + command line -> FAT boot partition, all behind a GPT.
package builder

import (
	"context"
	"crypto/sha256"
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

	"github.com/rfsbuild/rfs/agentsetup"
	"github.com/rfsbuild/rfs/apps"
	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/datapart"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/infile"
	"github.com/rfsbuild/rfs/initramfs"
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
	Output   string // the disk image; empty: none (Emit only)
	// Emit is a directory to write the artifacts to (rfs build --emit):
	// kernel, initramfs, command line, root squashfs, layers, boot files.
	Emit     string
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
	// Device is the device's network, time and SSH setup: the on-device
	// agent is installed when it has any on (agentsetup.Settings.Enabled).
	// nil: no agent (rfs build always sets it: its default is DHCP and
	// the NTP pool).
	Device *agentsetup.Settings
	// Update turns on A/B slots (QEMU boards only, for now) and holds the
	// device's update settings; nil: no slots.
	Update *UpdateSettings
	// Version is the release version (version: in rfs.yaml, --version):
	// os-release's IMAGE_VERSION, and a slotted image's release record.
	// "": a slotted image's is the build epoch in decimal seconds.
	Version string
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

// Result describes a build's outputs.
type Result struct {
	Path     string // the image, if one was written
	Emit     string // the artifacts' directory, if one was written
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

// Build makes the artifacts (Produce) and packages them: the disk image at
// c.Output, the artifacts' directory at c.Emit, or both.
func Build(ctx context.Context, c Config) (*Result, error) {
	start := time.Now()
	a, err := Produce(ctx, c)
	if err != nil {
		return nil, err
	}
	res := &Result{BuildID: a.BuildID}
	var img *DiskImage
	if c.Output != "" {
		img = &DiskImage{Path: c.Output, Size: c.Size}
		if err := img.Package(ctx, a); err != nil {
			return nil, err
		}
		res.Path, res.Size, res.Parts, res.RootSize = img.Path, img.Written, img.Parts, img.RootSize
		c.logf("wrote %s (%s) in %s", c.Output, img.summary(), time.Since(start).Round(time.Millisecond))
	}
	if c.Emit != "" {
		d := &Dir{Path: c.Emit, Image: img}
		if err := d.Package(ctx, a); err != nil {
			return nil, err
		}
		res.Emit = d.Path
	}
	res.Duration = time.Since(start)
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
func (c *Config) checkLayers(ctx context.Context) ([]Layer, error) {
	var out []Layer
	for i, p := range c.Layers {
		m, err := c.checkLayer(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("layer %d (%s): %w", i+1, p, err)
		}
		out = append(out, Layer{Path: p, Meta: m})
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

// DeriveGUID returns a GUID that is a function of the build ID and a role
// (image.DeriveGUID).
func DeriveGUID(buildID, role string) string { return image.DeriveGUID(buildID, role) }

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
