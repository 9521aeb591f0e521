package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/project"
	"github.com/rfsbuild/rfs/rootfs"
)

type buildFlags struct {
	config   string
	board    string
	userland string
	kernel   string
	files    []string
	owner    string
	hostname string
	cmdline  string
	upper    string
	size     string
	dataSize string
	volumes  []string
	output   string
	login    bool
	epoch    int64
	quiet    bool
	efiStub  string
	layers   []string
	emit     string
}

func newBuildCmd() *cobra.Command {
	cmd, _ := buildCommand()
	return cmd
}

// buildCommand returns the command and the flag values it fills.
func buildCommand() (*cobra.Command, *buildFlags) {
	f := new(buildFlags)
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
The image is written to a temporary name and renamed when complete.`,
		Example: `  rfs build                                  # default board, out/qemu-arm64.img
  rfs build --board qemu-amd64 -o out/x86.img
  rfs build --files ./overlay --files ./app:/opt/app --hostname kiosk
  rfs build --kernel ~/linux/arch/arm64/boot/Image --cmdline quiet
  rfs build --upper tmpfs:size=256M --size 1G
  rfs build --volume /var/lib/app --volume wifi:/etc/wpa_supplicant
  rfs build --layer changes.sqfs             # stack a layer made by rfs commit
  rfs build --emit out/artifacts             # kernel, initramfs, cmdline, root.sqfs, boot/... (no image)
  rfs build -o out/x.img --emit out/x        # the image and its artifacts`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := resolveBuild(cmd, *f)
			if err != nil {
				return err
			}
			cfg.Warn = func(format string, args ...any) {
				fmt.Fprintf(cmd.ErrOrStderr(), "rfs: "+format+"\n", args...)
			}
			if !f.quiet {
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
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", "", "project file (default ./rfs.yaml if it exists)")
	fl.StringVarP(&f.board, "board", "b", "", "target board, see 'rfs boards' (default "+boards.Default+")")
	fl.StringVar(&f.userland, "userland", "", "userland: busybox or u-root (default busybox)")
	fl.StringVar(&f.kernel, "kernel", "", "kernel image file, or a directory holding vmlinuz (default: the board's pinned kernel)")
	fl.StringArrayVar(&f.files, "files", nil, "merge host directory DIR (or DIR:/dest) into the root; repeatable")
	fl.StringVar(&f.owner, "owner", "", `owner of --files entries: "uid:gid", or "keep" (default 0:0)`)
	fl.StringVar(&f.hostname, "hostname", "", "hostname (default rfs)")
	fl.StringVar(&f.cmdline, "cmdline", "", "extra kernel command line")
	fl.StringVar(&f.upper, "upper", "", "writable upper layer: data (persistent until a reset), tmpfs or tmpfs:size=N (default data)")
	fl.StringArrayVar(&f.volumes, "volume", nil, "keep /path (or name:/path) on the data partition across factory resets; repeatable")
	fl.StringVar(&f.size, "size", "", "image size, e.g. 1G (default: just fit)")
	fl.StringVar(&f.dataSize, "data-size", "", "data partition size in the image, e.g. 256M (default 64M; the first boot grows it)")
	fl.StringVarP(&f.output, "output", "o", "", "output image (default out/BOARD.img, none with --emit alone)")
	fl.StringVar(&f.emit, "emit", "", "write the artifacts (kernel, initramfs, command line, root and layer squashfs, boot files, rfs.json) to directory DIR")
	fl.BoolVar(&f.login, "login", false, "ask for a login on the console instead of starting a root shell")
	fl.Int64Var(&f.epoch, "epoch", 0, "timestamp of every file, seconds since 1970 (default $SOURCE_DATE_EPOCH or 2026-01-01)")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "print only the image path")
	fl.StringArrayVar(&f.layers, "layer", nil, "stack squashfs FILE (e.g. from rfs commit) above the root, in order, bottom to top; repeatable")
	fl.StringVar(&f.efiStub, "efi-stub", "", "UEFI boards: EFI stub of the unified kernel image (default: systemd-boot-efi's, e.g. /usr/lib/systemd/boot/efi/linuxx64.efi.stub)")
	cmd.RegisterFlagCompletionFunc("board", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return boards.Names(), cobra.ShellCompDirectiveNoFileComp
	})
	cmd.RegisterFlagCompletionFunc("upper", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"data", "tmpfs", "tmpfs:size="}, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd, f
}

