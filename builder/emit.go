package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/rfsbuild/rfs/atomicfile"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/infile"
	"github.com/rfsbuild/rfs/squashfs"
)

// Names of the files Dir writes.
const (
	EmitKernel   = "kernel"
	EmitCmdline  = "cmdline.txt"
	EmitTemplate = "cmdline.template"
	EmitRoot     = "root.sqfs"
	EmitData     = "data.ext4"
	EmitBoot     = "boot" // directory: the boot partition's files
	EmitManifest = "manifest.json"
	EmitReadme   = "README.txt"
	// EmitFormat marks a manifest.json as Dir's: an existing directory
	// holding one may be replaced by the next --emit.
	EmitFormat = "rfs-emit-1"
)

// EmitLayer is the name of layer n's file (1 = the lowest).
func EmitLayer(n int) string { return fmt.Sprintf("layer-%d.sqfs", n) }

// Dir is the artifacts-directory packager (rfs build --emit DIR): the
// artifacts as files, for pipelines that lay out disks themselves
// (genimage, wic) or boot over the network. Written atomically
// (atomicfile.WriteDir); it replaces only an empty directory or an
// earlier --emit output.
type Dir struct {
	Path string
	// Image, if set, is the disk image written from the same artifacts
	// just before: the root squashfs is copied from it, not made again.
	Image *DiskImage
}

// Manifest is Dir's manifest.json.
type Manifest struct {
	Format  string         `json:"format"`
	Board   string         `json:"board"`
	BuildID string         `json:"build_id"`
	Files   []ManifestFile `json:"files"`
}

// ManifestFile is one file of a Manifest; Path uses slashes.
type ManifestFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Package writes the directory.
func (d *Dir) Package(ctx context.Context, a *Artifacts) error {
	plan, err := a.Plan()
	if err != nil {
		return err
	}
	var n int
	err = atomicfile.WriteDir(d.Path, isEmitDir, func(tmp string) error {
		e := &emitter{ctx: ctx, dir: tmp}
		d.fill(e, a, plan)
		if e.err != nil {
			return e.err
		}
		n = len(e.files)
		m := Manifest{Format: EmitFormat, Board: a.Board.Name, BuildID: a.BuildID, Files: e.files}
		b, _ := json.MarshalIndent(m, "", "  ")
		e.bytes(EmitManifest, append(b, '\n'))
		return e.err
	})
	if err != nil {
		return fmt.Errorf("--emit %w", err)
	}
	a.logf("wrote %s (%d files)", d.Path, n+1)
	return nil
}

// fill writes every artifact into e's directory: the root first, so
// rfs.json can record its partition's size as the disk image does.
func (d *Dir) fill(e *emitter, a *Artifacts, plan image.Plan) {
	var rootBytes int64
	if img := d.Image; img != nil {
		rootBytes = img.RootSize
		e.copySection(EmitRoot, img.Path, img.part(image.RootPartition).Start, rootBytes)
	} else {
		e.writeAt(EmitRoot, func(w io.WriterAt) (int64, error) {
			n, err := squashfs.WriteContext(e.ctx, w, a.Root, rootOptions(a))
			rootBytes = n
			return n, err
		})
	}
	booted := d.booted(e, a, plan, rootBytes)
	if booted == nil {
		return
	}
	e.copy(EmitKernel, a.Kernel)
	e.bytes(image.InitrdFile, a.Initramfs)
	e.bytes(EmitCmdline, []byte(booted.Cmdline+"\n"))
	e.bytes(EmitTemplate, []byte(a.Cmdline.Template()+"\n"))
	for i, l := range a.Layers {
		e.copy(EmitLayer(i+1), l.Path)
	}
	if data := plan.Find(image.RoleData, 0); data != nil {
		e.writeAt(EmitData, func(w io.WriterAt) (int64, error) { return data.Size, a.makeData(e.ctx, w, data.Size) })
	}
	for _, f := range booted.Files {
		r, err := f.Content.Open()
		if err != nil {
			e.fail(err)
			return
		}
		e.file(path.Join(EmitBoot, f.Name), r)
		r.Close()
	}
	e.bytes(image.MetaFile, booted.Meta.Marshal())
	e.bytes(EmitReadme, []byte(emitReadme(a, booted)))
}

// booted is the boot partition's content: the image's, when one was
// written, else the same computed for the plan.
func (d *Dir) booted(e *emitter, a *Artifacts, plan image.Plan, rootBytes int64) *Booted {
	if d.Image != nil {
		return d.Image.Booted
	}
	if e.err != nil {
		return nil
	}
	min, err := a.BootMin(plan)
	if err != nil {
		e.fail(err)
		return nil
	}
	b, err := a.BootFor(plan, a.PartSizes(plan, plan.Find(image.RoleBoot, 0).SizeOf(min), rootBytes))
	if err != nil {
		e.fail(err)
		return nil
	}
	return b
}

