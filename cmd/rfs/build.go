package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/project"
)

type buildFlags = project.BuildFlags

func newBuildCmd() *cobra.Command {
	cmd, _ := buildCommand()
	return cmd
}

// buildCommand returns the command and the flag values it fills.
func buildCommand() (*cobra.Command, *buildFlags) {
	f := new(buildFlags)
	var quiet bool
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Build a bootable disk image",
		Long: `Build a bootable disk image: a busybox userland in a read-only squashfs root
partition, and a FAT boot partition holding the kernel, an initramfs whose init
mounts overlayfs (the squashfs lower + a writable upper on the data partition,
or a tmpfs) and the kernel command line; and an ext4 data partition.

Settings come from the project file (./rfs.yaml when present, or --config);
flags override it. Kernels and busybox come through the Go module proxy,
pinned and hash-checked, and are cached in the Go module cache.
The image is written to a temporary name and renamed when complete.

--emit DIR writes the artifacts instead (with -o: as well), for pipelines
that lay out disks themselves or boot over the network: kernel,
initramfs.img, cmdline.txt (for the image's partition ids) and
cmdline.template (with @ROOT_PARTUUID@-style placeholders), root.sqfs,
layer-N.sqfs, data.ext4, boot/ (the boot partition's files), rfs.json,
manifest.json (size and sha256 of each file) and README.txt. DIR is
replaced as a whole, only if empty or an earlier --emit output.`,
		Example: `  rfs build                                  # default board, out/qemu-arm64.img
  rfs build --board qemu-amd64 -o out/x86.img
  rfs build --files ./overlay --files ./app:/opt/app --hostname kiosk
  rfs build --kernel ~/linux/arch/arm64/boot/Image --cmdline quiet
  rfs build --upper tmpfs:size=256M --size 1G
  rfs build --volume /var/lib/app --volume wifi:/etc/wpa_supplicant
  rfs build --layer changes.sqfs             # stack a layer made by rfs commit
  rfs build --emit out/artifacts             # kernel, initramfs, cmdline, root.sqfs, boot/... (no image)
  rfs build -o out/x.img --emit out/x        # the image and its artifacts
  rfs build --ssh-key ~/.ssh/id_ed25519.pub  # SSH in as root with that key
  rfs build --network off                    # no networking (loopback only)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := resolveBuild(cmd, *f)
			if err != nil {
				return err
			}
			cfg.Warn = func(format string, args ...any) {
				fmt.Fprintf(cmd.ErrOrStderr(), "rfs: "+format+"\n", args...)
			}
			if !quiet {
				cfg.Log = func(format string, args ...any) {
					fmt.Fprintf(cmd.ErrOrStderr(), "rfs: "+format+"\n", args...)
				}
			}
			res, err := builder.Build(cmd.Context(), *cfg)
			if err != nil {
				return err
			}
			for _, p := range []string{res.Path, res.Emit} {
				if p != "" {
					fmt.Fprintln(cmd.OutOrStdout(), p)
				}
			}
			return nil
		},
	}
	buildFlagSet(cmd, f, &quiet)
	cmd.RegisterFlagCompletionFunc("board", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return boards.Names(), cobra.ShellCompDirectiveNoFileComp
	})
	cmd.RegisterFlagCompletionFunc("upper", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"data", "tmpfs", "tmpfs:size="}, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd, f
}

// buildFlagSet declares build's flags into f (and quiet).
func buildFlagSet(cmd *cobra.Command, f *buildFlags, quiet *bool) {
	fl := cmd.Flags()
	fl.StringVarP(&f.Config, "config", "c", "", "project file (default ./rfs.yaml if it exists)")
	fl.StringVarP(&f.Board, "board", "b", "", "target board, see 'rfs boards' (default "+boards.Default+")")
	fl.StringVar(&f.Userland, "userland", "", "userland: busybox or u-root (default busybox)")
	fl.StringVar(&f.Kernel, "kernel", "", "kernel image file, or a directory holding vmlinuz (default: the board's pinned kernel)")
	fl.StringArrayVar(&f.Files, "files", nil, "merge host directory DIR (or DIR:/dest) into the root; repeatable")
	fl.StringVar(&f.Owner, "owner", "", `owner of --files entries: "uid:gid", or "keep" (default 0:0)`)
	fl.StringVar(&f.Hostname, "hostname", "", "hostname (default rfs)")
	fl.StringVar(&f.Cmdline, "cmdline", "", "extra kernel command line")
	fl.StringVar(&f.Upper, "upper", "", "writable upper layer: data (persistent until a reset), tmpfs or tmpfs:size=N (default data)")
	fl.StringArrayVar(&f.Volumes, "volume", nil, "keep /path (or name:/path) on the data partition across factory resets; repeatable")
	fl.StringVar(&f.Size, "size", "", "image size, e.g. 1G (default: just fit)")
	fl.StringVar(&f.DataSize, "data-size", "", "data partition size in the image, e.g. 256M (default 64M; the first boot grows it)")
	fl.StringVarP(&f.Output, "output", "o", "", "output image (default out/BOARD.img, none with --emit alone)")
	fl.StringVar(&f.Emit, "emit", "", "write the artifacts (kernel, initramfs, command line, root and layer squashfs, boot files, rfs.json) to directory DIR")
	fl.BoolVar(&f.Login, "login", false, "ask for a login on the console instead of starting a root shell")
	fl.Int64Var(&f.Epoch, "epoch", 0, "timestamp of every file, seconds since 1970 (default $SOURCE_DATE_EPOCH or 2026-01-01)")
	fl.BoolVarP(quiet, "quiet", "q", false, "print only the output paths")
	fl.StringArrayVar(&f.Layers, "layer", nil, "stack squashfs FILE (e.g. from rfs commit) above the root, in order, bottom to top; repeatable")
	fl.StringVar(&f.Network, "network", "", "device network: dhcp (on every wired interface: the default) or off; static addresses: network: in rfs.yaml")
	fl.StringArrayVar(&f.SSHKeys, "ssh-key", nil, "authorize public key FILE (e.g. ~/.ssh/id_ed25519.pub) for root over SSH; repeatable (replaces ssh.authorized_keys of rfs.yaml)")
	fl.BoolVar(&f.Slots, "slots", false, "A/B slots for field updates (qemu-arm64, qemu-amd64, Raspberry Pi): two root slots, rollback (default: on with update: in rfs.yaml)")
	fl.StringVar(&f.SlotSize, "slot-size", "", "size of each root slot, e.g. 256M (default: twice the root's files, at least 64M); implies --slots")
	fl.StringVar(&f.UpdateKey, "update-key", "", "public key FILE (rfs keygen's NAME.pub) that updates must be signed with; implies --slots")
	fl.StringVar(&f.Version, "version", "", "release version, e.g. 1.2.0 (default: the build epoch in seconds)")
	fl.StringVar(&f.EFIStub, "efi-stub", "", "UEFI boards: EFI stub of the unified kernel image (default: systemd-boot-efi's, e.g. /usr/lib/systemd/boot/efi/linuxx64.efi.stub)")
}

// resolveBuild merges the project file and the flags (project.ResolveBuild).
func resolveBuild(cmd *cobra.Command, f buildFlags) (*builder.Config, error) {
	f.Changed = cmd.Flags().Changed
	return project.ResolveBuild(f)
}