// resolveBuild merges the project file and the flags (flags win) into a
// builder configuration, resolving project-relative paths.
func resolveBuild(cmd *cobra.Command, f buildFlags) (*builder.Config, error) {
	p := &project.File{Dir: "."}
	projectFile := f.config
	if f.config != "" {
		var err error
		if p, err = project.Load(f.config); err != nil {
			return nil, err
		}
	} else if _, err := os.Stat(project.DefaultFile); err == nil {
		if p, err = project.Load(project.DefaultFile); err != nil {
			return nil, err
		}
		projectFile = project.DefaultFile
	}
	rel := func(path string) string {
		if path == "" || filepath.IsAbs(path) {
			return path
		}
		return filepath.Join(p.Dir, path)
	}
	changed := cmd.Flags().Changed
	// origin names each setting for messages: its flag, or its key and
	// line in the project file.
	origin := map[string]string{}
	from := func(flag, key string) string {
		if changed(flag) {
			origin[key] = "--" + flag
		} else {
			origin[key] = p.Where(key)
		}
		return origin[key]
	}
	for flag, key := range map[string]string{"userland": "userland", "hostname": "hostname", "cmdline": "cmdline", "upper": "upper",
		"files": "files", "volume": "volumes", "epoch": "epoch", "root_password_hash": "root_password_hash", "config_txt": "config_txt",
		"apps": "apps", "uroot_commands": "uroot_commands"} {
		from(flag, key)
	}
	pick := func(flag, flagVal, fileVal string) string {
		if changed(flag) {
			return flagVal
		}
		return fileVal
	}
	size := func(flag, key, s string) (int64, error) {
		where := from(flag, key)
		n, err := image.ParseSize(s)
		if err != nil {
			return 0, fmt.Errorf("%s %q: %w", where, s, err)
		}
		return n, nil
	}

	boardName := pick("board", f.board, p.Board)
	if boardName == "" {
		boardName = boards.Default
	}
	board, err := boards.Lookup(boardName)
	if err != nil {
		return nil, err
	}
	cfg := &builder.Config{
		Board:     board,
		Userland:  pick("userland", f.userland, p.Userland),
		Hostname:  pick("hostname", f.hostname, p.Hostname),
		Cmdline:   pick("cmdline", f.cmdline, p.Cmdline),
		Upper:     pick("upper", f.upper, p.Upper),
		RootHash:  p.RootHash,
		ConfigTxt: p.ConfigTxt,
		Owner:     &rootfs.Owner{},
		Origin:    origin,
	}
	cfg.ProjectFile = projectFile
	cfg.URootCommands, cfg.Apps, cfg.AppsDir = p.URootCommands, p.Apps, p.Dir
	if changed("kernel") {
		cfg.Kernel = f.kernel
	} else {
		cfg.Kernel = rel(p.Kernel)
	}
	if changed("efi-stub") {
		cfg.EFIStub = f.efiStub
	} else {
		cfg.EFIStub = rel(p.EFIStub)
	}
	if changed("layer") {
		cfg.Layers = f.layers
	} else {
		for _, l := range p.Layers {
			cfg.Layers = append(cfg.Layers, rel(l))
		}
	}
	if changed("files") {
		for _, s := range f.files {
			cfg.Files = append(cfg.Files, builder.ParseFiles(s))
		}
	} else {
		for _, s := range p.Files {
			fs := builder.ParseFiles(s)
			fs.Src = rel(fs.Src)
			cfg.Files = append(cfg.Files, fs)
		}
	}
	switch owner := pick("owner", f.owner, p.Owner); owner {
	case "":
	case "keep":
		cfg.Owner = nil
	default:
		u, g, ok := strings.Cut(owner, ":")
		uid, err1 := strconv.ParseUint(u, 10, 32)
		gid, err2 := strconv.ParseUint(g, 10, 32)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf(`owner %q: want "uid:gid" (numbers) or "keep"`, owner)
		}
		cfg.Owner = &rootfs.Owner{UID: uint32(uid), GID: uint32(gid)}
	}
	if s := pick("size", f.size, p.Size); s != "" {
		if cfg.Size, err = size("size", "size", s); err != nil {
			return nil, err
		}
	}
	vols := p.Volumes
	if changed("volume") {
		vols = f.volumes
	}
	for _, v := range vols {
		vol, err := builder.ParseVolume(v)
		if err != nil {
			return nil, err
		}
		cfg.Volumes = append(cfg.Volumes, vol)
	}
	if s := pick("data-size", f.dataSize, p.DataSize); s != "" {
		if cfg.DataSize, err = size("data-size", "data_size", s); err != nil {
			return nil, err
		}
	}
	cfg.Login = f.login
	if !changed("login") && p.Login != nil {
		cfg.Login = *p.Login
	}
	switch {
	case changed("epoch"):
		cfg.Epoch = f.epoch
	case p.Epoch != nil:
		cfg.Epoch = *p.Epoch
	case os.Getenv("SOURCE_DATE_EPOCH") != "":
		if cfg.Epoch, err = builder.ParseEpoch(os.Getenv("SOURCE_DATE_EPOCH")); err != nil {
			return nil, err
		}
		origin["epoch"] = "SOURCE_DATE_EPOCH"
	default:
		cfg.Epoch = builder.DefaultEpoch
	}
	cfg.Emit = f.emit
	switch {
	case changed("output"):
		cfg.Output = f.output
	case f.emit != "":
		// --emit alone writes only the directory.
	case p.Output != "":
		cfg.Output = rel(p.Output)
	default:
		cfg.Output = filepath.Join("out", board.Name+".img")
	}
	if err := checkBuildInputs(cfg, changed); err != nil {
		return nil, err
	}
	return cfg, nil
}
