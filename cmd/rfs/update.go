package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"time"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/rfsbuild/rfs/bundle"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/install"
	"github.com/rfsbuild/rfs/install/imagetarget"
	"github.com/rfsbuild/rfs/release"
	"github.com/rfsbuild/rfs/reset"
	"github.com/rfsbuild/rfs/slots"
	"github.com/rfsbuild/rfs/squashfs"
	"github.com/rfsbuild/rfs/updatesig"
)

func newUpdateCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "update IMAGE|DEVICE REF",
		Short: "Write a release into the inactive A/B slot of an image or a card",
		Long: `Write the release at REF into the slot of IMAGE (an image file, or a card in a
reader) that does not boot now, and arm its trial: the device's next boot
tries the new slot once, commits it when it is healthy, and returns to the
running release otherwise. The upper layer and the volumes on the data
partition are kept.

REF is a registry reference (registry/repository:tag, as rfs push takes it;
credentials as docker finds them) or oci-layout:DIR[:TAG]. The release must
be signed with the key whose public half the image holds (update:
{public_key: ...} in rfs.yaml), be for the image's board and arch, and not be
older than the running release (--force allows older). Parts the running
slot already holds are copied from it, not downloaded. Every part is checked
against its digest before it is written, and the slot's root is read back
and checked again.

The image must have A/B slots (update: in rfs.yaml, or rfs build --slots). A
card that is mounted, or an image a QEMU is running, is refused.`,
		Example: `  rfs update out/qemu-arm64.img localhost:5000/rfs/gw:1.5
  rfs update /dev/sdX ghcr.io/me/gw:1.5
  rfs update out/qemu-arm64.img oci-layout:release:1.5`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return fmt.Errorf("need IMAGE|DEVICE and REF (registry/repo:tag or oci-layout:DIR[:TAG]), got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runUpdate(cmd.Context(), cmd.ErrOrStderr(), args[0], args[1], force)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "install a release older than the running one")
	return cmd
}

// runUpdate is rfs update: check the target, read and verify the
// release, install it into the inactive slot.
func runUpdate(ctx context.Context, stderr io.Writer, target, ref string, force bool) error {
	if _, err := reset.Inspect(target); err != nil {
		return err
	}
	dev, closeTarget, meta, err := openUpdateTarget(target, stderr)
	if err != nil {
		return err
	}
	defer closeTarget()
	pub, err := imageUpdateKey(target)
	if err != nil {
		return err
	}
	b, err := bundle.Inspect(ctx, ref, bundle.Options{})
	if err != nil {
		return err
	}
	st, err := dev.State()
	if err != nil {
		return fmt.Errorf("%s: %w", target, err)
	}
	current := st.Slots[st.Committed].Version
	if err := release.Verify(&b.Bundle, pub, meta.Board, meta.Arch, current, force); err != nil {
		return fmt.Errorf("%s: %w (the image is unchanged)", ref, err)
	}
	stage, err := os.MkdirTemp("", "rfs-update-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	dev.StageDir = stage
	start := time.Now()
	slot, err := dev.Install(ctx, hostRelease(b), fetchFromBundle(b, stderr))
	if err != nil {
		return fmt.Errorf("%s: %w", target, err)
	}
	fmt.Fprintf(stderr, "rfs: %s: slot %s holds version %s (build %s), verified, in %s; the next boot tries it, and commits it once healthy\n",
		target, slot, b.Config.Version, b.Config.BuildID, round(time.Since(start)))
	return nil
}

// openUpdateTarget opens an image or card with A/B slots for writing.
func openUpdateTarget(target string, log io.Writer) (*install.Device, func(), image.Meta, error) {
	img, err := image.OpenImage(target)
	if err != nil {
		return nil, nil, image.Meta{}, err
	}
	defer img.Close()
	meta, err := img.ReadMeta()
	if err != nil {
		return nil, nil, meta, err
	}
	if !img.Slotted() {
		return nil, nil, meta, fmt.Errorf("%s: %w", target, slots.ErrNoSlots)
	}
	committed, err := img.CommittedSlot()
	if err != nil {
		return nil, nil, meta, err
	}
	boot, err := img.Boot()
	if err != nil {
		return nil, nil, meta, err
	}
	t := &imagetarget.ImageTarget{Boot: imagetarget.Region{Start: boot.Start, Size: boot.Size}, Roots: map[string]imagetarget.Region{}}
	for _, s := range []string{slots.A, slots.B} {
		p, err := img.RootOf(s)
		if err != nil {
			return nil, nil, meta, err
		}
		t.Roots[s] = imagetarget.Region{Start: p.Start, Size: p.Size}
	}
	f, err := os.OpenFile(target, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, meta, err
	}
	t.File = f
	kernel := path.Base(meta.KernelFile)
	if meta.KernelFile == "" {
		kernel = image.KernelFile
	}
	dev := &install.Device{Target: t, Booted: committed, KernelName: kernel, Log: log}
	return dev, func() { f.Sync(); f.Close() }, meta, nil
}

// imageUpdateKey reads the update key from the image's committed root
// (/etc/rfs/update.json), as the device does.
func imageUpdateKey(target string) (ed25519.PublicKey, error) {
	img, err := image.OpenImage(target)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	root, err := img.Root()
	if err != nil {
		return nil, err
	}
	r, err := squashfs.Open(img.Section(root.Placed))
	if err != nil {
		return nil, fmt.Errorf("%s: root: %w", target, err)
	}
	ino, err := r.Lookup(slots.ConfigFile)
	if err != nil {
		return nil, fmt.Errorf("%s: the image has no update key (%s): build it with update: {public_key: FILE} in rfs.yaml", target, slots.ConfigFile)
	}
	sec, err := r.OpenFile(ino)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(sec, slots.MaxStateFile+1))
	if err != nil {
		return nil, err
	}
	cfg, err := slots.ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", target, err)
	}
	pub, err := updatesig.ParsePublicKey([]byte(cfg.PublicKey))
	if err != nil {
		return nil, fmt.Errorf("%s: %s: public_key: %w", target, slots.ConfigFile, err)
	}
	return pub, nil
}