// isEmitDir reports whether dir is an earlier --emit output (its
// manifest.json says so), which a new one may replace.
func isEmitDir(dir string) bool {
	f, err := os.Open(filepath.Join(dir, EmitManifest))
	if err != nil {
		return false
	}
	defer f.Close()
	var m Manifest
	return json.NewDecoder(io.LimitReader(f, image.MaxSmallFile)).Decode(&m) == nil && m.Format == EmitFormat
}

// emitter writes files into dir and records them for the manifest; the
// first error stops it.
type emitter struct {
	ctx   context.Context
	dir   string
	files []ManifestFile
	err   error
}

func (e *emitter) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

// create makes name (slash-separated) and its directories.
func (e *emitter) create(name string) *os.File {
	if e.err == nil {
		e.fail(e.ctx.Err())
	}
	if e.err != nil {
		return nil
	}
	p := filepath.Join(e.dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.fail(err)
		return nil
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		e.fail(err)
		return nil
	}
	return f
}

// done syncs and closes f and records it, hashing what it holds.
func (e *emitter) done(name string, f *os.File) {
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, ctxReader{e.ctx, io.NewSectionReader(f, 0, 1<<62)})
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		e.fail(fmt.Errorf("%s: %w", name, err))
		return
	}
	e.files = append(e.files, ManifestFile{Path: name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))})
}

func (e *emitter) file(name string, r io.Reader) {
	f := e.create(name)
	if f == nil {
		return
	}
	if _, err := io.Copy(f, ctxReader{e.ctx, r}); err != nil {
		f.Close()
		e.fail(fmt.Errorf("%s: %w", name, err))
		return
	}
	e.done(name, f)
}

func (e *emitter) bytes(name string, b []byte) { e.file(name, strings.NewReader(string(b))) }

// copy copies the host file src.
func (e *emitter) copy(name, src string) {
	f, err := infile.Open("", src)
	if err != nil {
		e.fail(err)
		return
	}
	defer f.Close()
	e.file(name, f)
}

// copySection copies size bytes of the file src from offset off.
func (e *emitter) copySection(name, src string, off, size int64) {
	f, err := os.Open(src)
	if err != nil {
		e.fail(err)
		return
	}
	defer f.Close()
	e.file(name, io.NewSectionReader(f, off, size))
}

// writeAt lets write fill name at offsets; the file is cut to the size it
// returns.
func (e *emitter) writeAt(name string, write func(io.WriterAt) (int64, error)) {
	f := e.create(name)
	if f == nil {
		return
	}
	n, err := write(f)
	if err == nil {
		err = f.Truncate(n)
	}
	if err != nil {
		f.Close()
		e.fail(fmt.Errorf("%s: %w", name, err))
		return
	}
	e.done(name, f)
}

// emitReadme says what each file of the directory is.
func emitReadme(a *Artifacts, b *Booted) string {
	var s strings.Builder
	fmt.Fprintf(&s, "Artifacts of an rfs build (rfs build --emit): board %s (%s), build ID %s.\n\n", a.Board.Name, a.Board.Arch, a.BuildID)
	kernel := "the kernel image (on the boot partition as " + b.Meta.KernelFile + ")"
	if a.Board.UEFI != nil {
		kernel = "the kernel image; the boot partition holds it inside the Unified Kernel Image " + EmitBoot + "/" + a.Board.UEFI.BootFile + " (with the initramfs and cmdline.txt)"
	}
	rows := [][2]string{
		{EmitKernel, kernel},
		{image.InitrdFile, "the initramfs (gzip newc cpio): rfs-init, which mounts the overlay, and a rescue busybox"},
		{EmitCmdline, "the kernel command line for the partition ids of the disk image rfs build writes (rfs.json's layout)"},
		{EmitTemplate, "the same command line with placeholders for other layouts: replace " + RootPlaceholder + ", " + DataPlaceholder + ", " + BootPlaceholder + " (and @LAYERn_PARTUUID@) with your partitions' PARTUUIDs (GPT: the unique partition GUID; MBR: SSSSSSSS-NN)"},
		{EmitRoot, "the root filesystem (squashfs, read-only lower): a partition of its own, found by " + RootPlaceholder},
	}
	for i := range a.Layers {
		rows = append(rows, [2]string{EmitLayer(i + 1), fmt.Sprintf("layer %d, stacked above the root (bottom to top), a partition of its own", i+1)})
	}
	rows = append(rows,
		[2]string{EmitData, "the data partition's empty ext4 (label rfs-data): upper, work dir and volumes; put it last, the first boot grows it to the end of the medium"},
		[2]string{EmitBoot + "/", "the boot partition's files (FAT32, label RFS-BOOT): copy them onto a FAT partition, or serve kernel, initramfs and command line over the network"},
		[2]string{image.MetaFile, "the image's metadata (also on the boot partition): board, build ID, layout"},
		[2]string{EmitManifest, "size and sha256 of every file here"},
	)
	for _, r := range rows {
		fmt.Fprintf(&s, "%s\n    %s\n", r[0], r[1])
	}
	return s.String()
}
