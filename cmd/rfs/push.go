package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/rfsbuild/rfs/bundle"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/updatesig"
)

func newPushCmd() *cobra.Command {
	var version, signKey string
	cmd := &cobra.Command{
		Use:   "push IMAGE REF",
		Short: "Publish an image's release to an OCI registry or an OCI layout directory",
		Long: `Publish the release held by an rfs image as an OCI artifact: one blob per part
(kernel, initramfs, boot-files: the boot partition's other files as a tar,
root: the root squashfs, layer-N: each layer squashfs) and a config blob naming
the board, arch, version and build ID. Blobs are content-addressed: parts the
registry already holds are not uploaded again, and the same image always gives
the same manifest digest.

REF is a registry reference (registry/repository:tag, e.g. ghcr.io/me/gw:1.4)
or oci-layout:DIR[:TAG] for an OCI image layout directory (made if missing),
for offline use. Registry credentials are found as docker finds them:
~/.docker/config.json ($DOCKER_CONFIG) and its credential helpers; run
docker login (or podman login, oras login) first for a private registry.

The release version defaults to the image's build epoch (seconds since 1970,
from SOURCE_DATE_EPOCH or the project's epoch at build time); --version sets
another. Prints the manifest digest and each part's size.

--sign-key signs the release with a private update key from rfs keygen: the
signature covers the config blob, which lists every part's digest. Devices
built with the matching public key (update: {public_key: NAME.pub} in
rfs.yaml) refuse releases that are unsigned or signed by another key.`,
		Example: `  rfs push out/qemu-arm64.img localhost:5000/rfs/gw:1.4
  rfs push out/rpi4.img ghcr.io/me/gw:1.4 --version 1.4
  rfs push out/rpi4.img oci-layout:release:1.4     # a directory to copy offline
  rfs keygen -o prod && rfs push out/rpi4.img ghcr.io/me/gw:1.4 --sign-key prod.key`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return fmt.Errorf("need IMAGE and REF (registry/repo:tag or oci-layout:DIR[:TAG]), got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := bundle.Options{Version: version}
			if signKey != "" {
				priv, err := updatesig.ReadPrivateKeyFile(signKey)
				if err != nil {
					return fmt.Errorf("--sign-key: %w", err)
				}
				opts.Signer = bundle.SignWith(priv)
				fmt.Fprintf(cmd.ErrOrStderr(), "rfs: signing with key %s\n",
					updatesig.ShortKeyID(updatesig.KeyID(priv.Public().(ed25519.PublicKey))))
			}
			return runPush(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], args[1], opts)
		},
	}
	cmd.Flags().StringVar(&version, "version", "", "release version (default: the build epoch)")
	cmd.Flags().StringVar(&signKey, "sign-key", "", "sign the release with this private update key (rfs keygen's NAME.key)")
	return cmd
}

func runPush(ctx context.Context, stdout, stderr io.Writer, img, ref string, opts bundle.Options) error {
	var bar *pushBar
	if isTerminal(stderr) {
		bar = &pushBar{p: mpb.NewWithContext(ctx, mpb.WithOutput(stderr), mpb.WithWidth(40))}
		opts.Progress = bar.update
	}
	start := time.Now()
	pushed, err := bundle.Push(ctx, img, ref, opts)
	if bar != nil {
		bar.done(err == nil)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "rfs: pushed %s (%s %s, version %s, build %s) in %s\n", ref, pushed.Config.Board,
		pushed.Config.Arch, pushed.Config.Version, pushed.Config.BuildID, round(time.Since(start)))
	return printPushed(stdout, pushed)
}

// printPushed prints the digest and a table of the parts.
func printPushed(w io.Writer, p *bundle.Pushed) error {
	fmt.Fprintf(w, "digest: %s\n", p.Digest)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PART\tROLE\tSIZE\tDIGEST")
	for _, part := range p.Config.Parts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", part.Name, part.Role, image.HumanSize(part.Size), part.Digest)
	}
	return tw.Flush()
}

// pushBar is one bar for the whole upload (go-containerregistry reports
// the bytes of all blobs together; blobs the registry has count as done).
type pushBar struct {
	p   *mpb.Progress
	bar *mpb.Bar
}

func (b *pushBar) update(complete, total int64) {
	if b.bar == nil {
		b.bar = b.p.AddBar(total,
			mpb.PrependDecorators(decor.Name("push   "), decor.CountersKibiByte("% .1f / % .1f", decor.WCSyncWidth)),
			mpb.AppendDecorators(decor.AverageSpeed(decor.SizeB1024(0), "% .1f", decor.WCSyncWidth), decor.Name("  ETA "), decor.AverageETA(decor.ET_STYLE_GO)),
		)
	}
	b.bar.SetTotal(total, false)
	b.bar.SetCurrent(complete)
}

func (b *pushBar) done(ok bool) {
	if b.bar != nil {
		if ok {
			b.bar.SetTotal(-1, true)
		} else {
			b.bar.Abort(false)
		}
	}
	b.p.Wait()
}