// hostRelease is a verified bundle as the installer takes it.
func hostRelease(b *bundle.Bundle) install.Release {
	rel := install.Release{Version: b.Config.Version, BuildID: b.Config.BuildID, Config: b.RawConfig}
	for _, p := range b.Config.Parts {
		rel.Parts = append(rel.Parts, install.Part{Name: p.Name, Role: p.Role, Digest: p.Digest, Size: p.Size})
	}
	return rel
}

// fetchFromBundle downloads parts from the bundle's registry or layout
// (verified by the bundle's reader, and again by the installer), with a
// progress bar on a terminal.
func fetchFromBundle(b *bundle.Bundle, stderr io.Writer) install.Fetcher {
	return func(ctx context.Context, p install.Part, dst string, progress func(done, total int64)) error {
		rc, err := b.Open(ctx, p.Name)
		if err != nil {
			return err
		}
		defer rc.Close()
		var bar *mpb.Bar
		var pg *mpb.Progress
		if isTerminal(stderr) {
			pg = mpb.NewWithContext(ctx, mpb.WithOutput(stderr), mpb.WithWidth(40))
			bar = pg.AddBar(p.Size, mpb.PrependDecorators(decor.Name(fmt.Sprintf("%-10s ", p.Name)), decor.CountersKibiByte("% .1f / % .1f")))
			if rc2, err := bar.ProxyReader(rc); err == nil {
				defer rc2.Close()
				rc = rc2
			}
		}
		err = writeNew(dst, rc, p.Size)
		if pg != nil {
			if err != nil {
				bar.Abort(false)
			}
			pg.Wait()
		}
		return err
	}
}

// writeNew writes exactly size bytes from r to a new file at path.
func writeNew(path string, r io.Reader, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, io.LimitReader(r, size+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != size {
		err = fmt.Errorf("%d bytes, want %d", n, size)
	}
	if err != nil {
		os.Remove(path)
		return errors.Join(fmt.Errorf("download to %s", path), err)
	}
	return nil
}
